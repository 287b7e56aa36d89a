"""Measure what a lens buys: raw vs lens on the same queries or pairs, side by side."""

from __future__ import annotations

from embedlens.evaluation.pairs import PairReport, evaluate_pairs
from embedlens.evaluation.retrieval import (
    QrelsIndex,
    RetrievalReport,
    build_index,
    evaluate_retrieval,
    per_query_metrics,
    search,
)

__all__ = [
    "PairReport",
    "QrelsIndex",
    "RetrievalReport",
    "build_index",
    "evaluate_pairs",
    "evaluate_retrieval",
    "per_query_metrics",
    "search",
]
