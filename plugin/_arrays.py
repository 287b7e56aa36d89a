"""Small array helpers shared by the lens, the cache and the evaluator (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from embedlens.errors import DimensionMismatchError, EmbedlensInputError


def as_matrix(x: Any, *, name: str = "X", dim: int | None = None, check_finite: bool = True) -> np.ndarray:
    """Return ``x`` as a C-contiguous ``(n, d)`` float32 array, validated.

    Args:
        x: an array-like of shape ``(n, d)`` (numpy array or list of lists); a 1-d vector is refused.
        name: how the array is called in error messages.
        dim: the expected ``d``; ``None`` accepts any.
        check_finite: scan for NaN/Inf (callers that check their output instead pass False).

    Raises:
        DimensionMismatchError: when ``x`` is not 2-d or its second dimension is not ``dim``.
        EmbedlensInputError: when ``x`` holds NaN or Inf, or is not numeric.
    """
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as e:
        msg = f"{name} must be a numeric (n, d) array: {e}"
        raise EmbedlensInputError(msg) from e
    if arr.ndim != 2:
        shape = tuple(arr.shape)
        expected = f"(n, {dim})" if dim is not None else "(n, d)"
        msg = f"{name} has shape {shape}; expected a 2-d array of shape {expected}"
        raise DimensionMismatchError(msg)
    if dim is not None and arr.shape[1] != dim:
        msg = f"{name} has shape {tuple(arr.shape)} but the lens expects (n, {dim})"
        raise DimensionMismatchError(msg)
    if check_finite:
        require_finite(arr, name=name)
    return np.ascontiguousarray(arr)


def require_finite(arr: np.ndarray, *, name: str, source: np.ndarray | None = None) -> None:
    """Raise if ``arr`` holds NaN or Inf, counting the bad rows (of ``source`` when given).

    A non-finite input value makes every output of its row non-finite after a matrix product
    (``inf * w`` is ±inf, ``inf * 0`` is NaN), so checking a product's smaller output is enough.

    Raises:
        EmbedlensInputError: naming the array, its shape and the number of bad rows.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        total = arr.sum()  # one pass, no temporary; finite sum => every value is finite
    if arr.size and not np.isfinite(total) and not np.isfinite(arr).all():
        ref = arr if source is None else source
        bad = int((~np.isfinite(ref)).any(axis=1).sum()) or int((~np.isfinite(arr)).any(axis=1).sum())
        msg = f"{name} of shape {tuple(ref.shape)} holds NaN or Inf in {bad} row(s)"
        raise EmbedlensInputError(msg)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Scale each row of ``x`` ``(n, d)`` to unit L2 norm in place; zero rows stay zero. Returns ``x``."""
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite rows stay non-finite for the caller
        norms = np.sqrt(np.einsum("ij,ij->i", x, x))  # (n,), no (n, d) temporary
        np.maximum(norms, np.float32(1e-12), out=norms)
        x /= norms[:, None]
    return x


def row_cosines(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cosine of each row pair ``(n,)``: row ``i`` of ``x`` ``(n, d)`` against row ``i`` of ``y`` (inputs untouched)."""
    x = l2_normalize(np.array(x, dtype=np.float32))
    y = l2_normalize(np.array(y, dtype=np.float32))
    return np.einsum("ij,ij->i", x, y)


def to_float_lists(x: np.ndarray) -> list[list[float]]:
    """Convert ``(n, d)`` to plain Python floats, the form LangChain and Chroma callers expect."""
    return x.astype(float).tolist()  # type: ignore[no-any-return]


def stack_vectors(vectors: Sequence[Any], *, name: str) -> np.ndarray:
    """Stack a sequence of 1-d vectors into ``(n, d)`` float32; an empty sequence gives ``(0, 0)``."""
    if len(vectors) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except ValueError as e:
        msg = f"{name} returned vectors of different lengths: {e}"
        raise EmbedlensInputError(msg) from e
    if arr.ndim != 2:
        msg = f"{name} returned an array of shape {arr.shape}; expected (n, d)"
        raise EmbedlensInputError(msg)
    return np.ascontiguousarray(arr)


def read_npy_header(f: Any) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    """``(shape, fortran_order, dtype)`` of the ``.npy`` file open at its start; the file is left at the data.

    Parses the header only: nothing is unpickled. Raises ValueError on a file that is not ``.npy``.
    """
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)  # type: ignore[no-any-return]
    return np.lib.format.read_array_header_2_0(f)  # type: ignore[no-any-return]
