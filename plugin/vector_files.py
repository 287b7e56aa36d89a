"""Stored vectors: a ``.npy`` matrix, a Parquet file, or a directory of Parquet files.

A Parquet vector table has an id column and a vector column, ``list<float>`` or
``fixed_size_list<float>[d]``; every other column is carried through whatever is done to the vectors.
A ``.npy`` file is a ``(n, d)`` float matrix whose ids are its row numbers.

This module only opens footers and headers to describe an input (:func:`open_vectors`) and converts
between Arrow batches and float32 matrices; :mod:`embedlens.project` streams the rows (locally) and
:mod:`embedlens.distributed` runs the same conversions on Ray.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from embedlens.errors import DataFormatError, DimensionMismatchError, EmbedlensInputError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "MANIFEST",
    "TextInput",
    "VectorInput",
    "open_texts",
    "open_vectors",
    "output_kind",
    "parquet_dir_problem",
    "parquet_file_problem",
    "row_name",
    "table_texts",
    "table_vectors",
    "with_vectors",
]

#: the file an embedlens Parquet output directory holds beside its part files (what makes it "ours").
MANIFEST = "_embedlens.json"
#: the key under which an embedlens Parquet file's schema metadata records how it was written.
SCHEMA_KEY = b"embedlens"
OUTPUT_FORMAT = "embedlens-vectors"

Kind = Literal["npy", "parquet", "parquet-dir"]


def require_pyarrow() -> Any:
    """``pyarrow``, or an input error that says how to install it."""
    try:
        import pyarrow as pa
        import pyarrow.parquet
    except ImportError as e:  # pragma: no cover - pyarrow is a dependency
        msg = "Parquet needs pyarrow: pip install pyarrow"
        raise EmbedlensInputError(msg) from e
    return pa


def output_kind(path: str | os.PathLike[str]) -> Kind:
    """What a path names as an output: ``.npy`` or ``.parquet`` files, anything else a directory."""
    suffix = Path(path).suffix.lower()
    return "npy" if suffix == ".npy" else "parquet" if suffix == ".parquet" else "parquet-dir"


@dataclass
class VectorInput:
    """An input described from its headers: what it is, how many rows, how wide.

    Attributes:
        kind: ``npy``, ``parquet`` (one file) or ``parquet-dir``.
        path: as given.
        files: the data files in order (a directory's ``*.parquet`` files sorted by name).
        rows: rows per file.
        dim: the vector width (of the first row, for a ``list`` column; every row is checked on reading).
        id_column: the id column (Parquet).
        vector_column: the vector column (Parquet).
        schema: the Arrow schema (Parquet).
    """

    kind: Kind
    path: Path
    files: list[Path]
    rows: list[int]
    dim: int
    id_column: str = "id"
    vector_column: str = "vector"
    schema: pa.Schema | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        """Total rows."""
        return int(sum(self.rows))


def _parquet_files(path: Path) -> list[Path]:
    """A directory's ``*.parquet`` files (any case) sorted by name; hidden and ``_`` files are skipped."""
    import stat

    files = sorted(
        p for p in path.iterdir() if p.suffix.lower() == ".parquet" and not p.name.startswith((".", "_"))
    )
    for p in files:  # a FIFO would block the reader forever; a device is no table either
        try:
            regular = stat.S_ISREG(os.stat(p).st_mode)
        except OSError as e:
            raise DataFormatError(f"{p}: cannot be read ({e.strerror})") from None
        if not regular:
            raise DataFormatError(f"{p}: not a regular file")
    if not files:
        msg = f"{path}: no .parquet files in this directory"
        raise DataFormatError(msg)
    nested = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))]
    if nested:
        msg = f"{path}: holds sub-directories ({nested[0].name}); give a flat directory of .parquet files"
        raise DataFormatError(msg)
    return files


def _vector_width(schema_type: Any, where: str, column: str) -> int | None:
    """The fixed width of a vector column's type (None for a variable ``list``); refuses other types."""
    import pyarrow as pa

    t = schema_type
    if pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
        if not pa.types.is_floating(t.value_type):
            msg = f"{where}: column {column!r} holds lists of {t.value_type}, not floats"
            raise DataFormatError(msg)
        return int(t.list_size) if pa.types.is_fixed_size_list(t) else None
    msg = f"{where}: column {column!r} has type {t}; expected list<float32> or fixed_size_list<float32>"
    raise DataFormatError(msg)


def _parquet_footers(
    p: Path,
    needs: dict[str, str],
    check: Callable[[Path, pa.Schema], None],
    *,
    accepts: str = "a .parquet file",
) -> tuple[list[Path], list[int], pa.Schema]:
    """The files of a ``.parquet`` path or directory, their row counts and their one schema, read from footers.

    ``needs`` maps each required column to the option that names it; ``check(file, schema)`` refuses what
    else the caller cannot use; ``accepts`` says what other than a directory the caller takes. Every file
    of a directory must have the same schema.

    Raises:
        EmbedlensInputError: naming the file: unreadable, a column missing, a schema that differs.
    """
    import pyarrow.parquet as pq

    if p.is_dir():
        files = _parquet_files(p)
    elif p.is_file() and p.suffix.lower() == ".parquet":
        files = [p]
    else:
        raise EmbedlensInputError(f"{p}: give {accepts} or a directory of .parquet files")
    rows: list[int] = []
    schema: pa.Schema | None = None
    for f in files:
        try:
            meta = pq.ParquetFile(f)
        except Exception as e:
            raise DataFormatError(f"{f}: not a readable Parquet file ({type(e).__name__}: {e})") from e
        s = meta.schema_arrow
        for col, option in needs.items():
            if col not in s.names:
                msg = f"{f}: no column {col!r} (columns: {', '.join(s.names)}); name it with {option}"
                raise DataFormatError(msg)
        check(f, s)
        if schema is None:
            schema = s
        elif not s.remove_metadata().equals(schema.remove_metadata()):
            msg = f"{f}: its schema differs from {files[0].name}'s; every file of a directory needs the same"
            raise DataFormatError(msg)
        rows.append(int(meta.metadata.num_rows))
    assert schema is not None  # _parquet_files never returns an empty list
    return files, rows, schema


def open_vectors(
    path: str | os.PathLike[str], *, id_column: str = "id", vector_column: str = "vector"
) -> VectorInput:
    """Describe ``path`` (a ``.npy`` file, a ``.parquet`` file or a directory of them) from its headers.

    Parquet files must all have the same schema, hold ``id_column`` and ``vector_column``, and the
    vector column must be a list of floats of one width.

    Raises:
        EmbedlensInputError: naming the file (and column) that is missing, unreadable or malformed.
    """
    from embedlens._arrays import read_npy_header

    p = Path(path)
    if not p.exists():
        msg = f"{p}: no such file or directory"
        raise EmbedlensInputError(msg)
    if p.suffix.lower() == ".npy":
        if not p.is_file():  # a FIFO would block the reader; a directory named .npy is no array either
            msg = f"{p}: not a readable .npy array (not a regular file)"
            raise EmbedlensInputError(msg)
        try:
            with p.open("rb") as header:
                shape, fortran, dtype = read_npy_header(header)
                offset = header.tell()
        except (OSError, ValueError) as e:
            msg = f"{p}: not a readable .npy array ({e})"
            raise EmbedlensInputError(msg) from e
        if dtype.hasobject or dtype.kind != "f" or fortran or len(shape) != 2:
            order = " (Fortran order)" if fortran else ""
            msg = (
                f"{p}: array has dtype {dtype}{order} and shape {shape}; expected a C-order 2-d float matrix"
            )
            raise DataFormatError(msg)
        if not p.is_file() or p.stat().st_size < offset + int(np.prod(shape)) * dtype.itemsize:
            whole = max(0, (p.stat().st_size - offset) // max(1, int(shape[1]) * dtype.itemsize))
            msg = f"{p}: file is truncated at row {whole} of {shape[0]}"
            raise DataFormatError(msg)
        return VectorInput("npy", p, [p], [int(shape[0])], int(shape[1]), id_column, vector_column)
    require_pyarrow()
    import pyarrow.parquet as pq

    kind: Kind = "parquet-dir" if p.is_dir() else "parquet"
    needs = {id_column: "--id-column", vector_column: "--vector-column"}

    def check(f: Path, s: pa.Schema) -> None:
        _vector_width(s.field(vector_column).type, str(f), vector_column)  # a list of floats

    files, rows, schema = _parquet_footers(p, needs, check, accepts="a .npy file, a .parquet file")
    dim = _vector_width(schema.field(vector_column).type, str(files[0]), vector_column)
    if dim is None:  # a variable-size list: the width of the first vector (every row is checked on reading)
        first_file = next((f for f, n in zip(files, rows, strict=True) if n), None)
        if first_file is not None:
            first = (
                pq.ParquetFile(first_file).read_row_group(0, columns=[vector_column]).column(0).slice(0, 1)
            )
            dim = int(len(first[0])) if first[0].is_valid else None
    if dim is None:
        msg = f"{p}: no vectors to read (every file is empty, or the first vector is null)"
        raise DataFormatError(msg)
    return VectorInput(kind, p, files, rows, int(dim), id_column, vector_column, schema)


def iter_npy_rows(inp: VectorInput, batch_rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(first row, (rows, d) float array)`` batches of a ``.npy`` input, read with plain file I/O."""
    from embedlens._arrays import read_npy_header

    with inp.path.open("rb") as f:
        _, _, dtype = read_npy_header(f)
        row_bytes = inp.dim * dtype.itemsize
        for start in range(0, inp.n, batch_rows):
            rows = min(batch_rows, inp.n - start)
            buf = f.read(rows * row_bytes)
            if len(buf) != rows * row_bytes:
                msg = f"{inp.path}: file is truncated at row {start + len(buf) // row_bytes} of {inp.n}"
                raise DataFormatError(msg)
            yield start, np.frombuffer(buf, dtype=dtype).reshape(rows, inp.dim)


def row_name(table: pa.Table | None, i: int, first_row: int | None, id_column: str | None) -> str:
    """How a message names row ``i`` of a batch: its row in the file (when known) and its id."""
    parts = [] if first_row is None else [f"row {first_row + i} (0-based)"]
    if table is not None and id_column is not None and id_column in table.column_names:
        parts.append(f"id {table.column(id_column)[i].as_py()!r}")
    return ", ".join(parts) or f"row {i} of a batch"


def table_vectors(
    table: pa.Table,
    column: str,
    dim: int,
    *,
    where: str,
    first_row: int | None = 0,
    id_column: str | None = None,
) -> np.ndarray:
    """The ``(n, dim)`` float32 matrix of ``table[column]``.

    Raises:
        DataFormatError: a null vector, or one of another width, naming ``where``, the row (counted from
            ``first_row``; None when the batch's place in the file is unknown) and its id.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    col = table.column(column).combine_chunks()
    n = len(col)
    if col.null_count:
        bad = int(np.flatnonzero(np.asarray(col.is_null()))[0])
        raise DataFormatError(f"{where}: {row_name(table, bad, first_row, id_column)} has a null {column!r}")
    if pa.types.is_fixed_size_list(col.type):
        if col.type.list_size != dim:
            msg = f"{where}: {column!r} vectors have {col.type.list_size} values; expected {dim}"
            raise DimensionMismatchError(msg)
    else:
        lengths = np.asarray(pc.list_value_length(col))
        wrong = np.flatnonzero(lengths != dim)
        if wrong.size:
            bad = int(wrong[0])
            msg = (
                f"{where}: {row_name(table, bad, first_row, id_column)} has a {column!r} of "
                f"{int(lengths[bad])} values; expected {dim}"
            )
            raise DimensionMismatchError(msg)
    values = col.flatten()
    if values.null_count:
        bad = int(np.repeat(np.arange(n), dim)[np.asarray(values.is_null())][0])
        msg = f"{where}: {row_name(table, bad, first_row, id_column)} has a null value inside {column!r}"
        raise DataFormatError(msg)
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(n, dim)


def with_vectors(table: pa.Table, column: str, vectors: np.ndarray, *, fixed: bool) -> pa.Table:
    """``table`` with ``column`` replaced by (or, when missing, appended as) ``vectors`` float32.

    ``fixed``: write ``fixed_size_list<float32>[d]``; else ``list<float32>``.
    """
    import pyarrow as pa

    n, d = vectors.shape
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
    if fixed:
        arr: pa.Array = pa.FixedSizeListArray.from_arrays(flat, d)
    else:
        arr = pa.ListArray.from_arrays(pa.array(np.arange(0, n * d + 1, d, dtype=np.int32)), flat)
    if column in table.column_names:
        return table.set_column(table.column_names.index(column), pa.field(column, arr.type), arr)
    return table.append_column(pa.field(column, arr.type), arr)


def is_fixed(inp: VectorInput) -> bool:
    """Whether the input's vector column is a fixed-size list (an output keeps that kind)."""
    import pyarrow as pa

    return inp.schema is None or pa.types.is_fixed_size_list(inp.schema.field(inp.vector_column).type)


def write_options(column_names: list[str], vector_column: str) -> dict[str, Any]:
    """``pyarrow.parquet`` writer options: no dictionary for the vector column (floats do not repeat; trying
    one halves the read and write speed)."""
    return {"use_dictionary": [c for c in column_names if c != vector_column]}


def schema_metadata(info: dict[str, Any]) -> dict[bytes, bytes]:
    """Schema metadata that marks a Parquet file as written by embedlens (with how)."""
    return {SCHEMA_KEY: json.dumps({"format": OUTPUT_FORMAT, **info}, sort_keys=True).encode()}


def parquet_file_problem(path: Path) -> str | None:
    """Why ``path`` is not a Parquet file embedlens wrote, or None when it is one."""
    try:
        import pyarrow.parquet as pq

        meta = pq.read_schema(path).metadata or {}
    except Exception:  # noqa: BLE001 - anything unreadable is not ours
        return "is not a Parquet file embedlens wrote"
    try:
        info = json.loads(meta.get(SCHEMA_KEY, b"{}"))
    except ValueError:
        info = {}
    if not isinstance(info, dict) or info.get("format") != OUTPUT_FORMAT:
        return "is a Parquet file embedlens did not write"
    return None


def parquet_dir_problem(path: Path) -> str | None:
    """Why ``path`` is not a Parquet output directory embedlens wrote, or None when it is one.

    Ours: a directory holding :data:`MANIFEST` (format ``embedlens-vectors``) and otherwise only
    ``.parquet`` files.
    """
    if path.is_symlink() or not path.is_dir():
        return "is not a directory"
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"is not an embedlens output directory (no {MANIFEST})"
    if not isinstance(manifest, dict) or manifest.get("format") != OUTPUT_FORMAT:
        return f"is not an embedlens output directory ({MANIFEST} is not ours)"
    others = [
        p.name for p in path.iterdir() if p.name != MANIFEST and not (p.is_file() and p.suffix == ".parquet")
    ]
    if others:
        return f"holds {others[0]!r}, which embedlens did not write"
    return None


def still_ours(path: Path) -> None:
    """Raise unless ``path`` is still an empty directory or an output directory of ours (checked right
    before it is replaced)."""
    if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        return
    why = parquet_dir_problem(path)
    if why is not None:
        raise EmbedlensInputError(f"output {path}: {why}; refusing to replace it")


def guard_output(path: str | os.PathLike[str], *, option: str, inputs: dict[str, Any], force: bool) -> Path:
    """Check that ``path`` may be written: a missing path, an empty directory, or one of ours with ``force``.

    Raises:
        OutputRefusedError: anything else (a foreign file or directory, a link, an overlap with an input).
    """
    from embedlens._outputs import _refuse, guard_dir, guard_file, npy_problem

    for parent in Path(path).absolute().parents:  # the first existing ancestor must be a directory
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise _refuse(option, Path(path), f"cannot be created: {parent} is not a directory")
            break
    kind = output_kind(path)
    if kind == "npy":
        return guard_file(path, option=option, ours=npy_problem, inputs=inputs, force=force)
    if kind == "parquet":
        return guard_file(path, option=option, ours=parquet_file_problem, inputs=inputs, force=force)
    return guard_dir(
        path, option=option, ours=parquet_dir_problem, what="an earlier embedlens output directory",
        inputs=inputs, force=force,
    )  # fmt: skip


def write_manifest(directory: Path, info: dict[str, Any]) -> None:
    """Write :data:`MANIFEST` into an output directory being built."""
    from embedlens._atomic import strict_json_dumps

    (directory / MANIFEST).write_text(strict_json_dumps({"format": OUTPUT_FORMAT, **info}), encoding="utf-8")


@dataclass
class TextInput:
    """A Parquet text table described from its footers (see :func:`open_texts`)."""

    path: Path
    files: list[Path]
    rows: list[int]
    text_column: str

    @property
    def n(self) -> int:
        """Total rows."""
        return int(sum(self.rows))


def open_texts(path: str | os.PathLike[str], *, text_column: str, vector_column: str) -> TextInput:
    """Describe a ``.parquet`` file or a directory of them whose ``text_column`` is to be embedded.

    Raises:
        EmbedlensInputError: naming the file: unreadable, no ``text_column`` of strings, a schema that differs
            between files, or a ``vector_column`` already there (it would be overwritten).
    """
    require_pyarrow()
    import pyarrow as pa

    p = Path(path)
    if not p.exists():
        raise EmbedlensInputError(f"{p}: no such file or directory")

    def check(f: Path, s: pa.Schema) -> None:
        t = s.field(text_column).type
        if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
            raise DataFormatError(f"{f}: column {text_column!r} has type {t}, not text")
        if vector_column in s.names:
            msg = f"{f}: already has a column {vector_column!r}; name the new one with --vector-column"
            raise DataFormatError(msg)

    files, rows, _ = _parquet_footers(p, {text_column: "--text-column"}, check)
    return TextInput(p, files, rows, text_column)


def table_texts(table: pa.Table, column: str, *, where: str, first_row: int | None) -> list[str]:
    """The texts of ``table[column]``; a null or empty text is refused naming ``where`` and the row."""
    texts = table.column(column).to_pylist()
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()), None)
    if bad is not None:
        what = "a null" if texts[bad] is None else "an empty"
        raise DataFormatError(f"{where}: {row_name(table, bad, first_row, None)} has {what} {column!r}")
    return texts


def write_parquet(
    path: Path, tables: Iterator[Any], metadata: dict[bytes, bytes], vector_column: str
) -> None:
    """Write Arrow tables (one schema) to one Parquet file, fsynced; the schema carries ``metadata``."""
    import pyarrow.parquet as pq

    writer = None
    try:
        for table in tables:
            if writer is None:
                schema = table.schema.with_metadata({**(table.schema.metadata or {}), **metadata})
                writer = pq.ParquetWriter(str(path), schema, **write_options(schema.names, vector_column))
            writer.write_table(table.replace_schema_metadata(writer.schema.metadata))
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise EmbedlensInputError(f"{path}: nothing to write (the input holds no rows)")
    with open(path, "rb+") as f:
        os.fsync(f.fileno())
