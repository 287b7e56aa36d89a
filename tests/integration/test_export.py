"""``embedlens export``: a sentence-transformers folder that gives base + lens, offline (issue 12, item 3)."""

from __future__ import annotations

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
