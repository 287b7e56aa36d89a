"""Embed a Parquet text column with the base model (and a lens), locally or as a Ray Data pipeline.

The output is the input table with one more column, the vectors (``fixed_size_list<float32>[d]``),
written atomically: a ``.parquet`` file, or a directory (one part per input file locally, one per
block on Ray). Texts are embedded as documents; the lens's document side applies (a query lens keeps
documents raw, so its vectors are the base model's).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedlens.errors import EmbedlensInputError

if TYPE_CHECKING:
    from embedlens.embedders.base import Embedder
    from embedlens.lens import Lens

__all__ = ["embed_table"]


def embed_table(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    model: str | None = None,
    lens: Lens | None = None,
    text_column: str = "text",
    vector_column: str = "vector",
    engine: str = "local",
    ray_address: str | None = None,
    embedder: Embedder | None = None,
    batch_size: int = 256,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write ``src`` (Parquet) to ``dst`` with ``vector_column`` = the embedding of ``text_column``.

    Args:
        src: a ``.parquet`` file or a directory of them.
        dst: a ``.parquet`` file or a directory (``engine="ray"``: a directory).
        model: the base model (``open_embedder`` spec); on Ray every actor opens it, without a cache.
        lens: applied to the vectors as documents; checked against the model (dimension, fingerprint).
        text_column, vector_column: the column embedded and the column written (must not exist yet).
        engine: ``"local"`` or ``"ray"`` (the ``embedlens[ray]`` extra).
        ray_address: a Ray cluster address (None: a local Ray instance).
        embedder: the local engine's embedder, and the one ``lens`` is checked against before any work
            (default ``open_embedder(model)``, with the user cache).
        batch_size: texts per batch (local engine; on Ray a block is a Parquet row group).
        progress: progress bars.
        overwrite: replace an earlier output of ours.

    Raises:
        EmbedlensInputError: a bad option or input (naming the file and row), a lens that does not fit the
            model, an output that is not ours, or Ray missing (naming the extra).
    """
    from embedlens.vector_files import guard_output, open_texts, output_kind

    if engine not in ("local", "ray"):
        raise EmbedlensInputError(f"engine must be 'local' or 'ray', got {engine!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise EmbedlensInputError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    kind = output_kind(dst)
    if kind == "npy":
        raise EmbedlensInputError(f"output {dst}: embed writes Parquet (a .parquet file or a directory)")
    if engine == "ray" and kind != "parquet-dir":
        msg = f"output {dst}: the ray engine writes a directory of Parquet files (one per block); give a directory path"
        raise EmbedlensInputError(msg)
    guard_output(
        dst,
        option="output",
        inputs={"input": src, "lens": None if lens is None else lens.path},
        force=overwrite,
    )
    inp = open_texts(src, text_column=text_column, vector_column=vector_column)
    if inp.n == 0:
        raise EmbedlensInputError(f"{inp.path}: holds no rows; nothing to embed")
    if (
        lens is not None
    ):  # before any work (on Ray: before the cluster starts); the probes go through the cache
        from embedlens.cache import open_embedder

        lens.check_embedder(embedder if embedder is not None else open_embedder(model))
    if engine == "ray":
        from embedlens.distributed import embed_on_ray

        return embed_on_ray(
            inp, Path(dst), model=model, lens=lens, vector_column=vector_column, address=ray_address,
            progress=progress,
        )  # fmt: skip
    if embedder is None:
        from embedlens.cache import open_embedder

        embedder = open_embedder(model)
    return _embed_local(
        inp, Path(dst), embedder, lens, vector_column, batch_size=batch_size, progress=progress
    )


def _embed_local(
    inp: Any,
    dst: Path,
    embedder: Embedder,
    lens: Lens | None,
    vector_column: str,
    *,
    batch_size: int,
    progress: bool,
) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    from embedlens._atomic import atomic_path, atomic_write_dir
    from embedlens.project import end_progress_bar
    from embedlens.vector_files import (
        output_kind,
        schema_metadata,
        still_ours,
        table_texts,
        with_vectors,
        write_manifest,
        write_parquet,
    )

    info = {
        "side": "documents", "engine": "local", "model": embedder.name, "rows": inp.n,
        "lens_sha256": None if lens is None else lens.weights_sha256,
    }  # fmt: skip
    quiet = getattr(embedder, "progress", None)
    if quiet is not None:
        embedder.progress = False  # type: ignore[attr-defined]  # one bar for the whole table

    def tables(f: Path) -> Iterator[Any]:
        start = 0
        for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_size):
            table = pa.Table.from_batches([batch])
            texts = table_texts(table, inp.text_column, where=str(f), first_row=start)
            x = embedder.embed(texts)
            y = x if lens is None else lens.project_documents(x)
            yield with_vectors(table, vector_column, y, fixed=True)
            bar.update(len(table))
            start += len(table)

    bar = tqdm(total=inp.n, desc=f"embedding {inp.path.name}", unit="text", disable=not progress, leave=False)
    try:
        if output_kind(dst) == "parquet":
            with atomic_path(dst) as tmp:
                every = (t for f in inp.files for t in tables(f))
                write_parquet(tmp, every, schema_metadata(info), vector_column)
            return dst

        def fill(directory: Path) -> None:
            for i, f in enumerate(inp.files):
                if inp.rows[i]:
                    write_parquet(
                        directory / f"part-{i:05d}.parquet",
                        tables(f),
                        schema_metadata(info),
                        vector_column,
                    )
            write_manifest(directory, info)

        return atomic_write_dir(dst, fill, check=still_ours)
    finally:
        end_progress_bar(bar)
        if quiet is not None:
            embedder.progress = quiet  # type: ignore[attr-defined]
