"""The base-embedder protocol: what every source of raw embeddings provides."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """A base embedding model.

    Required: ``name``, ``dim`` and ``embed`` (documents). Optional members, used when present
    (see :mod:`embedlens.embedders.identity` for the fallbacks):

    - ``embed_queries(texts)``: embed texts as *queries* (a query prompt, ``encode_query``,
      ``embed_query``); without it, queries are embedded as documents.
    - ``identity``: the cache key of its document vectors, a digest of everything that changes a
      vector (model files, prompts, dimensions, server, wrapper config; never a secret); without
      it, ``name`` is the key.
    - ``query_identity``: the cache key of its query vectors (equal to ``identity`` when queries
      are embedded exactly like documents).

    Attributes:
        name: a human-readable model id, shown to the user and recorded in lenses
            (e.g. ``"st:all-MiniLM-L6-v2"``, ``"openai:text-embedding-3-small"``).
        dim: the dimension ``d`` of its vectors.
    """

    name: str

    @property
    def dim(self) -> int:
        """Vector dimension ``d``."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` as documents; returns ``(len(texts), d)`` float32."""
        ...


@runtime_checkable
class QueryEmbedder(Embedder, Protocol):
    """An :class:`Embedder` whose queries are embedded differently from its documents."""

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` as queries; returns ``(len(texts), d)`` float32."""
        ...
