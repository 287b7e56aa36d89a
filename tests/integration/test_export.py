"""``embedlens export``: a sentence-transformers folder that gives base + lens, offline (issue 12, item 3)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from embedlens import Lens, open_embedder
from embedlens.app.cli import main
from embedlens.lens import compute_fingerprint

TEXTS = ["where is my invoice", "reset my password please", "Falcon is down again"]


@pytest.fixture(scope="module")
def emb():  # type: ignore[no-untyped-def]
    e = open_embedder(no_cache=True)
    e.progress = False
    return e


def _lens(emb, tmp_path: Path, mode: str, d_out: int = 384):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    w = np.eye(384, d_out, dtype=np.float32) + 0.05 * rng.standard_normal((384, d_out)).astype(np.float32)
    lens = Lens(w, mode=mode, fingerprint=compute_fingerprint(emb.base), metadata={"base_model": emb.name})
    return lens.save(tmp_path / f"lens-{mode}-{d_out}")


def _load(path: Path):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu")


@pytest.mark.parametrize(("mode", "d_out"), [("query", 384), ("symmetric", 384), ("symmetric", 128)])
def test_exported_model_equals_base_plus_lens(emb, tmp_path: Path, mode: str, d_out: int) -> None:  # type: ignore[no-untyped-def]
    from embedlens import load_lens

    lens_dir = _lens(emb, tmp_path, mode, d_out)
    out = tmp_path / "model"
    assert main(["export", "--lens", str(lens_dir), "--out", str(out), "--quiet"]) == 0
    st = _load(out)
    lens = load_lens(lens_dir)
    want_q = lens.project_queries(emb.embed_queries(TEXTS))
    want_d = lens.project_documents(emb.embed(TEXTS))
    np.testing.assert_allclose(st.encode_query(TEXTS), want_q, atol=1e-5)
    np.testing.assert_allclose(st.encode_document(TEXTS), want_d, atol=1e-5)
    np.testing.assert_allclose(st.encode(TEXTS), want_d, atol=1e-5)  # plain encode is the document side


def test_export_refusals(emb, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    lens_dir = _lens(emb, tmp_path, "query")
    remote = Lens(np.eye(8, dtype=np.float32), metadata={"base_model": "openai:text-embedding-3-small"})
    remote_dir = remote.save(tmp_path / "remote")
    assert main(["export", "--lens", str(remote_dir), "--out", str(tmp_path / "m1")]) == 2
    assert "only a local sentence-transformers model" in capsys.readouterr().err
    assert not (tmp_path / "m1").exists()

    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    for extra in ([], ["--force"]):  # an existing folder that is not an export: never replaced
        assert main(["export", "--lens", str(lens_dir), "--out", str(user), *extra]) == 2
        assert (user / "notes.txt").read_text() == "keep me"
    capsys.readouterr()

    out = tmp_path / "model"
    assert main(["export", "--lens", str(lens_dir), "--out", str(out), "--quiet"]) == 0
    assert (
        main(["export", "--lens", str(lens_dir), "--out", str(out), "--quiet"]) == 2
    )  # exists: needs --force
    assert main(["export", "--lens", str(lens_dir), "--out", str(out), "--quiet", "--force"]) == 0

    inside = lens_dir / "sub"  # an output inside the lens folder, or the lens inside the output: refused
    assert main(["export", "--lens", str(lens_dir), "--out", str(inside)]) == 2
    assert "lies inside the input --lens" in capsys.readouterr().err and not inside.exists()
    assert main(["export", "--lens", str(lens_dir), "--out", str(tmp_path)]) == 2
    assert "contains the input --lens" in capsys.readouterr().err
    assert main(["export", "--lens", str(lens_dir), "--out", str(tmp_path / "m3"), "--model", str(out)]) == 2
    assert "is an embedlens export, not a base model" in capsys.readouterr().err  # the lens would apply twice
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", "--lens", str(lens_dir), "--out", str(empty), "--quiet"]) == 0  # nothing to lose

    other = Lens(
        np.eye(384, dtype=np.float32),
        mode="query",
        fingerprint=np.eye(len(compute_fingerprint(emb.base)), 384, dtype=np.float32),
        metadata={"base_model": emb.name},
    )
    other_dir = other.save(tmp_path / "other")
    capsys.readouterr()
    assert main(["export", "--lens", str(other_dir), "--out", str(tmp_path / "m2")]) == 2
    assert "not the model this lens was trained on" in capsys.readouterr().err
    assert not (tmp_path / "m2").exists()


# --- issue 25: --force replaces only what an earlier export wrote; exported files honour the umask --------------


def _tree(root: Path) -> dict[str, int | None]:
    """Every path under ``root`` -> its size (None for a directory)."""
    return {
        str(p.relative_to(root)): (None if p.is_dir() else p.stat().st_size) for p in sorted(root.rglob("*"))
    }


@pytest.fixture(scope="module")
def exported(emb, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """(lens dir, an export of it) made once; tests copy the export before changing it."""
    base = tmp_path_factory.mktemp("exported")
    lens_dir = _lens(emb, base, "symmetric")
    out = base / "model"
    assert main(["export", "--lens", str(lens_dir), "--out", str(out), "--quiet"]) == 0
    return lens_dir, out


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_export_force_refuses_a_garbage_marker(
    emb, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    lens_dir = _lens(emb, tmp_path, "query")
    u = tmp_path / "u"
    (u / "photos").mkdir(parents=True)
    (u / "photos" / "a.jpg").write_text("x\n")
    for marker in (
        "garbage\n",
        '{"format": "something-else"}',
        '{"format": "embedlens-export", "mode": NaN}',
    ):
        (u / "embedlens_export.json").write_text(marker)
        capsys.readouterr()
        assert main(["export", "--lens", str(lens_dir), "--out", str(u), "--force", "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--out" in err and str(u) in err
        assert "embedlens_export.json" in err
        assert (u / "photos" / "a.jpg").read_text() == "x\n"
    # a well-formed marker recording files does not make other files ours
    (u / "embedlens_export.json").write_text('{"format": "embedlens-export", "files": {"modules.json": 2}}')
    (u / "modules.json").write_text("[]")
    assert main(["export", "--lens", str(lens_dir), "--out", str(u), "--force", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--out {u}" in err and "photos/a.jpg" in err
    assert (u / "photos" / "a.jpg").read_text() == "x\n" and (u / "modules.json").read_text() == "[]"
    for bad in ('{"../x": 1}', '{"/etc/passwd": 1}', '["modules.json"]', '{"modules.json": -1}'):
        (u / "embedlens_export.json").write_text(f'{{"format": "embedlens-export", "files": {bad}}}')
        assert main(["export", "--lens", str(lens_dir), "--out", str(u), "--force", "--quiet"]) == 2
        assert "file list" in capsys.readouterr().err
        assert (u / "photos" / "a.jpg").read_text() == "x\n"


def test_export_force_refuses_user_files_added_to_an_earlier_export(  # type: ignore[no-untyped-def]
    exported, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lens_dir, src = exported
    u = _copy(src, tmp_path / "u")
    cmd = ["export", "--lens", str(lens_dir), "--out", str(u), "--force", "--quiet"]
    for added, first in (
        ({"NOTES.txt": "mine"}, "NOTES.txt"),
        ({"my_eval/results.csv": "q,ndcg\n"}, "my_eval/results.csv"),
        ({"3_Dense/extra.bin": "x"}, "3_Dense/extra.bin"),
        ({"README.md": "my own notes about this model"}, "README.md"),  # an exported file the user rewrote
    ):
        before_readme = (u / "README.md").read_bytes()
        for rel, text in added.items():
            (u / rel).parent.mkdir(parents=True, exist_ok=True)
            (u / rel).write_text(text)
        before = _tree(u)
        capsys.readouterr()
        assert main(cmd) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"--out {u}" in err and repr(first) in err, err
        assert _tree(u) == before  # nothing touched
        for rel in added:  # undo, for the next case
            if rel == "README.md":
                (u / rel).write_bytes(before_readme)
            else:
                (u / rel).unlink()
        if (u / "my_eval").exists():
            (u / "my_eval").rmdir()
    (u / "my_empty").mkdir()  # an empty directory we did not make is not ours either
    assert main(cmd) == 2 and "'my_empty'" in capsys.readouterr().err
    (u / "my_empty").rmdir()


def test_export_force_replaces_an_earlier_export(exported, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lens_dir, src = exported
    u = _copy(src, tmp_path / "u")
    (u / "README.md").unlink()  # a file the export wrote and the user removed: nothing to lose
    cmd = ["export", "--lens", str(lens_dir), "--out", str(u), "--force", "--quiet"]
    assert main(cmd) == 0
    assert _tree(u) == _tree(src)
    marker = json.loads((u / "embedlens_export.json").read_text())
    assert marker["format"] == "embedlens-export"
    files = {str(p.relative_to(u)): p.stat().st_size for p in u.rglob("*") if p.is_file()}
    del files["embedlens_export.json"]
    assert marker["files"] == files  # every file the export wrote, with its size
    assert main(cmd) == 0  # and again: the new export records its own files
    st = _load(u)
    assert st.encode(TEXTS).shape == (3, 384)


def test_export_force_on_an_export_without_a_file_list(  # type: ignore[no-untyped-def]
    exported, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An export made before the marker listed its files: replaced only if it holds sentence-transformers files."""
    lens_dir, src = exported
    u = _copy(src, tmp_path / "u")
    marker = json.loads((u / "embedlens_export.json").read_text())
    marker.pop("files", None)
    marker.pop("dirs", None)
    (u / "embedlens_export.json").write_text(json.dumps(marker))
    cmd = ["export", "--lens", str(lens_dir), "--out", str(u), "--force", "--quiet"]
    (u / "my_eval").mkdir()
    (u / "my_eval" / "results.csv").write_text("q\n")
    before = _tree(u)
    capsys.readouterr()
    assert main(cmd) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'my_eval/results.csv'" in err and _tree(u) == before
    (u / "my_eval" / "results.csv").unlink()
    (u / "my_eval").rmdir()
    assert main(cmd) == 0
    assert "files" in json.loads((u / "embedlens_export.json").read_text())


def test_export_force_rechecks_right_before_the_replace(  # type: ignore[no-untyped-def]
    exported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file added to --out while the export runs is seen by the check right before the replace."""
    from sentence_transformers import SentenceTransformer

    lens_dir, src = exported
    u = _copy(src, tmp_path / "u")
    save = SentenceTransformer.save

    def save_then_user_adds_a_file(self, path, *args, **kwargs):  # type: ignore[no-untyped-def]
        save(self, path, *args, **kwargs)
        (u / "late.txt").write_text("written meanwhile")

    monkeypatch.setattr(SentenceTransformer, "save", save_then_user_adds_a_file)
    capsys.readouterr()
    assert main(["export", "--lens", str(lens_dir), "--out", str(u), "--force", "--quiet"]) == 2
    assert "'late.txt'" in capsys.readouterr().err
    assert (u / "late.txt").read_text() == "written meanwhile"
    assert not [p for p in tmp_path.iterdir() if p.name != "u"]  # the temp folder is gone


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_export_modes_follow_the_umask(emb, tmp_path: Path, umask: int) -> None:  # type: ignore[no-untyped-def]
    import os
    import stat

    lens_dir = _lens(emb, tmp_path, "query")
    out = tmp_path / "model"
    old = os.umask(umask)
    try:
        assert main(["export", "--lens", str(lens_dir), "--out", str(out), "--quiet"]) == 0
    finally:
        os.umask(old)
    modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.lstat().st_mode) for p in [out, *out.rglob("*")]}
    want = {name: (0o777 if (tmp_path / name).is_dir() else 0o666) & ~umask for name in modes}
    assert modes == want
    assert "model/model.safetensors" in modes and "model/3_Router/query_0_Dense/model.safetensors" in modes
