"""Retrieval and pair metrics as small pure functions over arrays.

Retrieval metrics take, for ``n`` queries and a ranking cut at ``K`` documents:

- ``gains`` ``(n, K)``: the relevance grade of the document at each rank (0 when not relevant);
- ``n_relevant`` ``(n,)``: how many judged documents have grade > 0;
- ``ideal`` ``(n, K)``: each query's judged grades sorted descending, zero-padded (for nDCG).

Conventions (those of ``trec_eval``/``pytrec_eval``, which BEIR reports):

- ``k`` larger than the ranking: the missing ranks count as not relevant (precision still divides by ``k``).
- A query with no relevant document scores 0 on every metric.
- nDCG uses linear gain ``rel / log2(rank + 1)``.

Each function returns the per-query values ``(n,)`` float64; average them for the report.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "recall_at_k",
    "precision_at_k",
    "ndcg_at_k",
    "mrr_at_k",
    "hit_at_k",
    "RETRIEVAL_METRICS",
    "roc_auc",
    "accuracy_at_threshold",
    "best_threshold",
    "spearman",
]


def _hits(gains: np.ndarray, k: int) -> np.ndarray:
    return (np.asarray(gains)[:, :k] > 0).astype(np.float64)  # (n, min(k, K))


def recall_at_k(gains: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Share of a query's relevant documents found in the top ``k``: ``hits@k / n_relevant``."""
    hits = _hits(gains, k).sum(axis=1)
    n_rel = np.asarray(n_relevant, dtype=np.float64)
    return np.divide(hits, n_rel, out=np.zeros_like(hits), where=n_rel > 0)


def precision_at_k(gains: np.ndarray, k: int) -> np.ndarray:
    """Share of the top ``k`` that is relevant: ``hits@k / k``."""
    return _hits(gains, k).sum(axis=1) / float(k)


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))  # rank r (1-based) -> 1/log2(r+1)


def ndcg_at_k(gains: np.ndarray, ideal: np.ndarray, k: int) -> np.ndarray:
    """Normalised discounted cumulative gain: ``DCG@k / IDCG@k`` with ``DCG = Σ rel_r / log2(r + 1)``.

    Graded relevance is supported (``gains`` and ``ideal`` hold the grades).
    """
    g = np.asarray(gains, dtype=np.float64)[:, :k]
    i = np.asarray(ideal, dtype=np.float64)[:, :k]
    dcg = (np.clip(g, 0, None) * _discounts(g.shape[1])).sum(axis=1)
    idcg = (np.clip(i, 0, None) * _discounts(i.shape[1])).sum(axis=1)
    return np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)


def mrr_at_k(gains: np.ndarray, k: int) -> np.ndarray:
    """Reciprocal rank of the first relevant document within the top ``k`` (0 when none)."""
    hits = _hits(gains, k) > 0
    first = hits.argmax(axis=1)
    found = hits.any(axis=1)
    return np.where(found, 1.0 / (first + 1.0), 0.0)


def hit_at_k(gains: np.ndarray, k: int) -> np.ndarray:
    """1 when at least one relevant document is in the top ``k``, else 0."""
    return np.asarray(_hits(gains, k).any(axis=1), dtype=np.float64)


#: name -> function(gains, ideal, n_relevant, k) for the retrieval report.
RETRIEVAL_METRICS = {
    "ndcg": lambda g, i, n, k: ndcg_at_k(g, i, k),
    "recall": lambda g, i, n, k: recall_at_k(g, n, k),
    "precision": lambda g, i, n, k: precision_at_k(g, k),
    "mrr": lambda g, i, n, k: mrr_at_k(g, k),
    "hit": lambda g, i, n, k: hit_at_k(g, k),
}


# --------------------------------------------------------------------------- pair metrics
def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a random positive > a random negative), ties count 1/2.

    Returns NaN when either class is empty.
    """
    from scipy.stats import rankdata

    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)  # average ranks handle ties
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def accuracy_at_threshold(scores: np.ndarray, positive: np.ndarray, threshold: float) -> np.ndarray:
    """Per-pair correctness ``(n,)`` of predicting positive when ``score >= threshold``."""
    pred = np.asarray(scores) >= threshold
    return (pred == np.asarray(positive, dtype=bool)).astype(np.float64)


def best_threshold(scores: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """The threshold maximising accuracy on these pairs; returns ``(threshold, accuracy)``.

    Candidates are midpoints between consecutive sorted scores (and ±inf ends). Vectorised:
    one sort and one cumulative sum.
    """
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    if s.size == 0:
        msg = "best_threshold needs at least one pair"
        raise ValueError(msg)
    order = np.argsort(s, kind="stable")
    s_sorted, p_sorted = s[order], pos[order]
    # threshold just above position i: items <= i predicted negative, items > i positive
    neg_below = np.concatenate([[0], np.cumsum(~p_sorted)])  # (n+1,) negatives at or below cut
    pos_above = int(pos.sum()) - np.concatenate([[0], np.cumsum(p_sorted)])
    correct = neg_below + pos_above  # (n+1,)
    # only cut between distinct values
    cuts = np.concatenate([[-np.inf], (s_sorted[:-1] + s_sorted[1:]) / 2, [np.inf]])
    valid = np.concatenate([[True], s_sorted[:-1] < s_sorted[1:], [True]])
    correct = np.where(valid, correct, -1)
    best = int(np.argmax(correct))
    return float(cuts[best]), float(correct[best] / s.size)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation between ``a`` and ``b`` (NaN for constant input)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)
