"""Real sentence-transformers model with a query prompt: queries are embedded with it in training,
evaluation and serving, stored apart from documents, and copies of a model never share cache rows."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="module")
def prompted_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged MiniLM saved with ``prompts={"query": "query: "}``."""
    from sentence_transformers import SentenceTransformer

    from embedlens.embedders.local import default_model_path

    model = SentenceTransformer(str(default_model_path()), device="cpu")
    model.prompts = {"query": "query: ", "document": ""}
    out = tmp_path_factory.mktemp("prompted") / "final"
    model.save(str(out))
    return out


def test_queries_use_the_saved_query_prompt(prompted_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from embedlens.embedders.local import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder(str(prompted_dir))
    assert emb.query_prompt == "query: " and emb.document_prompt == ""
    texts = ["how do I reset my password", "export my data"]
    reference = SentenceTransformer(str(prompted_dir), device="cpu")
    np.testing.assert_allclose(emb.embed_queries(texts), reference.encode(texts, prompt="query: "), atol=1e-5)
    np.testing.assert_allclose(emb.embed(texts), reference.encode(texts, prompt=""), atol=1e-5)
    assert not np.allclose(emb.embed_queries(texts), emb.embed(texts), atol=1e-3)
    assert emb.query_identity != emb.identity


def test_query_rows_are_kept_apart_and_served_as_queries(prompted_dir: Path, tmp_path: Path) -> None:
    from embedlens import Lens
    from embedlens.adapters.langchain import EmbedderEmbeddings, LensEmbeddings
    from embedlens.cache import EmbeddingCache, open_embedder

    emb = open_embedder(str(prompted_dir), cache_dir=tmp_path)
    emb.progress = False
    doc = emb.embed(["export my data"])
    query = emb.embed_queries(["export my data"])
    assert not np.allclose(doc, query, atol=1e-3)
    cache = EmbeddingCache(tmp_path)
    assert cache.count(emb.identity) == 1 and cache.count(emb.query_identity) == 1
    served = LensEmbeddings(EmbedderEmbeddings(emb), Lens.identity(emb.dim), check_fingerprint=False)
    np.testing.assert_allclose(served.embed_query("export my data"), query[0], atol=1e-5)


def test_model_copies_with_one_basename_do_not_share_rows(prompted_dir: Path, tmp_path: Path) -> None:
    from embedlens.cache import open_embedder

    copy = tmp_path / "elsewhere" / "final"
    shutil.copytree(prompted_dir, copy)
    (copy / "config_sentence_transformers.json").write_text(
        (prompted_dir / "config_sentence_transformers.json").read_text().replace('"query: "', '"search: "')
    )
    cache_dir = tmp_path / "cache"
    first = open_embedder(str(prompted_dir), cache_dir=cache_dir)
    second = open_embedder(str(copy), cache_dir=cache_dir)
    first.progress = second.progress = False
    a = first.embed_queries(["reset password"])
    b = second.embed_queries(["reset password"])
    assert second.base_texts == 1 and not np.allclose(a, b, atol=1e-3)
    assert first.name != second.name  # both readable, both different


def test_training_and_evaluation_use_the_query_prompt(
    prompted_dir: Path, tmp_path: Path, tiny_beir: Path
) -> None:
    from embedlens.cache import EmbeddingCache, open_embedder
    from embedlens.datasets import read_beir
    from embedlens.evaluation.workflow import evaluate_lens
    from embedlens.training import TrainConfig
    from embedlens.training.workflow import train_lens

    emb = open_embedder(str(prompted_dir), cache_dir=tmp_path / "cache")
    emb.progress = False
    cfg = TrainConfig(progress=False, max_steps=1)
    lens = train_lens(tiny_beir, emb, cfg).lens
    ds = read_beir(tiny_beir)
    cache = EmbeddingCache(tmp_path / "cache")
    pseudo = set(ds.pseudo_queries("auto")[0])  # the titles: training queries made from the corpus
    assert cache.count(emb.query_identity) == len(set(ds.split_queries("train")[1]) | pseudo)
    evaluate_lens(tiny_beir, lens, emb, split="test", n_boot=50)
    queries = set(ds.split_queries("train")[1]) | set(ds.split_queries("test")[1]) | pseudo
    assert cache.count(emb.query_identity) == len(queries)
    assert emb.missing([], sorted(queries)) == []


def test_default_model_identity_stays_cheap(tmp_path: Path) -> None:
    from embedlens.cache import open_embedder
    from embedlens.embedders import identity

    identity._MEMO.clear()
    emb = open_embedder(None, cache_dir=tmp_path)
    start = time.perf_counter()
    first = emb.identity
    cold = time.perf_counter() - start
    identity._MEMO.clear()  # a new process: digests come from the cache, the weights are not read
    start = time.perf_counter()
    again = open_embedder(None, cache_dir=tmp_path).identity
    warm = time.perf_counter() - start
    assert first == again and first.startswith("st:all-MiniLM-L6-v2#")
    assert emb.query_identity == emb.identity  # MiniLM has no query prompt: one set of rows
    assert cold < 10 and warm < 0.5
