"""Uncertainty of an uplift: paired bootstrap confidence intervals and a paired randomisation test."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

__all__ = ["Uplift", "normal_uplift", "paired_uplift", "paired_uplift_stat"]


@dataclass(frozen=True)
class Uplift:
    """``lens - raw`` on the same items, with a 95 % CI and a two-sided p-value."""

    delta: float
    ci95: tuple[float, float]
    p_value: float
    significant: bool

    def as_dict(self) -> dict[str, object]:
        """JSON form."""
        return {
            "delta": self.delta,
            "ci95": [self.ci95[0], self.ci95[1]],
            "p_value": self.p_value,
            "significant": self.significant,
        }


def paired_uplift(
    raw: np.ndarray, lens: np.ndarray, *, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05
) -> Uplift:
    """Paired bootstrap CI of ``mean(lens - raw)`` and a sign-flip randomisation test.

    Args:
        raw, lens: per-item scores ``(n,)`` on the same items in the same order.
        n_boot: bootstrap resamples (and sign-flip permutations).
        seed: RNG seed (results are reproducible).
        alpha: the test level; ``significant`` is ``p_value < alpha`` and the CI excludes 0.

    Raises:
        ValueError: when the arrays differ in shape or are empty.
    """
    raw = np.asarray(raw, dtype=np.float64)
    lens = np.asarray(lens, dtype=np.float64)
    if raw.shape != lens.shape or raw.ndim != 1 or raw.size == 0:
        msg = f"raw has shape {raw.shape} and lens has shape {lens.shape}; need equal non-empty (n,)"
        raise ValueError(msg)
    diff = lens - raw  # (n,)
    n = diff.size
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))  # (B, n)
    boots = diff[idx].mean(axis=1)  # (B,)
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    observed = abs(diff.mean())
    signs = rng.choice(np.array([-1.0, 1.0]), size=(n_boot, n))  # (B, n)
    flipped = np.abs((signs * diff).mean(axis=1))
    p = float((1 + np.sum(flipped >= observed - 1e-15)) / (n_boot + 1))
    if np.all(diff == 0):
        p = 1.0
    sig = p < alpha and not (lo <= 0.0 <= hi)
    return Uplift(float(diff.mean()), (float(lo), float(hi)), p, bool(sig))


def paired_uplift_stat(
    stat: Callable[[np.ndarray], float],
    n: int,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> Uplift:
    """Bootstrap CI for a non-additive statistic (AUC, Spearman) of ``lens - raw``.

    Args:
        stat: ``stat(indices) -> lens_value - raw_value`` computed on the resampled items.
        n: number of items.
        n_boot: resamples.
        seed: RNG seed.
        alpha: level; the p-value is the bootstrap two-sided share of resamples on the other
            side of zero (an approximation, stated as such in reports).
    """
    rng = np.random.default_rng(seed)
    full = float(stat(np.arange(n)))
    boots = np.array([stat(rng.integers(0, n, size=n)) for _ in range(n_boot)])
    boots = boots[np.isfinite(boots)]
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    p = float(min(1.0, 2 * min((boots <= 0).mean(), (boots >= 0).mean())))
    sig = p < alpha and not (lo <= 0.0 <= hi)
    return Uplift(full, (float(lo), float(hi)), p, bool(sig))


def normal_uplift(delta: float, se: float, *, alpha: float) -> Uplift:
    """A gain with a normal-approximation CI ``delta ± z·se`` and two-sided p-value at level ``alpha``.

    For small ``alpha`` (a Bonferroni-corrected level) bootstrap percentiles are too few to trust;
    the standard error is (the bootstrap's standard deviation, or ``sd/√n`` of per-item differences).
    """
    if not np.isfinite(delta) or not np.isfinite(se) or se <= 0:
        sig = bool(np.isfinite(delta) and delta > 0 and se == 0)
        return Uplift(
            float(delta) if np.isfinite(delta) else 0.0,
            (float(delta), float(delta)),
            0.0 if sig else 1.0,
            sig,
        )
    z = NormalDist().inv_cdf(1 - alpha / 2)  # the stdlib's normal: no scipy import on the training path
    p = math.erfc(abs(delta) / se / math.sqrt(2))  # two-sided; erfc keeps the far tail (1 - cdf would be 0)
    lo, hi = delta - z * se, delta + z * se
    return Uplift(float(delta), (float(lo), float(hi)), p, bool(p < alpha and lo > 0))
