"""PNG plots (matplotlib, Agg backend): validation curve, cosine histograms, metric@k curves."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_validation_curve", "plot_cosine_histograms", "plot_metric_at_k"]


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    import io

    from embedlens._atomic import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _figure().close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def plot_validation_curve(
    curve: Sequence[dict[str, float]], path: str | os.PathLike[str], *, metric: str, chosen: int
) -> Path:
    """Mean out-of-fold validation metric per checkpoint, the chosen step count marked; writes ``path``.

    ``curve`` holds ``{"steps", "cv"}`` per checkpoint of the chosen setting (step 0 = the start);
    the start's level is drawn as a line, so a curve that never rises above it reads at a glance.
    """
    plt = _figure()
    steps = [c["steps"] for c in curve]
    values = [c["cv"] for c in curve]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, values, "o-", ms=3, label=f"mean out-of-fold {metric}")
    ax.axhline(values[0], color="tab:gray", ls=":", label="start (identity)")
    ax.axvline(chosen, color="tab:green", ls="--", label=f"chosen: {chosen} steps")
    ax.set_xlabel("optimisation steps")
    ax.set_ylabel(metric)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Cross-validation curve (step 0 = starting matrix)")
    return _save(fig, path)


def plot_cosine_histograms(
    cos_raw: np.ndarray, cos_lens: np.ndarray, labels: np.ndarray, path: str | os.PathLike[str]
) -> Path:
    """Cosine similarity of positive vs negative pairs, raw (left) vs lens (right): the cookbook's figure."""
    plt = _figure()
    pos = np.asarray(labels) > 0
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    bins = np.linspace(-1, 1, 61)
    for ax, cos, title in ((axes[0], cos_raw, "raw"), (axes[1], cos_lens, "lens")):
        ax.hist(cos[pos], bins=bins, alpha=0.6, label="similar (+1)", color="tab:blue")
        ax.hist(cos[~pos], bins=bins, alpha=0.6, label="dissimilar (-1)", color="tab:red")
        ax.set_title(f"cosine similarity, {title}")
        ax.set_xlabel("cosine")
    axes[0].set_ylabel("pairs")
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def plot_metric_at_k(
    raw: dict[str, float],
    lens: dict[str, float],
    path: str | os.PathLike[str],
    metrics: Sequence[str] = ("ndcg", "recall"),
) -> Path:
    """metric@k curves, raw vs lens, one panel per metric."""
    plt = _figure()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5))
    axes = np.atleast_1d(axes)
    for ax, m in zip(axes, metrics, strict=True):
        ks = sorted(int(k.split("@")[1]) for k in raw if k.startswith(f"{m}@"))
        ax.plot(ks, [raw[f"{m}@{k}"] for k in ks], "o-", label="raw")
        ax.plot(ks, [lens[f"{m}@{k}"] for k in ks], "s-", label="lens")
        ax.set_xscale("log")
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("k")
        ax.set_title(f"{m}@k")
        ax.legend(fontsize=8)
    return _save(fig, path)
