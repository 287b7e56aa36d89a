"""Base embedders wrapping objects of other libraries: LangChain ``Embeddings`` and Chroma functions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from embedlens._arrays import as_matrix, stack_vectors
from embedlens.embedders.identity import (
    UnidentifiableConfigError,
    identity_of,
    local_model_digests,
    make_identity,
    public_config,
    query_identity_of,
)
from embedlens.errors import EmbedderError


class _LazyDim:
    """Mixin: learn ``dim`` by embedding one probe text the first time it is asked for."""

    name: str
    _dim: int | None

    def embed(self, texts: Sequence[str]) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def dim(self) -> int:
        """Vector dimension, found with one probe call and remembered."""
        if self._dim is None:
            self._dim = int(self.embed(["dimension probe"]).shape[1])
        return self._dim


def _checked(vectors: Any, n: int, name: str) -> np.ndarray:
    arr = as_matrix(stack_vectors(vectors, name=name), name=f"embeddings from {name}")
    if arr.shape[0] != n:
        msg = f"{name} returned {arr.shape[0]} vectors for {n} texts"
        raise EmbedderError(msg)
    return arr


class LangChainEmbedder(_LazyDim):
    """Any LangChain ``Embeddings`` as a base model.

    Documents go through ``embed_documents``, queries through ``embed_query`` (one call per
    query), unless both give the same vectors: then queries are batched through
    ``embed_documents`` too. "The same" is checked once on a probe text, or asserted with
    ``queries_as_documents=True``.

    Args:
        embeddings: the LangChain ``Embeddings`` instance.
        name: display name; defaults to ``"langchain:<Class>:<model>"`` from the instance's
            ``model``/``model_name`` attribute.
        queries_as_documents: ``True``: queries are embedded like documents (no probe); ``False``:
            always ``embed_query``; ``None``: probe once.
        cache_id: an explicit cache key, for an instance whose config cannot be identified (it
            holds an object without readable state): a name that you change whenever the vectors
            would change. Without it such an instance is refused by an embedding cache.

    Attributes:
        identity / query_identity: cache keys, a digest of the class and its full config
            (``model_dump()`` or attributes, nested objects by their state, a sentence-transformers
            model by its directory's files) with every secret left out.
        cache_problem: why the instance cannot be cached (None when it can): an embedding cache
            refuses it with this message rather than guess a key that two models could share.
    """

    def __init__(
        self,
        embeddings: Any,
        *,
        name: str | None = None,
        queries_as_documents: bool | None = None,
        cache_id: str | None = None,
    ) -> None:
        self.embeddings = embeddings
        model = getattr(embeddings, "model", None) or getattr(embeddings, "model_name", None)
        model = model if isinstance(model, str) else None  # never an object's repr (it may hold an address)
        self.name = name or f"langchain:{type(embeddings).__name__}" + (f":{model}" if model else "")
        self._dim: int | None = None
        self._same: bool | None = queries_as_documents
        self.cache_problem: str | None = None
        inner = getattr(embeddings, "embedder", None)  # embedlens' own EmbedderEmbeddings
        if inner is not None and hasattr(embeddings, "embed_documents"):
            parts: Any = {"kind": "embedlens", "identity": identity_of(inner)}
            self._query_parts: Any = {"kind": "embedlens", "identity": query_identity_of(inner)}
        elif cache_id is not None:
            parts = {"kind": "langchain", "type": _qualname(embeddings), "cache_id": str(cache_id)}
            self._query_parts = None
        else:
            try:
                config = public_config(embeddings, strict=True)
            except UnidentifiableConfigError as e:
                self.cache_problem = _problem("LangChainEmbedder", embeddings, e)
                config = None
            parts = {"kind": "langchain", "config": config, "models": local_model_digests(config)}
            self._query_parts = None
        self.identity = make_identity(self.name, parts)

    @property
    def query_identity(self) -> str:
        """Cache key of the query vectors (the document key when queries are embedded alike)."""
        if self._query_parts is not None:
            return make_identity(self.name, self._query_parts)
        if self.queries_as_documents:
            return self.identity
        return f"{self.identity}|embed_query"

    @property
    def queries_as_documents(self) -> bool:
        """Whether ``embed_query`` gives the same vectors as ``embed_documents`` (probed once)."""
        if self._same is None:
            probe = "dimension probe"
            doc = _checked(self.embeddings.embed_documents([probe]), 1, self.name)
            query = _checked([self.embeddings.embed_query(probe)], 1, self.name)
            self._dim = self._dim or int(doc.shape[1])
            self._same = doc.shape == query.shape and _same_vector(doc[0], query[0])
        return self._same

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` with ``embed_documents``; returns ``(n, d)`` float32."""
        texts = _as_list(texts)
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        return _checked(self.embeddings.embed_documents(texts), len(texts), self.name)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` as queries: ``embed_query`` per text (batched when that equals documents)."""
        texts = _as_list(texts)
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        if self.queries_as_documents:
            return self.embed(texts)
        return _checked([self.embeddings.embed_query(t) for t in texts], len(texts), self.name)


class ChromaEmbedder(_LazyDim):
    """Any Chroma embedding function as a base model.

    Documents go through ``function(texts)``; queries through ``function.embed_query(texts)``
    when the function defines its own (Chroma's default ``embed_query`` is the same call).

    Args:
        function: a Chroma ``EmbeddingFunction`` (callable on a list of documents).
        name: display name; defaults to ``"chroma:<name()>:<model>"`` from the function's
            ``name()`` and the ``model_name`` in its config.
        cache_id: an explicit cache key, for a function whose config cannot be identified (see
            :class:`LangChainEmbedder`).

    Attributes:
        identity / query_identity: cache keys, a digest of the function's name and full config
            (``get_config()``, else its attributes, nested objects by their state) with every
            secret left out.
        cache_problem: why the function cannot be cached (None when it can).
    """

    def __init__(self, function: Any, *, name: str | None = None, cache_id: str | None = None) -> None:
        self.function = function
        ef_name = function.name() if hasattr(function, "name") else type(function).__name__
        try:
            cfg = function.get_config()
        except Exception:  # noqa: BLE001 - legacy functions have no config
            cfg = None
        if name is None:
            model = (cfg.get("model_name") or cfg.get("model")) if isinstance(cfg, dict) else None
            model = model if isinstance(model, str) else None
            name = f"chroma:{ef_name}" + (f":{model}" if model else "")
        self.name = name
        self._dim: int | None = None
        self.cache_problem: str | None = None
        inner = getattr(function, "embedder", None)  # embedlens' own EmbedlensBaseFunction
        if inner is not None and callable(getattr(inner, "embed", None)):
            doc_parts: Any = {"kind": "embedlens", "identity": identity_of(inner)}
            query_parts: Any = {"kind": "embedlens", "identity": query_identity_of(inner)}
        else:
            if cache_id is not None:
                config: Any = {"cache_id": str(cache_id)}
            else:
                try:
                    config = public_config(cfg if isinstance(cfg, dict) else function, strict=True)
                except UnidentifiableConfigError as e:
                    self.cache_problem = _problem("ChromaEmbedder", function, e)
                    config = None
            models = local_model_digests(config)
            doc_parts = {
                "kind": "chroma",
                "name": str(ef_name),
                "type": _qualname(function),
                "config": config,
                "models": models,
            }
            query_parts = {**doc_parts, "side": "embed_query"} if self.has_query_path else doc_parts
        self.identity = make_identity(self.name, doc_parts)
        self.query_identity = make_identity(self.name, query_parts)

    @property
    def has_query_path(self) -> bool:
        """Whether the function defines an ``embed_query`` of its own."""
        own = getattr(type(self.function), "embed_query", None)
        if own is None:
            return False
        try:
            from chromadb.api.types import EmbeddingFunction
        except ImportError:  # pragma: no cover - chromadb is what made this function
            return True
        return own is not getattr(EmbeddingFunction, "embed_query", None)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` by calling the function; returns ``(n, d)`` float32."""
        texts = _as_list(texts)
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        return _checked(self.function(texts), len(texts), self.name)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` as queries (``embed_query`` when the function has its own)."""
        texts = _as_list(texts)
        if not texts or not self.has_query_path:
            return self.embed(texts)
        return _checked(self.function.embed_query(texts), len(texts), self.name)


def _as_list(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list; a bare string is one text, not a list of characters."""
    return [texts] if isinstance(texts, str) else list(texts)


def _problem(wrapper: str, obj: Any, error: Exception) -> str:
    return (
        f"{wrapper}({type(obj).__name__}): {error}, so its vectors cannot be cached safely (two models "
        f"could share rows); pass cache_id='...' (a name you change whenever the vectors would) to "
        f"{wrapper}, or embed without a cache (no_cache=True / --no-cache)"
    )


def _qualname(obj: Any) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def _same_vector(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to float noise (a remote model may differ in the last bits between two calls)."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return bool(np.array_equal(a, b))
    cos = float(np.dot(a, b)) / (na * nb)
    return cos >= 1.0 - 1e-6 and abs(na - nb) <= 1e-4 * max(na, nb)
