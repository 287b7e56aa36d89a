"""Project a large ``.npy`` file of embeddings through a lens, streamed from disk in bounded memory."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

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
) -> Path:
    """Write ``lens`` applied to every row of the ``(n, d_in)`` float32 array in ``src`` to ``dst``.

    Rows are read and written with plain file I/O one batch at a time: memory stays at a few
    batches whatever ``n`` is. The output is
    written to a temp file beside ``dst`` and renamed when complete, so ``dst`` never holds half a result.

    Args:
        src: ``.npy`` file of shape ``(n, d_in)`` (read with ``allow_pickle=False``).
        dst: ``.npy`` file to write, shape ``(n, d_out)`` float32.
        lens: the lens.
        side: ``"documents"`` (``transform_documents``) or ``"queries"``.
        batch_size: rows per batch.
        progress: tqdm bar.
        on_batch: called with the rows done after each batch.

    Raises:
        EmbedlensInputError: ``src`` is not a 2-d float array file.
        DimensionMismatchError: its width is not the lens's ``d_in``.
    """
    src = Path(src)
    try:
        f_in = src.open("rb")
        version = np.lib.format.read_magic(f_in)
        read_header = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(f_in)  # parses the header only: nothing is unpickled
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
        transform = lens.transform_documents if side == "documents" else lens.transform_queries
        out_dim = lens.doc_dim if side == "documents" else lens.d_out
        dst = Path(dst)
        tmp = dst.with_name(f".{dst.name}.tmp")
        from tqdm.auto import tqdm

        try:
            with tmp.open("wb") as f_out:
                header = {"descr": "<f4", "fortran_order": False, "shape": (n, out_dim)}
                np.lib.format.write_array_header_2_0(f_out, header)
                bar = tqdm(
                    total=n, desc=f"projecting {src.name}", unit="vec", disable=not progress, leave=False
                )
                row_bytes = d * dtype.itemsize
                for start in range(0, n, batch_size):
                    rows = min(batch_size, n - start)
                    buf = f_in.read(rows * row_bytes)  # explicit reads: no mapping, memory stays bounded
                    if len(buf) != rows * row_bytes:
                        msg = f"{src}: file is truncated at row {start + len(buf) // row_bytes} of {n}"
                        raise EmbedlensInputError(msg)
                    batch = np.frombuffer(buf, dtype=dtype).reshape(rows, d)
                    f_out.write(np.ascontiguousarray(transform(batch), dtype="<f4").tobytes())
                    bar.update(rows)
                    if on_batch is not None:
                        on_batch(start + rows)
                bar.close()
                f_out.flush()
                os.fsync(f_out.fileno())
            os.replace(tmp, dst)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return dst
