"""Evaluator behaviour on small synthetic data: index kinds, query-lens serving, groups, pair reports, plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedlens import Lens
from embedlens.evaluation import evaluate_pairs, evaluate_retrieval
from embedlens.index import Qrels, build_index, search


def _data(n_docs: int = 2000, n_q: int = 50, d: int = 32, seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    docs = rng.standard_normal((n_docs, d)).astype(np.float32)
    target = rng.choice(n_docs, n_q, replace=False)
    queries = (docs[target] + 0.3 * rng.standard_normal((n_q, d))).astype(np.float32)
    qrels = Qrels.from_pairs(np.arange(n_q), target, np.ones(n_q), n_q, n_docs)
    return docs, queries, qrels, target


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_agree_with_flat(kind: str) -> None:
    docs, queries, _, _ = _data()
    exact = search(build_index(docs), queries, 10)
    approx = search(build_index(docs, kind=kind, batch_size=500), queries, 10)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, approx, strict=True)])
    assert overlap > 0.8


def test_unknown_index_kind() -> None:
    with pytest.raises(ValueError, match="unknown index kind 'annoy'"):
        build_index(np.ones((3, 4), np.float32), kind="annoy")


def test_streamed_batches_equal_array() -> None:
    docs, queries, _, _ = _data()
    a = search(build_index(docs), queries, 5)
    b = search(build_index(iter(np.array_split(docs, 7))), queries, 5)
    np.testing.assert_array_equal(a, b)


def test_identity_lens_gives_zero_uplift_and_groups() -> None:
    docs, queries, qrels, _ = _data()
    seen = np.arange(50) < 20
    rep = evaluate_retrieval(queries, docs, qrels, Lens.identity(32), seen=seen, n_boot=100)
    assert rep.raw == rep.lens
    assert rep.raw["hit@100"] == 1.0 and all(not u.significant for u in rep.uplift.values())
    assert rep.groups["seen"]["n"] == 20 and rep.groups["unseen"]["n"] == 30
    js = rep.to_json()
    assert {"raw", "lens", "uplift", "groups"} <= js.keys() and js["uplift"]["ndcg@10"]["p_value"] == 1.0


def test_query_lens_is_served_with_raw_documents() -> None:
    docs, queries, qrels, _ = _data(d=16)
    w = np.diag([1.0] * 8 + [0.5] * 8).astype(np.float32)  # re-weights the query side only
    rep = evaluate_retrieval(queries, docs, qrels, Lens(w, mode="query"), n_boot=50)
    # explicit check: the lens ranking equals searching raw documents with projected queries
    expected = search(build_index(docs), Lens(w, mode="query").project_queries(queries), 100)
    np.testing.assert_array_equal(rep.ranked_lens, expected)


def test_pair_report_threshold_from_training() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 8)).astype(np.float32)
    labels = np.where(rng.random(400) < 0.5, 1.0, -1.0)
    b = np.where(
        labels[:, None] > 0, a + 0.5 * rng.standard_normal((400, 8)), rng.standard_normal((400, 8))
    ).astype(np.float32)
    rep = evaluate_pairs(
        a[200:],
        b[200:],
        labels[200:],
        Lens.identity(8),
        binary=True,
        train_a=a[:200],
        train_b=b[:200],
        train_labels=labels[:200],
        n_boot=50,
    )
    assert rep.raw["accuracy"] == rep.lens["accuracy"] and 0.8 < rep.raw["accuracy"] <= 1.0
    assert rep.raw["roc_auc"] > 0.9 and rep.raw["cookbook_accuracy"] >= rep.raw["accuracy"]
    assert rep.uplift["accuracy"].delta == 0.0


def test_plots_written(tmp_path: Path) -> None:
    from embedlens.app.plots import (
        plot_cosine_histograms,
        plot_metric_at_k,
        plot_report,
        plot_validation_curve,
    )

    rng = np.random.default_rng(0)
    p1 = plot_cosine_histograms(
        rng.uniform(-1, 1, 100),
        rng.uniform(-1, 1, 100),
        np.sign(rng.standard_normal(100)),
        tmp_path / "h.png",
    )
    d, q, qrels, _ = _data(n_docs=300, n_q=60)
    seen = np.arange(q.shape[0]) % 3 > 0
    report = evaluate_retrieval(q, d, qrels, Lens.identity(q.shape[1]), seen=seen, n_boot=100)
    p2 = plot_metric_at_k(report, tmp_path / "m.png", title="toy")
    p3 = plot_validation_curve(
        [{"steps": 0, "cv": 0.5}, {"steps": 10, "cv": 0.6}],
        tmp_path / "v.png",
        metric="ndcg@10",
        chosen=1,
    )
    p4 = plot_report(report, tmp_path / "r.png", title="toy")
    graded = rng.uniform(0, 5, 100)  # STS-B-like labels: three label bands, not "+1 / -1"
    p5 = plot_cosine_histograms(
        rng.uniform(0.2, 0.9, 100), rng.uniform(0.1, 0.95, 100), graded, tmp_path / "g.png"
    )
    for p in (p1, p2, p3, p4, p5):
        assert p.read_bytes()[:4] == b"\x89PNG" and p.stat().st_size > 5000
    for p in (p2, p4):  # the figures name the query groups (PNG text chunk, written from the titles)
        text = _png_description(p)
        assert "toy" in text and "seen (n=40)" in text and "unseen (n=20)" in text, text
    assert _png_description(p5).count("label ") == 3  # graded labels: three bands, no "+1 / -1" legend
    assert "similar (+1)" in _png_description(p1)


def _png_description(path: Path) -> str:
    """The ``Description`` text chunk of a PNG (and the axis titles in it)."""
    import struct
    import zlib

    data = path.read_bytes()
    pos, out = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"tEXt" and body.startswith(b"Description\0"):
            out.append(body.split(b"\0", 1)[1].decode("latin-1"))
        elif kind == b"zTXt" and body.startswith(b"Description\0"):
            out.append(zlib.decompress(body.split(b"\0", 1)[1][1:]).decode("latin-1"))
        elif kind == b"iTXt" and body.startswith(b"Description\0"):
            out.append(body.split(b"\0", 5)[-1].decode("utf-8"))
        pos += 12 + length
    return " ".join(out)


def test_plot_helpers_fit_the_data() -> None:
    from embedlens.app.plots import _binary, _cosine_bins, _groups_of, _mean_band

    bins = _cosine_bins(np.array([0.3, 0.5]), np.array([0.4, 0.9]))
    assert 0.28 < bins[0] < 0.3 and 0.9 < bins[-1] < 0.92  # not half an empty [-1, 1] axis
    assert _binary(np.array([1.0, -1.0])) and not _binary(np.array([0.0, 2.5, 5.0]))
    m, lo, hi = _mean_band(np.array([0.0, 1.0] * 50))
    assert m == 0.5 and lo < 0.5 < hi and abs((hi - lo) / 2 - 1.96 * 0.5025 / 10) < 1e-3
    d, q, qrels, _ = _data(n_docs=300, n_q=60)
    seen = np.arange(q.shape[0]) % 3 > 0
    report = evaluate_retrieval(q, d, qrels, Lens.identity(q.shape[1]), seen=seen, n_boot=50)
    names = [n for n, _ in _groups_of(report)]
    assert names == ["all queries (n=60)", f"seen (n={int(seen.sum())})", f"unseen (n={int((~seen).sum())})"]
