"""Training must undo a known distortion, fall back to the identity on noise, and never see test data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedlens.index import Qrels
from embedlens.training import TrainConfig, train_pairs, train_retrieval
from embedlens.training.retrieval import retrieval_ndcg10


def _distorted_retrieval(seed: int = 0) -> tuple[np.ndarray, np.ndarray, Qrels, np.ndarray, np.ndarray]:
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
    qrels = Qrels.from_pairs(np.arange(n_q), target, np.ones(n_q), n_q, n_docs)
    oracle = rot.T @ np.diag([1.0] * 8 + [0.0] * 8) @ rot  # project onto the signal subspace
    return queries, docs, qrels, target, oracle.astype(np.float32)


def test_retrieval_lens_undoes_hidden_distortion() -> None:
    queries, docs, qrels, target, oracle = _distorted_retrieval()
    train, test = np.arange(200), np.arange(200, 300)
    train_qrels = Qrels.from_pairs(np.arange(200), target[train], np.ones(200), 200, len(docs))
    cfg = TrainConfig(mode="symmetric", progress=False, max_steps=100, rank=16)
    result, summary = train_retrieval(queries[train], docs, train_qrels, cfg)
    test_qrels = Qrels.from_pairs(np.arange(100), target[test], np.ones(100), 100, len(docs))
    raw = retrieval_ndcg10(
        np.eye(16, dtype=np.float32), queries[test], docs, test_qrels, mode="symmetric"
    ).mean()
    best = retrieval_ndcg10(oracle, queries[test], docs, test_qrels, mode="symmetric").mean()
    lens = retrieval_ndcg10(result.weights, queries[test], docs, test_qrels, mode="symmetric").mean()
    assert raw < 0.5 < best
    assert lens > raw + 0.25, (raw, lens, best)
    assert lens > 0.8 * best
    assert result.trained and result.chosen_steps > 0 and result.cv_best > result.cv_start
    assert summary["cv_metric"] == "ndcg@10"


def _distorted_pairs(seed: int, n: int = 1200, d: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rot, _ = np.linalg.qr(rng.standard_normal((d, d)))
    half = d // 2
    sig_a = rng.standard_normal((n, half))
    labels = np.where(rng.random(n) < 0.5, 1.0, -1.0).astype(np.float32)
    sig_b = np.where(
        labels[:, None] > 0, sig_a + 0.3 * rng.standard_normal((n, half)), rng.standard_normal((n, half))
    )
    a = (np.hstack([sig_a, 3 * rng.standard_normal((n, half))]) @ rot).astype(np.float32)
    b = (np.hstack([sig_b, 3 * rng.standard_normal((n, half))]) @ rot).astype(np.float32)
    return a, b, labels


def test_pairs_lens_undoes_hidden_distortion() -> None:
    from embedlens.training.pairs import pair_cosines_through, pair_score

    a, b, labels = _distorted_pairs(1)
    d = a.shape[1]
    fit_rows, test_rows = np.arange(800), np.arange(800, 1200)
    cfg = TrainConfig(mode="symmetric", progress=False)
    result, summary = train_pairs(
        a[fit_rows], b[fit_rows], labels[fit_rows], cfg, binary=True, groups=np.arange(800)
    )

    def auc(w: np.ndarray) -> float:
        cos = pair_cosines_through(w, a[test_rows], b[test_rows], mode="symmetric")
        return pair_score(cos, labels[test_rows], binary=True)

    raw, lens = auc(np.eye(d, dtype=np.float32)), auc(result.weights)
    assert lens > raw + 0.1, (raw, lens)
    assert set(summary["threshold"]) >= {"raw", "lens", "source"}


def test_pure_noise_pairs_fall_back_to_identity() -> None:
    """Cross-validation with its corrected significance check ships the identity on pure noise."""
    for seed in range(4):
        rng = np.random.default_rng(100 + seed)
        n, d = 600, 12
        a = rng.standard_normal((n, d)).astype(np.float32)
        b = rng.standard_normal((n, d)).astype(np.float32)
        labels = np.where(rng.random(n) < 0.5, 1.0, -1.0).astype(np.float32)
        cfg = TrainConfig(progress=False, max_steps=60, seed=seed)
        result, _ = train_pairs(a, b, labels, cfg, binary=True, groups=np.arange(n))
        assert not result.trained, (seed, result.reason)
        np.testing.assert_array_equal(result.weights, np.eye(d, dtype=np.float32))
        assert "never worse than raw" in result.reason


def test_pure_noise_retrieval_falls_back_to_identity() -> None:
    """Queries whose relevant documents are drawn at random: nothing to learn, the identity ships."""
    for seed in range(3):
        rng = np.random.default_rng(200 + seed)
        n_docs, n_q, d = 300, 200, 16
        docs = rng.standard_normal((n_docs, d)).astype(np.float32)
        queries = rng.standard_normal((n_q, d)).astype(np.float32)
        qrels = Qrels.from_pairs(np.arange(n_q), rng.integers(0, n_docs, n_q), np.ones(n_q), n_q, n_docs)
        result, _ = train_retrieval(
            queries, docs, qrels, TrainConfig(progress=False, max_steps=60, seed=seed)
        )
        assert not result.trained, (seed, result.reason)
        np.testing.assert_array_equal(result.weights, np.eye(d, dtype=np.float32))


def test_pseudo_queries_alone_recover_distortion_on_unlabelled_documents() -> None:
    """Labelled queries touch 40 documents; pseudo-queries (one per document) teach the lens the rest.

    Test queries are about the other 260 documents, which no labelled query touches. The lens
    trained with pseudo-queries must recover most of the oracle's gain there; it chooses a
    pseudo-query weight above 0 by cross-validation.
    """
    rng = np.random.default_rng(7)
    n_docs, d = 300, 16
    signal = rng.standard_normal((n_docs, 8))
    rot, _ = np.linalg.qr(rng.standard_normal((d, d)))

    def query_like(rows: np.ndarray) -> np.ndarray:
        noisy = signal[rows] + 0.3 * rng.standard_normal((len(rows), 8))
        return (np.hstack([noisy, 3 * rng.standard_normal((len(rows), 8))]) @ rot).astype(np.float32)

    docs = (np.hstack([signal, 3 * rng.standard_normal((n_docs, 8))]) @ rot).astype(np.float32)
    seen_docs = np.arange(40)
    unseen_docs = np.arange(40, n_docs)
    lab_target = np.repeat(seen_docs, 2)  # 80 labelled queries, two per seen document
    queries = query_like(lab_target)
    qrels = Qrels.from_pairs(np.arange(80), lab_target, np.ones(80), 80, n_docs)
    pseudo = query_like(np.arange(n_docs))  # a "title" per document: its topic, its own nuisance
    test_target = unseen_docs
    test_q = query_like(test_target)
    test_qrels = Qrels.from_pairs(
        np.arange(len(test_target)), test_target, np.ones(len(test_target)), len(test_target), n_docs
    )
    cfg = TrainConfig(progress=False, max_steps=100)
    with_pseudo, _ = train_retrieval(
        queries, docs, qrels, cfg, pseudo_queries=pseudo, pseudo_docs=np.arange(n_docs)
    )
    oracle = (rot.T @ np.diag([1.0] * 8 + [0.0] * 8) @ rot).astype(np.float32)

    def ndcg(w: np.ndarray) -> float:
        return float(retrieval_ndcg10(w, test_q, docs, test_qrels, mode="query").mean())

    raw, lens, best = ndcg(np.eye(d, dtype=np.float32)), ndcg(with_pseudo.weights), ndcg(oracle)
    assert with_pseudo.trained and with_pseudo.chosen["pseudo_weight"] > 0, with_pseudo.reason
    assert lens > raw + 0.5 * (best - raw), (raw, lens, best)


def test_out_of_fold_scores_never_come_from_a_lens_trained_on_them() -> None:
    """Every pooled out-of-fold score (and so the pair threshold) comes from a lens that did not see the pair."""
    from embedlens.evaluation.metrics import best_threshold
    from embedlens.training import loop
    from embedlens.training.pairs import PairsObjective

    a, b, labels = _distorted_pairs(3, n=400)
    trained_on: list[set[int]] = []
    scored: list[tuple[int, set[int]]] = []
    real_init, real_scores = loop._Run.__init__, PairsObjective.scores

    def init(self: Any, obj: Any, items: np.ndarray, hp: Any, seed: int) -> None:
        trained_on.append(set(items.tolist()))
        real_init(self, obj, items, hp, seed)

    def scores(self: Any, w: np.ndarray, units: np.ndarray) -> np.ndarray:
        scored.append((id(w), set(units.tolist())))
        return real_scores(self, w, units)

    import pytest

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop._Run, "__init__", init)
        mp.setattr(PairsObjective, "scores", scores)
        result, summary = train_pairs(
            a, b, labels, TrainConfig(progress=False, max_steps=30), binary=True, groups=np.arange(400)
        )
    k = result.folds
    folds = trained_on[:k]  # the first grid point's k fold runs
    fold_units = [u for _, u in scored[k : 2 * k]]  # their first checkpoint (after the k raw scorings)
    for f in range(k):
        assert folds[f].isdisjoint(fold_units[f]) and len(fold_units[f]) > 0
    assert set().union(*fold_units) == set(range(400))
    pos = labels[result.oof_units] > 0
    assert summary["threshold"]["lens"] == best_threshold(result.oof_lens, pos)[0]


def test_training_is_deterministic_with_seed() -> None:
    queries, docs, _, target, _ = _distorted_retrieval(3)
    qrels = Qrels.from_pairs(np.arange(100), target[:100], np.ones(100), 100, len(docs))
    cfg = TrainConfig(progress=False, max_steps=20, require_significant=False)
    r1, _ = train_retrieval(queries[:100], docs, qrels, cfg)
    r2, _ = train_retrieval(queries[:100], docs, qrels, cfg)
    np.testing.assert_array_equal(r1.weights, r2.weights)


def test_default_mode_is_query_unless_reducing() -> None:
    assert TrainConfig().mode == "query"
    assert TrainConfig(dim=64).mode == "symmetric"
    assert TrainConfig(mode="symmetric").mode == "symmetric"


def test_query_mode_lens_undoes_query_side_distortion() -> None:
    """A query lens (documents raw) learns to drop nuisance directions from the query side."""
    queries, docs, qrels, target, oracle = _distorted_retrieval(5)
    train_qrels = Qrels.from_pairs(np.arange(200), target[:200], np.ones(200), 200, len(docs))
    cfg = TrainConfig(progress=False, max_steps=100)
    result, _ = train_retrieval(queries[:200], docs, train_qrels, cfg)
    test_qrels = Qrels.from_pairs(np.arange(100), target[200:], np.ones(100), 100, len(docs))
    raw = retrieval_ndcg10(np.eye(16, dtype=np.float32), queries[200:], docs, test_qrels, mode="query").mean()
    lens = retrieval_ndcg10(result.weights, queries[200:], docs, test_qrels, mode="query").mean()
    assert lens > raw + 0.1, (raw, lens)


def test_residual_lens_scores_match_the_dense_matrix() -> None:
    """The rank-r shortcuts (norms, cross terms) equal the same quantities computed through W."""
    import torch

    from embedlens.training.residual import ResidualLens

    for rank in (4, None):
        lens = ResidualLens(10, rank, seed=1)
        with torch.no_grad():
            lens.a.normal_()
        x, y = torch.randn(7, 10), torch.randn(7, 10)
        w = torch.from_numpy(lens.matrix())
        ux, vx, uy, vy = lens.left(x), lens.right(x), lens.left(y), lens.right(y)
        torch.testing.assert_close(
            lens.sq_norm(x, ux, vx, (x * x).sum(1)), ((x @ w) ** 2).sum(1), rtol=1e-4, atol=1e-4
        )
        torch.testing.assert_close(
            lens.cross(ux, vx, uy, vy) + (x * y).sum(1), ((x @ w) * (y @ w)).sum(1), rtol=1e-4, atol=1e-4
        )
        torch.testing.assert_close(lens.penalty(), ((w - torch.eye(10)) ** 2).sum(), rtol=1e-4, atol=1e-4)


def test_dim_reduction_starts_orthogonal() -> None:
    from embedlens.training import initial_matrix

    x = np.random.default_rng(0).standard_normal((200, 10)).astype(np.float32)
    w = initial_matrix(x, 4)
    assert w.shape == (10, 4)
    np.testing.assert_allclose(w.T @ w, np.eye(4), atol=1e-5)


def test_dense_pair_set_trains_with_a_warning(tmp_path: Path) -> None:
    """120 usable pairs over 12 distinct texts, no split column: split by pair, with a warning that says so."""
    import pytest

    from embedlens.cache import open_embedder
    from embedlens.errors import EmbedlensWarning
    from embedlens.training.workflow import train_lens
    from tests.conftest import HashEmbedder

    texts = [f"text number {i}" for i in range(12)]
    rows = ["text_1,text_2,label"]
    rng = np.random.default_rng(0)
    pairs = [(i, j) for i in range(12) for j in range(12) if i < j]
    for i, j in [pairs[t] for t in rng.permutation(len(pairs))[:120]]:
        rows.append(f"{texts[i]},{texts[j]},{1 if (i + j) % 2 else -1}")
    path = tmp_path / "dense.csv"
    path.write_text("\n".join(rows) + "\n")
    emb = open_embedder(base=HashEmbedder(dim=16), no_cache=True)
    with pytest.warns(EmbedlensWarning, match="by pair"):
        out = train_lens(path, emb, TrainConfig(progress=False, max_steps=10))
    assert out.lens.d_in == 16


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
    from embedlens.cache import open_embedder
    from embedlens.datasets import pairs_train_test, read_pairs
    from embedlens.training.workflow import train_lens

    rows = ["text_1,text_2,label"]
    for i in range(120):
        rows.append(f"alpha {i % 40} tok{i},beta {i % 40} tok{i},{1 if i % 2 else -1}")
    path = tmp_path / "pairs.csv"
    path.write_text("\n".join(rows) + "\n")
    rec = _Recorder()
    train_lens(path, open_embedder(base=rec, no_cache=True), TrainConfig(progress=False, max_steps=2))
    _, test, _ = pairs_train_test(read_pairs(path))
    assert set(test.text_1 + test.text_2).isdisjoint(rec.seen)


def test_no_test_query_reaches_training_beir(tiny_beir: Path) -> None:
    from embedlens.cache import open_embedder
    from embedlens.datasets import read_beir
    from embedlens.training.workflow import train_lens

    rec = _Recorder()
    train_lens(
        tiny_beir,
        open_embedder(base=rec, no_cache=True),
        TrainConfig(progress=False, max_steps=2),
    )
    ds = read_beir(tiny_beir)
    _, test_texts = ds.split_queries("test")
    assert set(test_texts).isdisjoint(rec.seen)


def test_large_corpus_validates_on_candidates_and_checks_on_everything(monkeypatch: Any) -> None:
    """Above FULL_VALIDATION_DOCS the checkpoints see a candidate set; the significance check the whole corpus."""
    import embedlens.training.retrieval as retrieval

    queries, docs, qrels, target, _ = _distorted_retrieval()
    train_qrels = Qrels.from_pairs(np.arange(200), target[:200], np.ones(200), 200, len(docs))
    cfg = TrainConfig(mode="symmetric", progress=False, max_steps=60, rank=16, lr=1e-2)
    full, _ = train_retrieval(queries[:200], docs, train_qrels, cfg)
    monkeypatch.setattr(retrieval, "FULL_VALIDATION_DOCS", 100)
    monkeypatch.setattr(retrieval, "VAL_TOP", 5)
    monkeypatch.setattr(retrieval, "VAL_SAMPLE", 20)
    monkeypatch.setattr(retrieval, "POOL_SIZE", 50)
    obj = retrieval.RetrievalObjective(queries[:200], docs, train_qrels, mode="symmetric", n_hard=4)
    assert obj.approximate and len(obj.doc_rows) < len(docs)  # only the rows training touches are held
    assert set(target[:200]) <= set(obj.doc_rows.tolist())  # every judged document is a candidate
    w = full.weights
    units = np.arange(40)
    exact = obj.exact_scores(w, units)
    np.testing.assert_allclose(
        exact, retrieval_ndcg10(w, queries[:40], docs, train_qrels.subset(units), mode="symmetric")
    )
    streamed, _ = train_retrieval(queries[:200], lambda: iter(np.array_split(docs, 7)), train_qrels, cfg)
    arrayed, _ = train_retrieval(queries[:200], docs, train_qrels, cfg)
    np.testing.assert_allclose(streamed.weights, arrayed.weights, atol=1e-6)  # a stream trains as the array
    assert streamed.trained and "on the whole corpus" in streamed.reason
    # the pooled out-of-fold scores the check used are whole-corpus nDCG@10 of the start
    start = retrieval_ndcg10(np.eye(16, dtype=np.float32), queries[:200], docs, train_qrels, mode="symmetric")
    np.testing.assert_allclose(np.sort(streamed.oof_raw), np.sort(start))


def test_a_query_relevant_to_almost_every_document_still_trains() -> None:
    """Fewer non-positive documents than hard negatives: the empty slots are masked, never a positive."""
    rng = np.random.default_rng(3)
    docs = rng.standard_normal((12, 8)).astype(np.float32)
    queries = (docs[:6] + 0.1 * rng.standard_normal((6, 8))).astype(np.float32)
    rows = [(0, d) for d in range(10)] + [(q, q) for q in range(1, 6)]  # query 0: 10 of 12 documents
    qrels = Qrels.from_pairs(
        np.array([r[0] for r in rows]), np.array([r[1] for r in rows]), np.ones(len(rows)), 6, 12
    )
    from embedlens.training.retrieval import RetrievalObjective

    obj = RetrievalObjective(queries, docs, qrels, n_hard=8)
    first = obj.item_query == 0
    assert (obj.r_hard.numpy()[first] <= -1e3).sum() >= 6  # at most 2 real negatives for query 0's items
    result, _ = train_retrieval(queries, docs, qrels, TrainConfig(progress=False, folds=2, max_steps=10))
    assert np.isfinite(result.weights).all()


def test_train_lens_refuses_a_missing_gpu_before_embedding(monkeypatch: Any, tiny_beir: Path) -> None:
    import torch

    from embedlens.errors import EmbedlensInputError
    from embedlens.training.workflow import train_lens
    from tests.conftest import HashEmbedder

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    base = HashEmbedder()
    with pytest.raises(EmbedlensInputError, match="--device cuda"):
        train_lens(tiny_beir, base, TrainConfig(progress=False, device="cuda"))
    assert base.texts_seen == 0


def test_fit_steps_are_torch_adam_steps() -> None:
    """_Run's functional Adam (no optimizer class, no torch._dynamo import) is torch.optim.Adam exactly."""
    import torch

    from embedlens.training.loop import _Run
    from embedlens.training.residual import ResidualLens

    gen = np.random.default_rng(0)
    x = torch.from_numpy(gen.standard_normal((64, 16)).astype(np.float32))
    y = torch.from_numpy(gen.standard_normal((64, 16)).astype(np.float32))

    class Obj:
        dim, batch_size, device = 16, None, "cpu"

        def loss(self, lens: ResidualLens, items: np.ndarray, hp: object, g: object) -> torch.Tensor:
            assert lens.b is not None
            return ((x[items] + lens.left(x[items]) @ lens.b.T - y[items]) ** 2).mean()

    hp = {"lr": 0.05, "rank": 4}
    run = _Run(Obj(), np.arange(64), hp, seed=3)  # type: ignore[arg-type]
    ref = ResidualLens(16, 4, seed=3)
    opt = torch.optim.Adam(ref.parameters(), lr=0.05)
    for _ in range(7):
        run.step()
        loss = Obj().loss(ref, np.arange(64), hp, None)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert np.array_equal(run.lens.matrix(), ref.matrix())
    assert not np.array_equal(ref.matrix(), np.eye(16, dtype=np.float32))  # it did move


def test_a_setting_far_behind_an_earlier_one_stops_early() -> None:
    """The race: a learning rate that barely moves stops after a checkpoint or two, not by patience."""
    from embedlens.training import loop
    from embedlens.training.retrieval import RetrievalObjective

    queries, docs, qrels, _, _ = _distorted_retrieval()
    cfg = TrainConfig(mode="symmetric", progress=False, max_steps=100, patience=3)
    obj = RetrievalObjective(queries, docs, qrels, mode="symmetric")
    result = loop.fit(obj, cfg, {"lr": (3e-2, 1e-7), "rank": (16,)})
    by_lr: dict[float, list[dict[str, Any]]] = {}
    for row in result.grid:
        by_lr.setdefault(row["lr"], []).append(row)
    fast, slow = by_lr[3e-2], by_lr[1e-7]
    assert max(r["cv"] for r in fast) > result.cv_start + 2 * loop.RACE_MARGIN  # the first setting learns
    assert len(slow) <= 2 and slow[-1]["stopped"].startswith("behind an earlier setting")
    assert result.chosen["lr"] == 3e-2
    # a second setting as good as the first is never stopped by the race (only by patience or max_steps)
    same = loop.fit(obj, cfg, {"lr": (3e-2, 3e-2), "rank": (16,)})
    assert not any(str(r.get("stopped", "")).startswith("behind") for r in same.grid)
