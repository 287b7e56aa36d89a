"""Persistent, crash-safe embedding cache: a text is never embedded twice with the same model.

Vectors live in one SQLite database (WAL mode) keyed by ``(model identity, sha256(text))``, where
the identity is a digest of everything that changes a vector (model files, prompts, dimensions,
server, wrapper config) and of the side (queries are stored apart from documents when a model
embeds them differently). Each batch
the base model returns is committed at once, so a run killed midway keeps everything it paid for,
and a restart asks the model only for texts not yet stored. Rows carry a CRC32 of their bytes: a
damaged row is dropped and embedded again.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from embedlens._arrays import as_matrix
from embedlens.embedders import as_embedder, get_embedder
from embedlens.embedders.base import Embedder
from embedlens.embedders.identity import check_cacheable, embed_queries, identity_of, query_identity_of
from embedlens.errors import EmbedderError, EmbedlensInputError

__all__ = ["CachedEmbedder", "EmbeddingCache", "as_cached", "default_cache_dir", "open_embedder"]

# A rowid table: vectors are appended in rowid order and only (model, key) is kept in the lookup index.
# (The first layout, table ``embeddings`` WITHOUT ROWID, kept ~1.5 KB rows inside its key b-tree: writes
# were 3x slower. It is moved over once, in one transaction, when a cache is opened.)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    model TEXT NOT NULL,
    key BLOB NOT NULL,
    dim INTEGER NOT NULL,
    vec BLOB NOT NULL,
    crc INTEGER NOT NULL,
    PRIMARY KEY (model, key)
)
"""
_DIGEST_SCHEMA = """
CREATE TABLE IF NOT EXISTS file_digests (
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (path, size, mtime_ns)
) WITHOUT ROWID
"""
_CHUNK = 500  # keys per SELECT (SQLite's variable limit is 32766; keep statements small)


def default_cache_dir() -> Path:
    """``$EMBEDLENS_CACHE_DIR`` if set, else the user cache dir (``~/.cache/embedlens`` on Linux)."""
    env = os.environ.get("EMBEDLENS_CACHE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("embedlens"))


def text_key(text: str) -> bytes:
    """The cache key of a text: its UTF-8 sha256 digest (32 bytes)."""
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """An on-disk store of embeddings keyed by (model id, text hash).

    Args:
        directory: where ``embeddings.sqlite3`` lives; defaults to :func:`default_cache_dir`.

    Safe to share between threads of one process; several processes may use the same directory
    (SQLite WAL serialises writers).
    """

    FILENAME = "embeddings.sqlite3"

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / self.FILENAME
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._db.execute(_DIGEST_SCHEMA)
        self._db.commit()
        self._migrate()
        #: rows found damaged (bad length or checksum) and dropped since this cache was opened.
        self.damaged_rows = 0

    def _migrate(self) -> None:
        """Move the rows of the first layout (table ``embeddings``) into ``vectors``, once, atomically."""
        old = "SELECT 1 FROM sqlite_master WHERE type='table' AND name='embeddings'"
        if self._db.execute(old).fetchone() is None:
            return
        self._db.execute("BEGIN IMMEDIATE")  # one process migrates; the others then find nothing to do
        try:
            if self._db.execute(old).fetchone() is not None:
                self._db.execute(
                    "INSERT OR IGNORE INTO vectors (model, key, dim, vec, crc) "
                    "SELECT model, key, dim, vec, crc FROM embeddings"
                )
                self._db.execute("DROP TABLE embeddings")
            self._db.commit()
        except BaseException:
            self._db.rollback()
            raise

    def get_many(self, model: str, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """Look up ``keys``; returns ``{key: (d,) float32}`` for the intact rows found."""
        found: dict[bytes, np.ndarray] = {}
        bad: list[bytes] = []
        with self._lock:
            for start in range(0, len(keys), _CHUNK):
                chunk = list(keys[start : start + _CHUNK])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, dim, vec, crc FROM vectors WHERE model=? AND key IN ({marks})",
                    [model, *chunk],
                ).fetchall()
                for key, dim, vec, crc in rows:
                    if len(vec) != 4 * dim or zlib.crc32(vec) != crc:
                        bad.append(key)
                        continue
                    found[key] = np.frombuffer(vec, dtype=np.float32)
            if bad:
                self._db.executemany("DELETE FROM vectors WHERE model=? AND key=?", [(model, k) for k in bad])
                self._db.commit()
                self.damaged_rows += len(bad)
        return found

    def put_many(self, model: str, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Store ``vectors`` ``(n, d)`` float32 under ``keys`` and commit (one transaction)."""
        vectors = as_matrix(vectors, name=f"vectors to cache for {model}")
        if len(keys) != vectors.shape[0]:
            msg = f"{len(keys)} keys but {vectors.shape[0]} vectors"
            raise ValueError(msg)
        dim = vectors.shape[1]
        blobs = [row.tobytes() for row in vectors]
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors (model, key, dim, vec, crc) VALUES (?,?,?,?,?)",
                [(model, k, dim, b, zlib.crc32(b)) for k, b in zip(keys, blobs, strict=True)],
            )
            self._db.commit()

    def get_file_digest(self, path: str, size: int, mtime_ns: int) -> str | None:
        """The remembered sha256 of a model file at this size and mtime (see :func:`file_sha256`)."""
        with self._lock:
            row = self._db.execute(
                "SELECT sha256 FROM file_digests WHERE path=? AND size=? AND mtime_ns=?",
                (path, size, mtime_ns),
            ).fetchone()
        return None if row is None else str(row[0])

    def put_file_digest(self, path: str, size: int, mtime_ns: int, sha256: str) -> None:
        """Remember the sha256 of a model file at this size and mtime (older entries are dropped)."""
        with self._lock:
            self._db.execute("DELETE FROM file_digests WHERE path=?", (path,))
            self._db.execute(
                "INSERT OR REPLACE INTO file_digests (path, size, mtime_ns, sha256) VALUES (?,?,?,?)",
                (path, size, mtime_ns, sha256),
            )
            self._db.commit()

    def count(self, model: str | None = None) -> int:
        """Number of stored rows (for one model, or all)."""
        with self._lock:
            if model is None:
                return int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
            q = "SELECT COUNT(*) FROM vectors WHERE model=?"
            return int(self._db.execute(q, (model,)).fetchone()[0])

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.directory)!r})"


class CachedEmbedder:
    """An :class:`~embedlens.embedders.base.Embedder` that consults an :class:`EmbeddingCache` first.

    Duplicate texts in one call are embedded once; texts already stored are not sent to the base
    model; new vectors are committed batch by batch. Rows are keyed by the base's
    :attr:`identity` (documents) and :attr:`query_identity` (queries), so two models, two
    settings of one model, or the query and document sides of a prompted model never share rows.

    Args:
        base: the model to call for texts not in the cache.
        cache: the cache; ``None`` disables caching (every call goes to ``base``).
        batch_size: texts per call to ``base`` (default: the base's ``max_batch_size``, else 256).
        progress: show a tqdm bar when more than one batch must be embedded.

    Attributes:
        name: the base's human-readable name (for display and lens metadata).
        base_texts: how many texts were sent to the base model (for tests and reports).
    """

    def __init__(
        self,
        base: Embedder,
        cache: EmbeddingCache | None,
        *,
        batch_size: int | None = None,
        progress: bool = True,
    ) -> None:
        self.base = base
        self.cache = cache
        self.batch_size = batch_size or int(getattr(base, "max_batch_size", 256))
        self.progress = progress
        self.name = base.name
        self.base_texts = 0
        self._lock = threading.Lock()
        if cache is not None:  # a base whose vectors cannot be keyed reliably is refused, never guessed
            check_cacheable(base)
        if cache is not None and hasattr(base, "digest_memo") and base.digest_memo is None:
            try:  # let a local model remember its file digests across runs
                base.digest_memo = cache  # type: ignore[attr-defined]
            except AttributeError:  # pragma: no cover - a read-only attribute
                pass

    @property
    def dim(self) -> int:
        """The base model's dimension."""
        return self.base.dim

    @property
    def identity(self) -> str:
        """The cache key of document vectors (the base's ``identity``, else its ``name``)."""
        return identity_of(self.base)

    @property
    def query_identity(self) -> str:
        """The cache key of query vectors (the document key when the base has no query path)."""
        return query_identity_of(self.base)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` as documents through the cache; returns ``(len(texts), d)`` float32.

        Raises:
            EmbedderError: when the base model returns the wrong number of vectors or a dimension
                that differs from the cached vectors of the same model.
        """
        return self._embed(texts, self.identity if self.cache is not None else "", self.base.embed)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` as queries (the base's query path) through the cache; ``(n, d)`` float32.

        Raises:
            EmbedderError: as :meth:`embed`.
        """
        if self.cache is None:  # no rows to key: the base's query path, no identity needed
            return self._embed(texts, "", lambda batch: embed_queries(self.base, batch))
        key = self.query_identity
        if key == self.identity:  # queries are embedded exactly like documents: share the rows
            return self._embed(texts, key, self.base.embed)
        return self._embed(texts, key, lambda batch: embed_queries(self.base, batch))

    def _embed(
        self, texts: Sequence[str], model: str, compute: Callable[[list[str]], np.ndarray]
    ) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [text_key(t) for t in texts]
        unique: dict[bytes, str] = dict(zip(keys, texts, strict=True))
        found = self.cache.get_many(model, list(unique)) if self.cache is not None else {}
        missing = [k for k in unique if k not in found]

        def run(batch: list[bytes]) -> None:
            vecs = np.asarray(compute([unique[k] for k in batch]), dtype=np.float32)
            if vecs.ndim != 2 or vecs.shape[0] != len(batch):
                msg = (
                    f"{self.name} returned {vecs.shape[0] if vecs.ndim else 0} vectors for {len(batch)} texts"
                )
                raise EmbedderError(msg)
            if self.cache is not None:  # commit each batch as soon as it is paid for
                self.cache.put_many(model, batch, vecs)
            with self._lock:
                self.base_texts += len(batch)
                found.update(zip(batch, vecs, strict=True))

        workers = int(getattr(self.base, "max_concurrency", 1) or 1)
        if workers <= 1:
            for batch in self._batches(missing):
                run(batch)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(workers) as pool:  # bounded number of requests in flight
                for _ in pool.map(run, self._batches(missing)):
                    pass
        dims = {v.shape[0] for v in found.values()}
        if len(dims) != 1:
            msg = f"cache holds vectors of dimensions {sorted(dims)} for model {self.name!r}"
            raise EmbedderError(msg)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def missing(self, texts: Sequence[str], queries: Sequence[str] = ()) -> list[str]:
        """The distinct texts not yet in the cache (what a run would pay for).

        Args:
            texts: texts to embed as documents.
            queries: texts to embed as queries (stored apart when the base embeds them differently).
        """
        docs = [texts] if isinstance(texts, str) else list(texts)
        qs = [queries] if isinstance(queries, str) else list(queries)
        sides = {self.identity: docs}
        if qs:
            sides[self.query_identity] = sides.get(self.query_identity, []) + qs
        out: list[str] = []
        for model, group in sides.items():
            unique = {text_key(t): t for t in group}
            found = self.cache.get_many(model, list(unique)) if self.cache is not None else {}
            out.extend(t for k, t in unique.items() if k not in found)
        return out

    def _batches(self, keys: list[bytes]) -> Iterable[list[bytes]]:
        chunks = [keys[i : i + self.batch_size] for i in range(0, len(keys), self.batch_size)]
        if self.progress and len(chunks) > 1:
            from tqdm.auto import tqdm

            return tqdm(chunks, desc=f"embedding with {self.name}", unit="batch", leave=False)
        return chunks


def as_cached(embedder: object = None) -> CachedEmbedder:
    """``embedder`` behind the default embedding cache, unless it already is a :class:`CachedEmbedder`.

    ``None`` is the offline default model; anything else is what :func:`open_embedder` takes as ``base``.
    """
    if isinstance(embedder, CachedEmbedder):
        return embedder
    return open_embedder() if embedder is None else open_embedder(base=embedder)


def open_embedder(
    model: str | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    no_cache: bool = False,
    base: object = None,
    query_prompt: str | None = None,
    document_prompt: str | None = None,
    device: str = "auto",
) -> CachedEmbedder:
    """The base model behind the embedding cache (``no_cache`` skips the cache).

    ``base`` is any base model :func:`~embedlens.embedders.as_embedder` accepts (an embedlens embedder, a
    LangChain ``Embeddings``, a Chroma function); without it, ``model`` names one. ``query_prompt`` /
    ``document_prompt`` (sentence-transformers models only) override the model's own prompts; queries are
    embedded with the query prompt in training and serving alike. ``device`` is where a local
    sentence-transformers model runs (``auto``: a CUDA GPU when torch sees one).
    """
    prompts = {
        k: v
        for k, v in (("query_prompt", query_prompt), ("document_prompt", document_prompt))
        if v is not None
    }
    if prompts and (base is not None or (model or "").startswith("openai:")):
        raise EmbedlensInputError("query_prompt / document_prompt apply to sentence-transformers models only")
    local = base is None and not (model or "").startswith("openai:")
    options: dict[str, object] = {**prompts, **({"device": device} if local else {})}
    emb = as_embedder(base) if base is not None else get_embedder(model, **options)
    cache = None if no_cache else EmbeddingCache(cache_dir)
    return CachedEmbedder(emb, cache)
