"""Retrieval evaluation: per-query metrics of raw vs lens search on the same queries, with the uplift.

The lens is applied the way it is served: a query lens projects queries and searches the raw
documents; a symmetric lens projects both. Vectors are L2-normalised and searched by inner product
(cosine), the space Chroma collections default to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from embedlens.evaluation.metrics import RETRIEVAL_METRICS
from embedlens.evaluation.stats import Uplift, paired_uplift
from embedlens.index import Qrels, build_index, search

if TYPE_CHECKING:
    from embedlens.lens import Lens

__all__ = [
    "DEFAULT_KS",
    "RetrievalReport",
    "evaluate_retrieval",
    "per_query_metrics",
]

DEFAULT_KS: tuple[int, ...] = (1, 3, 5, 10, 100)


def per_query_metrics(
    ranked: np.ndarray, qrels: Qrels, ks: Sequence[int] = DEFAULT_KS
) -> dict[str, np.ndarray]:
    """Per-query metrics ``{"ndcg@10": (n,), ...}`` for ranked doc rows ``(n, K)``."""
    gains = qrels.gains(ranked)
    ideal = qrels.ideal(max(ks))
    n_rel = qrels.n_relevant()
    return {f"{name}@{k}": fn(gains, ideal, n_rel, k) for name, fn in RETRIEVAL_METRICS.items() for k in ks}


@dataclass
class RetrievalReport:
    """Raw vs lens retrieval results on the same queries.

    Attributes:
        raw, lens: mean of each metric over queries.
        per_query_raw, per_query_lens: the per-query values ``(n,)``.
        uplift: ``lens - raw`` with CI and p-value, per metric.
        groups: ``{"seen": {...}, "unseen": {...}}`` with ``n``, ``raw``, ``lens``, ``uplift``
            for each group, when training qrels were given.
        info: index kind, lens mode, counts.
    """

    raw: dict[str, float]
    lens: dict[str, float]
    per_query_raw: dict[str, np.ndarray]
    per_query_lens: dict[str, np.ndarray]
    uplift: dict[str, Uplift]
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    ranked_lens: np.ndarray | None = None
    seen: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON report: ``raw``, ``lens``, ``uplift`` (``delta`` with ``ci95``), ``groups``, ``info``."""
        return {
            "task": "retrieval",
            "raw": self.raw,
            "lens": self.lens,
            "uplift": {m: u.as_dict() for m, u in self.uplift.items()},
            "groups": self.groups,
            "info": self.info,
        }


def _means(per_query: dict[str, np.ndarray], rows: np.ndarray | None = None) -> dict[str, float]:
    return {m: float(v[rows].mean() if rows is not None else v.mean()) for m, v in per_query.items()}


def evaluate_retrieval(
    query_vectors: np.ndarray,
    doc_vectors: np.ndarray | Callable[[], Iterable[np.ndarray]],
    qrels: Qrels,
    lens: Lens,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    index_kind: str = "flat",
    seen: np.ndarray | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> RetrievalReport:
    """Search with raw and with lens vectors and score both on the same queries.

    Args:
        query_vectors: raw query embeddings ``(n, d)``.
        doc_vectors: raw document embeddings ``(N, d)``, or a function returning a fresh iterable
            of ``(b, d)`` batches (called twice: once per index, so only one index is in memory).
        qrels: judgements for these queries and documents.
        lens: the lens, applied as served.
        ks: cut-offs.
        index_kind: FAISS index kind (see :func:`build_index`).
        seen: boolean ``(n,)``: query has a relevant document that is relevant to a training
            query. Gives the ``seen``/``unseen`` groups.
        n_boot: bootstrap resamples for the CIs.
        seed: RNG seed.
    """
    k_max = max(ks)

    def docs() -> np.ndarray | Iterable[np.ndarray]:
        return doc_vectors() if callable(doc_vectors) else doc_vectors

    raw_index = build_index(docs(), kind=index_kind, seed=seed)
    ranked_raw = search(raw_index, query_vectors, k_max)
    del raw_index
    lens_index = build_index(docs(), project=lens.project_documents, kind=index_kind, seed=seed)
    ranked_lens = search(lens_index, lens.project_queries(query_vectors), k_max)
    del lens_index
    pq_raw = per_query_metrics(ranked_raw, qrels, ks)
    pq_lens = per_query_metrics(ranked_lens, qrels, ks)
    uplift = {m: paired_uplift(pq_raw[m], pq_lens[m], n_boot=n_boot, seed=seed) for m in pq_raw}
    groups: dict[str, dict[str, Any]] = {}
    if seen is not None:
        seen = np.asarray(seen, dtype=bool)
        for name, rows in (("seen", seen), ("unseen", ~seen)):
            if not rows.any():
                groups[name] = {"n": 0}
                continue
            groups[name] = {
                "n": int(rows.sum()),
                "raw": _means(pq_raw, rows),
                "lens": _means(pq_lens, rows),
                "uplift": {
                    m: paired_uplift(pq_raw[m][rows], pq_lens[m][rows], n_boot=n_boot, seed=seed).as_dict()
                    for m in pq_raw
                },
            }
    info = {
        "queries": int(query_vectors.shape[0]),
        "index_kind": index_kind,
        "lens_mode": lens.mode,
        "ks": list(ks),
    }
    return RetrievalReport(
        _means(pq_raw), _means(pq_lens), pq_raw, pq_lens, uplift, groups, info, ranked_lens, seen
    )
