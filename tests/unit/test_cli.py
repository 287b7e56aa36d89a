"""CLI contract: exit codes 0/1/2, one-line errors, train → evaluate --json → info."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from embedlens.app.cli import main


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> tuple[Path, Path]:
    from embedlens.app.demo import demo_data_dir

    out = tmp_path_factory.mktemp("lens") / "lens"
    rc = main(
        [
            "train",
            "--data",
            str(demo_data_dir()),
            "--out",
            str(out),
            "--cache",
            str(cache_dir),
            "--quiet",
            "--max-steps",
            "3",
        ]
    )
    assert rc == 0
    return demo_data_dir(), out


def test_train_writes_lens_and_curve(trained: tuple[Path, Path]) -> None:
    _, lens = trained
    assert (lens / "lens.json").is_file() and (lens / "weights.safetensors").is_file()
    png = lens / "validation_curve.png"
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    meta = json.loads((lens / "lens.json").read_text())["metadata"]
    assert meta["base_model"] == "st:all-MiniLM-L6-v2" and meta["base_dim"] == 384
    assert "reason" in meta["training"] and len(meta["training"]["curve"]) >= 2


def test_evaluate_json_and_plots(
    trained: tuple[Path, Path], tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, lens = trained
    out = tmp_path / "report.json"
    rc = main(
        [
            "evaluate",
            "--data",
            str(data),
            "--lens",
            str(lens),
            "--json",
            str(out),
            "--plots",
            str(tmp_path / "plots"),
            "--cache",
            str(cache_dir),
        ]
    )
    assert rc == 0
    report = json.loads(out.read_text())
    assert {"raw", "lens", "uplift", "groups"} <= report.keys()
    assert set(report["uplift"]["ndcg@10"]) >= {"delta", "ci95", "p_value", "significant"}
    assert "seen" in report["groups"]
    text = capsys.readouterr().out
    assert "ndcg@10" in text and "95% CI" in text and "seen queries" in text
    assert (tmp_path / "plots" / "metric_at_k.png").stat().st_size > 1000


def test_info(trained: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(trained[1])]) == 0
    out = capsys.readouterr().out
    assert "st:all-MiniLM-L6-v2" in out and "reason:" in out


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("embedlens: error:"), err
    return err[0]


def test_bad_usage_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--out", "x"]) == 2
    assert "--data" in capsys.readouterr().err


def test_missing_data_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "l"), "--no-cache"]) == 2
    assert "nope: no such file" in _one_line_error(capsys)


def test_malformed_pairs_exit_2(tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "p.csv"
    p.write_text("text_1,text_2,label\na,b,1\nc,d,maybe\n")
    assert main(["train", "--data", str(p), "--out", str(tmp_path / "l"), "--cache", str(cache_dir)]) == 2
    assert "p.csv:3: label 'maybe' is not a number" in _one_line_error(capsys)


def test_dim_with_query_mode_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_beir: Path
) -> None:
    rc = main(
        ["train", "--data", str(tiny_beir), "--out", str(tmp_path / "l"), "--mode", "query", "--dim", "64"]
    )
    assert rc == 2
    assert "--dim needs --mode symmetric" in _one_line_error(capsys)


def test_corrupted_lens_exit_2(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(trained[1], bad)
    w = bad / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:-10])
    assert main(["info", str(bad)]) == 2
    assert "weights.safetensors" in _one_line_error(capsys)
    assert main(["evaluate", "--data", str(trained[0]), "--lens", str(bad), "--no-cache"]) == 2
    assert "sha256" in _one_line_error(capsys)


def test_other_failure_exit_1_and_debug_traceback(
    monkeypatch: pytest.MonkeyPatch, trained: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import embedlens.app.report

    def boom(*a: object, **k: object) -> str:
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(embedlens.app.report, "format_lens_info", boom)
    assert main(["info", str(trained[1])]) == 1
    assert _one_line_error(capsys) == "embedlens: error: disk on fire"
    assert main(["info", str(trained[1]), "--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_console_script_exit_code(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "embedlens.app.cli", "info", str(tmp_path / "none")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("embedlens: error:") and len(proc.stderr.strip().splitlines()) == 1


def test_pairs_file_train_evaluate_with_histograms(tmp_path: Path, cache_dir: Path) -> None:
    rows = ["text_1,text_2,label"]
    topics = ["password reset", "refund request", "dark mode", "export csv", "invite users", "delete account"]
    for i in range(60):
        t = topics[i % 6]
        rows.append(f"how do I {t} {i},{t} help article {i},1")
        rows.append(f"how do I {t} {i},{topics[(i + 1) % 6]} help article {i},0")
    path = tmp_path / "pairs.csv"
    path.write_text("\n".join(rows) + "\n")
    lens = tmp_path / "lens"
    assert (
        main(
            [
                "train",
                "--data",
                str(path),
                "--out",
                str(lens),
                "--cache",
                str(cache_dir),
                "--quiet",
                "--max-steps",
                "2",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(path),
                "--lens",
                str(lens),
                "--cache",
                str(cache_dir),
                "--plots",
                str(tmp_path / "plots"),
                "--json",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    rep = json.loads((tmp_path / "r.json").read_text())
    assert {"accuracy", "roc_auc", "spearman", "cookbook_accuracy"} <= rep["raw"].keys()
    assert (tmp_path / "plots" / "cosine_histograms.png").stat().st_size > 5000


def test_search_grid_chosen_on_validation(tmp_path: Path, cache_dir: Path) -> None:
    from embedlens.app.demo import demo_data_dir

    out = tmp_path / "lens"
    assert (
        main(
            [
                "train",
                "--data",
                str(demo_data_dir()),
                "--out",
                str(out),
                "--cache",
                str(cache_dir),
                "--quiet",
                "--max-steps",
                "2",
                "--wide-grid",
            ]
        )
        == 0
    )
    meta = json.loads((out / "lens.json").read_text())["metadata"]["training"]
    points = {(p["lr"], p["temperature"], p["pseudo_weight"]) for p in meta["grid"]}
    assert len(points) == 12  # 3 learning rates x 2 temperatures x pseudo-query weight 5 / 0
    best = max([meta["cv_start"]] + [p["cv"] for p in meta["grid"]])
    assert best - 0.002 <= meta["cv_best"] <= best  # ties within 0.002 go to the earlier grid point


@pytest.mark.parametrize("split_column", [False, True])
def test_dense_pair_set_trains_and_evaluates_with_a_warning(
    tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str], split_column: bool
) -> None:
    """120 usable pairs over 12 distinct texts cannot be split by text: split by pair, and say so."""
    texts = [f"product {name}" for name in "abcdefghijkl"]
    pairs = [(i, j) for i in range(12) for j in range(12) if i != j][:120]
    head = "text_1,text_2,label" + (",split" if split_column else "")
    rows = [head]
    for n, (i, j) in enumerate(pairs):
        label = 1 if (i % 3) == (j % 3) else 0
        rows.append(
            f"{texts[i]},{texts[j]},{label}" + ((",test" if n % 4 == 0 else ",train") if split_column else "")
        )
    path = tmp_path / "dense.csv"
    path.write_text("\n".join(rows) + "\n")
    lens = tmp_path / "lens"
    common = ["--data", str(path), "--cache", str(cache_dir)]
    assert main(["train", *common, "--out", str(lens), "--max-steps", "20"]) == 0
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if line.startswith("embedlens: warning:")]
    assert warned and all("by pair" in line for line in warned), err
    assert len(warned) == len(set(warned)), err  # each warning once (not again from the pre-check)
    report = tmp_path / "r.json"
    assert main(["evaluate", *common, "--lens", str(lens), "--json", str(report)]) == 0
    rep = json.loads(report.read_text())
    assert rep["info"]["threshold_source"].startswith("out-of-fold")
    thr = json.loads((lens / "lens.json").read_text())["metadata"]["training"]["threshold"]
    assert rep["raw"]["threshold"] == thr["raw"] and rep["lens"]["threshold"] == thr["lens"]
