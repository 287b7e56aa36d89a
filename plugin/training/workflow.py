"""The train workflow: a BEIR directory or a pairs file and a base model (through the cache) → a lens.

Data flows one way: texts → base embedder (through the cache) → objective → :func:`fit` → :class:`Lens`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from embedlens.cache import CachedEmbedder, as_cached
from embedlens.datasets import (
    BeirDataset,
    DataSource,
    PairsDataset,
    as_dataset,
    data_name,
    pair_folds,
    pairs_training_part,
    with_negatives,
)
from embedlens.errors import EmbedlensInputError
from embedlens.index import Qrels
from embedlens.lens import Lens, compute_fingerprint
from embedlens.training.config import TrainConfig

__all__ = [
    "MAX_PSEUDO_QUERIES",
    "TrainOutcome",
    "TrainingDivergedError",
    "pseudo_query_texts",
    "train_lens",
    "training_inputs",
    "training_texts",
]


@dataclass
class TrainOutcome:
    """A trained lens and what happened while training it."""

    lens: Lens
    curve: list[dict[str, float]]
    summary: dict[str, Any]


def train_lens(
    data: DataSource,
    embedder: object = None,
    config: TrainConfig | None = None,
    *,
    objective: str | None = None,
) -> TrainOutcome:
    """Train a lens on retrieval judgements (their ``train`` split) or labelled pairs (their train split).

    Args:
        data: a BEIR directory or a pairs file, or the same in memory: a :class:`BeirDataset` (e.g. from
            :func:`~embedlens.datasets.retrieval_dataset`), a :class:`PairsDataset`
            (:func:`~embedlens.datasets.pairs_dataset`) or a pandas DataFrame of pairs.
        embedder: the base model: a :class:`CachedEmbedder`, or anything
            :func:`~embedlens.embedders.as_embedder` accepts (then behind the default cache); None is the
            offline default model.
        config: the options (default :class:`TrainConfig()`: a query lens, chosen by cross-validation).
        objective: ``"retrieval"`` or ``"pairs"``; by default the one the data calls for.

    Raises:
        EmbedlensInputError: bad data or options (the message names the file / option).
    """
    config = config if config is not None else TrainConfig()
    if config.device.startswith(
        "cuda"
    ):  # a GPU asked for that is not there: refused before anything is embedded
        from embedlens._device import resolve_device

        resolve_device(config.device)
    embedder = as_cached(embedder)
    data_path = data_name(data)
    data = as_dataset(data)
    objective = objective or ("retrieval" if isinstance(data, BeirDataset) else "pairs")
    if isinstance(data, BeirDataset):
        if objective != "retrieval":
            raise EmbedlensInputError(f"{data_path}: a BEIR directory trains with --objective retrieval")
        lens_w, result, summary = _guard_divergence(lambda: _train_beir(data, embedder, config), config, True)
        data_summary = data.summary()
    else:
        if objective != "pairs":
            raise EmbedlensInputError(f"{data_path}: a pairs file trains with --objective pairs")
        lens_w, result, summary = _guard_divergence(
            lambda: _train_pairs_file(data, embedder, config), config, False
        )
        data_summary = data.summary()
    from embedlens._version import __version__

    training: dict[str, Any] = {**summary, **result.as_metadata(), "config": config.as_dict()}
    metadata = {
        "base_model": embedder.name,
        "base_dim": embedder.dim,
        "training": training,
        "data": data_summary,
        "library_version": __version__,
    }
    lens = Lens(
        lens_w,
        mode=config.mode or "query",
        normalize=True,
        metadata=metadata,
        fingerprint=compute_fingerprint(embedder),  # through the cache: a warm run never loads the model
    )
    return TrainOutcome(lens, result.curve, training)


class TrainingDivergedError(EmbedlensInputError):
    """Training produced NaN or Inf (a learning rate too high, a temperature too low)."""


def _guard_divergence(run: Any, config: TrainConfig, retrieval: bool) -> Any:
    """Run a training step; NaN or Inf arising in it is blamed on the options, never on the vectors.

    The input vectors are checked finite before training starts (``_finite_inputs``), so a NaN/Inf
    seen during training comes from the optimisation.

    Raises:
        TrainingDivergedError: naming ``--lr`` (and ``--temperature`` for retrieval).
    """
    lr = "chosen by cross-validation" if config.lr is None else f"{config.lr:g}"
    opts = f"--lr {lr}" + (f" / --temperature {config.temperature:g}" if retrieval else "")
    hint = "give a lower --lr" + (" or raise --temperature" if retrieval else "")
    default = " (default --temperature 0.05)" if retrieval else ""
    msg = f"training diverged (NaN or Inf) with {opts}: {hint}{default}"
    try:
        out = run()
    except _InputsNotFinite as e:
        raise EmbedlensInputError(str(e)) from None
    except (EmbedlensInputError, FloatingPointError, OverflowError) as e:
        if isinstance(e, EmbedlensInputError) and "NaN or Inf" not in str(e):
            raise
        raise TrainingDivergedError(msg) from None
    if not np.isfinite(np.asarray(out[0], dtype=np.float64)).all():
        raise TrainingDivergedError(msg)
    return out


class _InputsNotFinite(Exception):
    """Internal: the embedded vectors themselves hold NaN or Inf (the model's fault, not the options')."""


def _finite_inputs(name: str, *arrays: np.ndarray) -> None:
    for arr in arrays:
        if not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr)).any(axis=1).sum())
            raise _InputsNotFinite(f"{name} returned vectors holding NaN or Inf ({bad} row(s))")


def training_texts(data_path: DataSource, config: TrainConfig | None = None) -> list[str]:
    """Every text ``train_lens`` would embed for this data (for cost estimates and ``--dry-run``)."""
    documents, queries = training_inputs(data_path, config)
    return documents + queries


def training_inputs(data_path: DataSource, config: TrainConfig | None = None) -> tuple[list[str], list[str]]:
    """The texts ``train_lens`` embeds as documents and as queries: ``(documents, queries)``.

    BEIR: the corpus, and the training queries plus the pseudo-queries of ``config`` (default
    options when None) as queries; pairs: ``text_2`` and ``text_1`` of the train split
    (``text_1`` is the query side). ``CachedEmbedder.missing(documents, queries)`` is what a run
    would pay for.
    """
    data = as_dataset(data_path)
    if isinstance(data, BeirDataset):
        pseudo, _ = pseudo_query_texts(data, config or TrainConfig(progress=False))
        return list(data.corpus_texts), list(data.split_queries("train")[1]) + pseudo
    train, _ = pairs_training_part(data)
    return list(train.text_2), list(train.text_1)


def _train_beir(
    data: BeirDataset, embedder: CachedEmbedder, config: TrainConfig
) -> tuple[np.ndarray, Any, dict[str, Any]]:
    from embedlens.training.retrieval import train_retrieval

    qids, qtexts = data.split_queries("train")
    docs = embedder.embed(data.corpus_texts)
    queries = embedder.embed_queries(qtexts)  # as served: the model's query path
    ptexts, prows = pseudo_query_texts(data, config)
    pseudo = embedder.embed_queries(ptexts) if ptexts else None  # pseudo-queries are queries too
    _finite_inputs(embedder.name, docs, queries, *([] if pseudo is None else [pseudo]))
    qrels = Qrels.from_dict(data.qrels["train"], qids, data.corpus_ids)
    result, summary = train_retrieval(queries, docs, qrels, config, pseudo_queries=pseudo, pseudo_docs=prows)
    summary["pseudo_query_kind"] = config.pseudo_queries if ptexts else "off"
    return result.weights, result, summary


def pseudo_query_texts(data: BeirDataset, config: TrainConfig) -> tuple[list[str], np.ndarray]:
    """The pseudo-queries training embeds: ``(texts, document rows)`` (at most ``MAX_PSEUDO_QUERIES``)."""
    if config.pseudo_queries == "off":
        return [], np.zeros(0, dtype=np.int64)
    texts, rows = data.pseudo_queries(config.pseudo_queries)
    if len(texts) > MAX_PSEUDO_QUERIES:
        keep = np.sort(
            np.random.default_rng(config.seed).choice(len(texts), MAX_PSEUDO_QUERIES, replace=False)
        )
        texts, rows = [texts[i] for i in keep.tolist()], rows[keep]
    return texts, rows


def _train_pairs_file(
    data: PairsDataset, embedder: CachedEmbedder, config: TrainConfig
) -> tuple[np.ndarray, Any, dict[str, Any]]:
    from embedlens.training.pairs import train_pairs

    train, how = pairs_training_part(data)
    fold, fold_how = pair_folds(train, config.folds, config.seed)
    parts, groups, added = [], [], 0
    for f in range(config.folds):  # synthetic negatives re-pair texts within one fold only
        part, n_added = with_negatives(train.subset(fold == f), config.seed + f, config.negatives_ratio)
        parts.append(part)
        groups.append(np.full(len(part), f, dtype=np.int64))
        added += n_added
    text_1 = [t for p in parts for t in p.text_1]
    text_2 = [t for p in parts for t in p.text_2]
    a = embedder.embed_queries(text_1)  # text_1 is the query side
    b = embedder.embed(text_2)
    _finite_inputs(embedder.name, a, b)
    labels = np.concatenate([p.labels for p in parts])
    result, summary = train_pairs(
        a, b, labels, config, binary=data.kind == "binary", groups=np.concatenate(groups)
    )
    summary["split"] = how
    summary["cv_split"] = fold_how
    summary["synthetic_negatives"] = added
    return result.weights, result, summary


#: at most this many pseudo-queries are embedded and trained on (a seeded sample of the corpus beyond it).
MAX_PSEUDO_QUERIES = 10_000
