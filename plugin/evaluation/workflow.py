"""The evaluate workflow: a BEIR directory or a pairs file, a lens and its base model → a raw vs lens report."""

from __future__ import annotations

import os

import numpy as np

from embedlens.cache import as_cached
from embedlens.datasets import (
    BeirDataset,
    DataSource,
    as_dataset,
    data_name,
    pairs_train_test,
    with_negatives,
)
from embedlens.datasets.splits import INTERNAL_SPLIT_SEED
from embedlens.evaluation.pairs import PairReport, evaluate_pairs
from embedlens.evaluation.retrieval import DEFAULT_KS, RetrievalReport, evaluate_retrieval
from embedlens.index import Qrels
from embedlens.lens import Lens, load_lens

__all__ = ["evaluate_lens"]


def evaluate_lens(
    data: DataSource,
    lens: Lens | str | os.PathLike[str],
    embedder: object = None,
    *,
    split: str = "test",
    index_kind: str = "flat",
    ks: tuple[int, ...] = DEFAULT_KS,
    check_fingerprint: bool = True,
    n_boot: int = 2000,
) -> RetrievalReport | PairReport:
    """Raw vs lens on the ``split`` of a BEIR directory or a pairs file, or the same in memory.

    Args:
        data: what :func:`~embedlens.training.workflow.train_lens` takes (a path, a dataset, a DataFrame).
        lens: a :class:`Lens` or the path of a lens directory.
        embedder: the lens's base model: a :class:`CachedEmbedder` or anything
            :func:`~embedlens.embedders.as_embedder` accepts; None is the offline default model.

    Raises:
        DimensionMismatchError / FingerprintMismatchError: the embedder is not the lens's base model.
        EmbedlensInputError: bad data.
    """
    lens = lens if isinstance(lens, Lens) else load_lens(lens)
    embedder = as_cached(embedder)
    lens.check_embedder(embedder, check_fingerprint=check_fingerprint)  # probes through the cache
    data_path = data_name(data)
    data = as_dataset(data)
    if isinstance(data, BeirDataset):
        qids, qtexts = data.split_queries(split)
        docs = embedder.embed(data.corpus_texts)
        queries = embedder.embed_queries(qtexts)
        qrels = Qrels.from_dict(data.qrels[split], qids, data.corpus_ids)
        seen = None
        if "train" in data.qrels and split != "train":
            train_docs = {d for rel in data.qrels["train"].values() for d, g in rel.items() if g > 0}
            seen = np.array(
                [any(g > 0 and d in train_docs for d, g in data.qrels[split][q].items()) for q in qids]
            )
        report = evaluate_retrieval(
            queries, docs, qrels, lens, ks=ks, index_kind=index_kind, seen=seen, n_boot=n_boot
        )
        report.info.update({"data": str(data_path), "split": split, "documents": len(data.corpus_ids)})
        return report
    train, test, how = pairs_train_test(data, split)
    test, added = with_negatives(test, INTERNAL_SPLIT_SEED + 7, 1.0)
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
        train, _ = with_negatives(train, INTERNAL_SPLIT_SEED, 1.0)
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
