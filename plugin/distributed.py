"""Ray Data pipelines: project stored vectors, or embed a text column, across a Ray cluster.

The ``embedlens[ray]`` extra; the rest of embedlens never imports Ray.

A job is a Ray Data dataset of *blocks* named by their place in the input (a Parquet file's row
group, or a ``.npy`` row range) and one ``map_batches`` stage on an actor pool: each actor loads the
lens (and for ``embed`` the base model) once, then reads its blocks with pyarrow, projects them and
writes each to ``part-<file>-<block>.parquet`` through a temp file and a rename. A block retried after
a killed worker rewrites the same file, so the output never holds a block twice or out of order:
sorted by name, the files are the input's rows in order, ids included. The files go into a directory
built beside the output; it is checked (every block once, every row counted) and renamed into place,
so a failed job leaves no partial output.

A cluster's workers must be able to import embedlens, read the input and write beside the output (a
shared file system on a multi-node cluster).
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
        logging.getLogger("ray.data").setLevel(logging.CRITICAL)  # its error report is ours, in one line
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = progress
    ctx.print_on_execution_start = False


_WORKER_ERROR = re.compile(r"^embedlens\.errors\.\w+: (.+)$", re.MULTILINE)


def _cause(e: BaseException) -> EmbedlensInputError | None:
    """The input error a worker raised (a bad row, a lens that does not fit), from under Ray's wrappers.

    Ray Data hands back a ``UserCodeException`` that keeps the worker's error only as traceback text;
    the last ``embedlens.errors.<Error>: message`` line there is ours.
    """
    seen: set[int] = set()
    stack: list[BaseException | None] = [e]
    found: list[str] = []
    while stack:
        err = stack.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, EmbedlensInputError) and "\n" not in str(err):
            return err
        found += _WORKER_ERROR.findall(str(err))
        cause = getattr(err, "cause", None)
        stack += [err.__cause__, err.__context__, cause if isinstance(cause, BaseException) else None]
    return EmbedlensInputError(found[-1]) if found else None


def _pool(ray: Any, most: int | None = None) -> Any:
    """The map stage's actor pool: from one actor up to ``most`` (default one per CPU of the cluster) as
    CPUs are free."""
    most = most or max(1, int(ray.cluster_resources().get("CPU", 1)))
    return ray.data.ActorPoolStrategy(min_size=1, max_size=most)


def part_name(file_index: int, block: int) -> str:
    """The output file of one input block: sorted by name, the parts are in input order."""
    return f"part-{file_index:05d}-{block:06d}.parquet"


def _blocks(files: list[Path], *, npy_rows: int | None, batch_size: int) -> list[dict[str, Any]]:
    """The job's blocks: every row group of every Parquet file, or ``batch_size`` row ranges of a .npy."""
    if npy_rows is not None:
        return [
            {
                "file": 0,
                "block": b,
                "path": str(files[0].resolve()),
                "start": s,
                "stop": min(s + batch_size, npy_rows),
            }
            for b, s in enumerate(range(0, npy_rows, batch_size))
        ]
    import pyarrow.parquet as pq

    out = []
    for f, path in enumerate(files):
        meta = pq.ParquetFile(path).metadata
        start = 0
        for g in range(meta.num_row_groups):
            rows = meta.row_group(g).num_rows
            out.append(
                {"file": f, "block": g, "path": str(path.resolve()), "start": start, "stop": start + rows}
            )
            start += rows
    return out


class _BlockWriter:
    """What every map stage shares: read a block, transform it, write its part file atomically."""

    directory: str
    vector_column: str

    def _read(self, block: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _transform(self, table: Any, block: dict[str, Any]) -> Any:
        raise NotImplementedError

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import pyarrow.parquet as pq

        from embedlens.vector_files import write_options

        names, rows = [], []
        for i in range(len(batch["file"])):
            block = {
                key: batch[key][i].item() if hasattr(batch[key][i], "item") else batch[key][i]
                for key in batch
            }
            table = self._transform(self._read(block), block)
            name = part_name(int(block["file"]), int(block["block"]))
            final = os.path.join(self.directory, name)
            tmp = f"{final}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
            pq.write_table(table, tmp, **write_options(table.column_names, self.vector_column))
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, final)  # a retried block replaces the same file whole
            names.append(name)
            rows.append(len(table))
        return {"name": np.array(names, dtype=object), "rows": np.array(rows, dtype=np.int64)}


class _Project(_BlockWriter):
    """Project one block per call: one lens per actor."""

    def __init__(
        self, directory: str, packed: tuple[np.ndarray, str, bool], side: str, columns: tuple[str, str],
        dim: int, fixed: bool, npy: bool,
    ) -> None:  # fmt: skip
        from embedlens.lens import Lens

        weights, mode, normalize = packed
        lens = Lens(weights, mode=mode, normalize=normalize)  # type: ignore[arg-type]
        self.project = lens.project_documents if side == "documents" else lens.project_queries
        self.directory, (self.id_column, self.vector_column) = directory, columns
        self.dim, self.fixed, self.npy = dim, fixed, npy

    def _read(self, block: dict[str, Any]) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from embedlens.vector_files import with_vectors

        if self.npy:  # ids are row numbers
            x = np.load(block["path"], mmap_mode="r", allow_pickle=False)
            rows = np.asarray(x[block["start"] : block["stop"]], dtype=np.float32)
            ids = pa.table({self.id_column: np.arange(block["start"], block["stop"], dtype=np.int64)})
            return with_vectors(ids, self.vector_column, rows, fixed=True)
        return pq.ParquetFile(block["path"]).read_row_group(block["block"])

    def _transform(self, table: Any, block: dict[str, Any]) -> Any:
        from embedlens.project import _project_batch
        from embedlens.vector_files import table_vectors, with_vectors

        where, start = block["path"], int(block["start"])
        x = table_vectors(
            table, self.vector_column, self.dim, where=where, first_row=start, id_column=self.id_column
        )
        y = _project_batch(self.project, x, Path(where), start, table=table, id_column=self.id_column)
        return with_vectors(table, self.vector_column, y, fixed=self.fixed)


class _Embed(_BlockWriter):
    """Embed one block per call: the base model (no cache) and the lens, once per actor; the lens is
    checked against the model there (dimension, fingerprint) before any text is embedded."""

    def __init__(
        self, directory: str, model: str | None, packed: dict[str, Any] | None, text_column: str,
        vector_column: str,
    ) -> None:  # fmt: skip
        from embedlens.cache import open_embedder
        from embedlens.lens import Lens

        self.directory = directory
        self.embedder = open_embedder(model, no_cache=True)
        self.embedder.progress = False  # type: ignore[attr-defined]
        self.lens = None if packed is None else Lens(**packed)
        if self.lens is not None:
            self.lens.check_embedder(self.embedder)
        self.text_column, self.vector_column = text_column, vector_column

    def _read(self, block: dict[str, Any]) -> Any:
        import pyarrow.parquet as pq

        return pq.ParquetFile(block["path"]).read_row_group(block["block"])

    def _transform(self, table: Any, block: dict[str, Any]) -> Any:
        from embedlens.vector_files import table_texts, with_vectors

        texts = table_texts(table, self.text_column, where=block["path"], first_row=int(block["start"]))
        x = self.embedder.embed(texts)
        y = x if self.lens is None else self.lens.project_documents(x)
        return with_vectors(table, self.vector_column, y, fixed=True)


def _run(
    ray: Any, blocks: list[dict[str, Any]], stage: type, args: tuple[Any, ...], dst: Path, info: dict[str, Any],
    rows: int, *, most: int | None = None,
) -> Path:  # fmt: skip
    """Run ``stage`` over ``blocks`` into a directory renamed to ``dst`` once every block is written once."""
    import pyarrow.parquet as pq

    from embedlens._atomic import atomic_write_dir
    from embedlens.vector_files import still_ours, write_manifest

    def fill(directory: Path) -> None:
        ds = ray.data.from_items(blocks, override_num_blocks=max(1, len(blocks))).map_batches(
            stage, fn_constructor_args=(str(directory.resolve()), *args), batch_size=1, batch_format="numpy",
            compute=_pool(ray, most),
        )  # fmt: skip
        try:
            done = ds.take_all()
        except Exception as e:
            cause = _cause(e)
            if cause is not None:
                raise cause from None
            raise
        for leftover in directory.iterdir():  # the temp file of a worker killed mid-write
            if leftover.suffix != ".parquet":
                leftover.unlink()
        expected = sorted(part_name(b["file"], b["block"]) for b in blocks)
        names = sorted({d["name"] for d in done})
        parts = sorted(p.name for p in directory.glob("*.parquet"))
        written = sum(pq.ParquetFile(directory / n).metadata.num_rows for n in parts)
        if names != expected or parts != expected or written != rows:
            msg = f"the Ray job wrote {len(parts)} of {len(expected)} blocks, {written} of {rows} rows; nothing was kept"
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
    npy = inp.kind == "npy"
    blocks = _blocks(inp.files, npy_rows=inp.n if npy else None, batch_size=batch_size)
    out_dim = lens.doc_dim if side == "documents" else lens.d_out
    packed = (lens.weights, lens.mode, lens.normalize)  # sent once per actor, which keeps its Lens
    args = (packed, side, (inp.id_column, inp.vector_column), inp.dim, is_fixed(inp), npy)
    info = {"side": side, "engine": "ray", "dim": out_dim, "lens_sha256": lens.weights_sha256}
    with _connected(address, quiet=not progress) as ray:
        _data_context(ray, progress)
        return _run(ray, blocks, _Project, args, dst, info, inp.n)


def embed_on_ray(
    inp: TextInput,
    dst: Path,
    *,
    model: str | None,
    lens: Lens | None,
    vector_column: str,
    address: str | None,
    progress: bool,
) -> Path:
    """:func:`embedlens.embed_table.embed_table` with ``engine="ray"`` (inputs already checked there).

    A block is a row group of the input; the model batches its texts as it does locally.
    """
    check_ray_address(address)
    require_ray(address)
    packed = None
    if lens is not None:
        packed = {
            "weights": lens.weights, "mode": lens.mode, "normalize": lens.normalize, "metadata": lens.metadata,
            "fingerprint": lens.fingerprint,
        }  # fmt: skip
    blocks = _blocks(inp.files, npy_rows=None, batch_size=1)
    info = {
        "side": "documents", "engine": "ray", "model": model,
        "lens_sha256": None if lens is None else lens.weights_sha256,
    }  # fmt: skip
    with _connected(address, quiet=not progress) as ray:
        _data_context(ray, progress)
        return _run(ray, blocks, _Embed, (model, packed, inp.text_column, vector_column), dst, info, inp.n)
