"""Retrieval primitives: relevance judgements as arrays (:class:`Qrels`) and FAISS exact/approximate search.

Vectors are L2-normalised and searched by inner product (cosine), the space Chroma collections default to.
Training (hard negatives, validation) and evaluation both search through :func:`build_index` and :func:`search`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedlens._arrays import as_matrix, l2_normalize

__all__ = ["INDEX_KINDS", "Qrels", "build_index", "search"]

#: FAISS index kinds :func:`build_index` makes: exact, graph, inverted lists.
INDEX_KINDS: tuple[str, ...] = ("flat", "hnsw", "ivf")


@dataclass
class Qrels:
    """Relevance judgements in array form, for vectorised lookups.

    Every judged ``(query row, document row)`` is packed into one sorted int64 key,
    ``query_row * n_docs + doc_row``; all lookups are one ``searchsorted`` over those keys.

    Attributes:
        n_queries: number of queries ``n``.
        n_docs: number of documents.
        keys: sorted packed keys of every judged pair ``(m,)`` int64.
        grades: relevance grade of each key ``(m,)`` float64.
    """

    n_queries: int
    n_docs: int
    keys: np.ndarray
    grades: np.ndarray

    @classmethod
    def from_pairs(
        cls, query_rows: np.ndarray, doc_rows: np.ndarray, grades: np.ndarray, n_queries: int, n_docs: int
    ) -> Qrels:
        """Build from parallel arrays of judged ``(query row, doc row, grade)``."""
        keys = np.asarray(query_rows, dtype=np.int64) * n_docs + np.asarray(doc_rows, dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        return cls(n_queries, n_docs, keys[order], np.asarray(grades, dtype=np.float64)[order])

    @classmethod
    def from_dict(
        cls, qrels: dict[str, dict[str, int]], query_ids: Sequence[str], doc_ids: Sequence[str]
    ) -> Qrels:
        """Build from BEIR qrels ``{qid: {doc id: grade}}`` for queries ``query_ids`` and corpus ``doc_ids``."""
        doc_row = {d: i for i, d in enumerate(doc_ids)}
        q, d, g = [], [], []
        for qi, qid in enumerate(query_ids):
            for did, grade in qrels.get(qid, {}).items():
                q.append(qi)
                d.append(doc_row[did])
                g.append(grade)
        return cls.from_pairs(np.array(q), np.array(d), np.array(g), len(query_ids), len(doc_ids))

    @property
    def query_rows(self) -> np.ndarray:
        """Query row of every judged pair ``(m,)``, in key order (sorted by query, then document)."""
        return self.keys // self.n_docs

    @property
    def doc_rows(self) -> np.ndarray:
        """Document row of every judged pair ``(m,)``, in key order."""
        return self.keys % self.n_docs

    def grade(self, query_rows: np.ndarray, doc_rows: np.ndarray) -> np.ndarray:
        """Grades of the ``(query row, doc row)`` pairs (any equal shapes; unjudged or ``-1`` rows give 0)."""
        q = np.asarray(query_rows, dtype=np.int64)
        d = np.asarray(doc_rows, dtype=np.int64)
        q, d = np.broadcast_arrays(q, d)
        if len(self.keys) == 0:
            return np.zeros(q.shape)
        keys = (q * self.n_docs + d).ravel()
        pos = np.searchsorted(self.keys, keys).clip(0, len(self.keys) - 1)
        match = (self.keys[pos] == keys) & (d.ravel() >= 0)
        return np.where(match, self.grades[pos], 0.0).reshape(q.shape)

    def gains(self, ranked: np.ndarray) -> np.ndarray:
        """Grades ``(n, K)`` of the ranked doc rows ``(n, K)`` (-1 entries, i.e. no result, give 0)."""
        n = ranked.shape[0]
        return self.grade(np.arange(n, dtype=np.int64)[:, None], ranked.astype(np.int64))

    def ideal(self, k: int) -> np.ndarray:
        """Each query's grades sorted descending, cut/padded to ``k``: ``(n, k)``."""
        q = self.query_rows
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
        return np.bincount(self.query_rows[self.grades > 0], minlength=self.n_queries)

    def subset(self, rows: np.ndarray) -> Qrels:
        """The judgements of query rows ``rows``, renumbered ``0..len(rows)-1`` in the order given."""
        rows = np.asarray(rows, dtype=np.int64)
        q, d = self.query_rows, self.doc_rows
        new_row = np.full(self.n_queries, -1, dtype=np.int64)
        new_row[rows] = np.arange(len(rows))
        keep = new_row[q] >= 0
        return Qrels.from_pairs(new_row[q[keep]], d[keep], self.grades[keep], len(rows), self.n_docs)


def _batches(docs: np.ndarray | Iterable[np.ndarray], batch_size: int) -> Iterator[np.ndarray]:
    if isinstance(docs, np.ndarray):
        for start in range(0, docs.shape[0], batch_size):
            yield docs[start : start + batch_size]
    else:
        yield from docs


def build_index(
    docs: np.ndarray | Iterable[np.ndarray],
    *,
    project: Callable[[np.ndarray], np.ndarray] | None = None,
    kind: str = "flat",
    batch_size: int = 65536,
    seed: int = 0,
) -> Any:
    """Build a FAISS inner-product index over L2-normalised document vectors, batch by batch.

    Args:
        docs: ``(n, d)`` array or an iterable of ``(b, d)`` batches (streamed: only one batch is
            projected at a time).
        project: applied to each batch before normalising (e.g. ``lens.project_documents``).
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
        x = as_matrix(batch if project is None else project(batch), name="document vectors")
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
    msg = f"unknown index kind {kind!r}; use one of {', '.join(INDEX_KINDS)}"
    raise ValueError(msg)


def search(index: Any, queries: np.ndarray, k: int) -> np.ndarray:
    """Top-``k`` document rows ``(n, k)`` int64 for L2-normalised ``queries`` (``-1`` where fewer exist)."""
    q = l2_normalize(as_matrix(queries, name="query vectors", dim=index.d).copy())
    _, ids = index.search(q, k)
    return ids.astype(np.int64)
