from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from embedlens import (
    DimensionMismatchError,
    EmbedlensInputError,
    FingerprintMismatchError,
    Lens,
    LensFormatError,
    load_lens,
)
from embedlens.lens import PROBE_SENTENCES


def _lens(d_in: int = 6, d_out: int = 4, mode: str = "symmetric", seed: int = 0) -> Lens:
    w = np.random.default_rng(seed).standard_normal((d_in, d_out)).astype(np.float32)
    return Lens(w, mode=mode, metadata={"base_model": "hash-test"})


def test_transform_is_x_at_w_normalised() -> None:
    lens = _lens()
    x = np.random.default_rng(1).standard_normal((5, 6)).astype(np.float32)
    y = lens.project_queries(x)
    ref = x @ lens.weights
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    assert y.dtype == np.float32 and y.shape == (5, 4)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lens.project_documents(x), ref, rtol=1e-5, atol=1e-6)


def test_lists_of_lists_accepted() -> None:
    lens = Lens.identity(3, normalize=False)
    assert lens.project_queries([[1, 2, 3]]).tolist() == [[1.0, 2.0, 3.0]]


def test_query_mode_leaves_documents_raw() -> None:
    lens = _lens(4, 4, mode="query")
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(lens.project_documents(x), x)
    assert not np.allclose(lens.project_queries(x), x / np.linalg.norm(x, axis=1, keepdims=True))


def test_query_mode_refuses_reduction() -> None:
    with pytest.raises(DimensionMismatchError, match=r"\(6, 4\)"):
        _lens(6, 4, mode="query")


def test_wrong_dimension_names_both_shapes() -> None:
    lens = _lens()
    with pytest.raises(DimensionMismatchError) as e:
        lens.project_queries(np.ones((2, 5)))
    assert "(2, 5)" in str(e.value) and "(n, 6)" in str(e.value)
    with pytest.raises(DimensionMismatchError, match=r"\(6,\)"):
        lens.project_documents(np.ones(6))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_inputs_refused(bad: float) -> None:
    x = np.ones((3, 6), dtype=np.float32)
    x[1, 2] = bad
    with pytest.raises(EmbedlensInputError, match="NaN or Inf in 1 row"):
        _lens().project_queries(x)


def test_nan_weights_refused() -> None:
    w = np.eye(3, dtype=np.float32)
    w[0, 0] = np.nan
    with pytest.raises(EmbedlensInputError, match="NaN"):
        Lens(w)


def test_round_trip_identical_outputs(tmp_path: Path) -> None:
    lens = _lens()
    lens.fingerprint = np.random.default_rng(3).standard_normal((len(PROBE_SENTENCES), 6)).astype(np.float32)
    lens.save(tmp_path / "lens")
    back = load_lens(tmp_path / "lens")
    x = np.random.default_rng(4).standard_normal((7, 6)).astype(np.float32)
    np.testing.assert_array_equal(back.project_queries(x), lens.project_queries(x))
    np.testing.assert_array_equal(back.fingerprint, lens.fingerprint)
    assert back.mode == lens.mode and back.metadata["base_model"] == "hash-test"
    assert back.weights_sha256 == lens.weights_sha256
    assert "created_at" in back.metadata and "library_version" in back.metadata


def test_save_replaces_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _lens(seed=0)
    first.save(tmp_path / "lens")
    import embedlens._atomic as atomic

    def boom(*a: object, **k: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        _lens(seed=1).save(tmp_path / "lens")
    monkeypatch.undo()
    back = load_lens(tmp_path / "lens")
    np.testing.assert_array_equal(back.weights, first.weights)
    assert [p.name for p in tmp_path.iterdir()] == ["lens"]  # no temp leftovers


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return _lens().save(tmp_path / "lens")


def test_truncated_weights_refused(saved: Path) -> None:
    w = saved / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:50])
    with pytest.raises(LensFormatError, match="weights.safetensors.*sha256"):
        load_lens(saved)


def test_tampered_weights_refused(saved: Path) -> None:
    w = saved / "weights.safetensors"
    blob = bytearray(w.read_bytes())
    blob[-3] ^= 0xFF
    w.write_bytes(bytes(blob))
    with pytest.raises(LensFormatError, match="corrupted, truncated or were modified"):
        load_lens(saved)


def test_corrupted_json_refused(saved: Path) -> None:
    (saved / "lens.json").write_text("{not json")
    with pytest.raises(LensFormatError, match=r"lens\.json: not valid JSON"):
        load_lens(saved)


def test_unknown_format_version_refused(saved: Path) -> None:
    cfg = json.loads((saved / "lens.json").read_text())
    cfg["format_version"] = 99
    (saved / "lens.json").write_text(json.dumps(cfg))
    with pytest.raises(LensFormatError, match="format_version 99"):
        load_lens(saved)


def test_wrong_shape_in_json_refused(saved: Path) -> None:
    cfg = json.loads((saved / "lens.json").read_text())
    cfg["d_out"] = 5
    (saved / "lens.json").write_text(json.dumps(cfg))
    with pytest.raises(LensFormatError, match=r"W has shape \(6, 4\) but lens.json says \(6, 5\)"):
        load_lens(saved)


def test_wrong_dtype_refused(tmp_path: Path) -> None:
    import hashlib

    from safetensors.numpy import save

    lens_dir = _lens().save(tmp_path / "lens")
    blob = save({"W": np.ones((6, 4), dtype=np.float64)})
    (lens_dir / "weights.safetensors").write_bytes(blob)
    cfg = json.loads((lens_dir / "lens.json").read_text())
    cfg["weights_sha256"] = hashlib.sha256(blob).hexdigest()
    (lens_dir / "lens.json").write_text(json.dumps(cfg))
    with pytest.raises(LensFormatError, match="float64"):
        load_lens(lens_dir)


def test_nan_weights_on_disk_refused(tmp_path: Path) -> None:
    import hashlib

    from safetensors.numpy import save

    lens_dir = _lens().save(tmp_path / "lens")
    w = np.ones((6, 4), dtype=np.float32)
    w[2, 2] = np.inf
    blob = save({"W": w})
    (lens_dir / "weights.safetensors").write_bytes(blob)
    cfg = json.loads((lens_dir / "lens.json").read_text())
    cfg["weights_sha256"] = hashlib.sha256(blob).hexdigest()
    (lens_dir / "lens.json").write_text(json.dumps(cfg))
    with pytest.raises(LensFormatError, match="NaN or Inf"):
        load_lens(lens_dir)


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("name", ["weights.safetensors", "weights.npy"])
def test_pickle_payload_never_executed(tmp_path: Path, name: str) -> None:
    import hashlib

    marker = tmp_path / "pwned"
    lens_dir = _lens().save(tmp_path / "lens")
    blob = pickle.dumps(_Payload(str(marker)))
    if name.endswith(".npy"):
        import io

        buf = io.BytesIO()
        np.save(buf, np.array([_Payload(str(marker))], dtype=object), allow_pickle=True)
        blob = buf.getvalue()
    (lens_dir / name).write_bytes(blob)
    cfg = json.loads((lens_dir / "lens.json").read_text())
    cfg["weights_file"] = name
    cfg["weights_sha256"] = hashlib.sha256(blob).hexdigest()  # an attacker can fix the checksum too
    (lens_dir / "lens.json").write_text(json.dumps(cfg))
    with pytest.raises(LensFormatError, match=name):
        load_lens(lens_dir)
    assert not marker.exists()


def test_missing_directory_named(tmp_path: Path) -> None:
    with pytest.raises(LensFormatError, match="nowhere"):
        load_lens(tmp_path / "nowhere")


def test_weights_file_outside_directory_refused(saved: Path) -> None:
    cfg = json.loads((saved / "lens.json").read_text())
    cfg["weights_file"] = "../../etc/passwd"
    (saved / "lens.json").write_text(json.dumps(cfg))
    with pytest.raises(LensFormatError, match="must be 'weights.safetensors'"):
        load_lens(saved)


def test_fingerprint_mismatch_detected(hash_embedder) -> None:  # type: ignore[no-untyped-def]
    from embedlens.lens import compute_fingerprint
    from tests.conftest import HashEmbedder

    lens = Lens.identity(16, metadata_base="x")  # type: ignore[arg-type]
    lens.fingerprint = compute_fingerprint(hash_embedder)
    lens.check_embedder(hash_embedder)  # same model: fine
    other = HashEmbedder(dim=16, name="other", seed=99)
    with pytest.raises(FingerprintMismatchError, match="not the model this lens was trained on"):
        lens.check_embedder(other)
    lens.check_embedder(other, check_fingerprint=False)  # explicit opt-out
    with pytest.raises(DimensionMismatchError, match="gives 8-d vectors but the lens expects 16-d"):
        lens.check_embedder(HashEmbedder(dim=8))
