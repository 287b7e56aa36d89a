"""Training a lens (torch is imported only here, and only when training runs)."""

from __future__ import annotations

from embedlens.training.config import TrainConfig
from embedlens.training.loop import FitResult, initial_matrix
from embedlens.training.pairs import train_pairs
from embedlens.training.retrieval import train_retrieval

__all__ = [
    "FitResult",
    "TrainConfig",
    "initial_matrix",
    "train_pairs",
    "train_retrieval",
]
