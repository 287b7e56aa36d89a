"""End-to-end steps used by the CLI and the demo: data → cached embeddings → train / evaluate.

Data flows one way: texts → base embedder (through the cache) → lens → index / evaluator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedlens.cache import CachedEmbedder, EmbeddingCache
from embedlens.datasets import (
    BeirDataset,
    PairsDataset,
    is_beir_dir,
    read_beir,
    read_pairs,
    split_pairs_by_text,
)
from embedlens.embedders import Embedder, get_embedder
from embedlens.errors import DataFormatError, EmbedlensInputError
from embedlens.evaluation.pairs import PairReport, evaluate_pairs
from embedlens.evaluation.retrieval import DEFAULT_KS, QrelsIndex, RetrievalReport, evaluate_retrieval
from embedlens.lens import Lens, compute_fingerprint
from embedlens.training.config import TrainConfig

__all__ = ["open_embedder", "train_lens", "evaluate_lens", "TrainOutcome", "load_data", "pairs_train_test"]

#: how a pairs file without a split column is divided (fixed, so train and evaluate agree).
INTERNAL_TEST_FRACTION = 0.5
INTERNAL_SPLIT_SEED = 0


def open_embedder(
    model: str | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    no_cache: bool = False,
    base: Embedder | None = None,
    query_prompt: str | None = None,
    document_prompt: str | None = None,
) -> CachedEmbedder:
    """The base model behind the embedding cache (``no_cache`` skips the cache).

    ``query_prompt`` / ``document_prompt`` (sentence-transformers models only) override the
    model's own prompts; queries are embedded with the query prompt in training and serving alike.
    """
    prompts = {
        k: v
        for k, v in (("query_prompt", query_prompt), ("document_prompt", document_prompt))
        if v is not None
    }
    if prompts and (base is not None or (model or "").startswith("openai:")):
        raise EmbedlensInputError("query_prompt / document_prompt apply to sentence-transformers models only")
    emb = base if base is not None else get_embedder(model, **prompts)
    cache = None if no_cache else EmbeddingCache(cache_dir)
    return CachedEmbedder(emb, cache)


def load_data(path: str | os.PathLike[str]) -> BeirDataset | PairsDataset:
    """A BEIR directory or a pairs file, by what is at ``path``.

    Raises:
        DataFormatError: when the path is neither or is malformed.
    """
    p = Path(path)
    if p.is_dir():
        if not is_beir_dir(p):
            msg = f"{p}: a directory must be in BEIR format (corpus.jsonl, queries.jsonl, qrels/)"
            raise EmbedlensInputError(msg)
        return read_beir(p)
    return read_pairs(p)


def pairs_train_test(
    data: PairsDataset, test_split: str = "test"
) -> tuple[PairsDataset, PairsDataset, dict[str, Any]]:
    """The training pairs and the pairs of ``test_split`` (the ones to evaluate on).

    With a ``split`` column, these are its ``"train"`` rows and its ``test_split`` rows. Without one,
    the file is divided by text into an internal train and test half: ``test_split`` must then be
    ``"test"`` (the test half) or ``"train"`` (the train half is returned in both places).

    Raises:
        DataFormatError: a split that the file does not have (the message lists the valid ones), or a
            part with nothing to learn or measure (binary labels without a positive pair, graded labels
            all equal).
    """
    if data.splits is not None:
        train, test = data.split("train"), data.split(test_split)
        _need_signal(train, "train")
        _need_signal(test, test_split)
        return train, test, {"method": "split column", "test": test_split}
    if test_split not in ("train", "test"):
        raise DataFormatError(
            f"{data.source}: no split {test_split!r}: the file has no 'split' column, so its only splits are "
            "the internal halves 'train' and 'test'"
        )
    tr, te = split_pairs_by_text(data, test_fraction=INTERNAL_TEST_FRACTION, seed=INTERNAL_SPLIT_SEED)
    how = {
        "method": "internal, by text, stratified by label",
        "test_fraction": INTERNAL_TEST_FRACTION,
        "seed": INTERNAL_SPLIT_SEED,
        "test": test_split,
    }
    train = data.subset(tr)
    test = train if test_split == "train" else data.subset(te)
    _need_signal(train, "train (internal half)")
    _need_signal(test, f"{test_split} (internal half)")
    return train, test, how


def pairs_training_part(data: PairsDataset) -> tuple[PairsDataset, dict[str, Any]]:
    """The pairs training uses: the ``"train"`` rows of a split column, else the internal train half.

    Unlike :func:`pairs_train_test`, the test split is not needed (only evaluation reads it), so a
    file whose split column holds only ``train`` trains.

    Raises:
        DataFormatError: no ``train`` rows, or nothing to learn in them.
    """
    if data.splits is not None:
        train = data.split("train")
        _need_signal(train, "train")
        return train, {"method": "split column"}
    train, _, how = pairs_train_test(data)
    return train, how


def _need_signal(part: PairsDataset, split: str) -> None:
    """Refuse a part whose labels carry nothing to learn or measure (every metric would be NaN)."""
    if len(part) == 0:
        raise DataFormatError(f"{part.source}: no pair in split {split} (too few rows to divide)")
    if part.kind == "binary" and not (part.labels > 0).any():
        msg = f"{part.source}: no positive pair (label 1) in split {split}: nothing to learn or measure"
        raise DataFormatError(msg)
    if part.kind == "graded" and float(np.ptp(part.labels)) == 0.0:
        msg = f"{part.source}: every label in split {split} is the same: nothing to learn or measure"
        raise DataFormatError(msg)


def _with_negatives(data: PairsDataset, seed: int, ratio: float) -> tuple[PairsDataset, int]:
    """Add synthetic negatives (re-pairings within ``data``) when it has none; returns (data, added)."""
    from embedlens.training.pairs import synthetic_negatives

    if data.kind != "binary" or (data.labels < 0).any():
        return data, 0
    n1, n2 = synthetic_negatives(data.text_1, data.text_2, ratio=ratio, seed=seed)
    labels = np.concatenate([data.labels, -np.ones(len(n1), dtype=np.float32)])
    return PairsDataset(data.text_1 + n1, data.text_2 + n2, labels, "binary", None, data.source), len(n1)


@dataclass
class TrainOutcome:
    """A trained lens and what happened while training it."""

    lens: Lens
    curve: list[dict[str, float]]
    summary: dict[str, Any]


def train_lens(
    data_path: str | os.PathLike[str],
    embedder: CachedEmbedder,
    config: TrainConfig,
    *,
    objective: str | None = None,
) -> TrainOutcome:
    """Train a lens on a BEIR directory (``qrels/train.tsv``) or a pairs file (its train split).

    Raises:
        EmbedlensInputError: bad data or options (the message names the file / option).
    """
    data = load_data(data_path)
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

    metadata = {
        "base_model": embedder.name,
        "base_dim": embedder.dim,
        "training": {
            **summary,
            "chosen_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "reason": result.reason,
            "curve": result.curve,
            "config": config.as_dict(),
        },
        "data": data_summary,
        "library_version": __version__,
    }
    lens = Lens(
        lens_w,
        mode=config.mode or "query",
        normalize=True,
        metadata=metadata,
        fingerprint=compute_fingerprint(embedder.base),
    )
    return TrainOutcome(lens, result.curve, summary)


class TrainingDivergedError(EmbedlensInputError):
    """Training produced NaN or Inf (a learning rate too high, a temperature too low)."""


def _guard_divergence(run: Any, config: TrainConfig, retrieval: bool) -> Any:
    """Run a training step; NaN or Inf arising in it is blamed on the options, never on the vectors.

    The input vectors are checked finite before training starts (``_finite_inputs``), so a NaN/Inf
    seen during training comes from the optimisation.

    Raises:
        TrainingDivergedError: naming ``--lr`` (and ``--temperature`` for retrieval).
    """
    opts = f"--lr {config.lr:g}" + (f" / --temperature {config.temperature:g}" if retrieval else "")
    hint = "lower --lr" + (" or raise --temperature" if retrieval else "")
    msg = f"training diverged (NaN or Inf) with {opts}: {hint} (defaults: --lr 3e-4, --temperature 0.05)"
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


def training_texts(data_path: str | os.PathLike[str]) -> list[str]:
    """Every text ``train_lens`` would embed for this data (for cost estimates and ``--dry-run``)."""
    documents, queries = training_inputs(data_path)
    return documents + queries


def training_inputs(data_path: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """The texts ``train_lens`` embeds as documents and as queries: ``(documents, queries)``.

    BEIR: the corpus and the training queries; pairs: ``text_2`` and ``text_1`` of the train split
    (``text_1`` is the query side). ``CachedEmbedder.missing(documents, queries)`` is what a run
    would pay for.
    """
    data = load_data(data_path)
    if isinstance(data, BeirDataset):
        return list(data.corpus_texts), list(data.split_queries("train")[1])
    train, _ = pairs_training_part(data)
    return list(train.text_2), list(train.text_1)


def _train_beir(
    data: BeirDataset, embedder: CachedEmbedder, config: TrainConfig
) -> tuple[np.ndarray, Any, dict[str, Any]]:
    from embedlens.training.retrieval import train_retrieval

    qids, qtexts = data.split_queries("train")
    docs = embedder.embed(data.corpus_texts)
    queries = embedder.embed_queries(qtexts)  # as served: the model's query path
    _finite_inputs(embedder.name, docs, queries)
    qrels = QrelsIndex.from_dict(data.qrels["train"], qids, data.corpus_ids)
    rng = np.random.default_rng(config.seed)
    val = np.zeros(len(qids), dtype=bool)
    n_val = max(1, int(round(config.val_fraction * len(qids))))
    val[rng.choice(len(qids), size=n_val, replace=False)] = True
    result, summary = train_retrieval(queries, docs, qrels, config, val_rows=val)
    return result.weights, result, summary


def _train_pairs_file(
    data: PairsDataset, embedder: CachedEmbedder, config: TrainConfig
) -> tuple[np.ndarray, Any, dict[str, Any]]:
    from embedlens.training.pairs import train_pairs

    train, how = pairs_training_part(data)
    fit_part, val_part = split_pairs_by_text(train, test_fraction=config.val_fraction, seed=config.seed)
    fit_data, added_fit = _with_negatives(train.subset(fit_part), config.seed, config.negatives_ratio)
    val_data, added_val = _with_negatives(train.subset(val_part), config.seed + 1, config.negatives_ratio)
    a = embedder.embed_queries(fit_data.text_1 + val_data.text_1)  # text_1 is the query side
    b = embedder.embed(fit_data.text_2 + val_data.text_2)
    _finite_inputs(embedder.name, a, b)
    labels = np.concatenate([fit_data.labels, val_data.labels])
    val_mask = np.concatenate([np.zeros(len(fit_data), bool), np.ones(len(val_data), bool)])
    result, summary = train_pairs(a, b, labels, config, binary=data.kind == "binary", val_mask=val_mask)
    summary["split"] = how
    summary["synthetic_negatives"] = added_fit + added_val
    return result.weights, result, summary


def evaluate_lens(
    data_path: str | os.PathLike[str],
    lens: Lens,
    embedder: CachedEmbedder,
    *,
    split: str = "test",
    index: str = "flat",
    ks: tuple[int, ...] = DEFAULT_KS,
    check_fingerprint: bool = True,
    n_boot: int = 2000,
) -> RetrievalReport | PairReport:
    """Raw vs lens on the ``split`` of a BEIR directory or a pairs file.

    Raises:
        DimensionMismatchError / FingerprintMismatchError: the embedder is not the lens's base model.
        EmbedlensInputError: bad data.
    """
    lens.check_embedder(embedder.base, check_fingerprint=check_fingerprint)
    data = load_data(data_path)
    if isinstance(data, BeirDataset):
        qids, qtexts = data.split_queries(split)
        docs = embedder.embed(data.corpus_texts)
        queries = embedder.embed_queries(qtexts)
        qrels = QrelsIndex.from_dict(data.qrels[split], qids, data.corpus_ids)
        seen = None
        if "train" in data.qrels and split != "train":
            train_docs = {d for rel in data.qrels["train"].values() for d, g in rel.items() if g > 0}
            seen = np.array(
                [any(g > 0 and d in train_docs for d, g in data.qrels[split][q].items()) for q in qids]
            )
        report = evaluate_retrieval(queries, docs, qrels, lens, ks=ks, index=index, seen=seen, n_boot=n_boot)
        report.info.update({"data": str(data_path), "split": split, "documents": len(data.corpus_ids)})
        return report
    train, test, how = pairs_train_test(data, split)
    train, _ = _with_negatives(train, INTERNAL_SPLIT_SEED, 1.0)
    test, added = _with_negatives(test, INTERNAL_SPLIT_SEED + 7, 1.0)
    binary = data.kind == "binary"
    pr = evaluate_pairs(
        embedder.embed_queries(test.text_1),
        embedder.embed(test.text_2),
        test.labels,
        lens,
        binary=binary,
        train_a=embedder.embed_queries(train.text_1) if binary else None,
        train_b=embedder.embed(train.text_2) if binary else None,
        train_labels=train.labels if binary else None,
        n_boot=min(n_boot, 1000),
    )
    pr.info.update({"data": str(data_path), "split": how, "synthetic_test_negatives": added})
    return pr


def search_train(
    data_path: str | os.PathLike[str],
    embedder: CachedEmbedder,
    config: TrainConfig,
    objective: str | None = None,
) -> TrainOutcome:
    """Train over a small grid (learning rate × temperature or loss) and keep the best on validation.

    Every candidate uses the same validation split (same seed), so the choice never sees test data.
    Embeddings come from the cache after the first run.
    """
    from dataclasses import replace

    grid: list[dict[str, Any]] = [{"lr": lr} for lr in (3e-4, 1e-3, 3e-3)]
    if objective == "retrieval" or (objective is None and Path(data_path).is_dir()):
        grid = [{**g, "temperature": t} for g in grid for t in (0.05, 0.1)]
    best: TrainOutcome | None = None
    tried = []
    for point in grid:
        outcome = train_lens(data_path, embedder, replace(config, **point), objective=objective)
        val = float(outcome.summary["val_best"])
        tried.append({**point, "val": val})
        if best is None or val > float(best.summary["val_best"]):
            best = outcome
    if best is None:  # pragma: no cover - the grid is a non-empty constant
        raise RuntimeError("empty search grid")
    best.lens.metadata["training"]["search"] = tried
    return best
