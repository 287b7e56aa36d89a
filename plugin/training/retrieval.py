"""Retrieval objective: InfoNCE over (query, relevant document) items, plus pseudo-queries.

An item is one labelled (query, relevant document) pair, or one pseudo-query made from a document
(its title or leading sentence, see :func:`embedlens.datasets.pseudo_queries`) paired with that
document. Pseudo-queries give a training signal for documents no labelled query touches; they are
training-only (validation always uses real held-out queries) and their weight in the loss is
chosen by cross-validation.

Each step scores every item against its positive, ``n_hard`` hard negatives mined once under the
raw matrix (never a known positive of the item) and a window of documents from a shared random
pool (known positives masked). Raw dot products with all of them are computed once; with the
residual ``W = I + A·Bᵀ`` a step then costs ``O(items · candidates · r)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from embedlens._arrays import l2_normalize
from embedlens._device import resolve_device
from embedlens.evaluation.retrieval import per_query_metrics
from embedlens.evaluation.stats import Uplift, normal_uplift
from embedlens.index import Qrels, build_index, search, stream_top_k
from embedlens.lens import through
from embedlens.training.config import TrainConfig
from embedlens.training.loop import FitResult, fit, initial_matrix

if TYPE_CHECKING:
    import torch

    from embedlens.training.residual import ResidualLens

__all__ = ["DocVectors", "RetrievalObjective", "retrieval_ndcg10", "train_retrieval"]

#: the corpus vectors: an array (a ``np.memmap`` stays on disk: only the rows needed are read), or a
#: callable returning a fresh iterable of row blocks (streamed in order, e.g. read from files).
DocVectors = np.ndarray | Callable[[], Iterable[np.ndarray]]

#: raw score of a masked candidate: finite (no NaN gradient), and exp() of it is 0.
_MASKED = -1.0e4
#: shared negative pool (the whole corpus when smaller) and the window of it used per step.
POOL_SIZE = 4096
WINDOW = 512
#: pseudo-queries drawn per step (all labelled items are in every step).
PSEUDO_PER_STEP = 512
#: corpora up to this many documents are validated against every document at each checkpoint; larger
#: ones against a candidate set: the judged documents, each labelled query's raw top VAL_TOP and a
#: fixed random sample of VAL_SAMPLE, with the whole corpus for the final significance check only.
FULL_VALIDATION_DOCS = 100_000
VAL_TOP = 100
VAL_SAMPLE = 20_000
#: corpus rows per block when the corpus is streamed.
BLOCK_ROWS = 32_768
#: learning rates tried by cross-validation when none is given (``wide_grid`` widens the list).
DEFAULT_LRS = (1e-2,)
#: ranks tried by cross-validation: a low-rank residual (small data) and the full matrix.
DEFAULT_RANKS: tuple[int | str, ...] = ("full", 32)
#: pseudo-query weights tried by cross-validation (0: labelled queries only).
DEFAULT_PSEUDO_WEIGHTS = (5.0, 0.0)
WIDE_GRID_LRS = (3e-3, 1e-2, 3e-2)


def retrieval_ndcg10(
    w: np.ndarray, queries: np.ndarray, docs: np.ndarray, qrels: Qrels, *, mode: str
) -> np.ndarray:
    """Per-query nDCG@10 ``(n,)`` of ``queries`` ``(n, d)`` against all ``docs`` ``(N, d)`` through ``w``."""
    query_side, doc_side = through(w, queries, docs, mode=mode)
    ranked = search(build_index(doc_side), query_side, 10)
    return per_query_metrics(ranked, qrels, (10,))["ndcg@10"]


def _normalized_blocks(
    docs: DocVectors, *, project: Callable[[np.ndarray], np.ndarray] | None = None
) -> Iterator[np.ndarray]:
    """The corpus as L2-normalised float32 blocks (projected first when ``project`` is given), in order."""
    for block in _raw_blocks(docs):
        x = np.asarray(block, dtype=np.float32)
        x = project(x) if project is not None else x
        yield l2_normalize(np.array(x, dtype=np.float32, copy=True))


def _raw_blocks(docs: DocVectors) -> Iterator[np.ndarray]:
    if isinstance(docs, np.ndarray):
        for s in range(0, docs.shape[0], BLOCK_ROWS):
            yield np.asarray(docs[s : s + BLOCK_ROWS], dtype=np.float32)
    else:
        yield from docs()


def _gather_normalized(docs: DocVectors, rows: np.ndarray, n_docs: int) -> np.ndarray:
    """Corpus rows ``rows`` (sorted, unique) ``(len(rows), d)`` normalised; checks the corpus holds ``n_docs``."""
    if isinstance(docs, np.ndarray):
        if docs.shape[0] != n_docs:
            msg = f"the corpus holds {docs.shape[0]} vectors but the judgements number {n_docs} documents"
            raise ValueError(msg)
        whole = len(rows) == n_docs
        return l2_normalize(np.array(docs if whole else docs[rows], dtype=np.float32, copy=True))
    parts, offset = [], 0
    for block in docs():
        lo, hi = np.searchsorted(rows, [offset, offset + len(block)])
        parts.append(np.array(block[rows[lo:hi] - offset], dtype=np.float32))
        offset += len(block)
    if offset != n_docs:
        msg = f"the corpus holds {offset} vectors but the judgements number {n_docs} documents"
        raise ValueError(msg)
    return l2_normalize(np.concatenate(parts))


class RetrievalObjective:
    """InfoNCE on labelled and pseudo items; per-query nDCG@10 validation on labelled queries."""

    batch_size: int | None = None

    def __init__(
        self,
        queries: np.ndarray,
        docs: DocVectors,
        qrels: Qrels,
        *,
        mode: str = "query",
        pseudo_queries: np.ndarray | None = None,
        pseudo_docs: np.ndarray | None = None,
        temperature: float = 0.05,
        n_hard: int = 8,
        seed: int = 0,
        device: str = "cpu",
    ) -> None:
        import torch

        self.device = device
        self.mode = mode
        self.temperature = temperature
        self._docs = docs
        q = l2_normalize(np.array(queries, dtype=np.float32))
        nq, self.dim = q.shape
        n_docs = qrels.n_docs
        self.queries, self.qrels = q, qrels
        positive = qrels.grades > 0
        lq, ld = qrels.query_rows[positive], qrels.doc_rows[positive]  # sorted by query
        pq = (
            np.zeros((0, self.dim), np.float32)
            if pseudo_queries is None
            else l2_normalize(np.array(pseudo_queries, dtype=np.float32))
        )
        pd = np.zeros(0, np.int64) if pseudo_docs is None else np.asarray(pseudo_docs, dtype=np.int64)
        n_lab, n_ps = len(lq), len(pq)
        self.item_q = np.ascontiguousarray(np.concatenate([q[lq], pq]))  # (n, d)
        item_doc = np.concatenate([ld, pd]).astype(np.int64)  # (n,) corpus rows
        self.is_pseudo = np.arange(n_lab + n_ps) >= n_lab
        self.validatable = ~self.is_pseudo
        self.groups = np.concatenate([lq, nq + np.arange(n_ps)])
        self.item_query = np.concatenate([lq, np.full(n_ps, -1)])
        n = len(item_doc)
        # known positives of every item (never a negative): every positive of a labelled item's query;
        # a pseudo item's own document
        starts = np.searchsorted(lq, lq, side="left")
        counts = np.searchsorted(lq, lq, side="right") - starts
        offs = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        mask_rows = np.concatenate([np.repeat(np.arange(n_lab), counts), np.arange(n_lab, n)])
        mask_cols = np.concatenate([ld[np.repeat(starts, counts) + offs], pd])
        rng = np.random.default_rng(seed)
        pool = rng.permutation(n_docs)[:POOL_SIZE]
        # one pass over the corpus: hard negatives of every item under the raw matrix (never a known
        # positive); for a large corpus also each labelled query's raw top VAL_TOP (validation candidates)
        #: whether :meth:`scores` validates on a candidate set (then :func:`fit` rescores with :meth:`exact_scores`)
        self.approximate = n_docs > FULL_VALIDATION_DOCS
        k_hard = max(0, min(n_hard, n_docs - 1))
        k_mine = max(k_hard, VAL_TOP) if self.approximate else k_hard
        mined = np.zeros((n, 0), dtype=np.int64)
        if k_mine:
            _, mined = stream_top_k(
                self.item_q, _normalized_blocks(docs), k_mine, exclude=(mask_rows, mask_cols)
            )
            if mined.shape[1] < k_mine:  # fewer documents that are not a known positive than asked for
                pad = np.full((n, k_mine - mined.shape[1]), -1, dtype=np.int64)
                mined = np.concatenate([mined, pad], axis=1)
        # an item with fewer negatives than k_hard (a query relevant to most of the corpus): its empty slots
        # point at its own positive with a masked score (never a negative, never a gradient)
        no_hard = mined[:, :k_hard] < 0
        mined = np.where(mined < 0, item_doc[:, None], mined)
        hard = mined[:, :k_hard]
        # the documents training and validation touch (the whole corpus when small), held once, normalised
        if not self.approximate:
            self.doc_rows = np.arange(n_docs)
        else:
            sample = rng.choice(n_docs, min(VAL_SAMPLE, n_docs), replace=False)
            self.doc_rows = np.unique(
                np.concatenate([pool, item_doc, mined[~self.is_pseudo].ravel(), qrels.doc_rows, sample])
            )
        d = _gather_normalized(docs, self.doc_rows, n_docs)
        local = np.full(n_docs, -1, dtype=np.int64)
        local[self.doc_rows] = np.arange(len(self.doc_rows))
        self.docs = d  # (m, d): corpus rows self.doc_rows, normalised
        self.local_qrels = Qrels.from_pairs(
            qrels.query_rows, local[qrels.doc_rows], qrels.grades, qrels.n_queries, len(self.doc_rows)
        )
        self.item_doc = local[item_doc]
        q_t, d_t = torch.from_numpy(self.item_q), torch.from_numpy(d)
        # the shared pool in a random order; raw scores of every item against it, known positives masked
        self.pool = local[pool]
        pool_col = np.full(n_docs, -1, dtype=np.int64)
        pool_col[pool] = np.arange(len(pool))
        r_pool = q_t @ d_t[torch.from_numpy(self.pool)].T  # (n, pool)
        inpool = pool_col[mask_cols] >= 0
        r_pool[torch.from_numpy(mask_rows[inpool]), torch.from_numpy(pool_col[mask_cols[inpool]])] = _MASKED
        self.r_pool = r_pool
        hard_local = local[hard]
        self.hard = torch.from_numpy(hard_local)
        r_hard = np.einsum("nd,nkd->nk", self.item_q, d[hard_local]).astype(np.float32)
        r_hard[no_hard] = _MASKED
        self.r_hard = torch.from_numpy(r_hard)
        self.r_pos = torch.from_numpy(np.einsum("nd,nd->n", self.item_q, d[self.item_doc]).astype(np.float32))
        self.q_t, self.d_t = q_t, d_t
        self.item_doc_t = torch.from_numpy(self.item_doc)
        self.pool_t = torch.from_numpy(self.pool)
        if device != "cpu":  # the step's tensors live on the device; validation stays in numpy
            for name in ("q_t", "d_t", "r_pool", "hard", "r_hard", "r_pos", "item_doc_t", "pool_t"):
                setattr(self, name, getattr(self, name).to(device))
        self._qrels_of: dict[tuple[bytes, bool], Qrels] = {}

    # -- training
    def train_items(self, hp: Mapping[str, Any], labelled: np.ndarray) -> np.ndarray:
        """The labelled rows given, plus every pseudo item when its weight is above 0."""
        pseudo = (
            np.flatnonzero(self.is_pseudo)
            if float(hp.get("pseudo_weight", 0.0)) > 0
            else np.zeros(0, np.int64)
        )
        return np.concatenate([labelled, pseudo]).astype(np.int64)

    def loss(
        self, lens: ResidualLens, items: np.ndarray, hp: Mapping[str, Any], gen: np.random.Generator
    ) -> torch.Tensor:
        """``mean(labelled InfoNCE) + pseudo_weight · mean(pseudo InfoNCE)`` over ``items``."""
        import torch

        ps = self.is_pseudo[items]
        if int(ps.sum()) > PSEUDO_PER_STEP:
            items = np.concatenate([items[~ps], gen.choice(items[ps], size=PSEUDO_PER_STEP, replace=False)])
            ps = self.is_pseudo[items]
        it = torch.from_numpy(items).to(self.device)
        s = min(WINDOW, len(self.pool))
        start = int(gen.integers(0, len(self.pool) - s + 1))
        window = self.pool_t[start : start + s]
        hard = self.hard.index_select(0, it)  # (m, K)
        m, k = hard.shape
        q = self.q_t[it]  # (m, d)
        u_q, v_q = lens.left(q), lens.right(q)  # (m, r)
        q_norm = lens.sq_norm(q, u_q, v_q, torch.ones(m, device=self.device)).clamp_min(1e-12).rsqrt()  # (m,)
        r_win = self.r_pool[:, start : start + s].index_select(0, it)  # (m, S) raw scores
        if self.mode != "symmetric" and lens.b is None:
            # full query lens: the document side of every term is the raw document itself
            d_pos = self.d_t.index_select(0, self.item_doc_t.index_select(0, it))  # (m, d)
            d_hard = self.d_t.index_select(0, hard.reshape(-1)).view(m, k, -1)  # (m, K, d)
            pos = self.r_pos[it] + (u_q * d_pos).sum(1)
            hard_s = self.r_hard.index_select(0, it) + torch.einsum("md,mkd->mk", u_q, d_hard)
            win_s = r_win + u_q @ self.d_t.index_select(0, window).T
        else:
            # only the documents this step touches are multiplied by B (and A)
            cand = torch.cat([self.item_doc_t[it], hard.reshape(-1), window])
            uniq, inv = torch.unique(cand, return_inverse=True)
            i_pos, i_hard, i_win = inv[:m], inv[m : m + m * k].reshape(m, k), inv[m + m * k :]
            dc = self.d_t.index_select(0, uniq)  # (c, d)
            v_d = lens.right(dc)  # (c, r)
            if self.mode == "symmetric":
                u_d = lens.left(dc)
                d_norm = (
                    lens.sq_norm(dc, u_d, v_d, torch.ones(len(uniq), device=self.device))
                    .clamp_min(1e-12)
                    .rsqrt()
                )  # (c,)
                g = lens.gram()
                u_qg = u_q if g is None else u_q @ g

                def delta(
                    cols: torch.Tensor,
                ) -> torch.Tensor:  # (m, j): cross terms with doc rows cols (m, j)
                    return (
                        torch.einsum("mr,mjr->mj", u_q, v_d[cols])
                        + torch.einsum("mr,mjr->mj", v_q, u_d[cols])
                        + torch.einsum("mr,mjr->mj", u_qg, u_d[cols])
                    )

                pos = (self.r_pos[it] + delta(i_pos[:, None])[:, 0]) * d_norm[i_pos]
                hard_s = (self.r_hard[it] + delta(i_hard)) * d_norm[i_hard]
                win_delta = u_q @ v_d[i_win].T + v_q @ u_d[i_win].T + u_qg @ u_d[i_win].T
                win_s = (r_win + win_delta) * d_norm[i_win][None, :]
            else:
                pos = self.r_pos[it] + (u_q * v_d[i_pos]).sum(1)
                hard_v = v_d.index_select(0, i_hard.reshape(-1)).view(m, k, -1)  # (m, K, r)
                hard_s = self.r_hard.index_select(0, it) + torch.einsum("mr,mkr->mk", u_q, hard_v)
                win_s = r_win + u_q @ v_d.index_select(0, i_win).T
        temperature = float(hp.get("temperature", self.temperature))
        logits = torch.cat([pos[:, None], hard_s, win_s], dim=1) * (q_norm[:, None] / temperature)
        per_item = torch.logsumexp(logits, dim=1) - logits[:, 0]  # (m,)
        n_ps = int(ps.sum())
        n_lab = len(items) - n_ps
        weight = float(hp.get("pseudo_weight", 0.0))
        if n_lab == 0:
            w = np.full(len(items), 1.0 / max(n_ps, 1))
        else:
            w = np.where(ps, weight / max(n_ps, 1), 1.0 / n_lab)
        return (per_item * torch.from_numpy(w.astype(np.float32)).to(self.device)).sum()

    # -- validation: the unit is a labelled query
    def score_units(self, items: np.ndarray) -> np.ndarray:
        """The query rows of labelled item rows ``items``."""
        return np.unique(self.item_query[items])

    def scores(self, w: np.ndarray, units: np.ndarray) -> np.ndarray:
        """Per-query nDCG@10 of query rows ``units`` through ``w``: over the whole corpus when it holds at
        most :data:`FULL_VALIDATION_DOCS` documents, else over the candidate set (judged documents, every
        labelled query's raw top :data:`VAL_TOP`, a fixed sample of :data:`VAL_SAMPLE`; see :meth:`exact_scores`)."""
        docs = (
            l2_normalize(self.docs @ w) if self.mode == "symmetric" else self.docs
        )  # held: already normalised
        blocks = (docs[s : s + BLOCK_ROWS] for s in range(0, len(docs), BLOCK_ROWS))
        return self._ndcg10(w, units, blocks, exact=False)

    def exact_scores(self, w: np.ndarray, units: np.ndarray) -> np.ndarray:
        """Per-query nDCG@10 of query rows ``units`` through ``w`` over the whole corpus, streamed once."""
        project = (lambda x: x @ w) if self.mode == "symmetric" else None
        return self._ndcg10(w, units, _normalized_blocks(self._docs, project=project), exact=True)

    def _ndcg10(
        self, w: np.ndarray, units: np.ndarray, blocks: Iterable[np.ndarray], *, exact: bool
    ) -> np.ndarray:
        _, ranked = stream_top_k(l2_normalize(self.queries[units] @ w), blocks, 10)
        return per_query_metrics(ranked, self._units_qrels(units, exact=exact), (10,))["ndcg@10"]

    def _units_qrels(self, units: np.ndarray, *, exact: bool) -> Qrels:
        key = (units.tobytes(), exact)
        if key not in self._qrels_of:
            self._qrels_of[key] = (self.qrels if exact else self.local_qrels).subset(units)
        return self._qrels_of[key]

    def metric(self, scores: np.ndarray, units: np.ndarray) -> float:
        """Mean nDCG@10."""
        return float(np.mean(scores))

    def uplift(
        self,
        lens: np.ndarray,
        raw: np.ndarray,
        units: np.ndarray,
        folds: np.ndarray,
        *,
        seed: int,
        alpha: float,
    ) -> Uplift:
        """Mean per-query gain with a normal CI (a mean over queries: folds need no special care)."""
        diff = np.asarray(lens, dtype=np.float64) - np.asarray(raw, dtype=np.float64)
        se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan")
        return normal_uplift(float(diff.mean()), se, alpha=alpha)


def train_retrieval(
    queries: np.ndarray,
    docs: DocVectors,
    qrels: Qrels,
    config: TrainConfig,
    *,
    pseudo_queries: np.ndarray | None = None,
    pseudo_docs: np.ndarray | None = None,
) -> tuple[FitResult, dict[str, Any]]:
    """Train a lens for retrieval, every setting chosen by k-fold cross-validation over queries.

    Args:
        queries: raw embeddings of the judged training queries ``(nq, d)`` float32.
        docs: raw embeddings of the whole corpus ``(N, d)`` float32: an array (a ``np.memmap`` is read
            block by block), or a callable returning an iterable of row blocks. A corpus above
            :data:`FULL_VALIDATION_DOCS` documents is read in full only to mine negatives and candidates once
            and for the final check: each step's cost depends on the labels, not on the corpus.
        qrels: judgements of those queries over the corpus.
        config: options (see :class:`TrainConfig`).
        pseudo_queries: raw (query-side) embeddings of pseudo-queries ``(P, d)``, training-only.
        pseudo_docs: the document row of each pseudo-query ``(P,)``.

    Returns:
        The fit result (weights ``(d, d_out)``) and a summary for the lens metadata.
    """
    mode = config.mode or "query"
    start = initial_matrix(docs, config.dim)  # identity, or PCA axes (d, k) when reducing
    reduce = start.shape[1] != start.shape[0]
    project = (lambda x: x @ start) if reduce else (lambda x: x)
    has_pseudo = pseudo_queries is not None and len(pseudo_queries) > 0
    doc_side: DocVectors = docs
    if reduce:
        doc_side = lambda: (b @ start for b in _raw_blocks(docs))  # noqa: E731
    obj = RetrievalObjective(
        project(queries),
        doc_side,
        qrels,
        mode=mode,
        pseudo_queries=project(pseudo_queries) if has_pseudo and pseudo_queries is not None else None,
        pseudo_docs=pseudo_docs if has_pseudo else None,
        temperature=config.temperature,
        n_hard=config.n_hard,
        seed=config.seed,
        device=resolve_device(config.device),
    )
    lrs = (config.lr,) if config.lr is not None else (WIDE_GRID_LRS if config.wide_grid else DEFAULT_LRS)
    ranks: tuple[int | str, ...] = (config.rank,) if config.rank is not None else DEFAULT_RANKS
    grid: dict[str, tuple[Any, ...]] = {"lr": lrs, "rank": ranks, "reg": (config.reg,)}
    if has_pseudo:
        weights = DEFAULT_PSEUDO_WEIGHTS
        grid["pseudo_weight"] = (
            weights if config.pseudo_queries == "auto" else tuple(w for w in weights if w > 0)
        )
    if config.wide_grid:
        grid["temperature"] = (0.05, 0.1)
    obj.batch_size = config.batch_size  # None: every training item in every step
    result = fit(obj, config, grid, desc="training (retrieval)")
    if reduce:
        result.weights = np.ascontiguousarray(start @ result.weights, dtype=np.float32)
    elif not result.trained:
        result.weights = start
    summary: dict[str, Any] = {
        "objective": "retrieval",
        "train_queries": int(queries.shape[0]),
        "train_pairs": int((qrels.grades > 0).sum()),
        "pseudo_queries": int(len(pseudo_queries)) if has_pseudo and pseudo_queries is not None else 0,
        "cv_metric": "ndcg@10",
    }
    return result, summary
