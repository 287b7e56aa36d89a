"""embedlens: customize frozen embeddings with a trained linear lens.

Public API. Importing it needs numpy only: the training and evaluation workflows (torch, faiss) and the
adapters (LangChain, Chroma) load when first used, e.g. ``from embedlens import train_lens``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from embedlens._version import __version__
from embedlens.cache import CachedEmbedder, EmbeddingCache, open_embedder
from embedlens.datasets import (
    BeirDataset,
    PairsDataset,
    load_data,
    pairs_dataset,
    read_beir,
    read_pairs,
    retrieval_dataset,
)
from embedlens.embedders import Embedder, as_embedder, get_embedder
from embedlens.errors import (
    DataFormatError,
    DimensionMismatchError,
    EmbedderError,
    EmbedlensInputError,
    EmbedlensWarning,
    FingerprintMismatchError,
    LensFormatError,
)
from embedlens.index import Qrels
from embedlens.lens import PROBE_SENTENCES, Lens, load_lens

if TYPE_CHECKING:
    from embedlens.adapters.chroma import LensEmbeddingFunction
    from embedlens.adapters.langchain import LensEmbeddings
    from embedlens.evaluation.workflow import evaluate_lens
    from embedlens.export import export_sentence_transformer
    from embedlens.training.config import TrainConfig
    from embedlens.training.workflow import TrainOutcome, train_lens

#: names loaded on first use: name -> module that defines it.
_LAZY = {
    "TrainConfig": "embedlens.training.config",
    "TrainOutcome": "embedlens.training.workflow",
    "train_lens": "embedlens.training.workflow",
    "evaluate_lens": "embedlens.evaluation.workflow",
    "export_sentence_transformer": "embedlens.export",
    # the serving adapters (the package root is a facade: no core module imports them)
    "LensEmbeddings": "embedlens.adapters.langchain",
    "LensEmbeddingFunction": "embedlens.adapters.chroma",
}

__all__ = [
    "BeirDataset",
    "CachedEmbedder",
    "DataFormatError",
    "DimensionMismatchError",
    "Embedder",
    "EmbedderError",
    "EmbeddingCache",
    "EmbedlensInputError",
    "EmbedlensWarning",
    "FingerprintMismatchError",
    "Lens",
    "LensEmbeddingFunction",
    "LensEmbeddings",
    "LensFormatError",
    "PROBE_SENTENCES",
    "PairsDataset",
    "Qrels",
    "TrainConfig",
    "TrainOutcome",
    "__version__",
    "as_embedder",
    "evaluate_lens",
    "export_sentence_transformer",
    "get_embedder",
    "load_data",
    "load_lens",
    "open_embedder",
    "pairs_dataset",
    "read_beir",
    "read_pairs",
    "retrieval_dataset",
    "train_lens",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'embedlens' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
