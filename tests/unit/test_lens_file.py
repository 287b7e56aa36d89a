"""The lens file format (issue 11): strict JSON, strict field types, sane W, bounded reads, safetensors only."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from embedlens import EmbedlensInputError, Lens, LensFormatError, load_lens


def _strict_loads(text: str) -> object:
    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def _rewrite(lens_dir: Path, **fields: object) -> None:
    cfg = json.loads((lens_dir / "lens.json").read_text())
    cfg.update(fields)
    (lens_dir / "lens.json").write_text(json.dumps(cfg))


def _with_weights(lens_dir: Path, tensors: dict[str, np.ndarray], name: str = "weights.safetensors") -> Path:
    """Replace the weights with ``tensors`` and fix the checksum, as a tamperer could."""
    from safetensors.numpy import save

    blob = save(tensors)
    (lens_dir / name).write_bytes(blob)
    _rewrite(lens_dir, weights_file=name, weights_sha256=hashlib.sha256(blob).hexdigest())
    return lens_dir


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    w = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    return Lens(w, mode="symmetric", metadata={"base_model": "hash-test"}).save(tmp_path / "lens")


# ----------------------------------------------------------------------------- strict JSON


def test_lens_json_is_strict_json(tmp_path: Path) -> None:
    lens = Lens.identity(4, val=float("nan"), curve=[{"val": float("inf")}, {"val": -math.inf}, {"val": 0.5}])
    lens_dir = lens.save(tmp_path / "lens")
    cfg = _strict_loads((lens_dir / "lens.json").read_text())  # what JSON.parse accepts
    assert isinstance(cfg, dict)
    assert cfg["metadata"]["val"] is None
    assert [c["val"] for c in cfg["metadata"]["curve"]] == [None, None, 0.5]
    assert load_lens(lens_dir).metadata["val"] is None


def test_old_lens_json_with_nan_still_loads(saved: Path) -> None:
    cfg = json.loads((saved / "lens.json").read_text())
    cfg["metadata"]["training"] = {"val_best": float("nan")}
    (saved / "lens.json").write_text(json.dumps(cfg))  # what older versions wrote
    assert "NaN" in (saved / "lens.json").read_text()
    assert math.isnan(load_lens(saved).metadata["training"]["cv_best"])


def test_old_metadata_names_read_as_today(saved: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A lens file written before the names were unified (val_* / search) reads with the current names."""
    from embedlens.app.cli import main

    cfg = json.loads((saved / "lens.json").read_text())
    old = {
        "val_metric": "ndcg@10",
        "val_start": 0.5,
        "val_best": 0.75,
        "chosen_epoch": 3,
        "config": {"search": True},
    }
    cfg["metadata"]["training"] = old
    (saved / "lens.json").write_text(json.dumps(cfg))
    tr = load_lens(saved).metadata["training"]
    assert tr == {
        "cv_metric": "ndcg@10",
        "cv_start": 0.5,
        "cv_best": 0.75,
        "chosen_epoch": 3,
        "config": {"wide_grid": True},
    }
    assert main(["info", str(saved), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metadata"]["training"]["cv_best"] == 0.75
    assert main(["info", str(saved)]) == 0
    assert "ndcg@10 start 0.5000 -> chosen 0.7500" in capsys.readouterr().out


def test_report_json_is_strict(tmp_path: Path) -> None:
    from embedlens._atomic import atomic_write_json

    atomic_write_json(tmp_path / "r.json", {"delta": {"p_value": float("nan")}, "ks": (1, 10)})
    assert _strict_loads((tmp_path / "r.json").read_text()) == {"delta": {"p_value": None}, "ks": [1, 10]}


# ----------------------------------------------------------------------------- field types


@pytest.mark.parametrize("value", ["false", "true", 0, 1, None, [], "no"])
def test_normalize_must_be_a_json_boolean(saved: Path, value: object) -> None:
    _rewrite(saved, normalize=value)
    with pytest.raises(LensFormatError, match=r"lens\.json: field 'normalize' must be true or false"):
        load_lens(saved)


@pytest.mark.parametrize("value", [False, True])
def test_normalize_boolean_is_applied(saved: Path, value: bool) -> None:
    _rewrite(saved, normalize=value)
    lens = load_lens(saved)
    assert lens.normalize is value
    y = lens.project_queries(np.ones((1, 6), np.float32) * 3)
    assert math.isclose(float(np.linalg.norm(y)), 1.0, rel_tol=1e-5) is value


@pytest.mark.parametrize("value", ["6", 6.0, 0, -6, True, None])
def test_shape_fields_must_be_positive_integers(saved: Path, value: object) -> None:
    _rewrite(saved, d_in=value)
    with pytest.raises(LensFormatError, match=r"lens\.json: field 'd_in' must be a positive integer"):
        load_lens(saved)


# ----------------------------------------------------------------------------- degenerate W


@pytest.mark.parametrize(
    ("w", "why"),
    [
        (np.zeros((8, 8), np.float32), "all zero"),
        (np.full((8, 8), 1e30, np.float32), "too large"),
        (np.eye(8, dtype=np.float32) * 3e38, "too large"),
        (np.eye(8, dtype=np.float32) * 1e-30, "too small"),
    ],
)
def test_degenerate_weights_refused_at_construction(w: np.ndarray, why: str) -> None:
    for mode in ("query", "symmetric"):
        with pytest.raises(EmbedlensInputError, match=f"lens weights: W.*{why}"):
            Lens(w, mode=mode)  # type: ignore[arg-type]


@pytest.mark.parametrize(("scale", "why"), [(0.0, "all zero"), (1e30, "too large")])
def test_degenerate_weights_refused_at_load_naming_the_lens(saved: Path, scale: float, why: str) -> None:
    _with_weights(saved, {"W": np.full((6, 4), scale, np.float32)})
    with pytest.raises(LensFormatError, match=f"weights.safetensors: W.*{why}"):
        load_lens(saved)


def test_huge_weights_are_not_blamed_on_the_data(tmp_path: Path) -> None:
    """Unit-norm embeddings through a W of 1e30 entries overflowed float32: the lens is refused instead."""
    x = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    with pytest.raises(EmbedlensInputError) as e:
        Lens(np.full((8, 8), 1e30, np.float32), mode="symmetric").project_documents(x)
    assert "lens weights" in str(e.value) and "embeddings" not in str(e.value).split(":")[0]


def test_ordinary_lenses_still_accepted() -> None:
    rng = np.random.default_rng(1)
    for w in (np.eye(384, dtype=np.float32), rng.standard_normal((384, 64)).astype(np.float32) / 20):
        Lens(w, mode="symmetric")


# ----------------------------------------------------------------------------- bounded weights read


def test_oversized_weights_file_refused_before_reading(saved: Path) -> None:
    with (saved / "weights.safetensors").open("r+b") as f:
        f.truncate(64 << 20)  # sparse: far above 4 * 6 * 4 bytes plus fingerprint and header
    with pytest.raises(LensFormatError, match=r"weights.safetensors: weights file is \d+ bytes, more than"):
        load_lens(saved)


_LOAD_IN_CHILD = textwrap.dedent(
    """
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (1 << 31, 1 << 31))  # the old reader ate memory
    from embedlens import LensFormatError, load_lens
    try:
        load_lens(sys.argv[1])
    except LensFormatError as e:
        print("refused:", e)
    """
)


@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
@pytest.mark.parametrize(
    ("name", "what"), [("weights.safetensors", "weights file"), ("lens.json", "lens.json")]
)
def test_non_regular_lens_files_refused(saved: Path, kind: str, name: str, what: str) -> None:
    target = saved / name
    target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to("/dev/zero")
    # in a child with a memory cap and a timeout: the unbounded reader hangs or eats memory
    try:
        out = subprocess.run(
            [sys.executable, "-c", _LOAD_IN_CHILD, str(saved)], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"load_lens hung on a non-regular {name}")
    assert "refused:" in out.stdout, out.stderr[-500:]
    assert f"{name}: {what} is not a regular file" in out.stdout


def test_npy_weights_are_not_read(saved: Path) -> None:
    """Only safetensors is read (save never writes .npy): a valid float32 .npy with a matching sha is refused."""
    import io

    buf = io.BytesIO()
    np.save(buf, np.ones((6, 4), np.float32))
    blob = buf.getvalue()
    (saved / "weights.safetensors").write_bytes(blob)
    _rewrite(saved, weights_sha256=hashlib.sha256(blob).hexdigest())
    with pytest.raises(LensFormatError, match="weights.safetensors: not a readable safetensors file"):
        load_lens(saved)


@pytest.mark.parametrize("name", ["weights.npy", "thesis.tex", "../weights.safetensors", 3])
def test_weights_file_must_be_the_fixed_name(saved: Path, name: object) -> None:
    """``lens.json`` never chooses which file is read (or, on replace, deleted)."""
    blob = (saved / "weights.safetensors").read_bytes()
    if isinstance(name, str) and "/" not in name:
        (saved / name).write_bytes(blob)
    _rewrite(saved, weights_file=name)
    with pytest.raises(LensFormatError, match=r"lens\.json: weights_file .* must be 'weights.safetensors'"):
        load_lens(saved)


@pytest.mark.parametrize(
    ("field", "value"),
    [("d_in", 10**30), ("d_out", 2**63), ("d_in", 10**4000), ("d_out", 70000), ("d_in", 65536)],
    ids=["1e30", "2^63", "1e4000", "70000", "65536x65536"],
)
def test_huge_shape_fields_are_refused_naming_lens_json(saved: Path, field: str, value: int) -> None:
    """A ``lens.json`` declaring a huge W is refused as such (not MemoryError / an index-size overflow)."""
    _rewrite(saved, **{field: value})
    if value == 65536:  # each dimension allowed, not their product
        _rewrite(saved, d_out=value)
    with pytest.raises(LensFormatError, match=r"lens\.json: (field '(d_in|d_out)' is|a W of)"):
        load_lens(saved)


def test_huge_shape_fields_give_exit_2_one_line(saved: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from embedlens.app.cli import main

    _rewrite(saved, d_in=10**30, d_out=10**30)
    assert main(["info", str(saved)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("embedlens: error: ") and "lens.json" in err[0], err


def test_lens_json_with_a_4000_digit_number_is_bad_json_not_a_crash(saved: Path) -> None:
    text = (saved / "lens.json").read_text()
    (saved / "lens.json").write_text(text.replace('"d_in": 6', '"d_in": ' + "9" * 5000))
    with pytest.raises(LensFormatError, match=r"lens\.json: "):
        load_lens(saved)


def test_info_json_of_an_old_lens_with_nan_is_strict_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``embedlens info --json`` prints strict JSON even for a lens.json written with NaN by old versions."""
    import hashlib

    from embedlens.app.cli import main

    lens_dir = Lens.identity(4).save(tmp_path / "lens")
    cfg_path = lens_dir / "lens.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["metadata"]["training"] = {"cv_best": "NAN_HERE"}
    cfg_path.write_text(json.dumps(cfg).replace('"NAN_HERE"', "NaN"))
    assert (
        cfg["weights_sha256"] == hashlib.sha256((lens_dir / "weights.safetensors").read_bytes()).hexdigest()
    )
    assert main(["info", str(lens_dir), "--json"]) == 0
    out = capsys.readouterr().out
    json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
