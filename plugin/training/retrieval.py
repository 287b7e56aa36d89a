"""Retrieval objective: InfoNCE over (query, relevant document) pairs.

Each step scores a batch of queries against their positives (in-batch negatives for the other
queries), ``n_random`` random corpus documents and ``n_hard`` hard negatives per query mined with
FAISS under the current lens (re-mined every epoch). Known positives of a query are never used as
its negatives.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from embedlens.evaluation.retrieval import QrelsIndex, build_index, per_query_metrics, search
from embedlens.stats import paired_uplift
from embedlens.training.config import TrainConfig
from embedlens.training.loop import FitResult, fit, initial_matrix


def retrieval_ndcg10(
    w: np.ndarray, queries: np.ndarray, docs: np.ndarray, qrels: QrelsIndex, *, mode: str
) -> np.ndarray:
    """Per-query nDCG@10 ``(n,)`` of ``queries`` ``(n, d)`` against all ``docs`` ``(N, d)`` through ``w``."""
    doc_side = docs @ w if mode == "symmetric" else docs
    index = build_index(doc_side)
    ranked = search(index, queries @ w, 10)
    return per_query_metrics(ranked, qrels, (10,))["ndcg@10"]


def train_retrieval(
    queries: np.ndarray,
    docs: np.ndarray,
    qrels: QrelsIndex,
    config: TrainConfig,
    *,
    val_rows: np.ndarray,
) -> tuple[FitResult, dict[str, Any]]:
    """Train a lens for retrieval.

    Args:
        queries: raw embeddings of the judged training queries ``(nq, d)`` float32.
        docs: raw embeddings of the whole corpus ``(N, d)`` float32.
        qrels: judgements of those queries over the corpus.
        config: options (see :class:`TrainConfig`).
        val_rows: boolean ``(nq,)``: queries held out for model selection.

    Returns:
        The fit result and a summary (validation metric of the start and of the chosen lens).
    """
    import torch
    import torch.nn.functional as F

    nq, d = queries.shape
    n_docs = docs.shape[0]
    q_all = qrels.keys // n_docs
    d_all = qrels.keys % n_docs
    positive = qrels.grades > 0
    val_rows = np.asarray(val_rows, dtype=bool)
    if val_rows.all() or not val_rows.any():
        msg = f"validation split must leave training queries on both sides (val {int(val_rows.sum())}/{nq})"
        raise ValueError(msg)
    train_pairs = positive & ~val_rows[q_all]
    pq, pd = q_all[train_pairs], d_all[train_pairs]  # (P,) training (query, doc) rows
    pos_keys = qrels.keys[positive]  # sorted
    val_q = np.flatnonzero(val_rows)
    val_qrels = _subset_qrels(qrels, val_q)
    train_q = np.flatnonzero(~val_rows)

    init = initial_matrix(docs, config.dim)
    q_t = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    d_t = torch.from_numpy(np.ascontiguousarray(docs, dtype=np.float32))
    pq_t, pd_t = torch.from_numpy(pq), torch.from_numpy(pd)
    rng = np.random.default_rng(config.seed)
    hard = np.zeros((nq, 0), dtype=np.int64)

    def mine(w: np.ndarray, epoch: int) -> None:
        nonlocal hard
        if config.n_hard <= 0:
            return
        doc_side = docs @ w if config.mode == "symmetric" else docs
        ranked = search(build_index(doc_side), queries[train_q] @ w, config.hard_pool + 10)
        keys = train_q[:, None].astype(np.int64) * n_docs + ranked
        pos = np.searchsorted(pos_keys, keys).clip(0, len(pos_keys) - 1)
        is_pos = (pos_keys[pos] == keys) | (ranked < 0)
        ranked = np.where(is_pos, -1, ranked)
        # keep the first hard_pool non-positive ids per query (stable sort moves -1 to the end)
        order = np.argsort(ranked < 0, axis=1, kind="stable")
        pool = np.take_along_axis(ranked, order, axis=1)[:, : config.hard_pool]
        pool = np.where(pool < 0, rng.integers(0, n_docs, size=pool.shape), pool)
        hard = np.zeros((nq, config.hard_pool), dtype=np.int64)
        hard[train_q] = pool

    def loss_fn(w: Any, idx: Any) -> Any:
        bq, bd = pq_t[idx], pd_t[idx]  # (B,)
        b = bq.shape[0]
        parts = [bd.numpy(), rng.integers(0, n_docs, size=config.n_random)]
        if hard.shape[1]:
            cols = rng.integers(0, hard.shape[1], size=(b, config.n_hard))
            parts.append(hard[bq.numpy()[:, None], cols].ravel())
        cand = np.concatenate(parts)  # (C,) candidate doc rows; first B are the positives
        keys = bq.numpy()[:, None].astype(np.int64) * n_docs + cand[None, :]  # (B, C)
        pos = np.searchsorted(pos_keys, keys).clip(0, len(pos_keys) - 1)
        mask = pos_keys[pos] == keys  # known positives...
        mask[np.arange(b), np.arange(b)] = False  # ...except each query's own target
        qv = F.normalize(q_t[bq] @ w, dim=1)  # (B, k)
        dc = d_t[torch.from_numpy(cand)]  # (C, d)
        dv = F.normalize(dc @ w if config.mode == "symmetric" else dc, dim=1)  # (C, k)
        logits = qv @ dv.T / config.temperature  # (B, C)
        logits = logits.masked_fill(torch.from_numpy(mask), float("-inf"))
        return F.cross_entropy(logits, torch.arange(b))

    mode: str = config.mode or "query"  # resolved by TrainConfig; never None here

    def val_fn(w: np.ndarray) -> float:
        return float(retrieval_ndcg10(w, queries[val_q], docs, val_qrels, mode=mode).mean())

    def accept(best: np.ndarray, start: np.ndarray) -> tuple[bool, str]:
        per_start = retrieval_ndcg10(start, queries[val_q], docs, val_qrels, mode=mode)
        per_best = retrieval_ndcg10(best, queries[val_q], docs, val_qrels, mode=mode)
        u = paired_uplift(per_start, per_best, seed=config.seed)
        lo, hi = u.ci95
        return u.ci95[0] > 0, f"the gain {u.delta:+.4f} is not significant (95% CI [{lo:+.4f}, {hi:+.4f}])"

    result = fit(
        init,
        len(pq),
        loss_fn,
        val_fn,
        config,
        on_epoch_start=mine,
        accept=accept if config.require_significant else None,
        desc="training (retrieval)",
    )
    summary: dict[str, Any] = {
        "objective": "retrieval",
        "lr": config.lr,
        "train_queries": int(len(train_q)),
        "val_queries": int(len(val_q)),
        "train_pairs": int(len(pq)),
        "val_metric": "ndcg@10",
        "val_start": result.curve[0]["val"],
        "val_best": result.best_val,
    }
    if config.refit and result.best_epoch > 0:
        all_pairs = positive
        pq_t, pd_t = torch.from_numpy(q_all[all_pairs]), torch.from_numpy(d_all[all_pairs])
        train_q = np.arange(nq)
        refit = fit(
            init,
            int(all_pairs.sum()),
            loss_fn,
            val_fn,
            config,
            epochs=result.best_epoch,
            on_epoch_start=mine,
            desc="refit (train + val)",
        )
        result = result.refitted(refit.weights)
        summary["refit"] = True
    return result, summary


def _subset_qrels(qrels: QrelsIndex, rows: np.ndarray) -> QrelsIndex:
    q = qrels.keys // qrels.n_docs
    d = qrels.keys % qrels.n_docs
    new_row = np.full(qrels.n_queries, -1, dtype=np.int64)
    new_row[rows] = np.arange(len(rows))
    keep = new_row[q] >= 0
    return QrelsIndex.from_pairs(new_row[q[keep]], d[keep], qrels.grades[keep], len(rows), qrels.n_docs)
