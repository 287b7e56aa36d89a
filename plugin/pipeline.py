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
    synthetic_negatives,
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
    shared = (set(data.subset(tr).text_1) | set(data.subset(tr).text_2)) & (
        set(data.subset(te).text_1) | set(data.subset(te).text_2)
    )
    how = {
        "method": "internal, by pair (texts too densely connected to split by text), stratified by label"
        if shared
        else "internal, by text, stratified by label",
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
        fingerprint=compute_fingerprint(embedder.base),
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


def training_texts(data_path: str | os.PathLike[str], config: TrainConfig | None = None) -> list[str]:
    """Every text ``train_lens`` would embed for this data (for cost estimates and ``--dry-run``)."""
    documents, queries = training_inputs(data_path, config)
    return documents + queries


def training_inputs(
    data_path: str | os.PathLike[str], config: TrainConfig | None = None
) -> tuple[list[str], list[str]]:
    """The texts ``train_lens`` embeds as documents and as queries: ``(documents, queries)``.

    BEIR: the corpus, and the training queries plus the pseudo-queries of ``config`` (default
    options when None) as queries; pairs: ``text_2`` and ``text_1`` of the train split
    (``text_1`` is the query side). ``CachedEmbedder.missing(documents, queries)`` is what a run
    would pay for.
    """
    data = load_data(data_path)
    if isinstance(data, BeirDataset):
        pseudo, _ = pseudo_query_texts(data, config or TrainConfig(progress=False))
        return list(data.corpus_texts), list(data.split_queries("train")[1]) + pseudo
    train, _ = pairs_training_part(data)
    return list(train.text_2), list(train.text_1)


#: at most this many pseudo-queries are embedded and trained on (a seeded sample of the corpus beyond it).
MAX_PSEUDO_QUERIES = 10_000


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
    qrels = QrelsIndex.from_dict(data.qrels["train"], qids, data.corpus_ids)
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


def pair_folds(data: PairsDataset, folds: int, seed: int) -> tuple[np.ndarray, str]:
    """Fold ``(n,)`` of each pair for cross-validation, and how it was made.

    By connected text component (no text on both sides of a fold boundary), dealt round-robin in
    a seeded order. When that leaves a fold where the metric is undefined (a label missing, or
    graded labels all equal) — texts too densely connected, or too few groups — by pair, stratified
    by label, with an :class:`~embedlens.errors.EmbedlensWarning` that says why.

    Raises:
        DataFormatError: too few pairs (or pairs of one label) for ``folds`` folds at all.
    """
    from embedlens.datasets import text_components
    from embedlens.training.loop import make_folds

    n = len(data)
    binary = data.kind == "binary"
    strata = np.sign(data.labels) if binary else np.zeros(n, dtype=np.float32)
    labels_present = np.unique(strata)

    def usable(fold: np.ndarray) -> bool:
        for f in range(folds):
            rows = fold == f
            if binary and not all(bool((strata[rows] == s).any()) for s in labels_present):
                return False
            if not binary and (rows.sum() < 2 or float(np.ptp(data.labels[rows])) == 0.0):
                return False
        return True

    comp = text_components(data.text_1, data.text_2)
    n_groups = len(np.unique(comp))
    fold = make_folds(comp, np.ones(n, dtype=bool), folds, seed)
    if n_groups >= folds and usable(fold):
        return fold, "by connected text component"
    where = f"{data.source}: {n} training pairs"
    if n < 2 * folds:
        raise DataFormatError(
            f"{where} are too few for {folds}-fold cross-validation (need {2 * folds}; lower --folds)"
        )
    if binary:
        for s in labels_present:
            count = int((strata == s).sum())
            if count < folds:
                name = "positive" if s > 0 else "negative"
                raise DataFormatError(
                    f"{where} hold only {count} {name} pair(s): every one of the {folds} cross-validation folds "
                    f"needs one (lower --folds, at least 2, or add pairs)"
                )
    rng = np.random.default_rng(seed)
    fold = np.empty(n, dtype=np.int64)
    if binary:
        for s in labels_present:
            rows = rng.permutation(np.flatnonzero(strata == s))
            fold[rows] = (np.arange(len(rows)) + int(rng.integers(folds))) % folds
    else:  # graded: deal pairs sorted by label, so every fold spans the range
        rows = np.argsort(data.labels + rng.uniform(0, 1e-6, n), kind="stable")
        fold[rows] = (np.arange(n) + rng.permutation(n) // n) % folds
    if not usable(fold):
        raise DataFormatError(
            f"{where} cannot be divided into {folds} folds that each hold every label (lower --folds)"
        )
    why = (
        f"only {n_groups} group(s) of pairs share no text ({len(set(data.text_1) | set(data.text_2))} distinct texts)"
        if n_groups < folds
        else "the groups of pairs that share no text are too uneven to give every fold each label"
    )
    import warnings

    from embedlens.errors import EmbedlensWarning

    warnings.warn(
        f"{where}: {why}, so {folds}-fold cross-validation splits by pair instead of by text: validation pairs "
        "share texts with training pairs and the selection is optimistic",
        EmbedlensWarning,
        stacklevel=1,
    )
    return fold, "by pair (texts too densely connected to split by text)"


def _train_pairs_file(
    data: PairsDataset, embedder: CachedEmbedder, config: TrainConfig
) -> tuple[np.ndarray, Any, dict[str, Any]]:
    from embedlens.training.pairs import train_pairs

    train, how = pairs_training_part(data)
    fold, fold_how = pair_folds(train, config.folds, config.seed)
    parts, groups, added = [], [], 0
    for f in range(config.folds):  # synthetic negatives re-pair texts within one fold only
        part, n_added = _with_negatives(train.subset(fold == f), config.seed + f, config.negatives_ratio)
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
    test, added = _with_negatives(test, INTERNAL_SPLIT_SEED + 7, 1.0)
    binary = data.kind == "binary"
    oof = lens.metadata.get("training", {}).get("threshold") if isinstance(lens.metadata, dict) else None
    thresholds = None
    if (
        binary
        and isinstance(oof, dict)
        and all(isinstance(oof.get(k), (int, float)) for k in ("raw", "lens"))
    ):
        thresholds = (float(oof["raw"]), float(oof["lens"]))
    needs_train = binary and thresholds is None  # a lens from elsewhere: thresholds from the training pairs
    if needs_train:
        train, _ = _with_negatives(train, INTERNAL_SPLIT_SEED, 1.0)
    pr = evaluate_pairs(
        embedder.embed_queries(test.text_1),
        embedder.embed(test.text_2),
        test.labels,
        lens,
        binary=binary,
        train_a=embedder.embed_queries(train.text_1) if needs_train else None,
        train_b=embedder.embed(train.text_2) if needs_train else None,
        train_labels=train.labels if needs_train else None,
        thresholds=thresholds,
        n_boot=min(n_boot, 1000),
    )
    pr.info["threshold_source"] = (
        "out-of-fold cosines of the training pairs (lens metadata)"
        if thresholds is not None
        else "training pairs"
    )
    pr.info.update({"data": str(data_path), "split": how, "synthetic_test_negatives": added})
    return pr


def search_train(
    data_path: str | os.PathLike[str],
    embedder: CachedEmbedder,
    config: TrainConfig,
    objective: str | None = None,
) -> TrainOutcome:
    """:func:`train_lens` with a wider cross-validation grid (more learning rates; temperatures).

    The grid is searched inside the same k-fold selection, so the choice never sees test data and
    the significance check accounts for the number of settings tried.
    """
    from dataclasses import replace

    return train_lens(data_path, embedder, replace(config, search=True), objective=objective)
