"""Splits of labelled data: internal train/test halves, cross-validation folds, synthetic negatives.

A split never lets a text (pairs) or a query (retrieval) sit on both sides when that can be avoided; when
it cannot (texts too densely connected), it falls back to a split by pair, stratified by label, and warns.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from embedlens.datasets.readers import PairsDataset
from embedlens.errors import DataFormatError, EmbedlensWarning

__all__ = [
    "INTERNAL_SPLIT_SEED",
    "INTERNAL_TEST_FRACTION",
    "make_folds",
    "pair_folds",
    "pairs_train_test",
    "pairs_training_part",
    "split_by_pair",
    "split_pairs_by_text",
    "synthetic_negatives",
    "text_components",
    "with_negatives",
]

#: how a pairs file without a split column is divided (fixed, so train and evaluate agree).
INTERNAL_TEST_FRACTION = 0.5
INTERNAL_SPLIT_SEED = 0


def text_components(text_1: list[str], text_2: list[str]) -> np.ndarray:
    """Connected component ``(n,)`` of each pair in the graph whose nodes are texts (ids ``0..c-1``).

    Pairs that share a text, directly or through other pairs, share a component: a split that
    keeps components whole never shows a text on both sides.
    """
    n = len(text_1)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, (a, b) in enumerate(zip(text_1, text_2, strict=True)):
        for t in (a, b):
            j = first.setdefault(t, i)
            ri, rj = find(i), find(j)
            if ri != rj:
                parent[ri] = rj
    roots = np.asarray([find(i) for i in range(n)], dtype=np.int64)
    return np.unique(roots, return_inverse=True)[1].astype(np.int64) if n else roots


def split_pairs_by_text(
    data: PairsDataset, *, test_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split pairs so that no text is on both sides, stratified by label sign.

    Pairs sharing a text are kept together (:func:`text_components`); components are shuffled with
    ``seed`` and each goes to the side furthest below its target share for the component's majority
    label. When the texts are so densely connected that this leaves a side without pairs of every
    label (a few texts paired many times), the split falls back to one by pair, stratified by
    label, with an :class:`~embedlens.errors.EmbedlensWarning`: texts then appear on both sides.

    Returns:
        ``(train_mask, test_mask)``, boolean ``(n,)`` arrays.
    """
    n = len(data)
    comp = text_components(data.text_1, data.text_2)
    order = [np.flatnonzero(comp == c) for c in range(int(comp.max()) + 1 if n else 0)]
    np.random.default_rng(seed).shuffle(order)  # type: ignore[arg-type]
    strata = np.sign(data.labels) if data.kind == "binary" else np.zeros(n, dtype=np.float32)
    total = {s: float((strata == s).sum()) for s in np.unique(strata).tolist()}
    taken = {s: [0.0, 0.0] for s in total}  # [train, test]
    test = np.zeros(n, dtype=bool)
    for members in order:
        s = float(np.sign(strata[members].sum())) if data.kind == "binary" else 0.0
        s = s if s in total else next(iter(total))
        want_test = test_fraction * total[s] - taken[s][1]
        want_train = (1 - test_fraction) * total[s] - taken[s][0]
        side = 1 if want_test > want_train else 0
        for i in members:
            si = float(strata[i])
            taken[si][side] += 1
        if side:
            test[members] = True
    if n >= 4 and not _both_sides_usable(strata, test):
        warnings.warn(
            f"{data.source or 'pairs'}: {n} pairs over only {len(set(data.text_1) | set(data.text_2))} distinct "
            f"texts ({len(order)} connected group(s)) cannot be split by text; splitting by pair instead, so "
            "the same texts appear on both sides and held-out scores are optimistic",
            EmbedlensWarning,
            stacklevel=2,
        )
        test = split_by_pair(strata, test_fraction=test_fraction, seed=seed)
    return ~test, test


def _both_sides_usable(strata: np.ndarray, test: np.ndarray) -> bool:
    """Each side holds pairs, and (binary labels) every label that exists appears on both sides."""
    if test.all() or not test.any():
        return False
    return all(bool((strata[test] == s).any() and (strata[~test] == s).any()) for s in np.unique(strata))


def split_by_pair(strata: np.ndarray, *, test_fraction: float, seed: int = 0) -> np.ndarray:
    """Test mask ``(n,)`` of a random split by pair, stratified by ``strata`` (each side gets each stratum)."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(strata), dtype=bool)
    for s in np.unique(strata):
        rows = rng.permutation(np.flatnonzero(strata == s))
        k = min(max(1, int(round(test_fraction * len(rows)))), len(rows) - 1) if len(rows) > 1 else 0
        test[rows[:k]] = True
    return test


def synthetic_negatives(
    text_1: list[str], text_2: list[str], *, ratio: float = 1.0, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Negative pairs made by re-pairing ``text_1[i]`` with ``text_2[j]`` of another pair (``j != i``).

    Call it on one split (or one fold) at a time so that no negative crosses the boundary.
    Re-pairings that happen to recreate a known positive are dropped.

    Returns:
        ``(neg_1, neg_2)`` with about ``ratio * len(text_1)`` pairs.
    """
    n = len(text_1)
    if n < 2:
        return [], []
    rng = np.random.default_rng(seed)
    m = int(round(ratio * n))
    i = rng.integers(0, n, size=m)
    j = (i + rng.integers(1, n, size=m)) % n  # never the same pair
    known = set(zip(text_1, text_2, strict=True))
    keep = [
        (text_1[a], text_2[b])
        for a, b in zip(i.tolist(), j.tolist(), strict=True)
        if (text_1[a], text_2[b]) not in known and text_2[b] != text_2[a]
    ]
    return [a for a, _ in keep], [b for _, b in keep]


def make_folds(groups: np.ndarray, validatable: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold ``(n_items,)`` of every item: ``0..k-1`` for validatable items (whole groups), -1 otherwise.

    Groups are dealt round-robin in a seeded random order, so fold sizes differ by at most one group.
    """
    fold = np.full(len(groups), -1, dtype=np.int64)
    g = np.asarray(groups)[validatable]
    uniq, inverse = np.unique(g, return_inverse=True)
    perm = np.random.default_rng(seed).permutation(len(uniq))
    fold_of_group = np.empty(len(uniq), dtype=np.int64)
    fold_of_group[perm] = np.arange(len(uniq)) % k
    fold[np.flatnonzero(validatable)] = fold_of_group[inverse]
    return fold


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


def with_negatives(data: PairsDataset, seed: int, ratio: float) -> tuple[PairsDataset, int]:
    """Add synthetic negatives (re-pairings within ``data``) when it has none; returns (data, added)."""
    if data.kind != "binary" or (data.labels < 0).any():
        return data, 0
    n1, n2 = synthetic_negatives(data.text_1, data.text_2, ratio=ratio, seed=seed)
    labels = np.concatenate([data.labels, -np.ones(len(n1), dtype=np.float32)])
    return PairsDataset(data.text_1 + n1, data.text_2 + n2, labels, "binary", None, data.source), len(n1)


def pair_folds(data: PairsDataset, folds: int, seed: int) -> tuple[np.ndarray, str]:
    """Fold ``(n,)`` of each pair for cross-validation, and how it was made.

    By connected text component (no text on both sides of a fold boundary), dealt round-robin in
    a seeded order. When that leaves a fold where the metric is undefined (a label missing, or
    graded labels all equal) — texts too densely connected, or too few groups — by pair, stratified
    by label, with an :class:`~embedlens.errors.EmbedlensWarning` that says why.

    Raises:
        DataFormatError: too few pairs (or pairs of one label) for ``folds`` folds at all.
    """
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
            f"{where} are too few for {folds}-fold cross-validation (need {2 * folds}; lower --folds, TrainConfig(folds=...) in Python)"
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
    warnings.warn(
        f"{where}: {why}, so {folds}-fold cross-validation splits by pair instead of by text: validation pairs "
        "share texts with training pairs and the selection is optimistic",
        EmbedlensWarning,
        stacklevel=1,
    )
    return fold, "by pair (texts too densely connected to split by text)"
