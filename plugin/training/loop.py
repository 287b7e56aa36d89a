"""The one fit loop: k-fold cross-validated selection, a significance check, a refit on everything.

An *objective* (:class:`Objective`) owns the data of one task and knows its loss and its
validation metric; :func:`fit` knows nothing about tasks:

1. The labelled items are split into ``k`` folds by group (a query, or a connected component of
   texts), so no validation query or text is ever trained on. Training-only items (pseudo-queries)
   are on the training side of every fold.
2. For every point of a small grid (learning rate, pseudo-query weight, ...), the ``k`` fold lenses
   train in lockstep from the identity; every ``eval_every`` steps each is scored on its held-out
   fold. The point and the step count are chosen on the mean out-of-fold metric. The identity
   (step 0) is always a candidate, so nothing worse than raw on validation is ever chosen. Points
   within :data:`TIE_TOLERANCE` of the best count as tied, and a tie goes to the earlier point. A point
   stops after ``patience`` checkpoints without a gain above the tie tolerance, or as soon as it falls
   more than :data:`RACE_MARGIN` behind what an earlier point had reached by the same step count (a
   race: the time goes to the settings that can still win).
3. The chosen setting ships only if its gain over the identity on the *pooled* out-of-fold scores
   (every labelled item validated once) is significant at 5 % divided by the number of candidates
   compared (grid points × checkpoints: a Bonferroni correction for the choice among them), with a
   normal-approximation CI.
4. The shipped lens is refit on all items for the chosen number of steps.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from embedlens.datasets.splits import make_folds
from embedlens.evaluation.stats import Uplift
from embedlens.training.config import TrainConfig

if TYPE_CHECKING:
    import torch

    from embedlens.training.residual import ResidualLens

__all__ = ["FitResult", "Objective", "fit", "initial_matrix"]


class Objective(Protocol):
    """What :func:`fit` needs from a task (see :mod:`embedlens.training.retrieval` and ``.pairs``).

    An objective whose ``scores`` are an approximation (``approximate`` true: retrieval over a large
    corpus validates on a candidate set) also has ``exact_scores(w, units)``; :func:`fit` then rescores
    the start and the chosen setting's fold matrices with it before the significance check.
    """

    #: input dimension of the trained matrix.
    dim: int
    #: ``(n_items,)`` fold group of every item; the items of one group always share a fold.
    groups: np.ndarray
    #: ``(n_items,)`` items that may be validated on (labelled); the rest are training-only.
    validatable: np.ndarray
    #: items per step (None: every training item in every step).
    batch_size: int | None
    #: torch device of the step's tensors (the lens is trained there; matrices come back as numpy).
    device: str

    def loss(
        self, lens: ResidualLens, items: np.ndarray, hp: Mapping[str, Any], gen: np.random.Generator
    ) -> torch.Tensor:
        """Mean training loss over the item rows ``items``."""
        ...

    def train_items(self, hp: Mapping[str, Any], labelled: np.ndarray) -> np.ndarray:
        """The item rows trained on, given the labelled rows of the training side."""
        ...

    def score_units(self, items: np.ndarray) -> np.ndarray:
        """The validation units (queries, pairs) of the labelled item rows ``items``."""
        ...

    def scores(self, w: np.ndarray, units: np.ndarray) -> np.ndarray:
        """Per-unit validation scores ``(len(units),)`` of the matrix ``w``."""
        ...

    def metric(self, scores: np.ndarray, units: np.ndarray) -> float:
        """The validation metric (higher is better) of per-unit scores."""
        ...

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
        """The gain of ``lens`` over ``raw`` scores on the same units (``folds``: the fold of each unit), with a
        paired bootstrap CI at level ``alpha``; a metric that is not a mean over units is taken per fold."""
        ...


@dataclass
class FitResult:
    """What :func:`fit` chose and why.

    Attributes:
        weights: the shipped matrix ``(d_in, d_out)`` float32 (the start when nothing was shipped).
        trained: whether a trained matrix was shipped (False: the start, never worse than raw).
        chosen: the chosen grid point (learning rate, ...); empty when the start won.
        chosen_steps: optimisation steps of the chosen setting (0 = the start).
        cv_start: mean out-of-fold metric of the start.
        cv_best: mean out-of-fold metric of the chosen setting.
        uplift: pooled out-of-fold gain of the chosen setting over the start (None when the start won).
        reason: why this matrix was shipped, in words.
        curve: mean out-of-fold metric of the chosen grid point at each checkpoint: ``steps``, ``cv``.
        grid: every (grid point, steps) tried with its mean out-of-fold metric.
        folds: number of folds.
        oof_units: validation units in pooled order (every labelled unit once).
        oof_raw: out-of-fold scores of the start on ``oof_units``.
        oof_lens: out-of-fold scores of the chosen setting on ``oof_units`` (``oof_raw`` when the start won).
        seconds: wall time of the whole fit.
    """

    weights: np.ndarray
    trained: bool
    chosen: dict[str, Any]
    chosen_steps: int
    cv_start: float
    cv_best: float
    uplift: Uplift | None
    reason: str
    curve: list[dict[str, float]] = field(default_factory=list)
    grid: list[dict[str, Any]] = field(default_factory=list)
    folds: int = 0
    oof_units: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    oof_raw: np.ndarray = field(default_factory=lambda: np.zeros(0))
    oof_lens: np.ndarray = field(default_factory=lambda: np.zeros(0))
    seconds: float = 0.0

    def as_metadata(self) -> dict[str, Any]:
        """The lens-metadata form (JSON types only; the arrays stay out)."""
        return {
            "trained": self.trained,
            "chosen": self.chosen,
            "chosen_steps": self.chosen_steps,
            "cv_start": self.cv_start,
            "cv_best": self.cv_best,
            "cv_folds": self.folds,
            "cv_uplift": None if self.uplift is None else self.uplift.as_dict(),
            "reason": self.reason,
            "curve": self.curve,
            "grid": self.grid,
            "seconds": round(self.seconds, 2),
        }


def initial_matrix(x: np.ndarray | Callable[[], Iterable[np.ndarray]], dim: int | None) -> np.ndarray:
    """The starting matrix: identity ``(d, d)``, or the top-``dim`` principal axes ``(d, dim)`` of ``x``.

    ``x`` is an array ``(n, d)`` or a callable returning an iterable of row blocks (read in blocks
    either way: the scatter matrix is accumulated in float64). The PCA axes are orthonormal columns,
    so the start is an orthogonal projection.
    """
    blocks = (
        (x[s : s + 65536] for s in range(0, x.shape[0], 65536)) if isinstance(x, np.ndarray) else iter(x())
    )
    first = np.asarray(next(blocks, np.zeros((0, 0))), dtype=np.float64)
    if first.ndim != 2 or first.shape[0] == 0:
        msg = "no document vectors to start from"
        raise ValueError(msg)
    d = first.shape[1]
    if dim is None or dim == d:
        return np.eye(d, dtype=np.float32)
    if not 0 < dim < d:
        msg = f"--dim must be between 1 and the input dimension {d}, got {dim}"
        raise ValueError(msg)
    total, n, scatter = first.sum(0), first.shape[0], first.T @ first
    for block in blocks:
        b = np.asarray(block, dtype=np.float64)
        total, n, scatter = total + b.sum(0), n + b.shape[0], scatter + b.T @ b
    mean = total / n
    # eigenvectors of the (d, d) centred scatter matrix: a full orthonormal basis even with fewer texts than d
    _, vecs = np.linalg.eigh(scatter - n * np.outer(mean, mean))  # ascending eigenvalues
    return np.ascontiguousarray(vecs[:, ::-1][:, :dim].astype(np.float32))  # (d, dim)


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in order."""
    keys = list(grid)
    return [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*(grid[k] for k in keys))]


class _Run:
    """One lens being trained on one item set (a fold's training side, or everything)."""

    def __init__(self, obj: Objective, items: np.ndarray, hp: Mapping[str, Any], seed: int) -> None:
        import torch

        from embedlens.training.residual import ResidualLens

        self.obj, self.items, self.hp = obj, items, hp
        rank = hp.get("rank")
        self.lens = ResidualLens(obj.dim, None if rank in (None, "full") else int(rank), seed=seed).to(
            getattr(obj, "device", "cpu")
        )
        # Adam through torch's functional form: the same update as torch.optim.Adam, without the
        # optimizer class, whose first call imports torch._dynamo (about 2 s of every CLI run)
        self.lr = float(hp["lr"])
        self._params: list[torch.Tensor] = list(self.lens.parameters())
        self._moments = (
            [torch.zeros_like(p) for p in self._params],
            [torch.zeros_like(p) for p in self._params],
        )
        self._steps = [torch.tensor(0.0) for _ in self._params]
        self.gen = np.random.default_rng(seed)
        self.reg = float(hp.get("reg", 0.0))
        self._order = np.zeros(0, dtype=np.int64)
        self._pos = 0

    def _batch(self) -> np.ndarray:
        size = self.obj.batch_size
        if size is None or size >= len(self.items):
            return self.items
        if self._pos + size > len(self._order):  # a new epoch: a fresh permutation
            self._order, self._pos = self.gen.permutation(self.items), 0
        out = self._order[self._pos : self._pos + size]
        self._pos += size
        return out

    def step(self) -> float:
        loss = self.obj.loss(self.lens, self._batch(), self.hp, self.gen)
        if self.reg > 0:
            loss = loss + self.reg * self.lens.penalty()
        import torch
        from torch.optim.adam import adam

        grads = torch.autograd.grad(loss, self._params)
        with torch.no_grad():
            adam(
                self._params, list(grads), *self._moments, [], self._steps, foreach=False, amsgrad=False,
                beta1=0.9, beta2=0.999, lr=self.lr, weight_decay=0.0, eps=1e-8, maximize=False,
            )  # fmt: skip
        return float(loss.detach())


def fit(
    obj: Objective, config: TrainConfig, grid: Mapping[str, Sequence[Any]], *, desc: str = "training"
) -> FitResult:
    """Choose a grid point and a step count by k-fold CV, check significance on pooled OOF, refit.

    Args:
        obj: the task (data, loss, validation metric).
        config: ``folds``, ``max_steps``, ``eval_every``, ``patience``, ``seed``, ``progress``,
            ``require_significant``.
        grid: values to try for each hyper-parameter the objective or :class:`_Run` reads
            (``lr`` required; ``rank``, ``reg``, ``pseudo_weight``...).
        desc: progress-bar label.

    Raises:
        ValueError: fewer validation groups than folds.
    """
    import torch
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    k = config.folds
    if np.shape(obj.groups) != np.shape(obj.validatable):
        msg = f"groups has shape {np.shape(obj.groups)}; need one group per item {np.shape(obj.validatable)}"
        raise ValueError(msg)
    fold = make_folds(obj.groups, obj.validatable, k, config.seed)
    n_groups = len(np.unique(obj.groups[obj.validatable]))
    if n_groups < k:
        from embedlens.errors import EmbedlensInputError

        msg = (
            f"{k}-fold cross-validation needs at least {k} independent validation groups (queries with a relevant "
            f"document, or groups of pairs that share no text), got {n_groups}: add labels or lower --folds "
            "(TrainConfig(folds=...))"
        )
        raise EmbedlensInputError(msg)
    labelled = np.flatnonzero(obj.validatable)
    eye = np.eye(obj.dim, dtype=np.float32)
    units = [obj.score_units(np.flatnonzero(fold == f)) for f in range(k)]
    raw_scores = [obj.scores(eye, u) for u in units]
    raw_metric = np.array([obj.metric(s, u) for s, u in zip(raw_scores, units, strict=True)])
    defined = np.isfinite(raw_metric)  # a fold whose metric is undefined (one class only) is left out
    if not defined.any():
        msg = (
            "the validation metric is undefined in every fold (each fold needs both labels, or varied grades)"
        )
        raise ValueError(msg)
    cv_start = float(raw_metric[defined].mean())
    points = grid_points(grid)
    table: list[dict[str, Any]] = []
    # each point's best checkpoint: (mean OOF metric, steps, per-fold scores, per-fold matrices)
    point_best_at: list[tuple[float, int, list[np.ndarray], list[np.ndarray]]] = []
    curves: dict[int, list[dict[str, float]]] = {}
    every = min(config.eval_every, config.max_steps)
    checkpoints = config.max_steps // every
    # per earlier grid point: the best mean OOF metric it had reached by each checkpoint (the race's reference)
    reached: list[list[float]] = []
    bar = tqdm(total=len(points) * checkpoints, desc=desc, disable=not config.progress, leave=False)
    for pi, hp in enumerate(points):
        runs = [
            _Run(obj, obj.train_items(hp, labelled[fold[labelled] != f]), hp, config.seed + 1 + f)
            for f in range(k)
        ]
        curve = [{"steps": 0, "cv": cv_start}]
        point_best, since_best, patience_ref = cv_start, 0, cv_start
        best_by: list[float] = []
        at: tuple[float, int, list[np.ndarray], list[np.ndarray]] = (cv_start, 0, raw_scores, [])
        for c in range(1, checkpoints + 1):
            for run in runs:
                for _ in range(every):
                    run.step()
            matrices = [run.lens.matrix() for run in runs]
            if not all(np.isfinite(w).all() for w in matrices):
                raise FloatingPointError("a fold's matrix holds NaN or Inf (training diverged)")
            fold_scores = [obj.scores(w, units[f]) for f, w in enumerate(matrices)]
            cv = float(
                np.nanmean(
                    [obj.metric(s, units[f]) if defined[f] else np.nan for f, s in enumerate(fold_scores)]
                )
            )
            steps = c * every
            curve.append({"steps": steps, "cv": cv})
            table.append({**hp, "steps": steps, "cv": cv})
            if not np.isfinite(cv):
                raise FloatingPointError("cross-validation metric is not finite (training diverged)")
            bar.update(1)
            bar.set_postfix(cv=f"{cv:.4f}", best=f"{max([at[0]] + [b[0] for b in point_best_at]):.4f}")
            if cv > point_best + 1e-6:
                point_best = cv
                at = (cv, steps, fold_scores, matrices)
            # patience counts checkpoints without a gain above the tie tolerance: creeping by less cannot
            # change the choice, only the time it takes
            if cv > patience_ref + TIE_TOLERANCE:
                patience_ref, since_best = cv, 0
            else:
                since_best += 1
            best_by.append(point_best)
            leader = max((r[min(c, len(r)) - 1] for r in reached), default=-np.inf)
            stop = "patience" if since_best >= config.patience else None
            margin = RACE_MARGIN * (
                2 if c == 1 else 1
            )  # settings differ most in speed at the first checkpoint
            if stop is None and point_best < leader - margin:
                stop = f"behind an earlier setting by more than {margin:g} at {steps} steps"
            if stop is not None:
                table[-1]["stopped"] = stop
                bar.update(checkpoints - c)
                break
        curves[pi] = curve
        reached.append(best_by)
        point_best_at.append(at)
    bar.close()
    all_units = np.concatenate(units)
    chosen_pi = _choose(point_best_at, cv_start)
    exact = getattr(obj, "approximate", False) and chosen_pi is not None
    if exact:  # validation ran on a candidate set: the significance check rescores on everything
        raw_scores = [obj.exact_scores(eye, u) for u in units]  # type: ignore[attr-defined]
        cv, steps, _, matrices = point_best_at[chosen_pi]  # type: ignore[index]
        exact_best = [obj.exact_scores(w, u) for w, u in zip(matrices, units, strict=True)]  # type: ignore[attr-defined]
        point_best_at[chosen_pi] = (cv, steps, exact_best, matrices)  # type: ignore[index]
    oof_raw = np.concatenate(raw_scores)

    def result(weights: np.ndarray, pi: int | None, reason: str, **chosen: Any) -> FitResult:
        """The fit's outcome; ``chosen`` overrides what a shipped setting records (its point, steps, scores)."""
        fields: dict[str, Any] = {
            "trained": False, "chosen": {}, "chosen_steps": 0, "cv_best": cv_start, "uplift": None,
            "oof_lens": oof_raw, **chosen,
        }  # fmt: skip
        curve = curves.get(0 if pi is None else pi, [{"steps": 0, "cv": cv_start}])
        return FitResult(
            weights, cv_start=cv_start, reason=reason, curve=curve, grid=table, folds=k, oof_units=all_units,
            oof_raw=oof_raw, seconds=time.perf_counter() - t0, **fields,
        )  # fmt: skip

    start = "shipping the starting matrix (the identity; the PCA projection with --dim), never worse than raw"
    if chosen_pi is None:
        return result(
            eye,
            None,
            f"no setting beat the identity on mean {k}-fold out-of-fold validation ({cv_start:.4f}); {start}",
        )
    cv_best, steps, best_scores, _ = point_best_at[chosen_pi]
    hp = points[chosen_pi]
    oof_lens = np.concatenate(best_scores)
    # Bonferroni over every candidate compared on the same out-of-fold scores: each (setting, step count)
    candidates = sum(len(c) - 1 for c in curves.values())
    alpha = 0.05 / max(1, candidates)
    unit_fold = np.concatenate([np.full(len(u), f, dtype=np.int64) for f, u in enumerate(units)])
    gain = obj.uplift(oof_lens, oof_raw, all_units, unit_fold, seed=config.seed, alpha=alpha)
    lo, hi = gain.ci95
    setting = ", ".join(
        f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}" for key, value in hp.items()
    )
    level = f"{100 * (1 - alpha):.2f}% CI, Bonferroni over {candidates} candidates"
    if exact:
        level += "; checkpoints validated on a candidate set, this gain on the whole corpus"
    if config.require_significant and not lo > 0:
        reason = (
            f"best setting ({setting}, {steps} steps) reached {cv_best:.4f} on {k}-fold validation (identity "
            f"{cv_start:.4f}), but its pooled out-of-fold gain {gain.delta:+.4f} is not significant "
            f"({level} [{lo:+.4f}, {hi:+.4f}]); {start}"
        )
        return result(eye, chosen_pi, reason, uplift=gain)
    refit_steps = _refit_steps(obj, steps, k)
    final = _Run(obj, obj.train_items(hp, labelled), hp, config.seed)
    for _ in tqdm(range(refit_steps), desc="refit on all", disable=not config.progress, leave=False):
        final.step()
    reason = (
        f"{setting}, {steps} steps: {k}-fold validation {cv_start:.4f} -> {cv_best:.4f}; pooled out-of-fold "
        f"gain {gain.delta:+.4f} ({level} [{lo:+.4f}, {hi:+.4f}]); refit on all training data "
        f"for {refit_steps} steps"
    )
    return result(
        final.lens.matrix(), chosen_pi, reason, trained=True, chosen=hp, chosen_steps=steps, cv_best=cv_best,
        uplift=gain, oof_lens=oof_lens,
    )  # fmt: skip


#: settings whose mean out-of-fold metric is within this of the best count as tied; a tie goes to the
#: earlier grid point (the grids list the settings that use more training signal first). A gain below it
#: does not reset the patience either.
TIE_TOLERANCE = 0.002
#: the race between grid points: a setting stops once its best mean out-of-fold metric is more than
#: RACE_MARGIN (twice that at the first checkpoint, where settings differ most in speed) below what an
#: earlier setting had reached by the same step count; a slower setting within the margin runs on, and
#: patience still ends every setting.
RACE_MARGIN = 0.02


def _choose(
    point_best_at: Sequence[tuple[float, int, list[np.ndarray], list[np.ndarray]]], cv_start: float
) -> int | None:
    """Index of the chosen grid point (the first within :data:`TIE_TOLERANCE` of the best); None when
    no point beats the start."""
    top = max((cv for cv, _, _, _ in point_best_at), default=cv_start)
    if not top > cv_start + 1e-6:
        return None
    return next(
        pi for pi, (cv, steps, _, _) in enumerate(point_best_at) if steps > 0 and cv >= top - TIE_TOLERANCE
    )


def _refit_steps(obj: Objective, steps: int, k: int) -> int:
    """Steps of the refit: the same for full batches; the same number of epochs for mini-batches."""
    if obj.batch_size is None:
        return steps
    return int(round(steps * k / (k - 1)))
