"""What the adapters share: base embedders that wrap another library's embedding object.

The wrappers themselves live with their host (:mod:`embedlens.adapters.langchain`,
:mod:`embedlens.adapters.chroma`), next to the converters of the other direction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from embedlens._arrays import as_matrix, stack_vectors
from embedlens.errors import EmbedderError


class LazyDim:
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


def checked(vectors: Any, n: int, name: str) -> np.ndarray:
    arr = as_matrix(stack_vectors(vectors, name=name), name=f"embeddings from {name}")
    if arr.shape[0] != n:
        msg = f"{name} returned {arr.shape[0]} vectors for {n} texts"
        raise EmbedderError(msg)
    return arr


def as_list(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list; a bare string is one text, not a list of characters."""
    return [texts] if isinstance(texts, str) else list(texts)


def cache_problem(wrapper: str, obj: Any, error: Exception) -> str:
    return (
        f"{wrapper}({type(obj).__name__}): {error}, so its vectors cannot be cached safely (two models "
        f"could share rows); pass cache_id='...' (a name you change whenever the vectors would) to "
        f"{wrapper}, or embed without a cache (no_cache=True / --no-cache)"
    )


def qualname(obj: Any) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def same_vector(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to float noise (a remote model may differ in the last bits between two calls)."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return bool(np.array_equal(a, b))
    cos = float(np.dot(a, b)) / (na * nb)
    return cos >= 1.0 - 1e-6 and abs(na - nb) <= 1e-4 * max(na, nb)
