"""Measure what a lens buys: raw vs lens on the same queries or pairs, side by side."""

from __future__ import annotations

from embedlens.evaluation.pairs import PairReport, evaluate_pairs
from embedlens.evaluation.retrieval import RetrievalReport, evaluate_retrieval, per_query_metrics

__all__ = [
    "PairReport",
    "RetrievalReport",
    "evaluate_pairs",
    "evaluate_retrieval",
    "per_query_metrics",
]
