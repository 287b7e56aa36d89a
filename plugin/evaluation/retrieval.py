"""FAISS retrieval evaluation: index, search, per-query metrics, raw vs lens uplift.

The lens is applied the way it is served: a query lens projects queries and searches the raw
documents; a symmetric lens projects both. Vectors are L2-normalised and searched by inner product
(cosine), the space Chroma collections default to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from embedlens._arrays import as_matrix, l2_normalize
from embedlens.metrics import RETRIEVAL_METRICS
from embedlens.stats import Uplift, paired_uplift

if TYPE_CHECKING:
    from embedlens.lens import Lens

__all__ = [
    "QrelsIndex",
    "RetrievalReport",
    "build_index",
    "search",
    "per_query_metrics",
    "evaluate_retrieval",
    "DEFAULT_KS",
]

DEFAULT_KS: tuple[int, ...] = (1, 3, 5, 10, 100)
IndexKind = str  # "flat" | "hnsw" | "ivf"


@dataclass
class QrelsIndex:
    """Relevance judgements in array form, for vectorised lookups.

    Attributes:
        n_queries: number of queries ``n``.
        keys: sorted ``query_row * n_docs + doc_row`` of every judged pair ``(m,)`` int64.
        grades: relevance grade of each key ``(m,)`` float64.
        n_docs: number of documents.
    """

    n_queries: int
    n_docs: int
    keys: np.ndarray
    grades: np.ndarray

    @classmethod
    def from_pairs(
        cls, query_rows: np.ndarray, doc_rows: np.ndarray, grades: np.ndarray, n_queries: int, n_docs: int
    ) -> QrelsIndex:
        """Build from parallel arrays of judged ``(query row, doc row, grade)``."""
        keys = np.asarray(query_rows, dtype=np.int64) * n_docs + np.asarray(doc_rows, dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        return cls(n_queries, n_docs, keys[order], np.asarray(grades, dtype=np.float64)[order])

    @classmethod
    def from_dict(
        cls, qrels: dict[str, dict[str, int]], query_ids: Sequence[str], doc_ids: Sequence[str]
    ) -> QrelsIndex:
        """Build from BEIR qrels ``{qid: {doc id: grade}}`` for queries ``query_ids`` and corpus ``doc_ids``."""
        doc_row = {d: i for i, d in enumerate(doc_ids)}
        q, d, g = [], [], []
        for qi, qid in enumerate(query_ids):
            for did, grade in qrels.get(qid, {}).items():
                q.append(qi)
                d.append(doc_row[did])
                g.append(grade)
        return cls.from_pairs(np.array(q), np.array(d), np.array(g), len(query_ids), len(doc_ids))

    def gains(self, ranked: np.ndarray) -> np.ndarray:
        """Grades ``(n, K)`` of the ranked doc rows ``(n, K)`` (-1 entries, i.e. no result, give 0)."""
        n, k = ranked.shape
        keys = np.arange(n, dtype=np.int64)[:, None] * self.n_docs + ranked.astype(np.int64)
        pos = np.searchsorted(self.keys, keys.ravel()).clip(0, max(len(self.keys) - 1, 0))
        if len(self.keys) == 0:
            return np.zeros((n, k))
        match = (self.keys[pos] == keys.ravel()) & (ranked.ravel() >= 0)
        return np.where(match, self.grades[pos], 0.0).reshape(n, k)

    def ideal(self, k: int) -> np.ndarray:
        """Each query's grades sorted descending, cut/padded to ``k``: ``(n, k)``."""
        q = self.keys // self.n_docs
        order = np.lexsort((-self.grades, q))
        q_sorted, g_sorted = q[order], self.grades[order]
        starts = np.searchsorted(q_sorted, np.arange(self.n_queries))
        rank = np.arange(len(q_sorted)) - starts[q_sorted]
        out = np.zeros((self.n_queries, k))
        keep = rank < k
        out[q_sorted[keep], rank[keep]] = g_sorted[keep]
        return out

    def n_relevant(self) -> np.ndarray:
        """Number of judged documents with grade > 0 per query ``(n,)``."""
        q = self.keys // self.n_docs
        return np.bincount(q[self.grades > 0], minlength=self.n_queries)


def _batches(docs: np.ndarray | Iterable[np.ndarray], batch_size: int) -> Iterator[np.ndarray]:
    if isinstance(docs, np.ndarray):
        for start in range(0, docs.shape[0], batch_size):
            yield docs[start : start + batch_size]
    else:
        yield from docs


def build_index(
    docs: np.ndarray | Iterable[np.ndarray],
    *,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    kind: IndexKind = "flat",
    batch_size: int = 65536,
    seed: int = 0,
) -> Any:
    """Build a FAISS inner-product index over L2-normalised document vectors, batch by batch.

    Args:
        docs: ``(n, d)`` array or an iterable of ``(b, d)`` batches (streamed: only one batch is
            transformed at a time).
        transform: applied to each batch before normalising (e.g. ``lens.transform_documents``).
        kind: ``"flat"`` (exact, ``IndexFlatIP``), ``"hnsw"`` (``IndexHNSWFlat``, M=32) or ``"ivf"``
            (``IndexIVFFlat`` with ``4·sqrt(n)`` lists trained on the first batch, nprobe 16).
        batch_size: rows per batch when ``docs`` is an array.
        seed: seed for IVF training.

    Raises:
        ValueError: on an unknown ``kind`` or batches of varying dimension.
    """
    import faiss

    index = None
    for batch in _batches(docs, batch_size):
        x = as_matrix(batch if transform is None else transform(batch), name="document vectors")
        x = l2_normalize(x.copy() if x is batch else x)
        if index is None:
            index = _new_index(kind, x, faiss, seed)
        elif x.shape[1] != index.d:
            msg = f"document batch has shape {x.shape} but the index holds {index.d}-d vectors"
            raise ValueError(msg)
        index.add(x)
    if index is None:
        msg = "no document vectors to index"
        raise ValueError(msg)
    return index


def _new_index(kind: str, first: np.ndarray, faiss: Any, seed: int) -> Any:
    d = first.shape[1]
    if kind == "flat":
        return faiss.IndexFlatIP(d)
    if kind == "hnsw":
        idx = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        idx.hnsw.efSearch = 128
        return idx
    if kind == "ivf":
        nlist = max(1, min(int(4 * np.sqrt(first.shape[0])), first.shape[0] // 39 or 1))
        quantizer = faiss.IndexFlatIP(d)
        idx = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        idx.cp.seed = seed
        idx.train(first)
        idx.nprobe = min(16, nlist)
        return idx
    msg = f"unknown index kind {kind!r}; use 'flat', 'hnsw' or 'ivf'"
    raise ValueError(msg)


def search(index: Any, queries: np.ndarray, k: int) -> np.ndarray:
    """Top-``k`` document rows ``(n, k)`` int64 for L2-normalised ``queries`` (``-1`` where fewer exist)."""
    q = l2_normalize(as_matrix(queries, name="query vectors", dim=index.d).copy())
    _, ids = index.search(q, k)
    return ids.astype(np.int64)


def per_query_metrics(
    ranked: np.ndarray, qrels: QrelsIndex, ks: Sequence[int] = DEFAULT_KS
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

    def to_json(self) -> dict[str, Any]:
        """The JSON report: ``raw``, ``lens``, ``delta`` (with ``ci95``), ``groups``, ``info``."""
        return {
            "task": "retrieval",
            "raw": self.raw,
            "lens": self.lens,
            "delta": {m: u.as_dict() for m, u in self.uplift.items()},
            "groups": self.groups,
            "info": self.info,
        }


def _means(per_query: dict[str, np.ndarray], rows: np.ndarray | None = None) -> dict[str, float]:
    return {m: float(v[rows].mean() if rows is not None else v.mean()) for m, v in per_query.items()}


def evaluate_retrieval(
    query_vectors: np.ndarray,
    doc_vectors: np.ndarray | Callable[[], Iterable[np.ndarray]],
    qrels: QrelsIndex,
    lens: Lens,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    index: IndexKind = "flat",
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
        index: FAISS index kind (see :func:`build_index`).
        seen: boolean ``(n,)``: query has a relevant document that is relevant to a training
            query. Gives the ``seen``/``unseen`` groups.
        n_boot: bootstrap resamples for the CIs.
        seed: RNG seed.
    """
    k_max = max(ks)

    def docs() -> np.ndarray | Iterable[np.ndarray]:
        return doc_vectors() if callable(doc_vectors) else doc_vectors

    raw_index = build_index(docs(), kind=index, seed=seed)
    ranked_raw = search(raw_index, query_vectors, k_max)
    del raw_index
    lens_index = build_index(docs(), transform=lens.transform_documents, kind=index, seed=seed)
    ranked_lens = search(lens_index, lens.transform_queries(query_vectors), k_max)
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
                "delta": {
                    m: paired_uplift(pq_raw[m][rows], pq_lens[m][rows], n_boot=n_boot, seed=seed).as_dict()
                    for m in pq_raw
                },
            }
    info = {"queries": int(query_vectors.shape[0]), "index": index, "lens_mode": lens.mode, "ks": list(ks)}
    return RetrievalReport(
        _means(pq_raw), _means(pq_lens), pq_raw, pq_lens, uplift, groups, info, ranked_lens
    )
