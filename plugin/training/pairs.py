"""Pair objective: make the cosine of labelled pairs follow their labels.

Losses: CoSENT (default; every pair with a higher label must get a higher cosine than every pair
with a lower one, in the per-item "anchor" form computed in ``O(n log n)``) and MSE between cosine
and label (the OpenAI cookbook's loss). Validation: ROC AUC (binary labels) or Spearman (graded),
per fold of texts that share no text with the training side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from embedlens._arrays import l2_normalize, row_cosines
from embedlens._device import resolve_device
from embedlens.evaluation.metrics import best_threshold, roc_auc, spearman
from embedlens.evaluation.stats import Uplift, normal_uplift
from embedlens.lens import through
from embedlens.training.config import TrainConfig
from embedlens.training.loop import FitResult, fit, initial_matrix

if TYPE_CHECKING:
    import torch

    from embedlens.training.residual import ResidualLens

__all__ = ["PairsObjective", "cosent_per_item", "pair_cosines_through", "pair_score", "train_pairs"]

COSENT_SCALE = 20.0
#: learning rates tried by cross-validation when none is given (``wide_grid`` widens the list).
DEFAULT_LRS = (1e-3,)
WIDE_GRID_LRS = (3e-4, 1e-3, 3e-3, 1e-2)
#: ranks tried by cross-validation: a low-rank residual (small data) and the full matrix.
DEFAULT_RANKS: tuple[int | str, ...] = ("full", 32)


def pair_cosines_through(w: np.ndarray, a: np.ndarray, b: np.ndarray, *, mode: str) -> np.ndarray:
    """Cosine ``(n,)`` of each pair after the matrix ``w`` (``b`` stays raw in query mode)."""
    return row_cosines(*through(w, a, b, mode=mode))


def pair_score(cos: np.ndarray, labels: np.ndarray, *, binary: bool) -> float:
    """ROC AUC (binary labels) or Spearman (graded) of pair cosines."""
    return roc_auc(cos, labels > 0) if binary else spearman(cos, labels)


def cosent_per_item(cos: torch.Tensor, labels: torch.Tensor, scale: float = COSENT_SCALE) -> torch.Tensor:
    """Per-item CoSENT ``(n,)``: item ``i`` pays for every item ranked against the labels with it.

    ``loss_i = log(1 + Σ_{y_j<y_i} e^{s(c_j-c_i)}) + log(1 + Σ_{y_j>y_i} e^{s(c_i-c_j)})``, with
    prefix sums over the items sorted by label (float64: cosines are in [-1, 1], so the
    exponentials are bounded by ``e^{2s}``).
    """
    import torch

    n = cos.shape[0]
    y, order = torch.sort(labels)
    c = cos[order].double()
    lo = torch.searchsorted(y, y, right=False)  # items with a strictly lower label: [0, lo)
    hi = torch.searchsorted(y, y, right=True)  # strictly higher: [hi, n)
    zero = torch.zeros(1, dtype=c.dtype, device=c.device)
    cum_up = torch.cat([zero, torch.cumsum(torch.exp(scale * (c - 1)), 0)])
    cum_down = torch.cat([zero, torch.cumsum(torch.exp(-scale * (c + 1)), 0)])
    below = cum_up[lo]  # Σ_{y_j<y_i} e^{s(c_j-1)}
    above = cum_down[n] - cum_down[hi]  # Σ_{y_j>y_i} e^{-s(c_j+1)}
    t1 = torch.log1p(torch.exp(scale * (1 - c)) * below)
    t2 = torch.log1p(torch.exp(scale * (1 + c)) * above)
    out = torch.empty_like(c)
    out[order] = t1 + t2
    return out.float()


class PairsObjective:
    """CoSENT or MSE on labelled pairs; AUC (binary) or Spearman validation on held-out text groups."""

    def __init__(
        self,
        a: np.ndarray,
        b: np.ndarray,
        labels: np.ndarray,
        groups: np.ndarray,
        *,
        binary: bool,
        mode: str = "query",
        loss: str = "cosent",
        batch_size: int | None = None,
        device: str = "cpu",
    ) -> None:
        import torch

        self.device = device
        self.mode, self.binary, self.loss_kind = mode, binary, loss
        self.batch_size = batch_size
        self.a = l2_normalize(np.array(a, dtype=np.float32))
        self.b = l2_normalize(np.array(b, dtype=np.float32))
        self.labels = np.asarray(labels, dtype=np.float32)
        self.groups = np.asarray(groups)
        self.validatable = np.ones(len(self.labels), dtype=bool)
        self.dim = self.a.shape[1]
        lab = self.labels
        if loss == "mse" and not binary and float(np.ptp(lab)) > 0:
            lab = (lab - lab.min()) / float(np.ptp(lab)) * 2 - 1  # graded labels to [-1, 1]
        self.a_t, self.b_t = torch.from_numpy(self.a), torch.from_numpy(self.b)
        self.y_t = torch.from_numpy(np.ascontiguousarray(lab, dtype=np.float32))
        self.raw = torch.from_numpy(np.einsum("ij,ij->i", self.a, self.b).astype(np.float32))
        if device != "cpu":
            self.a_t, self.b_t, self.y_t, self.raw = (
                t.to(device) for t in (self.a_t, self.b_t, self.y_t, self.raw)
            )

    def cosines(self, lens: ResidualLens, it: torch.Tensor) -> torch.Tensor:
        """Cosines ``(m,)`` of pairs ``it`` through the lens, from raw dot products and rank-r terms."""
        import torch

        a, b = self.a_t[it], self.b_t[it]
        u_a, v_a, v_b = lens.left(a), lens.right(a), lens.right(b)
        ones = torch.ones(len(it), device=self.device)
        inv_a = lens.sq_norm(a, u_a, v_a, ones).clamp_min(1e-12).rsqrt()
        if self.mode == "symmetric":
            u_b = lens.left(b)
            inv_b = lens.sq_norm(b, u_b, v_b, ones).clamp_min(1e-12).rsqrt()
            return (self.raw[it] + lens.cross(u_a, v_a, u_b, v_b)) * inv_a * inv_b
        return (self.raw[it] + (u_a * v_b).sum(1)) * inv_a

    def train_items(self, hp: Mapping[str, Any], labelled: np.ndarray) -> np.ndarray:
        """The labelled rows given (pairs have no training-only items)."""
        return np.asarray(labelled, dtype=np.int64)

    def loss(
        self, lens: ResidualLens, items: np.ndarray, hp: Mapping[str, Any], gen: np.random.Generator
    ) -> torch.Tensor:
        """Mean CoSENT (or MSE) over pairs ``items``."""
        import torch

        it = torch.from_numpy(np.asarray(items, dtype=np.int64)).to(self.device)
        cos = self.cosines(lens, it)
        if self.loss_kind == "mse":
            return ((cos - self.y_t[it]) ** 2).mean()
        return cosent_per_item(cos, self.y_t[it]).mean()

    def score_units(self, items: np.ndarray) -> np.ndarray:
        """Pairs are their own validation units."""
        return np.asarray(items, dtype=np.int64)

    def scores(self, w: np.ndarray, units: np.ndarray) -> np.ndarray:
        """Cosines of pairs ``units`` through ``w``."""
        return pair_cosines_through(w, self.a[units], self.b[units], mode=self.mode)

    def metric(self, scores: np.ndarray, units: np.ndarray) -> float:
        """ROC AUC (binary) or Spearman (graded) of the cosines."""
        return pair_score(scores, self.labels[units], binary=self.binary)

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
        """Gain in the mean per-fold metric; its standard error from resampling pairs within each fold.

        AUC and Spearman are not means over pairs, and fold lenses put cosines on different scales:
        the metric is computed within each fold (as cross-validation chose it), never on cosines
        pooled across folds.
        """
        lab = self.labels[units]
        members = [np.flatnonzero(folds == f) for f in np.unique(folds)]

        def gain(parts: list[np.ndarray]) -> float:
            diffs = [
                pair_score(lens[i], lab[i], binary=self.binary)
                - pair_score(raw[i], lab[i], binary=self.binary)
                for i in parts
            ]
            return float(np.nanmean(diffs)) if np.isfinite(diffs).any() else float("nan")

        rng = np.random.default_rng(seed)
        boots = np.array([gain([rng.choice(m, size=len(m)) for m in members]) for _ in range(1000)])
        boots = boots[np.isfinite(boots)]
        full = gain(members)
        if boots.size < 2 or not np.isfinite(full):
            return Uplift(0.0, (0.0, 0.0), 1.0, False)
        return normal_uplift(full, float(boots.std(ddof=1)), alpha=alpha)


def train_pairs(
    a: np.ndarray,
    b: np.ndarray,
    labels: np.ndarray,
    config: TrainConfig,
    *,
    binary: bool,
    groups: np.ndarray,
) -> tuple[FitResult, dict[str, Any]]:
    """Train a lens on labelled pairs, every setting chosen by k-fold cross-validation over ``groups``.

    Args:
        a, b: raw embeddings of ``text_1`` (query side) and ``text_2`` ``(n, d)`` float32.
        labels: ``(n,)``: ±1 when ``binary``, graded scores otherwise.
        config: options (see :class:`TrainConfig`).
        binary: label kind (selects the validation metric: AUC or Spearman).
        groups: ``(n,)`` fold group of each pair: pairs that share a text must share a group.

    Returns:
        The fit result and a summary for the lens metadata; for binary labels it holds
        ``threshold``: the accuracy thresholds of raw and lens cosines, chosen on out-of-fold
        cosines (the lens's never come from pairs it trained on).
    """
    mode = config.mode or "query"
    start = initial_matrix(np.concatenate([a, b]), config.dim)
    reduce = start.shape[1] != start.shape[0]
    x, y = (a @ start, b @ start) if reduce else (a, b)
    if np.shape(groups) != np.shape(labels):
        msg = f"groups has shape {np.shape(groups)}; need one group per pair {np.shape(labels)}"
        raise ValueError(msg)
    obj = PairsObjective(
        x, y, labels, groups, binary=binary, mode=mode, loss=config.loss, batch_size=config.batch_size,
        device=resolve_device(config.device),
    )  # fmt: skip
    lrs = (config.lr,) if config.lr is not None else (WIDE_GRID_LRS if config.wide_grid else DEFAULT_LRS)
    ranks: tuple[int | str, ...] = (config.rank,) if config.rank is not None else DEFAULT_RANKS
    grid: dict[str, tuple[Any, ...]] = {"lr": lrs, "rank": ranks, "reg": (config.reg,)}
    result = fit(obj, config, grid, desc=f"training (pairs, {config.loss})")
    if reduce:
        result.weights = np.ascontiguousarray(start @ result.weights, dtype=np.float32)
    summary: dict[str, Any] = {
        "objective": "pairs",
        "loss": config.loss,
        "train_pairs": int(len(labels)),
        "cv_metric": "roc_auc" if binary else "spearman",
    }
    if binary:
        units = result.oof_units
        pos = np.asarray(labels)[units] > 0
        raw_cos = pair_cosines_through(np.eye(a.shape[1], dtype=np.float32), a[units], b[units], mode=mode)
        raw_thr, raw_acc = best_threshold(raw_cos, pos)  # raw never trains: every pair is out-of-sample
        lens_thr, lens_acc = best_threshold(result.oof_lens, pos)  # the start's cosines when not trained
        summary["threshold"] = {  # ±inf (everything one class) as ±2: beyond any cosine, and valid JSON
            "raw": float(np.clip(raw_thr, -2.0, 2.0)),
            "lens": float(np.clip(lens_thr, -2.0, 2.0)),
            "source": "out-of-fold cosines of the training pairs",
            "oof_accuracy_raw": float(raw_acc),
            "oof_accuracy_lens": float(lens_acc),
        }
    return result, summary
