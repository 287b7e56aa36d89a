"""Project a large ``.npy`` file of embeddings through a lens, streamed from disk in bounded memory."""

from __future__ import annotations

import operator
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from embedlens._arrays import read_npy_header
from embedlens.errors import DimensionMismatchError, EmbedlensInputError
from embedlens.lens import Lens

__all__ = ["project_npy"]


def project_npy(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    lens: Lens,
    *,
    side: str = "documents",
    batch_size: int = 65536,
    progress: bool = True,
    on_batch: Callable[[int], None] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write ``lens`` applied to every row of the ``(n, d_in)`` float32 array in ``src`` to ``dst``.

    Rows are read and written with plain file I/O one batch at a time: memory stays at a few
    batches whatever ``n`` is. The output is written to a uniquely named temp file beside ``dst``
    (concurrent runs never share one) and renamed when complete, so ``dst`` never holds half a
    result; it gets the permissions a plain ``open`` would give it. Every argument is checked before
    anything is read or written.

    Args:
        src: ``.npy`` file of shape ``(n, d_in)`` (read with ``allow_pickle=False``).
        dst: ``.npy`` file to write, shape ``(n, d_out)`` float32.
        lens: the lens.
        side: ``"documents"`` (``project_documents``) or ``"queries"``.
        batch_size: rows per batch.
        progress: tqdm bar.
        on_batch: called with the rows done after each batch.
        overwrite: replace an existing ``dst`` — only ever a float32 ``.npy`` this function could
            have written; anything else there is refused. False refuses any existing ``dst``.

    Raises:
        EmbedlensInputError: ``src`` is not a 2-d float array file; ``side`` or ``batch_size`` is
            invalid; ``dst`` is ``src``, lies inside the lens directory, or holds something else
            than a float32 ``.npy`` (or any file, when ``overwrite`` is False).
        DimensionMismatchError: its width is not the lens's ``d_in``.
    """
    from embedlens._atomic import unique_temp_file
    from embedlens._outputs import guard_file, npy_problem

    if side not in ("documents", "queries"):
        msg = f"side must be 'documents' or 'queries', got {side!r}"
        raise EmbedlensInputError(msg)
    try:
        size_ok = not isinstance(batch_size, bool) and operator.index(batch_size) >= 1
    except TypeError:
        size_ok = False
    if not size_ok:
        msg = f"batch_size must be an integer >= 1, got {batch_size!r}"
        raise EmbedlensInputError(msg)
    batch_size = operator.index(batch_size)
    inputs = {"input": src, "lens": lens.path}
    guard_file(
        dst, option="output", ours=npy_problem, inputs=inputs, force=overwrite, force_hint="overwrite=True"
    )
    src = Path(src)
    try:
        f_in = _open_regular(src)
        shape, fortran, dtype = read_npy_header(f_in)  # the header only: nothing is unpickled
    except (OSError, ValueError) as e:
        msg = f"{src}: not a readable .npy array ({e})"
        raise EmbedlensInputError(msg) from e
    with f_in:
        if dtype.hasobject or dtype.kind != "f" or fortran:
            msg = f"{src}: array has dtype {dtype}{' (Fortran order)' if fortran else ''}; expected C-order floats"
            raise EmbedlensInputError(msg)
        if len(shape) != 2 or shape[1] != lens.d_in:
            msg = f"{src}: array has shape {shape} but the lens expects (n, {lens.d_in})"
            raise DimensionMismatchError(msg)
        n, d = shape
        project = lens.project_documents if side == "documents" else lens.project_queries
        out_dim = lens.doc_dim if side == "documents" else lens.d_out
        dst = Path(dst)
        from tqdm.auto import tqdm

        dst.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = unique_temp_file(dst)
        try:
            with os.fdopen(fd, "wb") as f_out:
                header = {"descr": "<f4", "fortran_order": False, "shape": (n, out_dim)}
                np.lib.format.write_array_header_2_0(f_out, header)
                # leave=False and closed on every exit: the bar's line is cleared, so an error message
                # printed next starts on a line of its own
                bar = tqdm(
                    total=n, desc=f"projecting {src.name}", unit="vec", disable=not progress, leave=False
                )
                try:
                    row_bytes = d * dtype.itemsize
                    for start in range(0, n, batch_size):
                        rows = min(batch_size, n - start)
                        buf = f_in.read(rows * row_bytes)  # explicit reads: no mapping, memory stays bounded
                        if len(buf) != rows * row_bytes:
                            msg = f"{src}: file is truncated at row {start + len(buf) // row_bytes} of {n}"
                            raise EmbedlensInputError(msg)
                        batch = np.frombuffer(buf, dtype=dtype).reshape(rows, d)
                        f_out.write(_project_batch(project, batch, src, start))
                        bar.update(rows)
                        if on_batch is not None:
                            on_batch(start + rows)
                finally:
                    end_progress_bar(bar)
                f_out.flush()
                os.fsync(f_out.fileno())
            os.replace(tmp, dst)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return dst


def end_progress_bar(bar: Any) -> None:
    """Close a ``leave=False`` tqdm bar so that whatever is printed next starts on a line of its own.

    Closing clears the bar's line with a carriage return, which a terminal honours; a log file or a
    pipe would still read the bar and the next message as one line, so a newline ends it there.
    """
    shown = not getattr(bar, "disable", True)  # a displayed bar printed its line at creation
    bar.close()
    fp = getattr(bar, "fp", None)
    if shown and fp is not None:
        try:
            isatty = bool(fp.isatty())
        except (AttributeError, ValueError, OSError):
            isatty = False
        if not isatty:
            try:
                fp.write("\n")
                fp.flush()
            except (AttributeError, ValueError, OSError):
                pass


def _open_regular(src: Path) -> BinaryIO:
    """Open ``src`` for reading if it is a regular file; a FIFO or a device is refused without blocking.

    Raises:
        OSError: ``src`` cannot be opened.
        ValueError: ``src`` is not a regular file.
    """
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait forever for a writer
    fd = os.open(src, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            msg = "not a regular file"
            raise ValueError(msg)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _project_batch(
    project: Callable[[np.ndarray], np.ndarray], batch: np.ndarray, src: Path, start: int
) -> bytes:
    """``project(batch)`` as little-endian float32 bytes; NaN/Inf input is reported by file and row.

    Raises:
        EmbedlensInputError: naming ``src``, the first row holding NaN or Inf (0-based, in the whole
            file) and how many rows of this batch do.
    """
    try:
        return np.ascontiguousarray(project(batch), dtype="<f4").tobytes()
    except EmbedlensInputError:
        with np.errstate(invalid="ignore", over="ignore"):
            bad = np.flatnonzero(~np.isfinite(batch.astype(np.float32)).all(axis=1))
        if not bad.size:
            raise
        msg = (
            f"{src}: row {start + int(bad[0])} (0-based) holds NaN or Inf "
            f"({bad.size} such row(s) among rows {start}-{start + len(batch) - 1}); nothing was written"
        )
        raise EmbedlensInputError(msg) from None
