"""Labelled data: readers for pairs files and BEIR directories, and the splits made of them.

Every malformed row raises :class:`~embedlens.errors.DataFormatError` naming the file and line.
"""

from __future__ import annotations

from embedlens.datasets.readers import (
    BeirDataset,
    DataSource,
    PairsDataset,
    as_dataset,
    data_name,
    is_beir_dir,
    leading_sentence,
    load_data,
    pairs_dataset,
    read_beir,
    read_pairs,
    retrieval_dataset,
)
from embedlens.datasets.splits import (
    make_folds,
    pair_folds,
    pairs_train_test,
    pairs_training_part,
    split_by_pair,
    split_pairs_by_text,
    synthetic_negatives,
    text_components,
    with_negatives,
)

__all__ = [
    "BeirDataset",
    "DataSource",
    "PairsDataset",
    "as_dataset",
    "data_name",
    "is_beir_dir",
    "leading_sentence",
    "load_data",
    "make_folds",
    "pair_folds",
    "pairs_dataset",
    "pairs_train_test",
    "pairs_training_part",
    "read_beir",
    "read_pairs",
    "retrieval_dataset",
    "split_by_pair",
    "split_pairs_by_text",
    "synthetic_negatives",
    "text_components",
    "with_negatives",
]
