"""A lean lens trainer that selects everything by k-fold cross-validation (prototype for issue 10).

Layout (meant to be ported into ``embedlens.training``):

- :class:`ResidualLens` — the parameters: ``W = I + A·Bᵀ`` (rank ``r``) or ``W = I + M`` (full),
  started at the identity; an optional pull toward the identity ``reg·||W - I||²``.
- An *objective* (:class:`Objective` protocol) owns the data. It supplies
  ``loss(lens, items, hp, gen)`` — the training loss over a set of item rows (full batch);
  ``scores(W, items)`` — per-item validation scores of a matrix; ``metric(scores, items)`` — the
  validation metric of those scores; ``uplift(lens_scores, raw_scores, items)`` — a bootstrap CI of
  the metric gain; and which items may be validated on and how they group into folds. Training-only
  items (pseudo-queries) are always on the training side and never validated on.
- :func:`fit_cv` — the one loop: k folds × a small grid, the number of steps chosen on the mean
  out-of-fold metric, a significance check on the *pooled* out-of-fold scores, a refit on all
  training items, and a :class:`FitSummary`.

Objectives here: :class:`RetrievalObjective` (InfoNCE; query mode: only queries are transformed,
so raw dot products with every candidate document are computed once and each step costs
``O(n·(K+S)·r)``), and :class:`PairsObjective` (CoSENT, anchor form, full batch in ``O(n log n)``).
All arrays are float32; torch runs on the CPU.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import torch

Mode = Literal["query", "symmetric"]

# ----------------------------------------------------------------------------------------- lens


class ResidualLens(torch.nn.Module):
    """``W = I + A·Bᵀ`` (``rank`` r) or ``W = I + M`` (``rank=None``), exactly the identity at start."""

    def __init__(self, dim: int, rank: int | None, *, seed: int = 0) -> None:
        super().__init__()
        self.dim = dim
        self.rank = None if rank is None or rank >= dim else int(rank)
        g = torch.Generator().manual_seed(seed)
        if self.rank is None:
            self.a = torch.nn.Parameter(torch.zeros(dim, dim))
            self.b: torch.nn.Parameter | None = None
        else:
            # LoRA-style: A = 0 so W = I; B random so that A gets a gradient at the start.
            self.a = torch.nn.Parameter(torch.zeros(dim, self.rank))
            self.b = torch.nn.Parameter(torch.randn(dim, self.rank, generator=g) / np.sqrt(dim))

    def left(self, x: torch.Tensor) -> torch.Tensor:
        """``x·A`` ``(n, r)``."""
        return x @ self.a

    def right(self, x: torch.Tensor) -> torch.Tensor:
        """``x·B`` ``(n, r)`` (``x`` itself for the full-rank form)."""
        return x if self.b is None else x @ self.b

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        """``x·(W - I)`` ``(n, d)``."""
        u = self.left(x)
        return u if self.b is None else u @ self.b.T

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """``x·W`` ``(n, d)``."""
        return x + self.delta(x)

    def sq_norm(self, x: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """``||x·W||²`` ``(n,)`` without forming ``x·W`` (``u = x·A`` may be passed in)."""
        u = self.left(x) if u is None else u
        if self.b is None:
            return (x * x).sum(1) + 2 * (x * u).sum(1) + (u * u).sum(1)
        btb = self.b.T @ self.b  # (r, r)
        return (x * x).sum(1) + 2 * (u * (x @ self.b)).sum(1) + ((u @ btb) * u).sum(1)

    def penalty(self) -> torch.Tensor:
        """``||W - I||²_F``."""
        if self.b is None:
            return (self.a * self.a).sum()
        return ((self.a.T @ self.a) * (self.b.T @ self.b)).sum()

    def matrix(self) -> np.ndarray:
        """``W`` as a ``(d, d)`` float32 array."""
        with torch.no_grad():
            eye = torch.eye(self.dim)
            return (eye + self.delta(eye)).numpy().astype(np.float32)


# ------------------------------------------------------------------------------------ protocol


class Objective(Protocol):
    """What :func:`fit_cv` needs from a task."""

    name: str
    dim: int
    mode: Mode
    #: (n,) fold group of every item (query row, or text component); items in one group share a fold.
    groups: np.ndarray
    #: (n,) items that may be validated on (labelled ones); the rest are training-only (pseudo).
    validatable: np.ndarray

    def loss(
        self, lens: ResidualLens, items: np.ndarray, hp: dict[str, Any], gen: np.random.Generator
    ) -> torch.Tensor:
        """Training loss over item rows ``items`` (full batch)."""
        ...

    def scores(self, w: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Per-item validation scores ``(len(items),)`` of the matrix ``w``."""
        ...

    def metric(self, scores: np.ndarray, items: np.ndarray) -> float:
        """The validation metric (higher is better) of per-item scores of ``items``."""
        ...

    def uplift(
        self, lens: np.ndarray, raw: np.ndarray, items: np.ndarray, seed: int
    ) -> tuple[float, float, float]:
        """``(delta, ci_lo, ci_hi)`` of ``metric(lens) - metric(raw)``, paired bootstrap over items."""
        ...


# ----------------------------------------------------------------------------------- retrieval


#: raw score of a masked candidate (finite, so that no gradient is NaN; exp() of it is 0).
_MASKED = -1.0e4


def _normalize(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


@dataclass
class RetrievalData:
    """Labelled training queries and their judgements (rows into ``docs``)."""

    queries: np.ndarray  # (nq, d) raw query embeddings
    docs: np.ndarray  # (N, d) raw document embeddings
    qrel_q: np.ndarray  # (m,) query row of each judged pair
    qrel_d: np.ndarray  # (m,) doc row
    qrel_g: np.ndarray  # (m,) grade
    pseudo_queries: np.ndarray | None = None  # (P, d) raw embeddings of pseudo-queries
    pseudo_docs: np.ndarray | None = None  # (P,) the document of each pseudo-query
    pseudo_targets: np.ndarray | None = None  # (P, d) optional target vectors (e.g. doc minus the span)


class RetrievalObjective:
    """InfoNCE over (query, relevant document) items, plus pseudo-query items; nDCG@10 validation.

    Candidates of an item: its positive, ``n_hard`` hard negatives mined once under the raw
    matrix (never a known positive), and ``n_shared`` documents drawn each step from a shared pool
    (known positives of the item masked out). Query mode only: documents stay raw, so raw dot
    products ``q·d`` with every pool document are computed once.
    """

    name = "retrieval"

    def __init__(
        self,
        data: RetrievalData,
        *,
        n_hard: int = 32,
        hard_depth: int = 64,
        pool_size: int = 8192,
        n_shared: int = 512,
        temperature: float = 0.05,
        seed: int = 0,
    ) -> None:
        self.mode: Mode = "query"
        self.temperature = temperature
        self.n_shared = n_shared
        docs = _normalize(np.asarray(data.docs, dtype=np.float32))
        q = _normalize(np.asarray(data.queries, dtype=np.float32))
        nq, self.dim = q.shape
        n_docs = docs.shape[0]
        self.n_docs = n_docs
        self.docs = docs
        pos = data.qrel_g > 0
        lq, ld = data.qrel_q[pos].astype(np.int64), data.qrel_d[pos].astype(np.int64)
        # items: one per (labelled query, positive doc), then one per pseudo-query
        item_q = [q[lq]]
        item_doc = [ld]
        item_group = [lq]
        n_lab = len(lq)
        item_known: list[np.ndarray] = [lq]  # which query's positives are masked for the item
        self.n_pseudo = 0
        target_vecs = docs[ld]
        if data.pseudo_queries is not None and data.pseudo_docs is not None:
            pq = _normalize(np.asarray(data.pseudo_queries, dtype=np.float32))
            pdoc = np.asarray(data.pseudo_docs, dtype=np.int64)
            self.n_pseudo = len(pq)
            item_q.append(pq)
            item_doc.append(pdoc)
            item_group.append(nq + np.arange(self.n_pseudo))
            item_known.append(-1 - np.arange(self.n_pseudo))  # pseudo items: only their own doc is positive
            tv = docs[pdoc] if data.pseudo_targets is None else _normalize(data.pseudo_targets)
            target_vecs = np.concatenate([target_vecs, tv])
        self.item_q = np.ascontiguousarray(np.concatenate(item_q), dtype=np.float32)  # (n, d)
        self.item_doc = np.concatenate(item_doc)
        self.groups = np.concatenate(item_group)
        self.is_pseudo = np.arange(len(self.item_doc)) >= n_lab
        self.validatable = ~self.is_pseudo
        n = len(self.item_doc)
        owner = np.concatenate(item_known)
        rng = np.random.default_rng(seed)
        # (item, doc) cells that are known positives of the item: its own doc and, for a labelled
        # query, every positive of that query
        by_q = np.argsort(lq, kind="stable")
        lq_sorted, ld_sorted = lq[by_q], ld[by_q]
        lab_items = np.flatnonzero(owner >= 0)
        starts = np.searchsorted(lq_sorted, owner[lab_items], side="left")
        ends = np.searchsorted(lq_sorted, owner[lab_items], side="right")
        counts = ends - starts
        mask_rows = np.concatenate([np.repeat(lab_items, counts), np.arange(n)])
        offs = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        mask_cols = np.concatenate([ld_sorted[np.repeat(starts, counts) + offs], self.item_doc])
        # shared negative pool (the whole corpus when small), raw scores of every item vs the pool
        self.pool = rng.choice(n_docs, size=min(pool_size, n_docs), replace=False)  # random order
        pool_col = np.full(n_docs, -1, dtype=np.int64)
        pool_col[self.pool] = np.arange(len(self.pool))
        q_t = torch.from_numpy(self.item_q)
        docs_t = torch.from_numpy(docs)
        r_pool = q_t @ docs_t[torch.from_numpy(self.pool)].T  # (n, Pool)
        inpool = pool_col[mask_cols] >= 0
        r_pool[torch.from_numpy(mask_rows[inpool]), torch.from_numpy(pool_col[mask_cols[inpool]])] = _MASKED
        self.r_pool = r_pool
        self._rows: torch.Tensor | None = None
        self._cache_key: tuple[int, int] | None = None
        self._cache_rows: torch.Tensor | None = None
        # hard negatives mined once under the raw matrix, never a known positive (chunked top-k)
        k_hard = min(n_hard, n_docs - 1)
        hard = np.empty((n, k_hard), dtype=np.int64)
        r_hard = np.empty((n, k_hard), dtype=np.float32)
        order_rows = np.argsort(mask_rows, kind="stable")
        mr, mc = mask_rows[order_rows], mask_cols[order_rows]
        for lo in range(0, n, 2048):
            hi = min(n, lo + 2048)
            block = q_t[lo:hi] @ docs_t.T  # (b, N)
            sel = (mr >= lo) & (mr < hi)
            block[torch.from_numpy(mr[sel] - lo), torch.from_numpy(mc[sel])] = _MASKED
            val, idx = torch.topk(block, k_hard, dim=1)
            hard[lo:hi], r_hard[lo:hi] = idx.numpy(), val.numpy()
        self.hard = hard  # (n, K)
        self.r_hard = torch.from_numpy(r_hard)
        self.r_pos = torch.from_numpy(np.einsum("ij,ij->i", self.item_q, target_vecs).astype(np.float32))
        self.target_vecs = torch.from_numpy(np.ascontiguousarray(target_vecs))
        self.q_t = torch.from_numpy(self.item_q)
        self.docs_t = torch.from_numpy(docs)
        self.hard_t = torch.from_numpy(self.hard)
        self.pool_t = torch.from_numpy(self.pool)
        # validation: per labelled query, its judged docs
        self.val_queries = q
        self.qrel = (
            data.qrel_q.astype(np.int64),
            data.qrel_d.astype(np.int64),
            data.qrel_g.astype(np.float64),
        )
        self.item_query_row = np.where(self.is_pseudo, -1, self.groups)

    # -- training
    def loss(
        self, lens: ResidualLens, items: np.ndarray, hp: dict[str, Any], gen: np.random.Generator
    ) -> torch.Tensor:
        items = self._subsample(items, int(hp.get("pseudo_per_step", 2048)), gen)
        it = torch.from_numpy(items)
        self._rows = None
        if (
            len(items) * len(self.pool) <= 4_000_000
            and len(items) == len(self.is_pseudo[items])
            and not self.is_pseudo[items].any()
        ):
            key = (items.ctypes.data, len(items))
            if self._cache_key != key:
                self._cache_key, self._cache_rows = key, self.r_pool[it]
            self._rows = self._cache_rows
        q = self.q_t[it]  # (m, d)
        u = lens.left(q)  # (m, r)
        inv = torch.rsqrt(lens.sq_norm(q, u).clamp_min(1e-12))  # (m,)
        db = lens.right(self.docs_t)  # (N, r): documents stay raw; only their product with B
        pos = self.r_pos[it] + (u * lens.right(self.target_vecs[it])).sum(1)  # (m,)
        hard = self.r_hard[it] + torch.einsum("mr,mkr->mk", u, db[self.hard_t[it]])  # (m, K)
        s = min(self.n_shared, len(self.pool))
        start = int(gen.integers(0, len(self.pool) - s + 1))  # a random window of the shuffled pool
        r_sh = (self.r_pool[it] if self._rows is None else self._rows)[:, start : start + s]
        shared = r_sh + u @ db[self.pool_t[start : start + s]].T  # (m, S)
        logits = torch.cat([pos[:, None], hard, shared], dim=1) * (inv[:, None] / self.temperature)
        per_item = torch.logsumexp(logits, dim=1) - logits[:, 0]  # (m,)
        w = self._weights(items, float(hp.get("pseudo_weight", 0.0)))
        return (per_item * w).sum()

    def _subsample(self, items: np.ndarray, n_pseudo: int, gen: np.random.Generator) -> np.ndarray:
        """All labelled items and at most ``n_pseudo`` pseudo items drawn for this step."""
        ps = self.is_pseudo[items]
        if ps.sum() <= n_pseudo:
            return items
        return np.concatenate([items[~ps], gen.choice(items[ps], size=n_pseudo, replace=False)])

    def _weights(self, items: np.ndarray, pseudo_weight: float) -> torch.Tensor:
        ps = self.is_pseudo[items]
        n_lab, n_ps = int((~ps).sum()), int(ps.sum())
        w = np.where(ps, pseudo_weight / max(n_ps, 1), 1.0 / max(n_lab, 1)).astype(np.float32)
        if n_lab == 0:
            w = np.where(ps, 1.0 / max(n_ps, 1), 0.0).astype(np.float32)
        return torch.from_numpy(w)

    def train_items(self, hp: dict[str, Any], labelled: np.ndarray) -> np.ndarray:
        """The item rows trained on: the labelled ones given plus the pseudo ones when weighted."""
        ps = (
            np.flatnonzero(self.is_pseudo)
            if float(hp.get("pseudo_weight", 0.0)) > 0
            else np.zeros(0, np.int64)
        )
        return np.concatenate([labelled, ps]).astype(np.int64)

    # -- validation: items are labelled item rows; the score unit is the *query*
    def score_units(self, items: np.ndarray) -> np.ndarray:
        """Unique query rows of the given labelled items (the per-item validation units)."""
        return np.unique(self.item_query_row[items])

    def scores(self, w: np.ndarray, units: np.ndarray) -> np.ndarray:
        """Per-query nDCG@10 of query rows ``units`` through ``w`` (documents raw)."""
        return ndcg10(self.val_queries[units] @ w, self.docs, units, self.qrel)

    def metric(self, scores: np.ndarray, units: np.ndarray) -> float:
        return float(np.mean(scores))

    def uplift(
        self, lens: np.ndarray, raw: np.ndarray, units: np.ndarray, seed: int
    ) -> tuple[float, float, float]:
        return mean_uplift(lens, raw, seed=seed)


def ndcg10(
    q: np.ndarray, docs_normed: np.ndarray, rows: np.ndarray, qrel: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> np.ndarray:
    """Per-query nDCG@10 ``(n,)`` of queries ``q`` ``(n, d)`` (query rows ``rows`` of ``qrel``)."""
    k = 10
    qn = _normalize(q)
    s = qn @ docs_normed.T  # (n, N)
    top = np.argpartition(-s, k, axis=1)[:, :k]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(s, top, axis=1), axis=1), axis=1)
    qq, dd, gg = qrel
    n_docs = docs_normed.shape[0]
    keys = qq * n_docs + dd
    order = np.argsort(keys)
    keys, grades = keys[order], gg[order]
    look = rows[:, None].astype(np.int64) * n_docs + top
    pos = np.searchsorted(keys, look).clip(0, len(keys) - 1)
    gains = np.where(keys[pos] == look, grades[pos], 0.0).clip(0, None)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (gains * disc).sum(1)
    idcg = np.zeros(len(rows))
    for i, r in enumerate(rows.tolist()):
        g = np.sort(gg[(qq == r) & (gg > 0)])[::-1][:k]
        idcg[i] = (g * disc[: len(g)]).sum()
    return np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)


# --------------------------------------------------------------------------------------- pairs


def cosent_anchor(cos: torch.Tensor, labels: torch.Tensor, scale: float = 20.0) -> torch.Tensor:
    """Per-item CoSENT ``(n,)``: item i is penalised for every j ranked against the labels.

    ``loss_i = log(1 + Σ_{y_j<y_i} e^{s(c_j-c_i)}) + log(1 + Σ_{y_j>y_i} e^{s(c_i-c_j)})``, computed
    in ``O(n log n)`` with prefix sums over the items sorted by label (float64 for range).
    """
    n = cos.shape[0]
    y, order = torch.sort(labels)
    c = cos[order].double()
    # items with a strictly lower label: prefix [0, lo); strictly higher: [hi, n)
    lo = torch.searchsorted(y, y, right=False)
    hi = torch.searchsorted(y, y, right=True)
    up = torch.exp(scale * (c - 1))  # e^{s c_j} e^{-s}
    down = torch.exp(-scale * (c + 1))  # e^{-s c_j} e^{-s}
    cum_up = torch.cat([torch.zeros(1, dtype=c.dtype), torch.cumsum(up, 0)])
    cum_down = torch.cat([torch.zeros(1, dtype=c.dtype), torch.cumsum(down, 0)])
    below = cum_up[lo]  # Σ_{y_j<y_i} e^{s(c_j-1)}
    above = cum_down[n] - cum_down[hi]  # Σ_{y_j>y_i} e^{-s(c_j+1)}
    # log(1 + e^{-s c_i} e^{s} below) and log(1 + e^{s c_i} e^{s} above)
    t1 = torch.log1p(torch.exp(-scale * c + scale) * below)
    t2 = torch.log1p(torch.exp(scale * c + scale) * above)
    out = torch.empty_like(c)
    out[order] = t1 + t2
    return out.float()


@dataclass
class PairsData:
    a: np.ndarray  # (n, d) raw text_1 (query side)
    b: np.ndarray  # (n, d) raw text_2
    labels: np.ndarray  # (n,)
    groups: np.ndarray  # (n,) connected text component of each pair
    binary: bool


class PairsObjective:
    """CoSENT (anchor form, full batch) on labelled pairs; AUC (binary) or Spearman validation."""

    name = "pairs"

    def __init__(self, data: PairsData, *, mode: Mode = "query", scale: float = 20.0) -> None:
        self.mode = mode
        self.scale = scale
        self.a = _normalize(np.asarray(data.a, dtype=np.float32))
        self.b = _normalize(np.asarray(data.b, dtype=np.float32))
        self.labels = np.asarray(data.labels, dtype=np.float32)
        self.binary = data.binary
        self.groups = np.asarray(data.groups)
        self.validatable = np.ones(len(self.labels), dtype=bool)
        self.dim = self.a.shape[1]
        self.a_t, self.b_t = torch.from_numpy(self.a), torch.from_numpy(self.b)
        self.y_t = torch.from_numpy(self.labels)
        self.raw_dot = torch.from_numpy(np.einsum("ij,ij->i", self.a, self.b).astype(np.float32))

    def cos_torch(self, lens: ResidualLens, it: torch.Tensor) -> torch.Tensor:
        a, b = self.a_t[it], self.b_t[it]
        if self.mode == "query":
            u = lens.left(a)
            num = self.raw_dot[it] + (u * lens.right(b)).sum(1)
            return num * torch.rsqrt(lens.sq_norm(a, u).clamp_min(1e-12))
        x, z = lens.transform(a), lens.transform(b)
        return (x * z).sum(1) * torch.rsqrt(((x * x).sum(1) * (z * z).sum(1)).clamp_min(1e-24))

    def loss(
        self, lens: ResidualLens, items: np.ndarray, hp: dict[str, Any], gen: np.random.Generator
    ) -> torch.Tensor:
        it = torch.from_numpy(items)
        return cosent_anchor(self.cos_torch(lens, it), self.y_t[it], self.scale).mean()

    def train_items(self, hp: dict[str, Any], labelled: np.ndarray) -> np.ndarray:
        return labelled.astype(np.int64)

    def score_units(self, items: np.ndarray) -> np.ndarray:
        return np.asarray(items, dtype=np.int64)

    def scores(self, w: np.ndarray, units: np.ndarray) -> np.ndarray:
        return pair_cosines(w, self.a[units], self.b[units], self.mode)

    def metric(self, scores: np.ndarray, units: np.ndarray) -> float:
        return pair_metric(scores, self.labels[units], self.binary)

    def uplift(
        self, lens: np.ndarray, raw: np.ndarray, units: np.ndarray, seed: int
    ) -> tuple[float, float, float]:
        lab = self.labels[units]
        return stat_uplift(
            lambda i: pair_metric(lens[i], lab[i], self.binary) - pair_metric(raw[i], lab[i], self.binary),
            len(units),
            seed=seed,
        )


def pair_cosines(w: np.ndarray, a: np.ndarray, b: np.ndarray, mode: Mode) -> np.ndarray:
    x = a @ w
    y = b @ w if mode == "symmetric" else b
    return np.einsum("ij,ij->i", x, y) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1) + 1e-12)


def pair_metric(cos: np.ndarray, labels: np.ndarray, binary: bool) -> float:
    from scipy.stats import rankdata

    if binary:
        pos = labels > 0
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        if n_pos == 0 or n_neg == 0:
            return float("nan")
        r = rankdata(cos)
        return float((r[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    ra, rb = rankdata(cos), rankdata(labels)
    return float(np.corrcoef(ra, rb)[0, 1])


# --------------------------------------------------------------------------------------- stats


def mean_uplift(
    lens: np.ndarray, raw: np.ndarray, *, seed: int = 0, n_boot: int = 2000
) -> tuple[float, float, float]:
    d = np.asarray(lens, np.float64) - np.asarray(raw, np.float64)
    idx = np.random.default_rng(seed).integers(0, len(d), size=(n_boot, len(d)))
    lo, hi = np.quantile(d[idx].mean(1), [0.025, 0.975])
    return float(d.mean()), float(lo), float(hi)


def stat_uplift(stat: Any, n: int, *, seed: int = 0, n_boot: int = 500) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    boots = np.array([stat(rng.integers(0, n, size=n)) for _ in range(n_boot)])
    boots = boots[np.isfinite(boots)]
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return float(stat(np.arange(n))), float(lo), float(hi)


# ------------------------------------------------------------------------------------ fit loop


@dataclass
class CVConfig:
    """Options of :func:`fit_cv`."""

    folds: int = 5
    grid: dict[str, Sequence[Any]] = field(default_factory=lambda: {"lr": [1e-2], "rank": [32], "reg": [0.0]})
    max_steps: int = 200
    eval_every: int = 20
    seed: int = 0
    require_significant: bool = True


@dataclass
class FitSummary:
    weights: np.ndarray
    shipped: bool
    chosen: dict[str, Any]
    steps: int
    cv_start: float
    cv_best: float
    pooled_delta: tuple[float, float, float]
    reason: str
    grid_table: list[dict[str, Any]]
    seconds: float
    oof_scores: np.ndarray | None = None  # pooled out-of-fold per-unit scores of the chosen setting
    oof_units: np.ndarray | None = None


def make_folds(groups: np.ndarray, validatable: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """``k`` boolean masks over items: validation items of each fold (whole groups, validatable only)."""
    g = groups[validatable]
    uniq = np.unique(g)
    perm = np.random.default_rng(seed).permutation(len(uniq))
    fold_of_group = np.empty(len(uniq), dtype=np.int64)
    fold_of_group[perm] = np.arange(len(uniq)) % k
    fold = np.full(len(groups), -1, dtype=np.int64)
    fold[validatable] = fold_of_group[np.searchsorted(uniq, g)]
    return [fold == f for f in range(k)]


def _train(
    obj: Any,
    items: np.ndarray,
    hp: dict[str, Any],
    steps: int,
    seed: int,
    on_eval: Any = None,
    eval_every: int = 0,
) -> ResidualLens:
    lens = ResidualLens(obj.dim, hp.get("rank"), seed=seed)
    opt = torch.optim.Adam(lens.parameters(), lr=float(hp["lr"]))
    gen = np.random.default_rng(seed)
    reg = float(hp.get("reg", 0.0))
    for step in range(1, steps + 1):
        loss = obj.loss(lens, items, hp, gen)
        if reg > 0:
            loss = loss + reg * lens.penalty()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if on_eval is not None and eval_every and step % eval_every == 0:
            on_eval(step, lens.matrix())
    return lens


def fit_cv(obj: Any, cfg: CVConfig) -> FitSummary:
    """Choose hyper-parameters and steps by k-fold CV, check significance on pooled OOF, refit on all."""
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    folds = make_folds(obj.groups, obj.validatable, cfg.folds, cfg.seed)
    labelled = np.flatnonzero(obj.validatable)
    eye = np.eye(obj.dim, dtype=np.float32)
    fold_units = [obj.score_units(np.flatnonzero(f)) for f in folds]
    raw_scores = [obj.scores(eye, u) for u in fold_units]
    raw_metric = [obj.metric(s, u) for s, u in zip(raw_scores, fold_units, strict=True)]
    checkpoints = list(range(cfg.eval_every, cfg.max_steps + 1, cfg.eval_every))
    keys = list(cfg.grid)
    points = [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*(cfg.grid[k] for k in keys))]
    # scores[point][step][fold] = per-unit scores; metric table = mean over folds
    table: list[dict[str, Any]] = []
    best = (float(np.mean(raw_metric)), -1, 0)  # (cv metric, point index, steps)
    store: dict[tuple[int, int], list[np.ndarray]] = {}
    for pi, hp in enumerate(points):
        per_step: dict[int, list[float]] = {s: [] for s in checkpoints}
        for f, vmask in enumerate(folds):
            train_lab = labelled[~vmask[labelled]]
            items = obj.train_items(hp, train_lab)
            units = fold_units[f]

            def on_eval(step: int, w: np.ndarray, f: int = f, units: np.ndarray = units) -> None:
                sc = obj.scores(w, units)
                per_step[step].append(obj.metric(sc, units))
                store.setdefault((pi, step), []).append(sc)

            _train(obj, items, hp, cfg.max_steps, cfg.seed + f, on_eval, cfg.eval_every)
        for s in checkpoints:
            m = float(np.mean(per_step[s]))
            table.append({**hp, "steps": s, "cv": m})
            if m > best[0] + 1e-6:
                best = (m, pi, s)
    cv_start = float(np.mean(raw_metric))
    all_units = np.concatenate(fold_units)
    raw_pooled = np.concatenate(raw_scores)
    if best[1] < 0:
        return FitSummary(
            eye,
            False,
            {},
            0,
            cv_start,
            cv_start,
            (0.0, 0.0, 0.0),
            "no setting beat the identity on mean out-of-fold validation; shipping the identity",
            table,
            time.perf_counter() - t0,
            raw_pooled,
            all_units,
        )
    hp, steps = points[best[1]], best[2]
    oof = np.concatenate(store[(best[1], steps)])
    delta = obj.uplift(oof, raw_pooled, all_units, cfg.seed)
    if cfg.require_significant and not delta[1] > 0:
        return FitSummary(
            eye,
            False,
            hp,
            steps,
            cv_start,
            best[0],
            delta,
            f"best {hp} @ {steps} steps: pooled OOF gain {delta[0]:+.4f} CI [{delta[1]:+.4f}, {delta[2]:+.4f}] not significant; shipping the identity",
            table,
            time.perf_counter() - t0,
            oof,
            all_units,
        )
    lens = _train(obj, obj.train_items(hp, labelled), hp, steps, cfg.seed)
    return FitSummary(
        lens.matrix(),
        True,
        hp,
        steps,
        cv_start,
        best[0],
        delta,
        f"{hp} @ {steps} steps: CV {cv_start:.4f} -> {best[0]:.4f}; pooled OOF gain {delta[0]:+.4f} CI [{delta[1]:+.4f}, {delta[2]:+.4f}]; refit on all",
        table,
        time.perf_counter() - t0,
        oof,
        all_units,
    )
