"""Base embedders: where raw vectors come from, and :func:`get_embedder` to pick one by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from embedlens.embedders.base import Embedder
from embedlens.embedders.wrappers import ChromaEmbedder, LangChainEmbedder

if TYPE_CHECKING:
    from embedlens.embedders.local import SentenceTransformerEmbedder

__all__ = [
    "Embedder",
    "ChromaEmbedder",
    "LangChainEmbedder",
    "SentenceTransformerEmbedder",
    "get_embedder",
]


def get_embedder(spec: str | None = None, **kwargs: object) -> Embedder:
    """Build a base embedder from a CLI-style spec.

    Args:
        spec: ``None`` or ``"all-MiniLM-L6-v2"`` for the offline default; ``"openai:MODEL"`` (or
            ``"openai:MODEL@DIMS"``) for the OpenAI API; ``"st:NAME_OR_PATH"`` or a bare local path
            for a sentence-transformers model.
        **kwargs: passed to the embedder's constructor.

    Raises:
        EmbedlensInputError: when the model cannot be loaded.
    """
    from embedlens.embedders.local import DEFAULT_MODEL, SentenceTransformerEmbedder

    spec = spec or DEFAULT_MODEL
    if spec.startswith("openai:"):
        from embedlens.embedders.openai import OpenAIEmbedder

        model, _, dims = spec[len("openai:") :].partition("@")
        return OpenAIEmbedder(model, dimensions=int(dims) if dims else None, **kwargs)  # type: ignore[arg-type]
    if spec.startswith("st:"):
        spec = spec[3:]
    return SentenceTransformerEmbedder(spec, **kwargs)  # type: ignore[arg-type]


def __getattr__(name: str) -> object:
    if name == "SentenceTransformerEmbedder":
        from embedlens.embedders.local import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder
    if name == "OpenAIEmbedder":
        from embedlens.embedders.openai import OpenAIEmbedder

        return OpenAIEmbedder
    raise AttributeError(name)
