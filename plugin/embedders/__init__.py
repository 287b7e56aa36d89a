"""Base embedders: where raw vectors come from, and :func:`get_embedder` to pick one by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from embedlens.embedders.base import Embedder

if TYPE_CHECKING:
    from embedlens.embedders.local import SentenceTransformerEmbedder

__all__ = [
    "WRAPPERS_GROUP",
    "Embedder",
    "as_embedder",
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

        model, dims = parse_openai_spec(spec)
        return OpenAIEmbedder(model, dimensions=dims, **kwargs)  # type: ignore[arg-type]
    if spec.startswith("st:"):
        spec = spec[3:]
    return SentenceTransformerEmbedder(spec, **kwargs)  # type: ignore[arg-type]


#: entry-point group of functions ``wrap(obj) -> Embedder | None`` that turn another library's embedding
#: object into a base embedder (embedlens registers its LangChain and Chroma adapters there; others may add).
WRAPPERS_GROUP = "embedlens.wrappers"


def as_embedder(base: object = None) -> Embedder:
    """Any base model as an :class:`Embedder`.

    Args:
        base: ``None`` or a model name (see :func:`get_embedder`), an embedlens embedder, or another library's
            embedding object that an installed wrapper accepts: a LangChain ``Embeddings``
            (:class:`~embedlens.adapters.langchain.LangChainEmbedder`) or a Chroma embedding function
            (:class:`~embedlens.adapters.chroma.ChromaEmbedder`).

    Raises:
        TypeError: an object no wrapper accepts.
    """
    if base is None or isinstance(base, str):
        return get_embedder(base)
    if isinstance(base, Embedder):
        return base
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=WRAPPERS_GROUP), key=lambda e: e.name):
        try:
            wrap = ep.load()
        except (
            ImportError
        ):  # the host library of that wrapper is not installed: it cannot be one of its objects
            continue
        wrapped = wrap(base)
        if wrapped is not None:
            return wrapped  # type: ignore[no-any-return]
    msg = (
        f"cannot use a {type(base).__name__} as a base model: pass a model name, an embedlens embedder, "
        "a LangChain Embeddings or a Chroma embedding function"
    )
    raise TypeError(msg)


def parse_openai_spec(spec: str) -> tuple[str, int | None]:
    """Split ``"openai:MODEL[@DIMS]"`` into the model name and the requested dimensions (None: the model's).

    Raises:
        EmbedlensInputError: an empty model name or dimensions that are not a positive integer (the
            message names ``--model``).
    """
    from embedlens.errors import EmbedlensInputError

    model, at, dims = spec.removeprefix("openai:").partition("@")
    if not model.strip():
        raise EmbedlensInputError(f"--model {spec!r}: no model name after 'openai:'")
    if not at:
        return model, None
    if not (dims.isascii() and dims.isdigit() and int(dims) > 0):
        msg = f"--model {spec!r}: the dimensions after '@' must be a positive integer, got {dims!r}"
        raise EmbedlensInputError(msg)
    return model, int(dims)


def __getattr__(name: str) -> object:
    if name == "SentenceTransformerEmbedder":
        from embedlens.embedders.local import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder
    if name == "OpenAIEmbedder":
        from embedlens.embedders.openai import OpenAIEmbedder

        return OpenAIEmbedder
    raise AttributeError(name)
