"""Training must undo a known distortion, fall back to the identity on noise, and never see test data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embedlens.evaluation.retrieval import QrelsIndex
from embedlens.training import TrainConfig, train_pairs, train_retrieval
from embedlens.training.retrieval import retrieval_ndcg10


def _distorted_retrieval(seed: int = 0) -> tuple[np.ndarray, np.ndarray, QrelsIndex, np.ndarray, np.ndarray]:
    """Docs/queries share 8 signal dims; 8 nuisance dims (3x larger, independent per text) hide it.

    A hidden random rotation mixes the two, so no single raw coordinate can be dropped by hand.
    """
    rng = np.random.default_rng(seed)
    n_docs, n_q, d = 300, 300, 16
    signal = rng.standard_normal((n_docs, 8))
    doc_clean = np.hstack([signal, 3 * rng.standard_normal((n_docs, 8))])
    target = rng.integers(0, n_docs, size=n_q)
    q_clean = np.hstack(
        [signal[target] + 0.3 * rng.standard_normal((n_q, 8)), 3 * rng.standard_normal((n_q, 8))]
    )
    rot, _ = np.linalg.qr(rng.standard_normal((d, d)))  # the hidden linear distortion
    docs = (doc_clean @ rot).astype(np.float32)
    queries = (q_clean @ rot).astype(np.float32)
    qrels = QrelsIndex.from_pairs(np.arange(n_q), target, np.ones(n_q), n_q, n_docs)
    oracle = rot.T @ np.diag([1.0] * 8 + [0.0] * 8) @ rot  # project onto the signal subspace
    return queries, docs, qrels, target, oracle.astype(np.float32)


def test_retrieval_lens_undoes_hidden_distortion() -> None:
    queries, docs, qrels, target, oracle = _distorted_retrieval()
    train, test = np.arange(200), np.arange(200, 300)
    train_qrels = QrelsIndex.from_pairs(np.arange(200), target[train], np.ones(200), 200, len(docs))
    val = np.zeros(200, bool)
    val[:40] = True
    cfg = TrainConfig(
        mode="symmetric", progress=False, max_epochs=60, patience=10, lr=3e-3, n_random=128, refit=False
    )
    result, summary = train_retrieval(queries[train], docs, train_qrels, cfg, val_rows=val)
    test_qrels = QrelsIndex.from_pairs(np.arange(100), target[test], np.ones(100), 100, len(docs))
    raw = retrieval_ndcg10(
        np.eye(16, dtype=np.float32), queries[test], docs, test_qrels, mode="symmetric"
    ).mean()
    best = retrieval_ndcg10(oracle, queries[test], docs, test_qrels, mode="symmetric").mean()
    lens = retrieval_ndcg10(result.weights, queries[test], docs, test_qrels, mode="symmetric").mean()
    assert raw < 0.5 < best
    assert lens > raw + 0.25, (raw, lens, best)
    assert lens > 0.8 * best
    assert result.best_epoch > 0 and summary["val_best"] > summary["val_start"]


def test_pairs_lens_undoes_hidden_distortion() -> None:
    rng = np.random.default_rng(1)
    n, d = 1200, 12
    rot, _ = np.linalg.qr(rng.standard_normal((d, d)))
    sig_a = rng.standard_normal((n, 6))
    labels = np.where(rng.random(n) < 0.5, 1.0, -1.0).astype(np.float32)
    sig_b = np.where(
        labels[:, None] > 0, sig_a + 0.3 * rng.standard_normal((n, 6)), rng.standard_normal((n, 6))
    )
    a = (np.hstack([sig_a, 3 * rng.standard_normal((n, 6))]) @ rot).astype(np.float32)
    b = (np.hstack([sig_b, 3 * rng.standard_normal((n, 6))]) @ rot).astype(np.float32)
    from embedlens.training.pairs import pair_val_metric

    fit_rows, test_rows = np.arange(800), np.arange(800, n)
    val = np.zeros(800, bool)
    val[:150] = True
    cfg = TrainConfig(mode="symmetric", progress=False, max_epochs=40, lr=3e-3, refit=False)
    result, _ = train_pairs(a[fit_rows], b[fit_rows], labels[fit_rows], cfg, binary=True, val_mask=val)
    raw = pair_val_metric(
        np.eye(d, dtype=np.float32),
        a[test_rows],
        b[test_rows],
        labels[test_rows],
        mode="symmetric",
        binary=True,
    )
    lens = pair_val_metric(
        result.weights, a[test_rows], b[test_rows], labels[test_rows], mode="symmetric", binary=True
    )
    assert lens > raw + 0.1, (raw, lens)


def test_pure_noise_labels_fall_back_to_identity() -> None:
    rng = np.random.default_rng(2)
    n, d = 600, 12
    a = rng.standard_normal((n, d)).astype(np.float32)
    b = rng.standard_normal((n, d)).astype(np.float32)
    labels = np.where(rng.random(n) < 0.5, 1.0, -1.0).astype(np.float32)
    val = np.zeros(n, bool)
    val[:150] = True
    result, _ = train_pairs(
        a, b, labels, TrainConfig(progress=False, max_epochs=15), binary=True, val_mask=val
    )
    assert result.best_epoch == 0
    np.testing.assert_array_equal(result.weights, np.eye(d, dtype=np.float32))
    assert "never worse than raw" in result.reason


def test_training_is_deterministic_with_seed() -> None:
    queries, docs, _, target, _ = _distorted_retrieval(3)
    qrels = QrelsIndex.from_pairs(np.arange(100), target[:100], np.ones(100), 100, len(docs))
    val = np.zeros(100, bool)
    val[:20] = True
    cfg = TrainConfig(progress=False, max_epochs=3, patience=5, n_random=64, refit=False)
    r1, _ = train_retrieval(queries[:100], docs, qrels, cfg, val_rows=val)
    r2, _ = train_retrieval(queries[:100], docs, qrels, cfg, val_rows=val)
    np.testing.assert_array_equal(r1.weights, r2.weights)


def test_default_mode_is_query_unless_reducing() -> None:
    assert TrainConfig().mode == "query"
    assert TrainConfig(dim=64).mode == "symmetric"
    assert TrainConfig(mode="symmetric").mode == "symmetric"


def test_query_mode_lens_undoes_query_side_distortion() -> None:
    """A query lens (documents raw) learns to drop nuisance directions from the query side."""
    queries, docs, qrels, target, oracle = _distorted_retrieval(5)
    train_qrels = QrelsIndex.from_pairs(np.arange(200), target[:200], np.ones(200), 200, len(docs))
    val = np.zeros(200, bool)
    val[:40] = True
    cfg = TrainConfig(progress=False, max_epochs=60, patience=10, lr=3e-3, n_random=128, refit=False)
    result, _ = train_retrieval(queries[:200], docs, train_qrels, cfg, val_rows=val)
    test_qrels = QrelsIndex.from_pairs(np.arange(100), target[200:], np.ones(100), 100, len(docs))
    raw = retrieval_ndcg10(np.eye(16, dtype=np.float32), queries[200:], docs, test_qrels, mode="query").mean()
    lens = retrieval_ndcg10(result.weights, queries[200:], docs, test_qrels, mode="query").mean()
    assert lens > raw + 0.1, (raw, lens)


def test_dim_reduction_starts_orthogonal() -> None:
    from embedlens.training import initial_matrix

    x = np.random.default_rng(0).standard_normal((200, 10)).astype(np.float32)
    w = initial_matrix(x, 4)
    assert w.shape == (10, 4)
    np.testing.assert_allclose(w.T @ w, np.eye(4), atol=1e-5)


class _Recorder:
    """Hash embedder that records every text it is asked to embed."""

    def __init__(self) -> None:
        from tests.conftest import HashEmbedder

        self.inner = HashEmbedder(dim=16)
        self.name = "recorder"
        self.seen: set[str] = set()

    @property
    def dim(self) -> int:
        return 16

    def embed(self, texts: list[str]) -> np.ndarray:
        self.seen.update(texts)
        return self.inner.embed(texts)


def test_no_test_split_text_reaches_training_pairs(tmp_path: Path) -> None:
    from embedlens.datasets import read_pairs
    from embedlens.pipeline import open_embedder, pairs_train_test, train_lens

    rows = ["text_1,text_2,label"]
    for i in range(120):
        rows.append(f"alpha {i % 40} tok{i},beta {i % 40} tok{i},{1 if i % 2 else -1}")
    path = tmp_path / "pairs.csv"
    path.write_text("\n".join(rows) + "\n")
    rec = _Recorder()
    train_lens(path, open_embedder(base=rec, no_cache=True), TrainConfig(progress=False, max_epochs=2))
    _, test, _ = pairs_train_test(read_pairs(path))
    assert set(test.text_1 + test.text_2).isdisjoint(rec.seen)


def test_no_test_query_reaches_training_beir(tiny_beir: Path) -> None:
    from embedlens.datasets import read_beir
    from embedlens.pipeline import open_embedder, train_lens

    rec = _Recorder()
    train_lens(
        tiny_beir,
        open_embedder(base=rec, no_cache=True),
        TrainConfig(progress=False, max_epochs=2, val_fraction=0.25),
    )
    ds = read_beir(tiny_beir)
    _, test_texts = ds.split_queries("test")
    assert set(test_texts).isdisjoint(rec.seen)
