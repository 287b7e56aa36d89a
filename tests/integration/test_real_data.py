"""Real-data checks on ../shared/data (marked slow: `make slow`). Skipped with a reason when absent.

Quality claims are measured on held-out test splits never seen in training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedlens.app.cli import main
from tests.conftest import SHARED_DATA, requires_shared

pytestmark = pytest.mark.slow
SCIFACT = SHARED_DATA / "beir" / "scifact"
STSB = SHARED_DATA / "pairs" / "stsb.csv"
SNLI = SHARED_DATA / "snli_1.0_train_2k.csv"


def _train_eval(data: Path, tmp: Path, cache: Path, *extra: str) -> dict[str, Any]:
    lens = tmp / f"lens-{data.stem}"
    assert (
        main(["train", "--data", str(data), "--out", str(lens), "--cache", str(cache), "--quiet", *extra])
        == 0
    )
    report = tmp / f"{data.stem}.json"
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(data),
                "--lens",
                str(lens),
                "--cache",
                str(cache),
                "--json",
                str(report),
            ]
        )
        == 0
    )
    return json.loads(report.read_text())


@pytest.fixture(scope="module")
def scifact_report(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> dict[str, Any]:
    if not SCIFACT.exists():
        pytest.skip(f"real data not found at {SCIFACT} (see shared/data/README.md)")
    return _train_eval(SCIFACT, tmp_path_factory.mktemp("scifact"), cache_dir)


@requires_shared("beir", "scifact")
def test_scifact_default_lens_beats_anchors(scifact_report: dict[str, Any]) -> None:
    raw, lens = scifact_report["raw"]["ndcg@10"], scifact_report["lens"]["ndcg@10"]
    assert raw == pytest.approx(0.645, abs=0.005)  # the published figure for all-MiniLM-L6-v2
    assert lens >= 0.82, lens  # issue 10's goal (0.827 measured, BENCHMARKS.md)
    assert scifact_report["uplift"]["ndcg@10"]["significant"]
    unseen = scifact_report["groups"]["unseen"]
    assert unseen["n"] == 104 and scifact_report["groups"]["seen"]["n"] == 196
    # not below raw beyond the confidence interval on queries whose documents were never trained on
    assert unseen["uplift"]["ndcg@10"]["ci95"][1] >= 0.0


@requires_shared("beir", "scifact")
def test_metrics_agree_with_ranx(cache_dir: Path) -> None:
    ranx = pytest.importorskip("ranx")
    from embedlens.cache import open_embedder
    from embedlens.datasets import read_beir
    from embedlens.evaluation.retrieval import per_query_metrics
    from embedlens.index import Qrels, build_index, search

    ds = read_beir(SCIFACT)
    emb = open_embedder(None, cache_dir=cache_dir)
    qids, qtexts = ds.split_queries("test")
    docs, queries = emb.embed(ds.corpus_texts), emb.embed(qtexts)
    ranked = search(build_index(docs), queries, 100)
    ours = per_query_metrics(ranked, Qrels.from_dict(ds.qrels["test"], qids, ds.corpus_ids), (10, 100))
    scores = np.linspace(1.0, 0.01, 100)
    run = ranx.Run(
        {
            q: {ds.corpus_ids[d]: float(s) for d, s in zip(ranked[i], scores, strict=True)}
            for i, q in enumerate(qids)
        }
    )
    qrels = ranx.Qrels({q: dict(ds.qrels["test"][q]) for q in qids})
    names = {
        "ndcg@10": "ndcg@10",
        "recall@100": "recall@100",
        "mrr@10": "mrr@10",
        "precision@10": "precision@10",
        "hit@10": "hit_rate@10",
    }
    ranx.evaluate(qrels, run, list(names.values()))  # fills run.scores[metric][query id]
    for ours_name, ranx_name in names.items():
        theirs = np.array([run.scores[ranx_name][q] for q in qids])
        np.testing.assert_allclose(ours[ours_name], theirs, atol=1e-6, err_msg=ours_name)


@requires_shared("beir", "scifact")
def test_chroma_top10_equals_faiss_evaluator(tmp_path: Path, cache_dir: Path) -> None:
    import chromadb

    from embedlens.adapters.chroma import EmbedderEmbeddingFunction, LensEmbeddingFunction
    from embedlens.cache import open_embedder
    from embedlens.datasets import read_beir
    from embedlens.evaluation.retrieval import evaluate_retrieval
    from embedlens.index import Qrels
    from embedlens.training import TrainConfig
    from embedlens.training.workflow import train_lens

    ds = read_beir(SCIFACT)
    emb = open_embedder(None, cache_dir=cache_dir)
    lens = train_lens(SCIFACT, emb, TrainConfig(progress=False)).lens
    lens_dir = lens.save(tmp_path / "lens")
    qids, qtexts = ds.split_queries("test")
    qids, qtexts = qids[:60], qtexts[:60]
    report = evaluate_retrieval(
        emb.embed_queries(qtexts),
        emb.embed(ds.corpus_texts),
        Qrels.from_dict(ds.qrels["test"], qids, ds.corpus_ids),
        lens,
        n_boot=10,
    )
    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    ef = LensEmbeddingFunction(EmbedderEmbeddingFunction(None, str(cache_dir)), lens_dir)
    col = client.create_collection(
        "scifact",
        embedding_function=ef,
        configuration={
            "hnsw": {"space": "cosine", "ef_construction": 400, "ef_search": 400, "max_neighbors": 32}
        },
    )
    for s in range(0, len(ds.corpus_ids), 2000):
        col.add(ids=ds.corpus_ids[s : s + 2000], documents=ds.corpus_texts[s : s + 2000])
    got = col.query(query_texts=qtexts, n_results=10)["ids"]
    expected = [[ds.corpus_ids[i] for i in row[:10]] for row in report.ranked_lens]
    # Chroma (float32 HNSW distances) and FAISS may order documents whose cosines agree to ~1e-6 differently:
    # a query agrees when both top-10 lists hold the same documents, up to such near-ties at the 10th place.
    row_of = {d: i for i, d in enumerate(ds.corpus_ids)}
    q = lens.project_queries(emb.embed_queries(qtexts))
    docs = lens.project_documents(emb.embed(ds.corpus_texts))
    agree = 0
    for qi, (g, e) in enumerate(zip(got, expected, strict=True)):
        score = {d: float(q[qi] @ docs[row_of[d]]) for d in set(g) | set(e)}
        tenth = min(score[d] for d in e)
        if all(abs(score[d] - tenth) < 1e-5 for d in set(g) ^ set(e)):
            agree += 1
    assert agree == len(qids), f"{agree}/{len(qids)} queries with the same top-10 (near-ties aside)"


@requires_shared("pairs", "stsb.csv")
def test_stsb_lens_not_below_raw(tmp_path: Path, cache_dir: Path) -> None:
    rep = _train_eval(STSB, tmp_path, cache_dir)
    assert rep["raw"]["spearman"] == pytest.approx(0.820, abs=0.005)
    assert rep["uplift"]["spearman"]["ci95"][1] >= 0.0  # never below raw beyond the CI
    assert rep["uplift"]["spearman"]["delta"] >= 0.01  # issue 10's goal (+0.011 measured)


@requires_shared("snli_1.0_train_2k.csv")
def test_snli_lens_not_below_raw(tmp_path: Path, cache_dir: Path) -> None:
    rep = _train_eval(SNLI, tmp_path, cache_dir)
    assert rep["info"]["pairs"] > 600
    assert rep["uplift"]["accuracy"]["ci95"][1] >= 0.0
    assert "cookbook_accuracy" in rep["raw"]
    # issue 10's goal: accuracy >= raw + 0.02 with thresholds chosen out of fold; where AUC rises, accuracy too
    assert rep["info"]["threshold_source"].startswith("out-of-fold")
    assert rep["uplift"]["accuracy"]["delta"] >= 0.02
    assert rep["uplift"]["roc_auc"]["ci95"][1] >= 0.0
