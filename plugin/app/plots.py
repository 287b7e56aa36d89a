"""PNG plots (matplotlib, Agg backend): validation curve, cosine histograms, metric@k curves with bands, a summary."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_cosine_histograms", "plot_metric_at_k", "plot_report", "plot_validation_curve", "prewarm"]


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def prewarm() -> None:
    """Import matplotlib (about a second) in a background thread while the caller trains or evaluates.

    Not a daemon: an interpreter that exits meanwhile waits for the import rather than cutting it short.
    """
    import threading

    threading.Thread(target=_figure, name="embedlens-matplotlib-import").start()


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    import io

    from embedlens._atomic import atomic_write_bytes

    buf = io.BytesIO()
    titles = [fig._suptitle.get_text()] if fig._suptitle is not None else []
    titles += [ax.get_title() for ax in fig.axes if ax.get_title()]
    fig.canvas.draw()  # tick labels exist once drawn; category labels (the report's groups) are kept
    for ax in fig.axes:
        ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        if any(not t.replace(".", "").replace("−", "").replace("-", "").isdigit() for t in ticks):
            titles += ticks
        legend = ax.get_legend()
        if legend is not None:
            titles += [t.get_text() for t in legend.get_texts()]
    # the titles also go into the PNG's text chunk: the figure says what it shows to a machine as well
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Description": " | ".join(titles)})
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


def _binary(labels: np.ndarray) -> bool:
    return bool(np.isin(np.unique(labels), (-1.0, 1.0)).all())


def _cosine_bins(*arrays: np.ndarray) -> np.ndarray:
    """60 bins over the range the cosines actually take (with a small margin), not the whole [-1, 1]."""
    lo = min(float(np.min(a)) for a in arrays)
    hi = max(float(np.max(a)) for a in arrays)
    pad = 0.02 * max(hi - lo, 1e-3)
    return np.linspace(max(-1.0, lo - pad), min(1.0, hi + pad), 61)


def plot_cosine_histograms(
    cos_raw: np.ndarray,
    cos_lens: np.ndarray,
    labels: np.ndarray,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    """Pair cosines, raw (left) vs lens (right); writes ``path``.

    Binary labels: the cookbook's histograms of similar (+1) vs dissimilar (-1) pairs. Graded labels: one
    histogram per label band (the lowest, middle and highest third of the labels, their ranges in the legend).
    """
    plt = _figure()
    labels = np.asarray(labels, dtype=np.float64)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    bins = _cosine_bins(cos_raw, cos_lens)
    if _binary(labels):
        groups = [(labels > 0, "similar (+1)", "tab:blue"), (labels < 0, "dissimilar (-1)", "tab:red")]
    else:
        cuts = np.quantile(labels, [1 / 3, 2 / 3])
        band = np.digitize(labels, cuts, right=True)  # 0, 1, 2
        colors = ("tab:red", "tab:gray", "tab:blue")
        groups = []
        for b in range(3):
            rows = band == b
            if rows.any():
                lo, hi = labels[rows].min(), labels[rows].max()
                groups.append((rows, f"label {lo:.3g} to {hi:.3g}", colors[b]))
    for ax, cos, side in ((axes[0], cos_raw, "raw"), (axes[1], cos_lens, "lens")):
        for rows, name, color in groups:
            ax.hist(np.asarray(cos)[rows], bins=bins, alpha=0.55, label=name, color=color)
        ax.set_title(f"cosine similarity, {side}")
        ax.set_xlabel("cosine")
    axes[0].set_ylabel("pairs")
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _mean_band(values: np.ndarray) -> tuple[float, float, float]:
    """Mean of per-query values and its 95 % normal-approximation interval."""
    v = np.asarray(values, dtype=np.float64)
    m = float(v.mean()) if len(v) else float("nan")
    half = 1.96 * float(v.std(ddof=1)) / np.sqrt(len(v)) if len(v) > 1 else 0.0
    return m, m - half, m + half


def _groups_of(report: Any) -> list[tuple[str, np.ndarray]]:
    n = len(next(iter(report.per_query_raw.values())))
    out = [(f"all queries (n={n})", np.ones(n, dtype=bool))]
    seen = getattr(report, "seen", None)
    if seen is not None:
        seen = np.asarray(seen, dtype=bool)
        for name, rows in (("seen", seen), ("unseen", ~seen)):
            if rows.any():
                out.append((f"{name} (n={int(rows.sum())})", rows))
    return out


def plot_metric_at_k(
    report: Any,
    path: str | os.PathLike[str],
    metrics: Sequence[str] = ("ndcg", "recall"),
    *,
    title: str | None = None,
) -> Path:
    """metric@k, raw vs lens with 95 % bands, for all queries and the seen / unseen groups; writes ``path``.

    ``report`` is a :class:`~embedlens.evaluation.retrieval.RetrievalReport` (per-query values give the bands).
    One row per metric, one column per query group.
    """
    plt = _figure()
    groups = _groups_of(report)
    fig, axes = plt.subplots(
        len(metrics), len(groups), figsize=(4.2 * len(groups), 3.2 * len(metrics)), squeeze=False, sharex=True
    )
    for r, m in enumerate(metrics):
        ks = sorted(int(k.split("@")[1]) for k in report.per_query_raw if k.startswith(f"{m}@"))
        for c, (name, rows) in enumerate(groups):
            ax = axes[r][c]
            for side, per_query, marker in (
                ("raw", report.per_query_raw, "o"),
                ("lens", report.per_query_lens, "s"),
            ):
                bands = [_mean_band(per_query[f"{m}@{k}"][rows]) for k in ks]
                ax.plot(ks, [b[0] for b in bands], f"{marker}-", ms=4, label=side)
                ax.fill_between(ks, [b[1] for b in bands], [b[2] for b in bands], alpha=0.2)
            ax.set_xscale("log")
            ax.set_xticks(ks, [str(k) for k in ks])
            ax.set_title(f"{m}@k, {name}", fontsize=9)
            if r == len(metrics) - 1:
                ax.set_xlabel("k")
            if c == 0:
                ax.legend(fontsize=8, title="95% band", title_fontsize=7)
    fig.suptitle(title or "raw vs lens", fontsize=10)
    return _save(fig, path)


def plot_report(report: Any, path: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """One summary figure to paste into a pull request: the main metrics raw vs lens, per query group (retrieval)
    or for the pairs, each with the 95 % interval of the gain, and the verdict; writes ``path``."""
    plt = _figure()
    js = report.to_json()
    if js["task"] == "retrieval":
        rows: list[tuple[str, float, float, dict[str, Any]]] = [
            ("all", js["raw"]["ndcg@10"], js["lens"]["ndcg@10"], js["uplift"]["ndcg@10"])
        ]
        for g in ("seen", "unseen"):
            part = js.get("groups", {}).get(g, {})
            if part.get("n"):
                rows.append(
                    (
                        f"{g} (n={part['n']})",
                        part["raw"]["ndcg@10"],
                        part["lens"]["ndcg@10"],
                        part["uplift"]["ndcg@10"],
                    )
                )
        metric = "nDCG@10"
    else:
        names = [m for m in ("accuracy", "roc_auc", "spearman") if m in js["raw"] and m in js["uplift"]]
        rows = [(m, js["raw"][m], js["lens"][m], js["uplift"][m]) for m in names]
        metric = "score"
    fig, ax = plt.subplots(figsize=(7, 0.9 + 0.7 * len(rows)))
    y = np.arange(len(rows))[::-1]
    ax.barh(y + 0.18, [r[1] for r in rows], height=0.34, color="tab:gray", label="raw")
    ax.barh(y - 0.18, [r[2] for r in rows], height=0.34, color="tab:blue", label="lens")
    for yi, (_, raw, lens, u) in zip(y, rows, strict=True):
        lo, hi = u["ci95"]
        verdict = ("better" if u["delta"] > 0 else "worse") if u["significant"] else "not significant"
        ax.text(
            max(raw, lens) + 0.01,
            yi,
            f"{u['delta']:+.3f} [{lo:+.3f}, {hi:+.3f}] {verdict}",
            va="center",
            fontsize=8,
        )
    ax.set_yticks(y, [r[0] for r in rows])
    ax.set_xlim(0, 1.6)
    ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_xlabel(f"{metric} (gain with its 95% CI and verdict)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25 - 0.3 / len(rows)), ncol=2, fontsize=8)
    ax.set_title(title or "raw vs lens", fontsize=10)
    return _save(fig, path)
