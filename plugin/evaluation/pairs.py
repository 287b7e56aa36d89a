"""Pair-task evaluation: does cosine similarity separate (or rank) the labelled pairs, raw vs lens?"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from embedlens._arrays import as_matrix, row_cosines
from embedlens.evaluation.metrics import accuracy_at_threshold, best_threshold, roc_auc, spearman
from embedlens.evaluation.stats import Uplift, paired_uplift, paired_uplift_stat

if TYPE_CHECKING:
    from embedlens.lens import Lens

__all__ = ["PairReport", "evaluate_pairs", "pair_cosines"]


def pair_cosines(a: np.ndarray, b: np.ndarray, lens: Lens | None = None) -> np.ndarray:
    """Cosine of each pair ``(n,)``: rows of ``a`` ``(n, d)`` vs rows of ``b``; through ``lens`` if given.

    With a query lens, side ``a`` is projected (the query side) and ``b`` stays raw.
    """
    a = as_matrix(a, name="text_1 embeddings")
    b = as_matrix(b, name="text_2 embeddings", dim=a.shape[1])
    if lens is not None:
        a, b = lens.project_queries(a), lens.project_documents(b)
    return row_cosines(a, b)


@dataclass
class PairReport:
    """Raw vs lens on labelled pairs.

    ``raw``/``lens`` hold ``accuracy`` (threshold chosen on the training pairs), ``roc_auc``,
    ``spearman`` (graded or binary labels), and ``cookbook_accuracy`` with ``cookbook_accuracy_se``:
    the best threshold picked *on the test pairs* — optimistic, reported for comparison only.
    """

    raw: dict[str, float]
    lens: dict[str, float]
    uplift: dict[str, Uplift]
    cos_raw: np.ndarray
    cos_lens: np.ndarray
    labels: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON report: ``raw``, ``lens``, ``uplift`` (``delta`` with ``ci95``), ``groups`` (empty), ``info``."""
        return {
            "task": "pairs",
            "raw": self.raw,
            "lens": self.lens,
            "uplift": {m: u.as_dict() for m, u in self.uplift.items()},
            "groups": {},
            "info": self.info,
        }


def _side(cos: np.ndarray, labels: np.ndarray, binary: bool, thr: float | None) -> dict[str, float]:
    out = {"spearman": spearman(cos, labels)}
    if binary:
        pos = labels > 0
        out["roc_auc"] = roc_auc(cos, pos)
        if thr is not None:
            out["accuracy"] = float(accuracy_at_threshold(cos, pos, thr).mean())
            out["threshold"] = thr
        _, acc = best_threshold(cos, pos)
        out["cookbook_accuracy"] = acc
        out["cookbook_accuracy_se"] = float(np.sqrt(acc * (1 - acc) / len(cos)))
    return out


def evaluate_pairs(
    test_a: np.ndarray,
    test_b: np.ndarray,
    test_labels: np.ndarray,
    lens: Lens,
    *,
    binary: bool,
    train_a: np.ndarray | None = None,
    train_b: np.ndarray | None = None,
    train_labels: np.ndarray | None = None,
    thresholds: tuple[float, float] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> PairReport:
    """Evaluate pairs raw vs lens.

    Args:
        test_a, test_b: test pair embeddings ``(n, d)``.
        test_labels: ``(n,)``; ±1 when ``binary``, graded scores otherwise.
        lens: the lens.
        binary: whether labels are ±1 (accuracy, AUC) or graded (Spearman only).
        train_a, train_b, train_labels: training pairs, used only to choose the accuracy
            threshold (per side: raw threshold from raw cosines, lens threshold from lens cosines)
            when ``thresholds`` is not given. The lens has seen these pairs, so its threshold is
            optimistic: lenses trained by embedlens carry out-of-fold ``thresholds`` instead.
        thresholds: ``(raw, lens)`` accuracy thresholds chosen on data the lens did not train on
            (the lens metadata's ``training.threshold``, out-of-fold cosines).
        n_boot: bootstrap resamples.
        seed: RNG seed.
    """
    labels = np.asarray(test_labels, dtype=np.float64)
    cos_raw = pair_cosines(test_a, test_b)
    cos_lens = pair_cosines(test_a, test_b, lens)
    thr_raw = thr_lens = None
    if binary and thresholds is not None:
        thr_raw, thr_lens = float(thresholds[0]), float(thresholds[1])
    elif binary and train_a is not None and train_b is not None and train_labels is not None:
        pos_tr = np.asarray(train_labels) > 0
        thr_raw, _ = best_threshold(pair_cosines(train_a, train_b), pos_tr)
        thr_lens, _ = best_threshold(pair_cosines(train_a, train_b, lens), pos_tr)
    raw = _side(cos_raw, labels, binary, thr_raw)
    lns = _side(cos_lens, labels, binary, thr_lens)
    uplift: dict[str, Uplift] = {}
    n = len(labels)
    if binary:
        pos = labels > 0
        if thr_raw is not None and thr_lens is not None:
            uplift["accuracy"] = paired_uplift(
                accuracy_at_threshold(cos_raw, pos, thr_raw),
                accuracy_at_threshold(cos_lens, pos, thr_lens),
                n_boot=n_boot,
                seed=seed,
            )
        uplift["roc_auc"] = paired_uplift_stat(
            lambda i: roc_auc(cos_lens[i], pos[i]) - roc_auc(cos_raw[i], pos[i]), n, n_boot=n_boot, seed=seed
        )
    uplift["spearman"] = paired_uplift_stat(
        lambda i: spearman(cos_lens[i], labels[i]) - spearman(cos_raw[i], labels[i]),
        n,
        n_boot=n_boot,
        seed=seed,
    )
    info = {"pairs": n, "binary": binary, "lens_mode": lens.mode}
    return PairReport(raw, lns, uplift, cos_raw, cos_lens, labels, info)
