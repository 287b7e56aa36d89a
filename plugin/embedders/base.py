"""The base-embedder protocol: what every source of raw embeddings provides."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """A base embedding model.

    Attributes:
        name: a stable model id, used as the cache key and recorded in lenses
            (e.g. ``"st:all-MiniLM-L6-v2"``, ``"openai:text-embedding-3-small"``).
        dim: the dimension ``d`` of its vectors.
    """

    name: str

    @property
    def dim(self) -> int:
        """Vector dimension ``d``."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; returns ``(len(texts), d)`` float32."""
        ...
