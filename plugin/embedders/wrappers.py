"""Base embedders wrapping objects of other libraries: LangChain ``Embeddings`` and Chroma functions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from embedlens._arrays import as_matrix, stack_vectors
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
    """Any LangChain ``Embeddings`` as a base model (documents through ``embed_documents``).

    Args:
        embeddings: the LangChain ``Embeddings`` instance.
        name: model id for the cache; defaults to ``"langchain:<Class>:<model>"`` from the
            instance's ``model``/``model_name`` attribute.
    """

    def __init__(self, embeddings: Any, *, name: str | None = None) -> None:
        self.embeddings = embeddings
        model = getattr(embeddings, "model", None) or getattr(embeddings, "model_name", None)
        self.name = name or f"langchain:{type(embeddings).__name__}" + (f":{model}" if model else "")
        self._dim: int | None = None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` with ``embed_documents``; returns ``(n, d)`` float32."""
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        return _checked(self.embeddings.embed_documents(list(texts)), len(texts), self.name)


class ChromaEmbedder(_LazyDim):
    """Any Chroma embedding function as a base model.

    Args:
        function: a Chroma ``EmbeddingFunction`` (callable on a list of documents).
        name: model id for the cache; defaults to ``"chroma:<name()>:<model>"`` from the function's
            ``name()`` and the ``model_name`` in its config.
    """

    def __init__(self, function: Any, *, name: str | None = None) -> None:
        self.function = function
        if name is None:
            ef_name = function.name() if hasattr(function, "name") else type(function).__name__
            try:
                cfg = function.get_config()
            except Exception:  # noqa: BLE001 - legacy functions have no config
                cfg = {}
            model = cfg.get("model_name") or cfg.get("model") if isinstance(cfg, dict) else None
            name = f"chroma:{ef_name}" + (f":{model}" if model else "")
        self.name = name
        self._dim: int | None = None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` by calling the function; returns ``(n, d)`` float32."""
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        return _checked(self.function(list(texts)), len(texts), self.name)
