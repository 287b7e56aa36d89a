"""LangChain, both directions: ``Embeddings`` that apply a lens (:class:`LensEmbeddings`), an embedlens
embedder as ``Embeddings`` (:class:`EmbedderEmbeddings`), and any ``Embeddings`` as an embedlens base
embedder (:class:`LangChainEmbedder`, for training and the embedding cache).

Example:
    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> from embedlens import Lens
    >>> from embedlens.adapters.langchain import LensEmbeddings
    >>> emb = LensEmbeddings(DeterministicFakeEmbedding(size=8), Lens.identity(8))
    >>> len(emb.embed_query("hello"))
    8
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from embedlens._arrays import to_float_lists
from embedlens.adapters._lenses import as_lens
from embedlens.adapters._wrapping import LazyDim, as_list, cache_problem, checked, qualname, same_vector
from embedlens.embedders.identity import (
    UnidentifiableConfigError,
    embed_queries,
    identity_of,
    local_model_digests,
    make_identity,
    public_config,
    query_identity_of,
)
from embedlens.errors import TextsTypeError
from embedlens.lens import PROBE_SENTENCES, Lens

__all__ = ["EmbedderEmbeddings", "LangChainEmbedder", "LensEmbeddings", "wrap_embeddings"]


class LensEmbeddings(Embeddings):
    """Drop-in LangChain ``Embeddings``: ``base`` followed by a lens.

    ``embed_documents`` projects documents (symmetric lens) or passes them through (query lens);
    ``embed_query`` always projects. Async methods await the base's async methods, so the event
    loop is never blocked by this wrapper. Outputs are plain Python floats. Safe to call from
    several threads (the lens is read-only).

    Args:
        base: any LangChain ``Embeddings``.
        lens: a :class:`~embedlens.Lens` or the path of a lens directory.
        check_fingerprint: embed the probe sentences once with ``base`` and refuse a model that is
            not the one the lens was trained on (keyword-only; pass False to opt out).

    Raises:
        DimensionMismatchError: ``base`` gives vectors of another dimension than the lens expects.
        FingerprintMismatchError: ``base`` is another model than the lens's.
    """

    def __init__(
        self, base: Embeddings, lens: Lens | str | os.PathLike[str], *, check_fingerprint: bool = True
    ) -> None:
        self.base = base
        self.lens = as_lens(lens)
        self.check_fingerprint = check_fingerprint
        if check_fingerprint and self.lens.fingerprint is not None:
            probes = base.embed_documents(list(PROBE_SENTENCES))
            self.lens.check_probes(probes, model_name=type(base).__name__)

    def _docs(self, vectors: Sequence[Sequence[float]]) -> list[list[float]]:
        if len(vectors) == 0:
            return []
        return to_float_lists(self.lens.project_documents(vectors))

    def _query(self, vector: Sequence[float]) -> list[float]:
        return to_float_lists(self.lens.project_queries(np.asarray([vector], dtype=np.float32)))[0]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents; ``len(texts)`` lists of ``doc_dim`` floats.

        Raises:
            TextsTypeError: ``texts`` is a single string (it would be embedded character by character).
        """
        _check_texts(texts, "embed_documents")
        return self._docs(self.base.embed_documents(texts))

    def embed_query(self, text: str) -> list[float]:
        """Embed a query; ``d_out`` floats.

        Raises:
            TextsTypeError: ``text`` is not a string (use :meth:`embed_documents` for a list).
        """
        _check_text(text, "embed_query")
        return self._query(self.base.embed_query(text))

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async :meth:`embed_documents` (awaits ``base.aembed_documents``)."""
        _check_texts(texts, "aembed_documents")
        return self._docs(await self.base.aembed_documents(texts))

    async def aembed_query(self, text: str) -> list[float]:
        """Async :meth:`embed_query` (awaits ``base.aembed_query``)."""
        _check_text(text, "aembed_query")
        return self._query(await self.base.aembed_query(text))

    def __repr__(self) -> str:
        return f"LensEmbeddings(base={type(self.base).__name__}, lens={self.lens!r})"


def _check_texts(texts: Any, where: str) -> None:
    """Refuse a bare string where a list of texts is expected (it would become a list of characters)."""
    if isinstance(texts, str | bytes):
        kind = type(texts).__name__
        msg = f"LensEmbeddings.{where} takes a list of texts, got a single {kind}: pass [text]"
        raise TextsTypeError(msg)


def _check_text(text: Any, where: str) -> None:
    """Refuse a query that is not one string."""
    if not isinstance(text, str):
        msg = f"LensEmbeddings.{where} takes one string, got {type(text).__name__}"
        raise TextsTypeError(msg)


class EmbedderEmbeddings(Embeddings):
    """Any embedlens base :class:`~embedlens.embedders.Embedder` as LangChain ``Embeddings``.

    Handy to use the offline default model (or the embedding cache) inside LangChain. Documents
    go through the embedder's ``embed``, queries through its query path (``embed_queries``: the
    model's query prompt), exactly as in training.

    Args:
        embedder: e.g. ``SentenceTransformerEmbedder()`` or a ``CachedEmbedder``.
    """

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents as plain floats.

        Raises:
            TextsTypeError: ``texts`` is a single string (it would be embedded character by character).
        """
        if isinstance(texts, str | bytes):
            msg = f"EmbedderEmbeddings.embed_documents takes a list of texts, got a single {type(texts).__name__}"
            raise TextsTypeError(msg + ": pass [text]")
        texts = list(texts)
        if not texts:
            return []
        return to_float_lists(self.embedder.embed(texts))

    def embed_query(self, text: str) -> list[float]:
        """Embed one query as plain floats, through the embedder's query path."""
        return to_float_lists(embed_queries(self.embedder, [text]))[0]


class LangChainEmbedder(LazyDim):
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
            parts = {"kind": "langchain", "type": qualname(embeddings), "cache_id": str(cache_id)}
            self._query_parts = None
        else:
            try:
                config = public_config(embeddings, strict=True)
            except UnidentifiableConfigError as e:
                self.cache_problem = cache_problem("LangChainEmbedder", embeddings, e)
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
            doc = checked(self.embeddings.embed_documents([probe]), 1, self.name)
            query = checked([self.embeddings.embed_query(probe)], 1, self.name)
            self._dim = self._dim or int(doc.shape[1])
            self._same = doc.shape == query.shape and same_vector(doc[0], query[0])
        return self._same

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` with ``embed_documents``; returns ``(n, d)`` float32."""
        texts = as_list(texts)
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        return checked(self.embeddings.embed_documents(texts), len(texts), self.name)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` as queries: ``embed_query`` per text (batched when that equals documents)."""
        texts = as_list(texts)
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        if self.queries_as_documents:
            return self.embed(texts)
        return checked([self.embeddings.embed_query(t) for t in texts], len(texts), self.name)


def wrap_embeddings(obj: object) -> Any:
    """The ``embedlens.wrappers`` entry point: a LangChain ``Embeddings`` as a base embedder, else None.

    An :class:`EmbedderEmbeddings` gives back the embedlens embedder it wraps (its cache identity, its query
    path). A :class:`LensEmbeddings` is refused: its queries already went through a lens, so training on it
    would stack lenses and evaluating it would compare the lens with itself.
    """
    if isinstance(obj, LensEmbeddings):
        msg = "a LensEmbeddings already applies a lens: pass its .base as the base model"
        raise TypeError(msg)
    if isinstance(obj, EmbedderEmbeddings):
        return obj.embedder
    return LangChainEmbedder(obj) if isinstance(obj, Embeddings) else None
