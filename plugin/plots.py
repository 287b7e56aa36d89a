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
    """Validation metric and training loss per epoch, the chosen epoch marked; writes ``path``."""
    plt = _figure()
    epochs = [c["epoch"] for c in curve]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(epochs, [c["val"] for c in curve], "o-", label=f"validation {metric}")
    ax.axvline(chosen, color="tab:green", ls="--", label=f"chosen epoch {chosen}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax2 = ax.twinx()
    ax2.plot(
        epochs[1:], [c["train_loss"] for c in curve[1:]], color="tab:gray", alpha=0.6, label="train loss"
    )
    ax2.set_ylabel("train loss")
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
    ax.legend(lines, labels, loc="lower right", fontsize=8)
    ax.set_title("Validation curve (epoch 0 = starting matrix)")
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
