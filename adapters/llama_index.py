"""LlamaIndex, both directions: a ``BaseEmbedding`` that applies a lens on top of any LlamaIndex embedding
(:class:`LensEmbedding`), an embedlens embedder as a LlamaIndex embedding (:class:`EmbedderEmbedding`), and the
migration path from LlamaIndex's (deprecated) linear embedding adapter (:func:`lens_from_linear_adapter`).

Install with ``pip install 'embedlens[llama-index]'``.

Example:
    >>> from llama_index.core import VectorStoreIndex
    >>> from embedlens.adapters.llama_index import LensEmbedding
    >>> embed_model = LensEmbedding(base_embed_model, "my_lens/")  # any LlamaIndex BaseEmbedding
    >>> index = VectorStoreIndex(nodes, embed_model=embed_model)    # documents raw (query lens) or projected
    >>> index.as_retriever(similarity_top_k=5).retrieve("question")  # queries through the query path
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

try:
    from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
    from llama_index.core.bridge.pydantic import PrivateAttr
except ImportError as e:  # pragma: no cover - exercised in a venv without the extra
    raise ImportError(
        f"the LlamaIndex adapter needs llama-index-core: pip install 'embedlens[llama-index]' ({e})"
    ) from e

from embedlens.adapters._lenses import as_lens
from embedlens.embedders.identity import embed_queries
from embedlens.errors import LensFormatError
from embedlens.lens import MAX_DIM, PROBE_SENTENCES, Lens, _read_bounded

__all__ = ["EmbedderEmbedding", "LensEmbedding", "lens_from_linear_adapter"]

#: the files LlamaIndex's ``BaseAdapter.save`` writes.
ADAPTER_CONFIG = "config.json"
ADAPTER_WEIGHTS = "pytorch_model.bin"


class LensEmbedding(BaseEmbedding):
    """Drop-in LlamaIndex embedding: ``base`` followed by a lens.

    Queries go through the base's query path (``get_query_embedding``, with its query instruction) and are
    always projected; documents (``get_text_embedding*``) are projected by a symmetric lens and passed through
    by a query lens, so an index built with the raw model keeps working. The async methods await the base's
    own async methods.

    Args:
        base: any LlamaIndex ``BaseEmbedding``.
        lens: a :class:`~embedlens.Lens` or the path of a lens directory.
        check_fingerprint: embed the probe sentences once and refuse a base model that is not the lens's.
        **kwargs: passed to ``BaseEmbedding`` (``embed_batch_size``, ``callback_manager``, ...).

    Raises:
        DimensionMismatchError / FingerprintMismatchError: ``base`` is not the lens's base model.
    """

    _base: BaseEmbedding = PrivateAttr()
    _lens: Lens = PrivateAttr()

    def __init__(
        self,
        base: BaseEmbedding,
        lens: Lens | str | os.PathLike[str],
        *,
        check_fingerprint: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("model_name", f"embedlens:{base.model_name}")
        kwargs.setdefault("embed_batch_size", base.embed_batch_size)
        super().__init__(**kwargs)
        self._base = base
        self._lens = as_lens(lens)
        if check_fingerprint and self._lens.fingerprint is not None:
            probes = base.get_text_embedding_batch(list(PROBE_SENTENCES))
            self._lens.check_probes(probes, model_name=base.model_name)

    @classmethod
    def class_name(cls) -> str:
        return "EmbedlensLensEmbedding"

    @property
    def lens(self) -> Lens:
        """The lens applied."""
        return self._lens

    def _query(self, vector: Embedding) -> Embedding:
        return self._lens.project_queries([vector])[0].astype(float).tolist()  # type: ignore[no-any-return]

    def _documents(self, vectors: list[Embedding]) -> list[Embedding]:
        if not vectors:
            return []
        return self._lens.project_documents(vectors).astype(float).tolist()  # type: ignore[no-any-return]

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._query(self._base.get_query_embedding(query))

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return self._query(await self._base.aget_query_embedding(query))

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._documents([self._base.get_text_embedding(text)])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return self._documents([await self._base.aget_text_embedding(text)])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._documents(self._base.get_text_embedding_batch(texts))

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._documents(await self._base.aget_text_embedding_batch(texts))


def lens_from_linear_adapter(path: str | os.PathLike[str], *, base_model: str | None = None) -> Lens:
    """The lens equal to a saved LlamaIndex linear adapter (``LinearLayer.save``: ``config.json`` and
    ``pytorch_model.bin``), for users of the deprecated ``LinearAdapterEmbeddingModel``.

    That model maps queries through ``nn.Linear`` (``y = x Wᵀ``) and leaves documents raw: the same as a query
    lens with ``W = weightᵀ``. The weights are read with ``torch.load(weights_only=True)``: tensors only, no
    pickled code runs. Save the result with ``lens.save(dir)`` and serve it anywhere embedlens serves.

    Args:
        path: the adapter directory.
        base_model: the name of the base model it was trained on (recorded in the lens metadata).

    Raises:
        LensFormatError: naming the file, for a missing or unreadable file, an adapter that is not a square
            ``LinearLayer``, or a non-zero bias (a lens is linear: it cannot add a constant).
    """
    import io

    import torch

    root = Path(path)
    cfg_path, w_path = root / ADAPTER_CONFIG, root / ADAPTER_WEIGHTS
    try:  # regular files of bounded size only: no FIFO, device or huge file is ever read
        cfg = json.loads(_read_bounded(cfg_path, 1 << 20, "adapter config").decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise LensFormatError(f"{cfg_path}: not a readable LlamaIndex adapter config ({e})") from None
    dims = [cfg.get(k) for k in ("in_features", "out_features")] if isinstance(cfg, dict) else [None]
    if not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= MAX_DIM for d in dims):
        msg = f"{cfg_path}: not a LinearLayer config (expected integer in_features, out_features up to {MAX_DIM})"
        raise LensFormatError(msg)
    d_in, d_out = int(dims[0]), int(dims[1])  # type: ignore[arg-type]  # checked integers just above
    blob = _read_bounded(w_path, 4 * (d_in * d_out + d_out) + (1 << 20), "adapter weights")
    try:
        state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad or unsafe file; name the file
        raise LensFormatError(f"{w_path}: not a readable tensor file ({type(e).__name__}: {e})") from None
    weight = state.get("linear.weight") if isinstance(state, dict) else None
    if not isinstance(weight, torch.Tensor):
        raise LensFormatError(
            f"{w_path}: no 'linear.weight' tensor (only LinearLayer adapters convert to a lens)"
        )
    w = weight.detach().to(torch.float32).numpy()
    if w.shape != (d_out, d_in) or d_in != d_out:
        msg = f"{w_path}: weight has shape {tuple(w.shape)} (config {d_out} x {d_in}); a query lens needs a square LinearLayer"
        raise LensFormatError(msg)
    bias = state.get("linear.bias")
    if bias is not None and (not isinstance(bias, torch.Tensor) or not bool(torch.all(bias == 0))):
        msg = f"{w_path}: the adapter has a non-zero bias; a lens is linear and cannot represent it"
        raise LensFormatError(msg)
    metadata: dict[str, Any] = {"converted_from": {"llama_index_linear_adapter": str(root)}}
    if base_model is not None:
        metadata["base_model"] = base_model
    return Lens(np.ascontiguousarray(w.T), mode="query", metadata=metadata)


class EmbedderEmbedding(BaseEmbedding):
    """An embedlens base embedder as a LlamaIndex ``BaseEmbedding`` (the other direction of this module).

    Queries go through the embedder's query path (``embed_queries``: a model's query prompt), documents through
    ``embed``; with a :class:`~embedlens.CachedEmbedder`, LlamaIndex reuses the embedding cache.

    Args:
        embedder: any embedlens embedder, e.g. ``embedlens.open_embedder()``.
        **kwargs: passed to ``BaseEmbedding``.
    """

    _embedder: Any = PrivateAttr()

    def __init__(self, embedder: Any, **kwargs: Any) -> None:
        kwargs.setdefault("model_name", str(embedder.name))
        super().__init__(**kwargs)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "EmbedlensEmbedderEmbedding"

    def _get_query_embedding(self, query: str) -> Embedding:
        return embed_queries(self._embedder, [query])[0].astype(float).tolist()  # type: ignore[no-any-return]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._get_text_embeddings(texts)  # one batched call, as the sync path makes

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._embedder.embed(list(texts)).astype(float).tolist()  # type: ignore[no-any-return]
