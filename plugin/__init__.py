"""embedlens: customize frozen embeddings with a trained linear lens.

Public API (importing it needs numpy only; torch, faiss, chromadb and langchain load on use).
"""

from __future__ import annotations

from embedlens._version import __version__
from embedlens.cache import CachedEmbedder, EmbeddingCache
from embedlens.datasets import BeirDataset, PairsDataset, read_beir, read_pairs
from embedlens.embedders import Embedder, get_embedder
from embedlens.errors import (
    DataFormatError,
    DimensionMismatchError,
    EmbedderError,
    EmbedlensInputError,
    FingerprintMismatchError,
    LensFormatError,
)
from embedlens.lens import PROBE_SENTENCES, Lens, load_lens

__all__ = [
    "BeirDataset",
    "CachedEmbedder",
    "DataFormatError",
    "DimensionMismatchError",
    "Embedder",
    "EmbedderError",
    "EmbeddingCache",
    "EmbedlensInputError",
    "FingerprintMismatchError",
    "Lens",
    "LensFormatError",
    "PROBE_SENTENCES",
    "PairsDataset",
    "__version__",
    "get_embedder",
    "load_lens",
    "read_beir",
    "read_pairs",
]
