"""Retrieval primitives: relevance judgements as arrays (:class:`Qrels`), exact and approximate search.

Vectors are L2-normalised and searched by inner product (cosine), the space Chroma collections default to.
Training (hard negatives, validation) and evaluation both search through :func:`build_index` and :func:`search`.

Exact search (``kind="flat"``) is :class:`FlatIndex`: blocked matrix products through numpy's BLAS (or
torch on a GPU) with ``argpartition``. The OpenBLAS bundled with faiss-cpu picks its kernel per CPU and
fell back to a generic one on some machines, 0.31x numpy there (BENCHMARKS.md measures both); the
approximate kinds (``hnsw``, ``ivf``) stay FAISS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedlens._arrays import as_matrix, l2_normalize

__all__ = ["INDEX_KINDS", "FlatIndex", "Qrels", "build_index", "search", "stream_top_k"]

#: index kinds :func:`build_index` makes: exact (:class:`FlatIndex`), FAISS graph, FAISS inverted lists.
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


class FlatIndex:
    """Exact inner-product search over the rows added, with FAISS's ``add`` / ``search`` / ``d`` / ``ntotal``.

    Scores are computed as blocked matrix products (``query_block`` queries x ``doc_block`` documents at a
    time, so memory stays bounded), the top ``k`` of each block is taken with ``argpartition`` and merged
    with the running best. Results are sorted best first, equal scores by the lower row (among the rows
    kept: of many exactly equal scores at the k-th place, which ones make the cut is not specified). Rows
    and queries must be finite (refused otherwise). On ``device="cuda"`` the rows live on the GPU
    and torch does the products and ``topk``.

    Args:
        d: vector dimension.
        device: ``"cpu"`` (numpy) or a torch device string such as ``"cuda"``.
        query_block: queries per block.
        doc_block: documents per block.
    """

    def __init__(
        self, d: int, *, device: str = "cpu", query_block: int = 1024, doc_block: int = 32768
    ) -> None:
        self.d = int(d)
        self.device = device
        self.query_block, self.doc_block = int(query_block), int(doc_block)
        self._blocks: list[Any] = []
        self.ntotal = 0

    def add(self, x: np.ndarray, *, copy: bool = True) -> None:
        """Append rows ``(n, d)`` as float32; added rows number on from :attr:`ntotal`.

        ``copy=False`` keeps a float32 C-contiguous ``x`` itself (the caller hands it over and never changes it).
        """
        x = np.array(x, dtype=np.float32, order="C", copy=True if copy else None)
        if x.ndim != 2 or x.shape[1] != self.d:
            msg = f"rows of shape {x.shape} cannot be added to an index of {self.d}-d vectors"
            raise ValueError(msg)
        if not np.isfinite(x).all():
            raise ValueError("rows added to an index must be finite (NaN or Inf found)")
        for start in range(0, x.shape[0], self.doc_block):
            part = x[start : start + self.doc_block]
            if self.device == "cpu":
                self._blocks.append(part)
            else:
                import torch

                self._blocks.append(torch.from_numpy(part).to(self.device))
        self.ntotal += x.shape[0]

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and rows ``(n, k)`` of the ``k`` best rows for each query (``-inf`` / ``-1`` beyond ``ntotal``)."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.d or not np.isfinite(q).all():
            msg = f"queries must be finite {self.d}-d rows, got shape {q.shape}"
            raise ValueError(msg)
        n = q.shape[0]
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        ids = np.full((n, k), -1, dtype=np.int64)
        kk = min(k, self.ntotal)
        if kk == 0 or n == 0:
            return scores, ids
        search_block = self._search_numpy if self.device == "cpu" else self._search_torch
        for lo in range(0, n, self.query_block):
            s, i = search_block(q[lo : lo + self.query_block], kk)
            scores[lo : lo + len(s), :kk], ids[lo : lo + len(s), :kk] = s, i
        return scores, ids

    def _search_numpy(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return stream_top_k(q, self._blocks, k)

    def _search_torch(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import torch

        qt = torch.from_numpy(q).to(self.device)
        best_s = torch.empty((q.shape[0], 0), device=self.device)
        best_i = torch.empty((q.shape[0], 0), dtype=torch.int64, device=self.device)
        offset = 0
        for block in self._blocks:
            s, i = torch.topk(qt @ block.T, min(k, block.shape[0]), dim=1)
            cand_s, cand_i = torch.cat([best_s, s], 1), torch.cat([best_i, i + offset], 1)
            s, keep = torch.topk(cand_s, min(k, cand_s.shape[1]), dim=1)
            best_s, best_i = s, torch.gather(cand_i, 1, keep)
            offset += block.shape[0]
        s_np, i_np = best_s.cpu().numpy(), best_i.cpu().numpy()
        order = np.lexsort((i_np, -s_np), axis=1)
        return np.take_along_axis(s_np, order, 1), np.take_along_axis(i_np, order, 1)


def stream_top_k(
    queries: np.ndarray,
    blocks: Iterable[np.ndarray],
    k: int,
    *,
    exclude: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` inner products of ``queries`` ``(n, d)`` over rows streamed in ``blocks`` ``(b, d)``.

    Only one block's scores are held at a time (rows number on across blocks, as given: normalise them
    first for cosines; finite values only). Sorted best first, equal scores by the lower row among those
    kept; ``(n, min(k, rows seen))``, padded with ``-inf`` / ``-1`` where a query has fewer.

    Args:
        exclude: ``(query rows, doc rows)`` pairs never returned (e.g. known positives).
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    n = q.shape[0]
    best_s = np.empty((n, 0), dtype=np.float32)
    best_i = np.empty((n, 0), dtype=np.int64)
    if exclude is not None:
        order = np.argsort(exclude[1], kind="stable")
        ex_q, ex_d = np.asarray(exclude[0])[order], np.asarray(exclude[1])[order]
    offset = 0
    for block in blocks:
        sc = q @ block.T  # (n, b)
        b = block.shape[0]
        if exclude is not None:
            lo, hi = np.searchsorted(ex_d, [offset, offset + b])
            sc[ex_q[lo:hi], ex_d[lo:hi] - offset] = -np.inf
        if best_s.shape[1] < k:  # not yet k per query: take this block's top k (argpartition)
            kb = min(k, b)
            top = np.argpartition(sc, b - kb, axis=1)[:, -kb:]
            rows = np.repeat(np.arange(n), kb)
            cols, vals = top.ravel(), np.take_along_axis(sc, top, 1).ravel()
            finite = np.isfinite(vals)  # an excluded cell never enters
            rows, cols, vals = rows[finite], cols[finite], vals[finite]
        else:  # only the scores above each query's k-th best so far can enter (few, after a block)
            rows, cols = _above(sc, best_s[:, -1:])
            vals = sc[rows, cols]
        best_s, best_i = _merge_top_k(best_s, best_i, rows, cols + offset, vals, k)
        offset += b
    return best_s, best_i


#: columns per chunk whose maximum is compared first when looking for scores above a threshold.
_CHUNK = 128


def _above(sc: np.ndarray, thr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero(sc > thr)`` for a score block ``(q, b)`` and thresholds ``(q, 1)``, where few are above.

    Each row's chunks of :data:`_CHUNK` columns are screened by their maximum first; only the chunks that
    hold a score above the threshold are looked into (``np.nonzero`` over the whole block is ~6x slower).
    """
    n, b = sc.shape
    whole = b - b % _CHUNK
    chunks = sc[:, :whole].reshape(n, whole // _CHUNK, _CHUNK)
    r, ch = np.nonzero(chunks.max(axis=2) > thr)
    rr, cc = np.nonzero(chunks[r, ch] > thr[r])
    rows, cols = r[rr], ch[rr] * _CHUNK + cc
    if whole < b:  # the last columns, fewer than a chunk
        tr, tc = np.nonzero(sc[:, whole:] > thr)
        rows, cols = np.concatenate([rows, tr]), np.concatenate([cols, tc + whole])
    return rows, cols


def _merge_top_k(
    best_s: np.ndarray, best_i: np.ndarray, rows: np.ndarray, ids: np.ndarray, vals: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best per row of the running ``best_*`` ``(n, j)`` (sorted) and new candidates ``(rows, ids, vals)``.

    Sorted best first, ties by the lower id; ``(n, min(k, most entries of a row))``, a row with fewer entries
    padded with ``-inf`` / ``-1`` (which any real candidate outranks later).
    """
    n, j = best_s.shape
    all_r = np.concatenate([np.repeat(np.arange(n), j), rows])
    all_i = np.concatenate([best_i.ravel(), ids])
    all_s = np.concatenate([best_s.ravel(), vals])
    order = np.lexsort((all_i, -all_s, all_r))  # by row, best first, ties by the lower id
    all_r, all_i, all_s = all_r[order], all_i[order], all_s[order]
    starts = np.searchsorted(all_r, np.arange(n))
    pos = np.arange(len(all_r)) - starts[all_r]
    width = int(min(k, np.bincount(all_r, minlength=n).max())) if len(all_r) else 0
    keep = pos < width
    out_s = np.full((n, width), -np.inf, dtype=np.float32)
    out_i = np.full((n, width), -1, dtype=np.int64)
    out_s[all_r[keep], pos[keep]] = all_s[keep]
    out_i[all_r[keep], pos[keep]] = all_i[keep]
    return out_s, out_i


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
    device: str = "cpu",
) -> Any:
    """Build an inner-product index over L2-normalised document vectors, batch by batch.

    Args:
        docs: ``(n, d)`` array or an iterable of ``(b, d)`` batches (streamed: only one batch is
            projected at a time).
        project: applied to each batch before normalising (e.g. ``lens.project_documents``).
        kind: ``"flat"`` (exact, :class:`FlatIndex`), ``"hnsw"`` (FAISS ``IndexHNSWFlat``, M=32) or ``"ivf"``
            (FAISS ``IndexIVFFlat`` with ``4·sqrt(n)`` lists trained on the first batch, nprobe 16).
        batch_size: rows per batch when ``docs`` is an array.
        seed: seed for IVF training.
        device: where a flat index keeps its rows and searches (``"cpu"``, or ``"cuda"``); the FAISS kinds
            run on the CPU.

    Raises:
        ValueError: on an unknown ``kind`` or batches of varying dimension.
    """
    if kind not in INDEX_KINDS:
        msg = f"unknown index kind {kind!r}; use one of {', '.join(INDEX_KINDS)}"
        raise ValueError(msg)
    index = None
    for batch in _batches(docs, batch_size):
        x = as_matrix(batch if project is None else project(batch), name="document vectors")
        # normalised in a copy, never in the caller's array (a writable memmap would change on disk)
        x = l2_normalize(x.copy() if np.may_share_memory(x, batch) else x)
        if index is None:
            index = FlatIndex(x.shape[1], device=device) if kind == "flat" else _faiss_index(kind, x, seed)
        elif x.shape[1] != index.d:
            msg = f"document batch has shape {x.shape} but the index holds {index.d}-d vectors"
            raise ValueError(msg)
        if isinstance(index, FlatIndex):
            index.add(x, copy=False)  # x is this function's own normalised copy
        else:
            index.add(x)
    if index is None:
        msg = "no document vectors to index"
        raise ValueError(msg)
    return index


def _faiss_index(kind: str, first: np.ndarray, seed: int) -> Any:
    import faiss

    d = first.shape[1]
    if kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efSearch = 128
        return hnsw
    if kind == "ivf":
        nlist = max(1, min(int(4 * np.sqrt(first.shape[0])), first.shape[0] // 39 or 1))
        quantizer = faiss.IndexFlatIP(d)
        idx = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        idx.cp.seed = seed
        idx.train(first)
        idx.nprobe = min(16, nlist)
        return idx
    msg = f"unknown FAISS index kind {kind!r}"
    raise ValueError(msg)


def search(index: Any, queries: np.ndarray, k: int) -> np.ndarray:
    """Top-``k`` document rows ``(n, k)`` int64 for L2-normalised ``queries`` (``-1`` where fewer exist)."""
    q = l2_normalize(as_matrix(queries, name="query vectors", dim=index.d).copy())
    _, ids = index.search(q, k)
    return ids.astype(np.int64)
