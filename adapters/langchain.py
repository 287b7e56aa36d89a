"""LangChain ``Embeddings`` that apply a lens on top of any LangChain ``Embeddings``.

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

from embedlens._arrays import as_matrix, to_float_lists
from embedlens.adapters._lenses import as_lens
from embedlens.embedders.identity import embed_queries
from embedlens.errors import TextsTypeError
from embedlens.lens import PROBE_SENTENCES, Lens

__all__ = ["LensEmbeddings", "EmbedderEmbeddings"]


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
            probes = as_matrix(
                base.embed_documents(list(PROBE_SENTENCES)), name="base probe embeddings", dim=self.lens.d_in
            )
            self.lens.check_fingerprint(probes, model_name=type(base).__name__)

    def _docs(self, vectors: Sequence[Sequence[float]]) -> list[list[float]]:
        if len(vectors) == 0:
            return []
        return to_float_lists(self.lens.transform_documents(vectors))

    def _query(self, vector: Sequence[float]) -> list[float]:
        return to_float_lists(self.lens.transform_queries(np.asarray([vector], dtype=np.float32)))[0]

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
