"""Ray Data pipelines: project stored vectors, or embed a text column, across a Ray cluster.

The ``embedlens[ray]`` extra; the rest of embedlens never imports Ray. Each pipeline reads the input
in blocks, runs one ``map_batches`` stage on an actor pool (the lens, and for ``embed`` the base
model, are loaded once per actor: the lens goes through the object store once) and writes one
Parquet file per block into a directory built beside the output and renamed into place when every
block is written, so a failed or killed job leaves no partial output. Blocks keep their input order
(``preserve_order``), so the rows and ids match the local engine's.

A cluster's workers must be able to import embedlens and read the input and write the output path
(a shared file system on a multi-node cluster).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embedlens.errors import EmbedlensInputError

if TYPE_CHECKING:
    from embedlens.lens import Lens
    from embedlens.vector_files import TextInput, VectorInput

__all__ = ["check_ray_address", "embed_on_ray", "project_on_ray", "require_ray"]

EXTRA = "embedlens[ray]"
_ADDRESS = re.compile(r"^(auto|local|ray://[A-Za-z0-9.\-\[\]:]+:\d{1,5}|[A-Za-z0-9.\-\[\]:]+:\d{1,5})$")


def require_ray(address: str | None = None) -> Any:
    """The ``ray`` module (with Ray Data), or an input error that names the extra to install.

    For a local instance (``address`` None or ``local``) Ray is first told to stay on loopback (its
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, unless set): a one-machine job exposes no port to the network.
    """
    if address in (None, "local") and "ray" not in sys.modules:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
        import ray.data
    except ImportError as e:
        msg = f"the ray engine needs Ray Data, which is not installed: pip install '{EXTRA}' ({e})"
        raise EmbedlensInputError(msg) from None
    return ray


def check_ray_address(address: str | None, option: str = "--ray-address") -> None:
    """Refuse a malformed cluster address before anything starts (None: a local Ray instance)."""
    if address is None:
        return
    if not isinstance(address, str) or not _ADDRESS.match(address):
        msg = f"{option} {address!r}: expected auto, local, host:port or ray://host:port"
        raise EmbedlensInputError(msg)


@contextlib.contextmanager
def _connected(address: str | None, *, quiet: bool = False) -> Iterator[Any]:
    """Ray connected to ``address`` (a new local instance when None); disconnected after if we connected."""
    ray = require_ray(address)
    ours = not ray.is_initialized()
    if ours:
        try:
            ray.init(
                address=address, include_dashboard=False, log_to_driver=False,
                logging_level="ERROR" if quiet else "WARNING",
                configure_logging=True,
            )  # fmt: skip
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise EmbedlensInputError(f"--ray-address: cannot connect to {where} ({e})") from None
    try:
        yield ray
    finally:
        if ours:
            ray.shutdown()


def _data_context(ray: Any, progress: bool) -> None:
    import logging

    if not progress:  # quiet: Ray Data's per-run notices go too
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # blocks in input order: rows match the local engine
    ctx.enable_progress_bars = progress
    ctx.print_on_execution_start = False


def _cause(e: BaseException) -> EmbedlensInputError | None:
    """The input error a worker raised, from under Ray's wrappers (or None)."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [e]
    while stack:
        err = stack.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, EmbedlensInputError):
            return EmbedlensInputError(str(err).splitlines()[-1] if "\n" in str(err) else str(err))
        cause = getattr(err, "cause", None)
        stack += [err.__cause__, err.__context__, cause if isinstance(cause, BaseException) else None]
    return None


class _PartNames:
    """Output file names ``part-<write task>-<write id>.parquet``: sorted by name, they are in input order."""

    def __new__(cls) -> Any:  # a FilenameProvider subclass, built lazily (Ray is optional)
        from ray.data.datasource import FilenameProvider

        class PartNames(FilenameProvider):  # type: ignore[misc]
            def get_filename_for_task(self, write_uuid: str, task_index: int) -> str:
                return f"part-{task_index:06d}-{write_uuid}.parquet"

        return PartNames()


class _Project:
    """The map stage: one lens per actor, from the object store; Arrow batches in, Arrow batches out."""

    def __init__(
        self, packed: tuple[np.ndarray, str, bool], side: str, vector_column: str, id_column: str, dim: int,
        fixed: bool,
    ) -> None:  # fmt: skip
        from embedlens.lens import Lens

        weights, mode, normalize = packed
        self.lens = Lens(weights, mode=mode, normalize=normalize)  # type: ignore[arg-type]
        self.project = self.lens.project_documents if side == "documents" else self.lens.project_queries
        self.vector_column, self.id_column, self.dim, self.fixed = vector_column, id_column, dim, fixed

    def __call__(self, table: Any) -> Any:
        from embedlens.vector_files import row_name, table_vectors, with_vectors

        path = _batch_path(table)
        where = path or "input"
        if path is not None:
            table = table.drop_columns(["path"])
        x = table_vectors(
            table, self.vector_column, self.dim, where=where, first_row=None, id_column=self.id_column
        )
        try:
            y = self.project(x)
        except EmbedlensInputError:
            bad = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
            raise EmbedlensInputError(
                f"{where}: {row_name(table, bad, None, self.id_column)} holds NaN or Inf; nothing was written"
            ) from None
        return with_vectors(table, self.vector_column, y, fixed=self.fixed)


def _batch_path(table: Any) -> str | None:
    if "path" not in table.column_names or not len(table):
        return None
    return str(table.column("path")[0].as_py())


def _read_npy_rows(batch: dict[str, np.ndarray], path: str, id_column: str, vector_column: str) -> Any:
    """Row ranges of a ``.npy`` input (the file shared with every worker) as Arrow; ids are row numbers."""
    import pyarrow as pa

    from embedlens.vector_files import with_vectors

    x = np.load(path, mmap_mode="r", allow_pickle=False)
    tables = []
    for start, stop in zip(batch["start"], batch["stop"], strict=True):
        ids = pa.array(np.arange(int(start), int(stop), dtype=np.int64))
        rows = np.asarray(x[int(start) : int(stop)], dtype=np.float32)
        tables.append(with_vectors(pa.table({id_column: ids}), vector_column, rows, fixed=True))
    return pa.concat_tables(tables)


def _read(ray: Any, inp: VectorInput, batch_size: int) -> Any:
    if inp.kind == "npy":
        starts = np.arange(0, inp.n, batch_size, dtype=np.int64)
        ranges = [{"start": int(s), "stop": int(min(s + batch_size, inp.n))} for s in starts]
        return ray.data.from_items(ranges, override_num_blocks=max(1, len(ranges))).map_batches(
            _read_npy_rows, fn_args=(str(inp.path.resolve()), inp.id_column, inp.vector_column), batch_size=1,
            batch_format="numpy",
        )  # fmt: skip
    return ray.data.read_parquet(
        [str(f.resolve()) for f in inp.files], include_paths=True, file_extensions=None
    )


def _pool(ray: Any, most: int | None = None) -> Any:
    """The map stage's actor pool: from one actor up to ``most`` (default one per CPU of the cluster) as
    CPUs are free (a pool that held every CPU from the start would leave none to read the input)."""
    most = most or max(1, int(ray.cluster_resources().get("CPU", 1)))
    return ray.data.ActorPoolStrategy(min_size=1, max_size=most)


def _write(ray: Any, ds: Any, dst: Path, info: dict[str, Any], rows: int | None) -> Path:
    """Write ``ds`` as Parquet parts into a directory renamed to ``dst`` once complete and counted."""
    import pyarrow.parquet as pq

    from embedlens._atomic import atomic_write_dir
    from embedlens.vector_files import still_ours, write_manifest

    def fill(directory: Path) -> None:
        try:
            ds.write_parquet(str(directory), filename_provider=_PartNames())
        except Exception as e:
            cause = _cause(e)
            if cause is not None:
                raise cause from None
            raise
        parts = sorted(directory.glob("*.parquet"))
        written = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
        if rows is not None and written != rows:
            msg = f"the Ray job wrote {written} rows but the input holds {rows}; nothing was kept"
            raise RuntimeError(msg)
        write_manifest(directory, {**info, "rows": written, "files": len(parts)})

    return atomic_write_dir(dst, fill, check=still_ours)


def project_on_ray(
    inp: VectorInput,
    dst: Path,
    lens: Lens,
    *,
    side: str,
    address: str | None,
    batch_size: int,
    progress: bool,
) -> Path:
    """:func:`embedlens.project.project_vectors` with ``engine="ray"`` (inputs already checked there)."""
    from embedlens.vector_files import is_fixed

    check_ray_address(address)
    require_ray(address)
    out_dim = lens.doc_dim if side == "documents" else lens.d_out
    with _connected(address, quiet=not progress) as ray:
        _data_context(ray, progress)
        packed = (lens.weights, lens.mode, lens.normalize)  # sent once per actor, which keeps its Lens
        ds = _read(ray, inp, batch_size).map_batches(
            _Project,
            fn_constructor_args=(packed, side, inp.vector_column, inp.id_column, inp.dim, is_fixed(inp)),
            batch_size=batch_size, batch_format="pyarrow", compute=_pool(ray),
        )  # fmt: skip
        info = {"side": side, "engine": "ray", "dim": out_dim, "lens_sha256": lens.weights_sha256}
        return _write(ray, ds, dst, info, inp.n)


class _Embed:
    """The embed stage: the base model (no cache) and the lens, once per actor; the lens is checked
    against the model there (dimension, fingerprint) before any text is embedded."""

    def __init__(
        self, model: str | None, packed: dict[str, Any] | None, text_column: str, vector_column: str
    ) -> None:
        from embedlens.cache import open_embedder
        from embedlens.lens import Lens

        self.embedder = open_embedder(model, no_cache=True)
        self.embedder.progress = False  # type: ignore[attr-defined]
        self.lens = None if packed is None else Lens(**packed)
        if self.lens is not None:
            self.lens.check_embedder(self.embedder)
        self.text_column, self.vector_column = text_column, vector_column

    def __call__(self, table: Any) -> Any:
        from embedlens.vector_files import table_texts, with_vectors

        path = _batch_path(table)
        if path is not None:
            table = table.drop_columns(["path"])
        texts = table_texts(table, self.text_column, where=path or "input", first_row=None)
        x = self.embedder.embed(texts)
        y = x if self.lens is None else self.lens.project_documents(x)
        return with_vectors(table, self.vector_column, y, fixed=True)


def embed_on_ray(
    inp: TextInput,
    dst: Path,
    *,
    model: str | None,
    lens: Lens | None,
    vector_column: str,
    address: str | None,
    batch_size: int,
    progress: bool,
) -> Path:
    """:func:`embedlens.embed_table.embed_table` with ``engine="ray"`` (inputs already checked there)."""
    check_ray_address(address)
    require_ray(address)
    packed = None
    if lens is not None:
        packed = {
            "weights": lens.weights, "mode": lens.mode, "normalize": lens.normalize, "metadata": lens.metadata,
            "fingerprint": lens.fingerprint,
        }  # fmt: skip
    with _connected(address, quiet=not progress) as ray:
        _data_context(ray, progress)
        ds = ray.data.read_parquet(
            [str(f.resolve()) for f in inp.files], include_paths=True, file_extensions=None
        )
        ds = ds.map_batches(
            _Embed, fn_constructor_args=(model, packed, inp.text_column, vector_column), batch_size=batch_size,
            batch_format="pyarrow", compute=_pool(ray),
        )  # fmt: skip
        info = {
            "side": "documents", "engine": "ray", "model": model,
            "lens_sha256": None if lens is None else lens.weights_sha256,
        }  # fmt: skip
        return _write(ray, ds, dst, info, inp.n)
