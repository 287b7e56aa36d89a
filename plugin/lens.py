"""The lens: a float32 matrix that re-shapes frozen embeddings, with its metadata and file format.

A lens directory holds ``lens.json`` (format version, shapes, mode, sha256 of the weights, metadata)
and ``weights.safetensors`` (tensors ``W`` ``(d_in, d_out)`` and ``fingerprint`` ``(p, d_in)``, the
base model's embeddings of :data:`PROBE_SENTENCES`). Applying a lens needs numpy only.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from embedlens._arrays import as_matrix, l2_normalize, require_finite
from embedlens._atomic import atomic_write_dir, strict_json_dumps
from embedlens._version import __version__
from embedlens.errors import (
    DimensionMismatchError,
    EmbedlensInputError,
    FingerprintMismatchError,
    LensFormatError,
)

if TYPE_CHECKING:
    from embedlens.embedders.base import Embedder

__all__ = ["PROBE_SENTENCES", "Lens", "LensMode", "load_lens", "compute_fingerprint"]

LensMode = Literal["symmetric", "query"]
FORMAT = "embedlens-lens"
FORMAT_VERSION = 1
CONFIG_FILE = "lens.json"
WEIGHTS_FILE = "weights.safetensors"
_MODES = ("symmetric", "query")
#: Fixed sentences whose embeddings identify a base model (its "fingerprint").
PROBE_SENTENCES: tuple[str, ...] = (
    "The quick brown fox jumps over the lazy dog.",
    "Insulin resistance is associated with type 2 diabetes.",
    "What is the capital city of France?",
    "A man is playing a guitar on stage.",
    "Quarterly revenue grew by twelve percent.",
)
#: Minimum cosine between stored and fresh probe embeddings for the model to count as the same.
FINGERPRINT_MIN_COSINE = 0.995
#: Bounds on the norm of W (Frobenius, computed in float64). Above the maximum, projecting an embedding
#: of norm up to 1e7 may overflow float32 (the squared norm of the product exceeds 3.4e38); below the
#: minimum, projected vectors vanish under the normalisation's epsilon. No trained lens comes near either.
MIN_WEIGHTS_NORM = 1e-6
MAX_WEIGHTS_NORM = 1e12
#: Largest ``lens.json`` read, and room allowed in the weights file beyond W and the fingerprint.
MAX_CONFIG_BYTES = 64 << 20
WEIGHTS_HEADER_ALLOWANCE = 1 << 20
#: Most fingerprint rows a weights file may hold (the probe set has len(PROBE_SENTENCES)).
MAX_FINGERPRINT_ROWS = 64
#: Largest ``d_in``/``d_out`` and ``d_in * d_out`` a ``lens.json`` may declare (no embedding model comes
#: near: 65536 dimensions, a W of 4 GiB); larger values are refused before any size is computed from them.
MAX_DIM = 1 << 16
MAX_WEIGHTS = 1 << 30


def weights_problem(w: np.ndarray) -> str | None:
    """Why the float32 matrix ``w`` cannot serve as a lens (all zero, or a scale that breaks float32
    arithmetic), or None when it can. NaN/Inf are checked separately."""
    if not w.size or not np.any(w):
        return "W is all zero: the lens would map every embedding to the zero vector (a degenerate lens)"
    norm = float(np.sqrt(np.sum(np.square(w, dtype=np.float64))))
    if norm > MAX_WEIGHTS_NORM:
        return (
            f"W's scale is too large (norm {norm:.3g} > {MAX_WEIGHTS_NORM:.0g}): projected embeddings "
            f"would overflow float32; the lens is corrupt or its training diverged"
        )
    if norm < MIN_WEIGHTS_NORM:
        return (
            f"W's scale is too small (norm {norm:.3g} < {MIN_WEIGHTS_NORM:.0g}): projected embeddings "
            f"would vanish to zero; the lens is degenerate"
        )
    return None


def through(
    w: np.ndarray, queries: np.ndarray, documents: np.ndarray, *, mode: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(queries @ w, documents @ w)`` as a lens of ``mode`` serves them: a query lens leaves documents raw.

    For a bare matrix during training (no normalisation, no checks); a :class:`Lens` applies itself with
    :meth:`Lens.project_queries` / :meth:`Lens.project_documents`.
    """
    return queries @ w, (documents @ w if mode == "symmetric" else documents)


def compute_fingerprint(embedder: Embedder) -> np.ndarray:
    """Embed :data:`PROBE_SENTENCES` with ``embedder``; returns ``(p, d)`` float32."""
    return as_matrix(embedder.embed(list(PROBE_SENTENCES)), name=f"fingerprint of {embedder.name}")


class Lens:
    """A linear map applied to embeddings: ``y = x @ W`` (then L2-normalised if ``normalize``).

    Args:
        weights: ``(d_in, d_out)`` matrix, converted to float32.
        mode: ``"query"`` (the default, as in training) projects queries only: documents stay raw, so
            an existing index is kept, and ``d_out == d_in``. ``"symmetric"`` projects queries and
            documents with ``W`` (and may reduce the dimension).
        normalize: L2-normalise projected vectors (keyword-only).
        metadata: JSON-serialisable facts (base model, training summary, metrics ...).
        fingerprint: ``(p, d_in)`` embeddings of :data:`PROBE_SENTENCES` by the base model, or None.

    Raises:
        ValueError: on a bad mode, a non-2-d or non-finite matrix, a degenerate matrix (all zero, or
            a norm outside [:data:`MIN_WEIGHTS_NORM`, :data:`MAX_WEIGHTS_NORM`] where float32
            products overflow or vanish), or a query lens with ``d_out != d_in``.

    Example:
        >>> lens = Lens.identity(4)
        >>> lens.project_queries([[3.0, 4.0, 0.0, 0.0]]).tolist()
        [[0.6000000238418579, 0.800000011920929, 0.0, 0.0]]
    """

    def __init__(
        self,
        weights: Any,
        *,
        mode: LensMode = "query",
        normalize: bool = True,
        metadata: Mapping[str, Any] | None = None,
        fingerprint: np.ndarray | None = None,
    ) -> None:
        if mode not in _MODES:
            msg = f"mode must be one of {_MODES}, got {mode!r}"
            raise ValueError(msg)
        w = as_matrix(weights, name="lens weights W")
        why = weights_problem(w)
        if why is not None:
            raise EmbedlensInputError(f"lens weights: {why}")
        if mode == "query" and w.shape[0] != w.shape[1]:
            msg = (
                f"a query-mode lens must keep the dimension (documents stay raw), but W has shape "
                f"{w.shape}; use mode='symmetric' to reduce to {w.shape[1]} dimensions"
            )
            raise DimensionMismatchError(msg)
        self.weights: np.ndarray = w
        self.mode: LensMode = mode
        self.normalize = normalize
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.fingerprint = (
            None if fingerprint is None else as_matrix(fingerprint, name="fingerprint", dim=w.shape[0])
        )
        #: sha256 of the weights file, known once the lens is saved or loaded.
        self.weights_sha256: str | None = None
        #: the directory the lens was saved to or loaded from.
        self.path: Path | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def identity(cls, dim: int, *, mode: LensMode = "query", normalize: bool = True, **metadata: Any) -> Lens:
        """The lens that changes nothing but (optionally) normalisation: ``W = I`` of size ``dim``."""
        return cls(np.eye(dim, dtype=np.float32), mode=mode, normalize=normalize, metadata=metadata)

    @property
    def d_in(self) -> int:
        """Input dimension (the base model's)."""
        return int(self.weights.shape[0])

    @property
    def d_out(self) -> int:
        """Output dimension of projected vectors."""
        return int(self.weights.shape[1])

    @property
    def doc_dim(self) -> int:
        """Dimension of document vectors as served (``d_in`` for a query lens)."""
        return self.d_in if self.mode == "query" else self.d_out

    @property
    def base_model(self) -> str | None:
        """Id of the base model the lens was trained on, if recorded."""
        value = self.metadata.get("base_model")
        return None if value is None else str(value)

    # ------------------------------------------------------------------ applying
    def project_queries(self, x: Any) -> np.ndarray:
        """Project query embeddings.

        Args:
            x: ``(n, d_in)`` array or list of lists.

        Returns:
            ``(n, d_out)`` float32.

        Raises:
            DimensionMismatchError: when ``x`` is not ``(n, d_in)`` (both shapes are named).
            EmbedlensInputError: when ``x`` holds NaN or Inf.
        """
        x = as_matrix(x, name="query embeddings", dim=self.d_in, check_finite=False)
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf inputs are reported just below
            y = x @ self.weights  # (n, d_out), one BLAS call
        return self._finish(y, x, "query embeddings")

    def project_documents(self, x: Any) -> np.ndarray:
        """Project document embeddings (symmetric lens) or return them as float32 (query lens).

        Args:
            x: ``(n, d_in)`` array or list of lists.

        Returns:
            ``(n, doc_dim)`` float32.

        Raises:
            DimensionMismatchError: when ``x`` is not ``(n, d_in)``.
            EmbedlensInputError: when ``x`` holds NaN or Inf.
        """
        if self.mode == "query":
            return as_matrix(x, name="document embeddings", dim=self.d_in)
        x = as_matrix(x, name="document embeddings", dim=self.d_in, check_finite=False)
        with np.errstate(invalid="ignore", over="ignore"):
            y = x @ self.weights  # (n, d_out)
        return self._finish(y, x, "document embeddings")

    def _finish(self, y: np.ndarray, x: np.ndarray, name: str) -> np.ndarray:
        """Normalise ``y`` and refuse non-finite rows: a NaN/Inf input makes its whole output row
        non-finite, so the row norms (computed anyway when normalising) reveal it at no extra cost."""
        if not self.normalize:
            require_finite(y, name=name, source=x)
            return y
        y = l2_normalize(y)
        if y.size and not np.isfinite(y[:, 0]).all():
            require_finite(y, name=name, source=x)
        return y

    # ------------------------------------------------------------------ compatibility
    def check_embedder(self, embedder: Embedder, *, check_fingerprint: bool = True) -> None:
        """Raise unless ``embedder`` produces vectors this lens was trained on.

        Args:
            embedder: the base model about to feed this lens.
            check_fingerprint: also compare its embeddings of the probe sentences with the stored
                fingerprint (pass False to opt out, e.g. for a deliberately swapped model).

        Raises:
            DimensionMismatchError: the embedder's dimension is not ``d_in``.
            FingerprintMismatchError: the probe embeddings differ from the stored fingerprint.
        """
        self._check_dim(embedder.dim, embedder.name)
        if check_fingerprint and self.fingerprint is not None:
            self.check_fingerprint(compute_fingerprint(embedder), model_name=embedder.name)

    def check_probes(self, probes: Any, *, model_name: str, check_fingerprint: bool = True) -> None:
        """Raise unless ``probes`` (a base model's embeddings of :data:`PROBE_SENTENCES`) fit this lens.

        The one compatibility check behind :meth:`check_embedder` and the serving adapters, which embed the
        probes through their host's own API.

        Raises:
            DimensionMismatchError: the probes are not ``d_in``-d.
            FingerprintMismatchError: ``check_fingerprint`` and they differ from the stored fingerprint.
        """
        probes = as_matrix(probes, name=f"probe embeddings from {model_name}")
        self._check_dim(probes.shape[1], model_name)
        if check_fingerprint:
            self.check_fingerprint(probes, model_name=model_name)

    def _check_dim(self, dim: int, model_name: str) -> None:
        if dim != self.d_in:
            where = f" at {self.path}" if self.path is not None else ""
            msg = (
                f"base model {model_name!r} gives {dim}-d vectors but the lens{where} expects "
                f"{self.d_in}-d (trained on {self.base_model or 'an unrecorded model'})"
            )
            raise DimensionMismatchError(msg)

    def check_fingerprint(self, probes: np.ndarray, *, model_name: str = "the base model") -> None:
        """Compare ``probes`` ``(p, d_in)`` (embeddings of :data:`PROBE_SENTENCES`) with the stored ones.

        Raises:
            FingerprintMismatchError: when any probe's cosine is below :data:`FINGERPRINT_MIN_COSINE`.
        """
        if self.fingerprint is None:
            return
        probes = as_matrix(probes, name="probe embeddings", dim=self.d_in)
        if probes.shape != self.fingerprint.shape:
            msg = f"probe embeddings have shape {probes.shape}, stored fingerprint {self.fingerprint.shape}"
            raise FingerprintMismatchError(msg)
        a = l2_normalize(probes.copy())
        b = l2_normalize(self.fingerprint.copy())
        cos = float(np.min(np.sum(a * b, axis=1)))
        if cos < FINGERPRINT_MIN_COSINE:
            msg = (
                f"{model_name!r} is not the model this lens was trained on "
                f"({self.base_model or 'unrecorded'}): probe-sentence cosine {cos:.3f} < "
                f"{FINGERPRINT_MIN_COSINE}; pass check_fingerprint=False to apply it anyway"
            )
            raise FingerprintMismatchError(msg)

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        """The JSON description of this lens (everything but the tensors)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "d_in": self.d_in,
            "d_out": self.d_out,
            "mode": self.mode,
            "normalize": self.normalize,
            "metadata": self.metadata,
        }

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
        """Write the lens directory atomically (a crash leaves the previous version, never half a lens).

        ``path`` may be missing or an empty directory. An existing *lens* directory (a ``lens.json``
        of this format and nothing but the lens's own files) is replaced when ``overwrite`` is true,
        the default; anything else there (a file, a link, a directory holding other files) is refused
        and left untouched. ``lens.json`` is strict JSON: non-finite metadata floats are written as
        ``null``. Files and the directory get the permissions of a plain ``mkdir``/``open`` (umask).

        Args:
            path: the lens directory.
            overwrite: replace an existing lens directory (False refuses it as well).

        Returns:
            The directory path.

        Raises:
            EmbedlensInputError: (``OutputRefusedError``) ``path`` holds something that is not a lens,
                or holds a lens and ``overwrite`` is False.
        """
        from safetensors.numpy import save

        from embedlens._outputs import guard_lens_dir

        def check(target: str | os.PathLike[str]) -> None:
            guard_lens_dir(target, option="lens directory", force=overwrite, force_hint="overwrite=True")

        check(path)

        tensors = {"W": self.weights}
        if self.fingerprint is not None:
            tensors["fingerprint"] = self.fingerprint
        blob = save(tensors, metadata={"format": FORMAT})
        meta = dict(self.metadata)
        meta.setdefault("library_version", __version__)
        meta.setdefault("created_at", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        self.metadata = meta
        cfg = self.config()
        cfg["weights_file"] = WEIGHTS_FILE
        cfg["weights_sha256"] = hashlib.sha256(blob).hexdigest()

        def fill(tmp: Path) -> None:
            (tmp / WEIGHTS_FILE).write_bytes(blob)
            (tmp / CONFIG_FILE).write_text(strict_json_dumps(cfg))

        out = atomic_write_dir(path, fill, check=check)
        self.weights_sha256, self.path = cfg["weights_sha256"], out.resolve()
        return out

    def __repr__(self) -> str:
        return (
            f"Lens(d_in={self.d_in}, d_out={self.d_out}, mode={self.mode!r}, "
            f"normalize={self.normalize}, base_model={self.base_model!r})"
        )


def _fail(path: Path, why: str) -> LensFormatError:
    return LensFormatError(f"{path}: {why}")


def _read_bounded(path: Path, limit: int, what: str) -> bytes:
    """Read a regular file of at most ``limit`` bytes; refuse devices, FIFOs and larger files unread.

    Raises:
        LensFormatError: naming ``path``: missing, not a regular file, too large, or unreadable.
    """
    try:
        st = os.stat(path)  # follows a symlink: its target is what would be read
    except FileNotFoundError as e:
        raise _fail(path, f"{what} missing") from e
    except OSError as e:
        raise _fail(path, f"{what} cannot be read ({e.strerror})") from e
    if not stat.S_ISREG(st.st_mode):
        raise _fail(path, f"{what} is not a regular file")
    if st.st_size > limit:
        raise _fail(path, f"{what} is {st.st_size} bytes, more than the {limit} this lens can need")
    limit = min(limit, st.st_size)  # read what the file holds (+1 byte to notice growth), never a huge buffer
    try:
        # O_NONBLOCK: a file swapped for a FIFO after the stat cannot block the open
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise _fail(path, f"{what} cannot be read ({e.strerror})") from e
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise _fail(path, f"{what} is not a regular file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise _fail(path, f"{what} changed while it was read")
    return data


def _positive_int_field(cfg: dict[str, Any], name: str, cfg_path: Path) -> int:
    value = cfg.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(cfg_path, f"field {name!r} must be a positive integer, got {value!r}")
    if value > MAX_DIM:
        shown = str(value) if value < 10**30 else f"a {len(str(value))}-digit number"
        raise _fail(cfg_path, f"field {name!r} is {shown}, above the {MAX_DIM} dimensions a lens may have")
    return value


#: training-metadata keys renamed since lens files were first written: old name -> current name.
LEGACY_TRAINING_KEYS = {"val_metric": "cv_metric", "val_start": "cv_start", "val_best": "cv_best"}
#: training-config keys renamed: old name -> current name.
LEGACY_CONFIG_KEYS = {"search": "wide_grid"}


def upgrade_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Lens metadata with the current key names (a lens file written by an older version reads the same).

    Only renames: values, and keys that have no current equivalent (``chosen_epoch``), are kept as written.
    """
    out = dict(metadata)
    training = out.get("training")
    if isinstance(training, dict):
        training = {LEGACY_TRAINING_KEYS.get(k, k): v for k, v in training.items()}
        if isinstance(training.get("config"), dict):
            training["config"] = {LEGACY_CONFIG_KEYS.get(k, k): v for k, v in training["config"].items()}
        out["training"] = training
    return out


def load_lens(path: str | os.PathLike[str]) -> Lens:
    """Load a lens directory written by :meth:`Lens.save`, refusing anything not exactly that.

    Checks the format name and version, the fields' JSON types (``normalize`` must be a JSON
    boolean, ``d_in``/``d_out`` positive integers up to :data:`MAX_DIM`), the sha256 of the weights file recorded in
    ``lens.json``, the tensors' dtype (float32) and shapes, and that they are finite and not
    degenerate. Files are read only if they are regular files no larger than the lens needs (the
    weights file: ``4 * d_in * d_out`` plus the fingerprint and a header allowance). Nothing is
    unpickled. A ``lens.json`` holding ``NaN`` (written by older versions) is still read.

    Raises:
        LensFormatError: naming the offending file, for a missing directory or file, bad JSON, an
            unknown format version, a field of the wrong type, a non-regular or oversized file, a
            checksum mismatch (corrupted, truncated, tampered weights), an unreadable weights file,
            a wrong shape or dtype, NaN/Inf weights, or an all-zero or out-of-scale W.
    """
    root = Path(path)
    cfg_path = root / CONFIG_FILE
    if not root.is_dir():
        raise _fail(root, "no lens directory here (expected lens.json + weights.safetensors)")
    raw_cfg = _read_bounded(cfg_path, MAX_CONFIG_BYTES, "lens.json")
    try:
        cfg = json.loads(raw_cfg.decode())
    except (ValueError, RecursionError) as e:  # bad JSON or UTF-8, an int of > 4300 digits, deep nesting
        raise _fail(cfg_path, f"not valid JSON ({e})") from e
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise _fail(
            cfg_path,
            f"not an embedlens lens file (format={cfg.get('format')!r})"
            if isinstance(cfg, dict)
            else "not an embedlens lens file",
        )
    if cfg.get("format_version") != FORMAT_VERSION:
        raise _fail(
            cfg_path,
            f"format_version {cfg.get('format_version')!r} is not supported by embedlens "
            f"{__version__} (supports {FORMAT_VERSION})",
        )
    d_in, d_out = _positive_int_field(cfg, "d_in", cfg_path), _positive_int_field(cfg, "d_out", cfg_path)
    if d_in * d_out > MAX_WEIGHTS:
        raise _fail(cfg_path, f"a W of {d_in} x {d_out} is above the {MAX_WEIGHTS} weights a lens may have")
    normalize = cfg.get("normalize")
    if not isinstance(normalize, bool):  # bool("false") is True: only JSON true/false are accepted
        raise _fail(cfg_path, f"field 'normalize' must be true or false, got {normalize!r}")
    try:
        mode = cfg["mode"]
        weights_name, expected_sha = str(cfg["weights_file"]), str(cfg["weights_sha256"])
        metadata = upgrade_metadata(cfg.get("metadata") or {})
    except (KeyError, TypeError, ValueError) as e:
        raise _fail(cfg_path, f"missing or invalid field {e}") from e
    if weights_name != WEIGHTS_FILE:  # the only name save() writes: lens.json never picks a file to read
        raise _fail(cfg_path, f"weights_file {weights_name!r} must be {WEIGHTS_FILE!r}")
    w_path = root / weights_name
    limit = 4 * d_in * (d_out + MAX_FINGERPRINT_ROWS) + WEIGHTS_HEADER_ALLOWANCE
    blob = _read_bounded(w_path, limit, "weights file")
    actual_sha = hashlib.sha256(blob).hexdigest()
    if actual_sha != expected_sha:
        raise _fail(
            w_path,
            f"sha256 {actual_sha[:12]}… does not match {expected_sha[:12]}… recorded in lens.json: "
            f"the weights are corrupted, truncated or were modified",
        )
    tensors = _read_tensors(w_path, blob)
    w = tensors.get("W")
    if w is None:
        raise _fail(w_path, "no tensor 'W'")
    if w.dtype != np.float32:
        raise _fail(w_path, f"W has dtype {w.dtype}; expected float32")
    if w.shape != (d_in, d_out):
        raise _fail(w_path, f"W has shape {w.shape} but lens.json says ({d_in}, {d_out})")
    if not np.isfinite(w).all():
        raise _fail(w_path, "W holds NaN or Inf")
    why = weights_problem(w)
    if why is not None:
        raise _fail(w_path, why)
    fp = tensors.get("fingerprint")
    if fp is not None and (
        fp.dtype != np.float32
        or fp.ndim != 2
        or fp.shape[1] != d_in
        or fp.shape[0] > MAX_FINGERPRINT_ROWS
        or not np.isfinite(fp).all()
    ):
        raise _fail(
            w_path,
            f"fingerprint has dtype {fp.dtype} and shape {fp.shape}; expected finite float32 (p, {d_in})",
        )
    try:
        lens = Lens(w, mode=mode, normalize=normalize, metadata=metadata, fingerprint=fp)
    except ValueError as e:
        raise _fail(cfg_path, str(e)) from e
    lens.weights_sha256, lens.path = actual_sha, root.resolve()
    return lens


def _read_tensors(w_path: Path, blob: bytes) -> dict[str, np.ndarray]:
    """Parse the weights file: safetensors only (the only format :meth:`Lens.save` writes)."""
    from safetensors.numpy import load

    try:
        return dict(load(blob))
    except Exception as e:  # safetensors raises its own SafetensorError on any parse failure
        raise _fail(w_path, f"not a readable safetensors file ({type(e).__name__}: {e})") from e
