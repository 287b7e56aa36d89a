"""Project stored embeddings through a lens, streamed from disk in bounded memory.

:func:`project_vectors` takes a ``.npy`` file, a Parquet file or a directory of Parquet files (see
:mod:`embedlens.vector_files`) and writes any of the three; ``engine="ray"`` runs the same projection
as a Ray Data pipeline (:mod:`embedlens.distributed`). :func:`project_npy` is the ``.npy`` to ``.npy``
case.
"""

from __future__ import annotations

import itertools
import operator
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from embedlens._arrays import read_npy_header
from embedlens.errors import DimensionMismatchError, EmbedlensInputError
from embedlens.lens import Lens

__all__ = ["project_npy", "project_vectors"]


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
                        f_out.write(_project_batch(project, batch, src, start).tobytes())
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
    project: Callable[[np.ndarray], np.ndarray],
    batch: np.ndarray,
    src: Path,
    start: int,
    *,
    table: Any = None,
    id_column: str | None = None,
) -> np.ndarray:
    """``project(batch)`` as a C-order float32 array; NaN/Inf input is reported by file and row.

    Raises:
        EmbedlensInputError: naming ``src``, the first row holding NaN or Inf (0-based, in the whole
            file) and how many rows of this batch do.
    """
    try:
        return np.ascontiguousarray(project(batch), dtype="<f4")
    except EmbedlensInputError:
        with np.errstate(invalid="ignore", over="ignore"):
            bad = np.flatnonzero(~np.isfinite(batch.astype(np.float32)).all(axis=1))
        if not bad.size:
            raise
        ident = ""
        if table is not None and id_column is not None and id_column in table.column_names:
            ident = f", id {table.column(id_column)[int(bad[0])].as_py()!r},"
        msg = (
            f"{src}: row {start + int(bad[0])} (0-based){ident} holds NaN or Inf "
            f"({bad.size} such row(s) among rows {start}-{start + len(batch) - 1}); nothing was written"
        )
        raise EmbedlensInputError(msg) from None


def project_vectors(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    lens: Lens,
    *,
    side: str = "documents",
    engine: str = "local",
    ray_address: str | None = None,
    id_column: str = "id",
    vector_column: str = "vector",
    batch_size: int = 65536,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write ``lens`` applied to every vector of ``src`` to ``dst``; every other column is carried through.

    ``src`` and ``dst`` are each a ``.npy`` file, a ``.parquet`` file or a directory of Parquet files
    (a path without either suffix). Rows keep their order and ids: a ``.npy`` input's ids are its row
    numbers; a ``.npy`` output holds the vectors only, in input order (files of a directory by name).
    The output appears complete or not at all: a file through a temp file and a rename, a directory
    built beside ``dst`` and renamed into place. Only an earlier output of ours is replaced (with
    ``overwrite``).

    Args:
        src, dst: input and output paths.
        lens: the lens.
        side: ``"documents"`` or ``"queries"``.
        engine: ``"local"`` (this process, streamed in ``batch_size`` rows) or ``"ray"`` (a Ray Data
            pipeline on the cluster at ``ray_address``, else a local Ray instance; ``dst`` must then be
            a directory, written one Parquet file per block). Ray is the ``embedlens[ray]`` extra.
        ray_address: a Ray cluster address (``ray://host:10001``, ``host:6379``, or ``auto``).
        id_column, vector_column: Parquet column names (also the names written for a ``.npy`` input).
        batch_size: rows per batch (on Ray a block is a Parquet row group, or ``batch_size`` rows of a .npy).
        progress: progress bars.
        overwrite: replace an earlier output of ours at ``dst``.

    Raises:
        EmbedlensInputError: a bad option, an unreadable or malformed input (naming the file, and the
            row for bad vectors), an output that is not ours, or Ray missing (naming the extra).
    """
    from embedlens.vector_files import guard_output, open_vectors, output_kind

    if side not in ("documents", "queries"):
        raise EmbedlensInputError(f"side must be 'documents' or 'queries', got {side!r}")
    if engine not in ("local", "ray"):
        raise EmbedlensInputError(f"engine must be 'local' or 'ray', got {engine!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise EmbedlensInputError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    for name, value in (("id_column", id_column), ("vector_column", vector_column)):
        if not isinstance(value, str) or not value:
            raise EmbedlensInputError(f"{name} must be a non-empty column name, got {value!r}")
    if id_column == vector_column:
        raise EmbedlensInputError(f"the id and vector columns must differ, both are {id_column!r}")
    if engine == "ray" and output_kind(dst) != "parquet-dir":
        msg = f"output {dst}: the ray engine writes a directory of Parquet files (one per block); give a directory path"
        raise EmbedlensInputError(msg)
    if engine == "local" and ray_address is not None:
        raise EmbedlensInputError("a Ray address is only used with the ray engine")
    inputs = {"input": src, "lens": lens.path}
    guard_output(dst, option="output", inputs=inputs, force=overwrite)
    inp = open_vectors(src, id_column=id_column, vector_column=vector_column)
    if inp.n == 0:
        raise EmbedlensInputError(f"{inp.path}: holds no rows; nothing to project")
    if inp.dim != lens.d_in:
        msg = f"{inp.path}: vectors have {inp.dim} values but the lens expects {lens.d_in}"
        raise DimensionMismatchError(msg)
    if engine == "ray":
        from embedlens.distributed import project_on_ray

        return project_on_ray(
            inp, Path(dst), lens, side=side, address=ray_address, batch_size=batch_size, progress=progress
        )
    if inp.kind == "npy" and output_kind(dst) == "npy":
        return project_npy(
            src, dst, lens, side=side, batch_size=batch_size, progress=progress, overwrite=overwrite
        )
    return _project_local(inp, Path(dst), lens, side=side, batch_size=batch_size, progress=progress)


def _batches(inp: Any, batch_size: int) -> Iterator[tuple[Path, int, Any, np.ndarray]]:
    """``(file, first row in that file, Arrow table or None, (rows, d) vectors)`` in input order."""
    from embedlens.vector_files import iter_npy_rows, table_vectors

    if inp.kind == "npy":
        for start, x in iter_npy_rows(inp, batch_size):
            yield inp.path, start, None, x
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    for f in inp.files:
        start = 0
        for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_size):
            table = pa.Table.from_batches([batch])
            x = table_vectors(
                table, inp.vector_column, inp.dim, where=str(f), first_row=start, id_column=inp.id_column
            )
            yield f, start, table, x
            start += len(table)


def _project_local(inp: Any, dst: Path, lens: Lens, *, side: str, batch_size: int, progress: bool) -> Path:
    """Stream ``inp`` through the lens into ``dst`` (``.npy``, ``.parquet`` or a Parquet directory)."""
    from tqdm.auto import tqdm

    from embedlens._atomic import atomic_path, atomic_write_dir
    from embedlens.vector_files import (
        is_fixed,
        output_kind,
        schema_metadata,
        still_ours,
        with_vectors,
        write_manifest,
        write_parquet,
    )

    project = lens.project_documents if side == "documents" else lens.project_queries
    out_dim = lens.doc_dim if side == "documents" else lens.d_out
    kind = output_kind(dst)
    fixed = is_fixed(inp)
    info = {
        "side": side,
        "engine": "local",
        "rows": inp.n,
        "dim": out_dim,
        "lens_sha256": lens.weights_sha256,
    }

    def tables() -> Iterator[tuple[Path, Any]]:
        """(input file, projected Arrow table) in order."""
        import pyarrow as pa

        for f, start, table, x in _batches(inp, batch_size):
            y = _project_batch(project, x, f, start, table=table, id_column=inp.id_column)
            if table is None:  # a .npy input: ids are row numbers
                ids = pa.array(np.arange(start, start + len(y), dtype=np.int64))
                table = pa.table({inp.id_column: ids})
            yield f, with_vectors(table, inp.vector_column, y, fixed=fixed)
            bar.update(len(y))

    bar = tqdm(total=inp.n, desc=f"projecting {inp.path.name}", unit="vec", disable=not progress, leave=False)
    try:
        if kind == "npy":
            with atomic_path(dst) as tmp, tmp.open("wb") as f_out:
                header = {"descr": "<f4", "fortran_order": False, "shape": (inp.n, out_dim)}
                np.lib.format.write_array_header_2_0(f_out, header)
                for f, start, table, x in _batches(inp, batch_size):
                    y = _project_batch(project, x, f, start, table=table, id_column=inp.id_column)
                    f_out.write(y.tobytes())
                    bar.update(len(x))
                f_out.flush()
                os.fsync(f_out.fileno())
            return dst

        if kind == "parquet":
            with atomic_path(dst) as tmp:
                write_parquet(tmp, (t for _, t in tables()), schema_metadata(info), inp.vector_column)
            return dst

        def fill(directory: Path) -> None:
            """One output file per input file (a .npy input: one part), then the manifest."""
            part = {f: f"part-{i:05d}.parquet" for i, f in enumerate(inp.files)}
            for f, group in itertools.groupby(tables(), key=operator.itemgetter(0)):
                parts = (table for _, table in group)
                write_parquet(directory / part[f], parts, schema_metadata(info), inp.vector_column)
            write_manifest(directory, info)

        return atomic_write_dir(dst, fill, check=still_ours)
    finally:
        end_progress_bar(bar)
