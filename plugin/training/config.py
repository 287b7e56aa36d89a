"""Training options, with defaults that work without tuning."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Any, Literal

#: bounds of the options that would overflow (seed) or make training diverge (lr, temperature).
MAX_SEED = 2**32 - 1
MAX_LR = 10.0
TEMPERATURE_RANGE = (1e-3, 10.0)

PairLoss = Literal["cosent", "mse"]
PseudoQueries = Literal["auto", "titles", "leads", "off"]


@dataclass
class TrainConfig:
    """Options of :func:`embedlens.training.train_pairs` and :func:`~embedlens.training.train_retrieval`.

    Every option has a default that works without tuning; the learning rate and the pseudo-query
    weight are chosen by k-fold cross-validation among a few values unless given.

    Attributes:
        mode: ``"symmetric"`` or ``"query"`` (see :class:`embedlens.Lens`); ``None`` (default) picks
            ``"query"`` (no re-indexing) or ``"symmetric"`` when ``dim`` reduces the dimension.
        dim: output dimension; ``None`` keeps the input dimension (symmetric mode only may reduce).
        seed: seeds the folds, the initialisation, batching and negative sampling.
        lr: Adam learning rate; ``None`` (default) chooses among the objective's values by CV.
        rank: rank ``r`` of the residual ``W = I + A·Bᵀ`` (the inductive bias for small data);
            ``rank >= d`` trains the full matrix ``W = I + M``; ``None`` (default) chooses between
            rank 32 and the full matrix by CV.
        reg: weight of ``||W - I||²`` (an extra pull toward the start; 0 = none).
        folds: k of the k-fold cross-validation that chooses the settings and the step count.
        max_steps: upper bound on optimisation steps per fold; early stopping usually ends sooner.
        eval_every: steps between two validations (the step count is chosen among these checkpoints;
            ``max_steps`` when smaller).
        patience: checkpoints without a better mean out-of-fold metric (by more than the tie tolerance,
            0.002) before a setting stops; a setting far behind an earlier one stops sooner (see
            :mod:`embedlens.training.loop`).
        batch_size: items per step; ``None`` (default) uses the objective's (full batch for retrieval).
        loss: pair objective: ``"cosent"`` (default) or ``"mse"`` (the OpenAI cookbook's).
        temperature: retrieval objective softmax temperature.
        n_hard: hard negatives per query (retrieval), mined once under the raw matrix.
        negatives_ratio: synthetic negatives per positive when a pairs file has no negatives.
        pseudo_queries: retrieval: ``"auto"`` (default: document titles, else leading sentences, as
            extra training queries, their weight 5 or 0 chosen by CV), ``"titles"``, ``"leads"``
            (always those, weight chosen by CV) or ``"off"``.
        wide_grid: widen the CV grid (more learning rates; for retrieval also temperatures 0.05 and 0.1).
        device: where the lens trains: ``"auto"`` (default: a CUDA GPU when torch sees one, else the CPU),
            ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (refused when that GPU is not there).
        progress: show a tqdm bar.
        require_significant: ship the trained matrix only when its pooled out-of-fold gain over the
            start is significant; False ships the best setting regardless (for studies).
    """

    mode: Literal["symmetric", "query"] | None = None
    dim: int | None = None
    seed: int = 0
    lr: float | None = None
    rank: int | None = None
    reg: float = 0.0
    folds: int = 5
    max_steps: int = 300
    eval_every: int = 10
    patience: int = 2
    batch_size: int | None = None
    loss: PairLoss = "cosent"
    temperature: float = 0.05
    n_hard: int = 8
    negatives_ratio: float = 1.0
    pseudo_queries: PseudoQueries = "auto"
    wide_grid: bool = False
    device: str = "auto"
    progress: bool = True
    require_significant: bool = True

    def __post_init__(self) -> None:
        self.validate()
        if self.mode is None:
            self.mode = "symmetric" if self.dim is not None else "query"
        elif self.mode == "query" and self.dim is not None:
            from embedlens.errors import EmbedlensInputError

            msg = "--dim needs --mode symmetric (a query lens keeps the dimension)"
            raise EmbedlensInputError(msg)

    def validate(self) -> None:
        """Check every option's type and range (run on construction and by :func:`dataclasses.replace`).

        Raises:
            EmbedlensInputError: naming the option (and its CLI flag) and the value given.
        """
        from embedlens.errors import EmbedlensInputError

        def bad(name: str, value: object, want: str) -> EmbedlensInputError:
            flag = _FLAGS.get(name)
            label = f"{flag} ({name})" if flag else name
            return EmbedlensInputError(f"{label} must be {want}, got {value!r}")

        if self.mode not in (None, "symmetric", "query"):
            raise bad("mode", self.mode, "'symmetric' or 'query'")
        if self.loss not in ("cosent", "mse"):
            raise bad("loss", self.loss, "'cosent' or 'mse'")
        if self.pseudo_queries not in ("auto", "titles", "leads", "off"):
            raise bad("pseudo_queries", self.pseudo_queries, "'auto', 'titles', 'leads' or 'off'")
        for name in ("wide_grid", "progress", "require_significant"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, getattr(self, name), "True or False")
        from embedlens._device import check_device_spec

        try:
            check_device_spec(self.device)
        except EmbedlensInputError:
            raise bad("device", self.device, "'auto', 'cpu', 'cuda' or 'cuda:N'") from None
        if self.batch_size is not None and not _is_int(self.batch_size, 2):
            raise bad("batch_size", self.batch_size, "an integer >= 2 (or None for the objective's default)")
        if self.rank is not None and not _is_int(self.rank, 1):
            raise bad("rank", self.rank, "an integer >= 1 (or None to choose by cross-validation)")
        if self.dim is not None and not _is_int(self.dim, 1):
            raise bad("dim", self.dim, "an integer >= 1 (or None to keep the input dimension)")
        for name, low in (
            ("seed", 0),
            ("folds", 2),
            ("max_steps", 1),
            ("eval_every", 1),
            ("patience", 1),
            ("n_hard", 0),
        ):
            if not _is_int(getattr(self, name), low):
                raise bad(name, getattr(self, name), f"an integer >= {low}")
        if not _is_int(self.seed, 0) or int(self.seed) > MAX_SEED:
            raise bad("seed", self.seed, f"an integer within 0..{MAX_SEED}")
        if self.lr is not None and (not _is_real(self.lr) or not 0 < self.lr <= MAX_LR):
            raise bad(
                "lr", self.lr, f"a number > 0 and <= {MAX_LR:g} (or None to choose by cross-validation)"
            )
        t_low, t_high = TEMPERATURE_RANGE
        if not _is_real(self.temperature) or not t_low <= self.temperature <= t_high:
            raise bad("temperature", self.temperature, f"a number within {t_low:g}..{t_high:g}")
        for name in ("reg", "negatives_ratio"):
            if not _is_real(getattr(self, name)) or not getattr(self, name) >= 0:
                raise bad(name, getattr(self, name), "a finite number >= 0")

    def as_dict(self) -> dict[str, Any]:
        """JSON form for lens metadata."""
        return asdict(self)


#: the CLI flag of each option that has one (named in error messages).
_FLAGS = {
    "mode": "--mode",
    "dim": "--dim",
    "seed": "--seed",
    "lr": "--lr",
    "max_steps": "--max-steps",
    "rank": "--rank",
    "folds": "--folds",
    "pseudo_queries": "--pseudo-queries",
    "batch_size": "--batch-size",
    "loss": "--loss",
    "temperature": "--temperature",
    "device": "--device",
}


def _is_int(value: object, low: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= low


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
