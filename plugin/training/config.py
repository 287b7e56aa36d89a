"""Training options, with defaults that work without tuning."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

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
        if self.mode is None:
            self.mode = "symmetric" if self.dim is not None else "query"
        elif self.mode == "query" and self.dim is not None:
            from embedlens.errors import EmbedlensInputError

            msg = "--dim needs --mode symmetric (a query lens keeps the dimension)"
            raise EmbedlensInputError(msg)

    def as_dict(self) -> dict[str, Any]:
        """JSON form for lens metadata."""
        return asdict(self)
