"""Metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from embedlens.evaluation.metrics import (
    accuracy_at_threshold,
    best_threshold,
    hit_at_k,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    roc_auc,
    spearman,
)
from embedlens.evaluation.retrieval import per_query_metrics
from embedlens.index import Qrels

# query 0: relevant at ranks 2 and 4 (2 relevant total); query 1: nothing relevant retrieved (1 relevant)
GAINS = np.array([[0, 1, 0, 1, 0], [0, 0, 0, 0, 0]], dtype=float)
N_REL = np.array([2, 1])
IDEAL = np.array([[1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=float)


def test_recall() -> None:
    np.testing.assert_allclose(recall_at_k(GAINS, N_REL, 3), [0.5, 0.0])
    np.testing.assert_allclose(recall_at_k(GAINS, N_REL, 5), [1.0, 0.0])


def test_precision_divides_by_k_even_past_the_ranking() -> None:
    np.testing.assert_allclose(precision_at_k(GAINS, 2), [0.5, 0.0])
    np.testing.assert_allclose(precision_at_k(GAINS, 10), [0.2, 0.0])  # 2 hits / 10


def test_ndcg() -> None:
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3)
    np.testing.assert_allclose(ndcg_at_k(GAINS, IDEAL, 5), [dcg / idcg, 0.0])
    np.testing.assert_allclose(ndcg_at_k(GAINS, IDEAL, 1), [0.0, 0.0])


def test_ndcg_graded() -> None:
    gains = np.array([[1.0, 2.0]])
    ideal = np.array([[2.0, 1.0]])
    expected = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    np.testing.assert_allclose(ndcg_at_k(gains, ideal, 2), [expected])


def test_mrr_and_hit() -> None:
    np.testing.assert_allclose(mrr_at_k(GAINS, 5), [0.5, 0.0])
    np.testing.assert_allclose(mrr_at_k(GAINS, 1), [0.0, 0.0])
    np.testing.assert_allclose(hit_at_k(GAINS, 2), [1.0, 0.0])


def test_no_relevant_documents_scores_zero() -> None:
    g = np.zeros((1, 3))
    assert recall_at_k(g, np.array([0]), 3)[0] == 0.0
    assert ndcg_at_k(g, np.zeros((1, 3)), 3)[0] == 0.0


def test_qrels_index_lookup_and_per_query() -> None:
    qrels = Qrels.from_dict({"a": {"d1": 1, "d3": 1}, "b": {"d0": 2}}, ["a", "b"], ["d0", "d1", "d2", "d3"])
    ranked = np.array([[0, 1, 2, 3], [0, -1, -1, -1]])
    np.testing.assert_array_equal(qrels.gains(ranked), [[0, 1, 0, 1], [2, 0, 0, 0]])
    np.testing.assert_array_equal(qrels.ideal(3), [[1, 1, 0], [2, 0, 0]])
    np.testing.assert_array_equal(qrels.n_relevant(), [2, 1])
    m = per_query_metrics(ranked, qrels, ks=(1, 3))
    np.testing.assert_allclose(m["mrr@3"], [0.5, 1.0])
    np.testing.assert_allclose(m["recall@3"], [0.5, 1.0])
    np.testing.assert_allclose(m["ndcg@1"], [0.0, 1.0])


def test_roc_auc_hand_computed() -> None:
    # positives 0.9, 0.4; negatives 0.5, 0.1 -> pairs (0.9>0.5, 0.9>0.1, 0.4<0.5, 0.4>0.1) = 3/4
    assert roc_auc(np.array([0.9, 0.4, 0.5, 0.1]), np.array([1, 1, 0, 0], bool)) == pytest.approx(0.75)
    assert roc_auc(np.array([0.5, 0.5]), np.array([1, 0], bool)) == pytest.approx(0.5)
    assert math.isnan(roc_auc(np.array([0.1]), np.array([1], bool)))


def test_best_threshold() -> None:
    scores = np.array([0.1, 0.2, 0.6, 0.7, 0.65])
    pos = np.array([0, 0, 1, 1, 0], bool)
    thr, acc = best_threshold(scores, pos)
    assert acc == pytest.approx(0.8)
    assert accuracy_at_threshold(scores, pos, thr).mean() == pytest.approx(acc)
    thr2, acc2 = best_threshold(np.array([0.3, 0.3]), np.array([1, 0], bool))
    assert acc2 == pytest.approx(0.5)


def test_spearman() -> None:
    assert spearman(np.array([1, 2, 3]), np.array([10, 20, 30])) == pytest.approx(1.0)
    assert spearman(np.array([1, 2, 3]), np.array([3, 2, 1])) == pytest.approx(-1.0)
