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

Objective = Literal["pairs", "retrieval"]
PairLoss = Literal["cosent", "mse"]


@dataclass
class TrainConfig:
    """Options of :func:`embedlens.training.train_pairs` and :func:`~embedlens.training.train_retrieval`.

    Attributes:
        mode: ``"symmetric"`` or ``"query"`` (see :class:`embedlens.Lens`); ``None`` (default) picks
            ``"query"`` — no re-indexing, and the better of the two on validation for SciFact and STS-B
            (see BENCHMARKS.md) — or ``"symmetric"`` when ``dim`` reduces the dimension.
        dim: output dimension; ``None`` keeps the input dimension (symmetric mode only may reduce).
        seed: seeds the split, the initialisation, batching and negative sampling.
        lr: Adam learning rate (3e-4: the best on validation for SciFact, STS-B and SNLI's default
            mode among 3e-4 / 1e-3 / 3e-3 in our runs, see BENCHMARKS.md; ``--search`` tries all three).
        max_epochs: upper bound on epochs; early stopping usually ends sooner.
        patience: epochs without a better validation metric before stopping.
        batch_size: training examples per step.
        reg: weight of ``||W - W0||²`` (pull toward the starting matrix).
        val_fraction: share of the training data (by query, or by text for pairs) held out for
            model selection.
        loss: pair objective: ``"cosent"`` (default) or ``"mse"`` (the OpenAI cookbook's).
        temperature: retrieval objective softmax temperature.
        n_random: random corpus negatives per step (retrieval).
        n_hard: FAISS-mined hard negatives per query per step (retrieval), re-mined each epoch.
        hard_pool: how deep to mine hard negatives (top-N of the current lens).
        negatives_ratio: synthetic negatives per positive when a pairs file has no negatives.
        refit: after choosing the epoch on validation, retrain on all training data for that
            many epochs (validation data then helps the final lens too).
        progress: show a tqdm bar.
        require_significant: ship the trained matrix only when its validation gain over the start
            is significant (paired bootstrap); False ships the best epoch regardless (for studies).
    """

    mode: Literal["symmetric", "query"] | None = None
    dim: int | None = None
    seed: int = 0
    lr: float = 3e-4
    max_epochs: int = 40
    patience: int = 6
    batch_size: int = 64
    reg: float = 0.0
    val_fraction: float = 0.15
    loss: PairLoss = "cosent"
    temperature: float = 0.05
    n_random: int = 512
    n_hard: int = 8
    hard_pool: int = 50
    negatives_ratio: float = 1.0
    refit: bool = True
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
        if self.dim is not None and not _is_int(self.dim, 1):
            raise bad("dim", self.dim, "an integer >= 1 (or None to keep the input dimension)")
        for name, low in (
            ("seed", 0),
            ("max_epochs", 1),
            ("patience", 1),
            ("batch_size", 1),
            ("n_random", 0),
            ("n_hard", 0),
            ("hard_pool", 1),
        ):
            if not _is_int(getattr(self, name), low):
                raise bad(name, getattr(self, name), f"an integer >= {low}")
        if not _is_int(self.seed, 0) or int(self.seed) > MAX_SEED:
            raise bad("seed", self.seed, f"an integer within 0..{MAX_SEED}")
        if not _is_real(self.lr) or not 0 < self.lr <= MAX_LR:
            raise bad("lr", self.lr, f"a number > 0 and <= {MAX_LR:g}")
        t_low, t_high = TEMPERATURE_RANGE
        if not _is_real(self.temperature) or not t_low <= self.temperature <= t_high:
            raise bad("temperature", self.temperature, f"a number within {t_low:g}..{t_high:g}")
        for name in ("reg", "negatives_ratio"):
            if not _is_real(getattr(self, name)) or not getattr(self, name) >= 0:
                raise bad(name, getattr(self, name), "a finite number >= 0")
        if not _is_real(self.val_fraction) or not 0 < self.val_fraction < 1:
            raise bad("val_fraction", self.val_fraction, "a number between 0 and 1 (exclusive)")

    def as_dict(self) -> dict[str, Any]:
        """JSON form for lens metadata."""
        return asdict(self)


#: the CLI flag of each option that has one (named in error messages).
_FLAGS = {
    "mode": "--mode",
    "dim": "--dim",
    "seed": "--seed",
    "lr": "--lr",
    "max_epochs": "--epochs",
    "batch_size": "--batch-size",
    "loss": "--loss",
    "temperature": "--temperature",
}


def _is_int(value: object, low: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= low


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
