"""Pair objective: make the cosine of labelled pairs follow their labels.

Losses: CoSENT (default; a ranking loss over all pairs of a batch: every pair with a higher label
must have a higher cosine) and MSE between cosine and label (the OpenAI cookbook's loss).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from embedlens.metrics import roc_auc, spearman
from embedlens.stats import paired_uplift_stat
from embedlens.training.config import TrainConfig
from embedlens.training.loop import FitResult, fit, initial_matrix

COSENT_SCALE = 20.0


def synthetic_negatives(
    text_1: list[str], text_2: list[str], *, ratio: float = 1.0, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Negative pairs made by re-pairing ``text_1[i]`` with ``text_2[j]`` of another pair (``j != i``).

    Call it on one split at a time so that no negative crosses the train/test boundary.
    Re-pairings that happen to recreate a known positive are dropped.

    Returns:
        ``(neg_1, neg_2)`` with about ``ratio * len(text_1)`` pairs.
    """
    n = len(text_1)
    if n < 2:
        return [], []
    rng = np.random.default_rng(seed)
    m = int(round(ratio * n))
    i = rng.integers(0, n, size=m)
    j = (i + rng.integers(1, n, size=m)) % n  # never the same pair
    known = set(zip(text_1, text_2, strict=True))
    keep = [
        (text_1[a], text_2[b])
        for a, b in zip(i.tolist(), j.tolist(), strict=True)
        if (text_1[a], text_2[b]) not in known and text_2[b] != text_2[a]
    ]
    return [a for a, _ in keep], [b for _, b in keep]


def pair_cosines_through(w: np.ndarray, a: np.ndarray, b: np.ndarray, *, mode: str) -> np.ndarray:
    """Cosine ``(n,)`` of each pair after the matrix ``w`` (``b`` stays raw in query mode)."""
    x = a @ w
    y = b @ w if mode == "symmetric" else b
    return np.einsum("ij,ij->i", x, y) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1) + 1e-12)


def pair_score(cos: np.ndarray, labels: np.ndarray, *, binary: bool) -> float:
    """ROC AUC (binary labels) or Spearman (graded) of pair cosines."""
    return roc_auc(cos, labels > 0) if binary else spearman(cos, labels)


def pair_val_metric(
    w: np.ndarray, a: np.ndarray, b: np.ndarray, labels: np.ndarray, *, mode: str, binary: bool
) -> float:
    """ROC AUC (binary labels) or Spearman (graded) of pair cosines through ``w``."""
    return pair_score(pair_cosines_through(w, a, b, mode=mode), labels, binary=binary)


def train_pairs(
    a: np.ndarray,
    b: np.ndarray,
    labels: np.ndarray,
    config: TrainConfig,
    *,
    binary: bool,
    val_mask: np.ndarray,
) -> tuple[FitResult, dict[str, Any]]:
    """Train a lens on labelled pairs.

    Args:
        a, b: raw embeddings of ``text_1`` and ``text_2`` ``(n, d)`` float32.
        labels: ``(n,)``: ±1 when ``binary``, graded scores otherwise.
        config: options (see :class:`TrainConfig`).
        binary: label kind (selects the validation metric: AUC or Spearman).
        val_mask: boolean ``(n,)``: pairs held out for model selection.
    """
    import torch
    import torch.nn.functional as F

    val_mask = np.asarray(val_mask, dtype=bool)
    tr = np.flatnonzero(~val_mask)
    va = np.flatnonzero(val_mask)
    if len(tr) < 2 or len(va) < 2:
        msg = f"need at least 2 training and 2 validation pairs, got {len(tr)} and {len(va)}"
        raise ValueError(msg)
    init = initial_matrix(np.concatenate([a, b]), config.dim)
    lab = labels.astype(np.float32)
    if config.loss == "mse":
        lo, hi = float(lab.min()), float(lab.max())
        target = lab if binary or hi == lo else (lab - lo) / (hi - lo) * 2 - 1  # to [-1, 1]
    else:
        target = lab
    a_t = torch.from_numpy(np.ascontiguousarray(a[tr], dtype=np.float32))
    b_t = torch.from_numpy(np.ascontiguousarray(b[tr], dtype=np.float32))
    y_t = torch.from_numpy(np.ascontiguousarray(target[tr]))

    def loss_fn(w: Any, idx: Any) -> Any:
        x = F.normalize(a_t[idx] @ w, dim=1)  # (B, k)
        y = F.normalize(b_t[idx] @ w if config.mode == "symmetric" else b_t[idx], dim=1)
        cos = (x * y).sum(dim=1)  # (B,)
        t = y_t[idx]
        if config.loss == "mse":
            return ((cos - t) ** 2).mean()
        diff = COSENT_SCALE * (cos[None, :] - cos[:, None])  # (B, B): cos_j - cos_i
        valid = t[:, None] > t[None, :]  # label_i > label_j
        terms = diff[valid]
        return torch.logsumexp(torch.cat([torch.zeros(1), terms]), dim=0)

    mode: str = config.mode or "query"  # resolved by TrainConfig; never None here

    def val_fn(w: np.ndarray) -> float:
        return pair_val_metric(w, a[va], b[va], labels[va], mode=mode, binary=binary)

    def accept(best: np.ndarray, start: np.ndarray) -> tuple[bool, str]:
        cos_best = pair_cosines_through(best, a[va], b[va], mode=mode)
        cos_start = pair_cosines_through(start, a[va], b[va], mode=mode)
        lab = labels[va]

        def diff(i: np.ndarray) -> float:
            return pair_score(cos_best[i], lab[i], binary=binary) - pair_score(
                cos_start[i], lab[i], binary=binary
            )

        u = paired_uplift_stat(diff, len(va), n_boot=300, seed=config.seed)
        lo, hi = u.ci95
        return lo > 0, f"the gain {u.delta:+.4f} is not significant (95% CI [{lo:+.4f}, {hi:+.4f}])"

    result = fit(
        init,
        len(tr),
        loss_fn,
        val_fn,
        config,
        accept=accept if config.require_significant else None,
        desc=f"training (pairs, {config.loss})",
    )
    summary: dict[str, Any] = {
        "objective": "pairs",
        "lr": config.lr,
        "loss": config.loss,
        "train_pairs": int(len(tr)),
        "val_pairs": int(len(va)),
        "val_metric": "roc_auc" if binary else "spearman",
        "val_start": result.curve[0]["val"],
        "val_best": result.best_val,
    }
    if config.refit and result.best_epoch > 0:
        a_t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        b_t = torch.from_numpy(np.ascontiguousarray(b, dtype=np.float32))
        y_t = torch.from_numpy(np.ascontiguousarray(target))
        refit = fit(init, len(a), loss_fn, val_fn, config, epochs=result.best_epoch, desc="refit")
        result = result.refitted(refit.weights)
        summary["refit"] = True
    return result, summary
