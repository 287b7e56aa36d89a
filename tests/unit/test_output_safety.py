"""Output safety (issue 11): no command writes over anything that is not ours, or over/inside/around an input.

The CLI tests swap the real model for the hashing embedder, so that the unsafe old code reaches (and
shows) its destructive write quickly instead of loading a model.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from embedlens import EmbedlensInputError, Lens, load_lens
from embedlens.app.cli import main
from embedlens.project import project_npy
from tests.conftest import HashEmbedder

THESIS = b"Chapter 1. Four years of work.\n"


@pytest.fixture
def fast_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """``embedlens train/evaluate`` with the 16-d hashing embedder instead of the real model, and a
    stand-in for training (a random lens per seed): the CLI's checks and writes are what is tested."""
    import embedlens.training.workflow
    from embedlens.app import cli
    from embedlens.cache import open_embedder

    def fake(args: object, model: object) -> object:
        emb = open_embedder(base=HashEmbedder(), no_cache=True)
        emb.progress = False
        return emb

    def fake_train(data: object, embedder: object, config: Any, **kw: object) -> object:
        w = np.eye(16, dtype=np.float32) + 0.1 * np.random.default_rng(config.seed).standard_normal((16, 16))
        curve = [{"steps": 0, "cv": 0.5}, {"steps": 10, "cv": 0.6}]
        training = {
            "cv_metric": "ndcg@10",
            "cv_start": 0.5,
            "cv_best": 0.6,
            "chosen_steps": 10,
            "cv_folds": 5,
            "reason": "r",
        }
        lens = Lens(w, mode="query", metadata={"base_model": "hash-test", "training": training})
        return SimpleNamespace(lens=lens, curve=curve, summary={})

    monkeypatch.setattr(cli, "_embedder", fake)
    monkeypatch.setattr(embedlens.training.workflow, "train_lens", fake_train)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("embedlens: error:"), err
    return err[0]


def _train(data: Path, out: Path, *extra: str) -> int:
    return main(
        ["train", "--data", str(data), "--out", str(out), "--no-cache", "--quiet", "--max-steps", "1", *extra]
    )


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _lens16(tmp_path: Path, name: str = "lens") -> Path:
    return Lens.identity(16, mode="query", base_model="hash-test").save(tmp_path / name)


# ----------------------------------------------------------------------------- train --out


def test_train_out_refuses_a_foreign_directory(
    tmp_path: Path, tiny_beir: Path, fast_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.tex").write_bytes(THESIS)
    for extra in ([], ["--force"]):
        assert _train(tiny_beir, thesis, *extra) == 2
        line = _error_line(capsys)
        assert "--out" in line and str(thesis) in line and "not an embedlens lens directory" in line
    assert (thesis / "thesis.tex").read_bytes() == THESIS


def test_train_out_refuses_its_own_data(
    tmp_path: Path, tiny_beir: Path, fast_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(tiny_beir)
    for extra in ([], ["--force"]):
        assert _train(tiny_beir, tiny_beir, *extra) == 2
        assert "same path as the input --data" in _error_line(capsys)
    assert _train(tiny_beir, tiny_beir / "lens") == 2  # inside the data directory
    assert "lies inside the input --data" in _error_line(capsys)
    assert _train(tiny_beir / "qrels", tiny_beir) == 2  # around the data
    assert "contains the input --data" in _error_line(capsys)
    assert _snapshot(tiny_beir) == before


def test_train_out_refuses_a_data_csv(
    tmp_path: Path, tiny_beir: Path, fast_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "pairs.csv"
    csv.write_text("text_1,text_2,label\na b,a c,1\n")
    for extra in ([], ["--force"]):
        assert _train(tiny_beir, csv, *extra) == 2
        assert "--out" in _error_line(capsys)
    assert csv.read_text() == "text_1,text_2,label\na b,a c,1\n"


def test_train_out_lens_needs_force_and_empty_dir_is_fine(
    tmp_path: Path, tiny_beir: Path, fast_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    assert _train(tiny_beir, out) == 0  # an existing empty directory may be used
    first = (out / "weights.safetensors").read_bytes()
    assert (out / "validation_curve.png").is_file()
    capsys.readouterr()
    assert _train(tiny_beir, out, "--seed", "3") == 2
    line = _error_line(capsys)
    assert "existing lens directory" in line and "--force" in line
    assert (out / "weights.safetensors").read_bytes() == first
    assert _train(tiny_beir, out, "--seed", "3", "--force") == 0
    load_lens(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beir", "empty"]  # no temp or .old leftovers


def test_train_force_refuses_a_lens_holding_a_foreign_file(
    tmp_path: Path, tiny_beir: Path, fast_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    lens = _lens16(tmp_path)
    (lens / "notes.md").write_bytes(THESIS)
    for extra in ([], ["--force"]):
        assert _train(tiny_beir, lens, *extra) == 2
        assert "holds 'notes.md'" in _error_line(capsys)
    assert (lens / "notes.md").read_bytes() == THESIS


# ----------------------------------------------------------------------------- Lens.save from Python


def test_lens_save_refuses_what_is_not_a_lens(tmp_path: Path) -> None:
    from embedlens._outputs import OutputRefusedError

    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.tex").write_bytes(THESIS)
    file = tmp_path / "data.csv"
    file.write_bytes(THESIS)
    for target in (thesis, file):
        with pytest.raises(OutputRefusedError, match="refusing to replace it"):
            Lens.identity(4).save(target)
    assert (thesis / "thesis.tex").read_bytes() == THESIS and file.read_bytes() == THESIS
    lens_dir = Lens.identity(4).save(tmp_path / "lens")
    Lens.identity(4, normalize=False).save(lens_dir)  # a lens directory is replaced (documented)
    assert load_lens(lens_dir).normalize is False
    with pytest.raises(EmbedlensInputError, match="overwrite=True"):
        Lens.identity(4).save(lens_dir, overwrite=False)


def test_atomic_write_dir_old_name_is_unique(tmp_path: Path) -> None:
    """Another process's ``.lens.old-<pid>`` (same pid in a container) is neither used nor touched."""
    lens_dir = Lens.identity(4).save(tmp_path / "lens")
    squatter = tmp_path / f".lens.old-{os.getpid()}"
    squatter.mkdir()
    (squatter / "keep.txt").write_bytes(THESIS)
    Lens.identity(4, normalize=False).save(lens_dir)
    assert load_lens(lens_dir).normalize is False
    assert (squatter / "keep.txt").read_bytes() == THESIS


def test_lens_dir_and_files_honour_the_umask(tmp_path: Path, umask_022: None) -> None:
    from embedlens._atomic import atomic_write_bytes, atomic_write_json

    lens_dir = Lens.identity(4).save(tmp_path / "lens")
    assert stat.S_IMODE(lens_dir.stat().st_mode) == 0o755
    for f in lens_dir.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f
    atomic_write_bytes(tmp_path / "a.bin", b"x")
    atomic_write_json(tmp_path / "b.json", {"a": 1})
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.json").stat().st_mode) == 0o644
    os.chmod(tmp_path / "a.bin", 0o640)  # replacing an existing file keeps its mode, like open() would
    atomic_write_bytes(tmp_path / "a.bin", b"y")
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o640
    np.save(tmp_path / "x.npy", np.ones((3, 4), np.float32))
    project_npy(tmp_path / "x.npy", tmp_path / "y.npy", Lens.identity(4), progress=False)
    assert stat.S_IMODE((tmp_path / "y.npy").stat().st_mode) == 0o644


# ----------------------------------------------------------------------------- evaluate --json / --plots


def _evaluate(data: Path, lens: Path, *extra: str) -> int:
    return main(["evaluate", "--data", str(data), "--lens", str(lens), "--no-cache", *extra])


def test_evaluate_json_replaces_only_our_report_with_force(
    tmp_path: Path, tiny_beir: Path, fast_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    lens = _lens16(tmp_path)
    foreign = tmp_path / "notes.json"
    foreign.write_text('{"my": "notes"}')
    for extra in ([], ["--force"]):
        assert _evaluate(tiny_beir, lens, "--json", str(foreign), *extra) == 2
        line = _error_line(capsys)
        assert "--json" in line and str(foreign) in line
    assert foreign.read_text() == '{"my": "notes"}'

    report = tmp_path / "report.json"
    assert _evaluate(tiny_beir, lens, "--json", str(report)) == 0
    js = json.loads(report.read_text())
    assert js["format"] == "embedlens-report" and "uplift" in js
    capsys.readouterr()
    assert _evaluate(tiny_beir, lens, "--json", str(report)) == 2
    assert "pass --force" in _error_line(capsys)
    assert _evaluate(tiny_beir, lens, "--json", str(report), "--force") == 0


def test_evaluate_outputs_never_inside_or_over_inputs(
    tmp_path: Path, tiny_beir: Path, fast_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    lens = _lens16(tmp_path)
    before = _snapshot(lens)
    assert _evaluate(tiny_beir, lens, "--plots", str(lens)) == 2
    assert "same path as the input --lens" in _error_line(capsys)
    assert _evaluate(tiny_beir, lens, "--json", str(lens / "report.json")) == 2
    assert "lies inside the input --lens" in _error_line(capsys)
    assert _snapshot(lens) == before
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "".join(json.dumps({"text_1": f"a{i}", "text_2": f"b{i}", "label": i % 2}) + "\n" for i in range(8))
    )
    assert _evaluate(pairs, lens, "--json", str(pairs), "--force") == 2
    assert "same path as the input --data" in _error_line(capsys)
    assert pairs.read_text().startswith('{"text_1": "a0"')


def test_evaluate_plots_replace_only_our_png_with_force(
    tmp_path: Path, tiny_beir: Path, fast_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    lens = _lens16(tmp_path)
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "other.txt").write_bytes(THESIS)  # other files in the folder are fine and untouched
    assert _evaluate(tiny_beir, lens, "--plots", str(plots)) == 0
    png = plots / "metric_at_k.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert _evaluate(tiny_beir, lens, "--plots", str(plots)) == 2
    assert "metric_at_k.png" in _error_line(capsys)
    assert _evaluate(tiny_beir, lens, "--plots", str(plots), "--force") == 0
    png.write_bytes(THESIS)  # a file of our name that is not a PNG: not ours
    capsys.readouterr()
    assert _evaluate(tiny_beir, lens, "--plots", str(plots), "--force") == 2
    assert "not a PNG" in _error_line(capsys)
    assert png.read_bytes() == THESIS and (plots / "other.txt").read_bytes() == THESIS
    assert sorted(p.name for p in plots.iterdir()) == ["metric_at_k.png", "other.txt", "report.png"]


# ----------------------------------------------------------------------------- project --output


def _project(lens: Path, src: Path, dst: Path, *extra: str) -> int:
    return main(["project", "--lens", str(lens), "--input", str(src), "--output", str(dst), *extra])


@pytest.fixture
def npy_setup(tmp_path: Path) -> tuple[Path, Path]:
    np.save(tmp_path / "x.npy", np.arange(12, dtype=np.float32).reshape(3, 4) + 1)
    return Lens.identity(4, mode="symmetric").save(tmp_path / "lens"), tmp_path / "x.npy"


def test_project_bad_batch_size_keeps_a_good_output(
    tmp_path: Path, npy_setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    lens, src = npy_setup
    dst = tmp_path / "y.npy"
    assert _project(lens, src, dst) == 0
    good = dst.read_bytes()
    capsys.readouterr()
    for extra in (["-1"], ["0"], ["-1", "--force"]):
        assert _project(lens, src, dst, "--batch-size", *extra) == 2
        assert "--batch-size" in _error_line(capsys)
    assert dst.read_bytes() == good
    for kwargs in ({"batch_size": -1}, {"batch_size": 0}, {"batch_size": 2.5}, {"side": "both"}):
        with pytest.raises(EmbedlensInputError, match="batch_size|side"):
            project_npy(src, dst, load_lens(lens), progress=False, **kwargs)  # type: ignore[arg-type]
    assert dst.read_bytes() == good


def test_project_output_refuses_input_lens_and_foreign_files(
    tmp_path: Path, npy_setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    lens, src = npy_setup
    original = src.read_bytes()
    for extra in ([], ["--force"]):
        assert _project(lens, src, src, *extra) == 2
        assert "same path as the input --input" in _error_line(capsys)
    assert src.read_bytes() == original
    assert _project(lens, src, lens / "y.npy") == 2
    assert "lies inside the input --lens" in _error_line(capsys)
    foreign = tmp_path / "thesis.npy"
    foreign.write_bytes(THESIS)
    assert _project(lens, src, foreign, "--force") == 2
    assert "--output" in _error_line(capsys)
    assert foreign.read_bytes() == THESIS
    other = tmp_path / "ints.npy"
    np.save(other, np.arange(6).reshape(2, 3))  # a .npy, but not one project could have written
    assert _project(lens, src, other, "--force") == 2
    assert "not a float32 matrix" in _error_line(capsys)
    fifo = tmp_path / "fifo.npy"
    os.mkfifo(fifo)  # refused without being opened (opening a FIFO would block)
    assert _project(lens, src, fifo, "--force") == 2
    assert "not a regular file" in _error_line(capsys)


def test_project_output_ours_needs_force(
    tmp_path: Path, npy_setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    lens, src = npy_setup
    dst = tmp_path / "y.npy"
    assert _project(lens, src, dst) == 0
    capsys.readouterr()
    assert _project(lens, src, dst, "--side", "queries") == 2
    assert "pass --force" in _error_line(capsys)
    assert _project(lens, src, dst, "--side", "queries", "--force") == 0
    np.testing.assert_allclose(np.load(dst), load_lens(lens).project_queries(np.load(src)), atol=1e-6)


def test_two_projects_to_one_output_do_not_share_a_temp_file(tmp_path: Path) -> None:
    """A second run started while the first is writing: each has its own temp file, both complete."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    lens_a = Lens(rng.standard_normal((4, 4)).astype(np.float32), mode="symmetric")
    lens_b = Lens(rng.standard_normal((4, 4)).astype(np.float32), mode="symmetric")
    dst = tmp_path / "y.npy"
    started = []

    def run_b(done: int) -> None:
        if not started:
            started.append(done)
            project_npy(tmp_path / "x.npy", dst, lens_b, batch_size=7, progress=False)
            np.testing.assert_allclose(np.load(dst), lens_b.project_documents(x), atol=1e-6)

    project_npy(tmp_path / "x.npy", dst, lens_a, batch_size=10, progress=False, on_batch=run_b)
    np.testing.assert_allclose(np.load(dst), lens_a.project_documents(x), atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy", "y.npy"]


# ----------------------------------------------------------------------------- demo --workdir


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    import embedlens.cache

    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("the model was loaded before the workdir was checked")

    monkeypatch.setattr(embedlens.cache, "open_embedder", refuse)


@pytest.mark.parametrize("foreign", ["lens/notes.md", "chroma/chroma.sqlite3", "thesis.tex"])
def test_demo_refuses_a_foreign_workdir(tmp_path: Path, no_model: None, foreign: str) -> None:
    from embedlens.app.demo import run_demo

    work = tmp_path / "work"
    (work / foreign).parent.mkdir(parents=True, exist_ok=True)
    (work / foreign).write_bytes(THESIS)
    with pytest.raises(
        EmbedlensInputError, match=r"--workdir .*work: is not empty and is not a previous demo"
    ):
        run_demo(workdir=work)
    assert _snapshot(work) == {foreign: THESIS}


def test_demo_workdir_new_empty_or_marked(tmp_path: Path, tiny_beir: Path) -> None:
    from embedlens._outputs import DEMO_MARKER, prepare_demo_workdir

    new = prepare_demo_workdir(tmp_path / "new")
    assert (new / DEMO_MARKER).is_file()
    (tmp_path / "empty").mkdir()
    assert (prepare_demo_workdir(tmp_path / "empty") / DEMO_MARKER).is_file()
    (new / "chroma").mkdir()  # a previous demo's work directory is reused
    assert prepare_demo_workdir(new) == new
    with pytest.raises(EmbedlensInputError, match="--data"):
        prepare_demo_workdir(tiny_beir, inputs={"--data": tiny_beir})
    with pytest.raises(EmbedlensInputError, match="not a directory"):
        prepare_demo_workdir(tiny_beir / "corpus.jsonl")


# ----------------------------------------------------------------------------- review findings (issue 11)


def test_weights_file_in_lens_json_never_names_a_file_to_delete(
    tmp_path: Path, tiny_beir: Path, fast_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the fixed lens file names count: a lens.json naming thesis.tex makes the directory not ours."""
    from embedlens._outputs import OutputRefusedError

    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "lens.json").write_text('{"format": "embedlens-lens", "weights_file": "thesis.tex"}')
    (proj / "thesis.tex").write_bytes(THESIS)
    with pytest.raises(OutputRefusedError, match="thesis.tex"):
        Lens.identity(4).save(proj)
    assert _train(tiny_beir, proj, "--force") == 2
    assert "--out" in _error_line(capsys)
    assert (proj / "thesis.tex").read_bytes() == THESIS


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temps_carry_the_pid_and_dead_writers_temps_are_removed(tmp_path: Path) -> None:
    """A run killed midway leaves its temp; the next write to the same target removes it, nothing else."""
    from embedlens._atomic import unique_temp_file

    np.save(tmp_path / "x.npy", np.ones((3, 4), np.float32))
    dead, alive = _dead_pid(), os.getpid()
    stale = tmp_path / f".y.npy.embedlens-tmp-{dead}-abc123_x"
    stale.write_bytes(b"\0" * 4096)  # what SIGKILL during `project` left
    live = tmp_path / f".y.npy.embedlens-tmp-{alive}-zzz999"
    live.write_bytes(b"running")  # a writer still at work
    others = [
        f".y.npy.{dead}.tmp",
        f".z.npy.embedlens-tmp-{dead}-abc",
        "notes.txt",
        f"y.npy.embedlens-tmp-{dead}-a",
    ]
    for name in others:
        (tmp_path / name).write_bytes(THESIS)
    project_npy(tmp_path / "x.npy", tmp_path / "y.npy", Lens.identity(4), progress=False)
    assert not stale.exists() and live.read_bytes() == b"running"
    assert all((tmp_path / name).read_bytes() == THESIS for name in others)
    fd, tmp = unique_temp_file(tmp_path / "y.npy")
    os.close(fd)
    assert tmp.name.startswith(f".y.npy.embedlens-tmp-{os.getpid()}-")


def test_killed_lens_replace_is_recovered(tmp_path: Path) -> None:
    """A writer killed between moving the old lens aside and moving the new one in: the old lens comes
    back (not lost), and a dead writer's temp directory is removed."""
    from embedlens._outputs import guard_lens_dir

    lens_dir = Lens.identity(4, normalize=False).save(tmp_path / "lens")
    dead = _dead_pid()
    old = tmp_path / f".lens.old-{dead}-0123456789ab"
    os.replace(lens_dir, old)  # the crash window, simulated
    half = tmp_path / f".lens.embedlens-tmp-{dead}-q1w2e3r4"
    half.mkdir()
    (half / "weights.safetensors").write_bytes(b"partial")
    with pytest.raises(EmbedlensInputError, match="existing lens directory"):
        guard_lens_dir(lens_dir)  # the lens is back at --out before anything is judged
    assert load_lens(lens_dir).normalize is False and not old.exists()
    os.replace(lens_dir, old)
    Lens.identity(4).save(lens_dir)  # save recovers, then replaces the recovered lens
    assert load_lens(lens_dir).normalize is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lens"]


def test_lens_dir_with_a_dead_writers_plot_temp_is_still_a_lens(tmp_path: Path) -> None:
    from embedlens._outputs import lens_dir_problem

    lens_dir = Lens.identity(4).save(tmp_path / "lens")
    (lens_dir / f".validation_curve.png.embedlens-tmp-{_dead_pid()}-abc").write_bytes(b"x")
    assert lens_dir_problem(lens_dir) is None
    (lens_dir / ".notes.embedlens-tmp-1-abc").write_bytes(THESIS)
    assert "notes" in str(lens_dir_problem(lens_dir))


def test_default_cache_dir_is_an_input_checked_before_training(
    tmp_path: Path,
    tiny_beir: Path,
    monkeypatch: pytest.MonkeyPatch,
    fast_model: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import embedlens.training.workflow

    def no_training(*a: object, **k: object) -> None:
        raise AssertionError("trained before the output was checked")

    monkeypatch.setattr(embedlens.training.workflow, "train_lens", no_training)

    def _train(data: Path, out: Path) -> int:  # with the cache (``--no-cache`` uses none)
        return main(["train", "--data", str(data), "--out", str(out), "--quiet", "--max-steps", "1"])

    out = tmp_path / "o1"
    monkeypatch.setenv("EMBEDLENS_CACHE_DIR", str(out / "cache"))
    assert _train(tiny_beir, out) == 2
    line = _error_line(capsys)
    assert line.startswith(f"embedlens: error: --out {out}: contains the input embedding cache"), line
    monkeypatch.delenv("EMBEDLENS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(out / "xdg"))  # the default user cache dir
    assert _train(tiny_beir, out) == 2
    assert "--out" in _error_line(capsys)
    assert _train(tiny_beir, out / "xdg" / "embedlens" / "lens") == 2
    assert "lies inside the input default embedding cache" in _error_line(capsys)
    assert not out.exists()


def test_project_quiet_prints_nothing_and_progress_follows_quiet(
    tmp_path: Path, npy_setup: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import embedlens.project

    seen: list[bool] = []
    real = embedlens.project.project_npy

    def spy(*a: Any, **k: Any) -> Path:
        seen.append(k.get("progress", True))
        return real(*a, **k)

    monkeypatch.setattr(embedlens.project, "project_npy", spy)
    lens, src = npy_setup
    assert _project(lens, src, tmp_path / "a.npy", "--quiet") == 0
    assert _project(lens, src, tmp_path / "b.npy") == 0
    assert seen == [False, True]


def test_project_fifo_input_is_refused_without_blocking(
    tmp_path: Path, npy_setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess
    import sys

    lens, _ = npy_setup
    fifo = tmp_path / "in.npy"
    os.mkfifo(fifo)
    code = (
        "import sys\nfrom embedlens.app.cli import main\n"
        f"sys.exit(main(['project', '--lens', {str(lens)!r}, '--input', {str(fifo)!r}, "
        f"'--output', {str(tmp_path / 'y.npy')!r}, '--quiet']))"
    )
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("project hung on a FIFO as --input")
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        f"embedlens: error: {fifo}: not a readable .npy array (not a regular file)"
    ]


def test_project_nan_input_names_file_and_first_row_on_its_own_line(
    tmp_path: Path, npy_setup: tuple[Path, Path]
) -> None:
    import subprocess
    import sys

    lens, _ = npy_setup
    x = np.ones((50, 4), np.float32)
    x[37, 1] = np.nan
    x[45, 0] = np.inf
    np.save(tmp_path / "xnan.npy", x)
    dst = tmp_path / "y.npy"
    for quiet in ([], ["--quiet"]):
        argv = ["project", "--lens", str(lens), "--input", str(tmp_path / "xnan.npy"), "--output", str(dst)]
        argv += ["--batch-size", "16", *quiet]
        code = f"import sys\nfrom embedlens.app.cli import main\nsys.exit(main({argv!r}))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert out.returncode == 2
        lines = out.stderr.split("\n")  # a bar's carriage returns do not start a line in a log file
        errors = [ln for ln in lines if "error" in ln]
        assert len(errors) == 1 and errors[0].startswith("embedlens: error: "), out.stderr
        assert f"{tmp_path / 'xnan.npy'}: row 37 (0-based) holds NaN or Inf" in errors[0]
        assert not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lens", "x.npy", "xnan.npy"]


@pytest.mark.parametrize("where", ["--lens", "--input", "--output"])
def test_symlink_loop_as_any_path_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    from embedlens.app.cli import main
    from embedlens.lens import Lens

    loop = tmp_path / "loop1"
    loop.symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(loop)
    lens = Lens.identity(4).save(tmp_path / "lens")
    x = tmp_path / "x.npy"
    np.save(x, np.ones((3, 4), dtype=np.float32))
    paths = {"--lens": str(lens), "--input": str(x), "--output": str(tmp_path / "y.npy")}
    paths[where] = str(loop)
    argv = ["project", "--quiet"] + [a for k, v in paths.items() for a in (k, v)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and where in err[0], err
