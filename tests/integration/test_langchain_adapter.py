"""LensEmbeddings behaviour: projection per lens mode, async path, threads, wrong base model, vector store."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

from embedlens import FingerprintMismatchError, load_lens
from embedlens.adapters.langchain import EmbedderEmbeddings, LensEmbeddings

TEXTS = ["reset my password", "export data to a spreadsheet", "refund for the annual plan"]


def test_symmetric_projects_both_sides(lens_dirs: dict[str, Path], local_embedder) -> None:  # type: ignore[no-untyped-def]
    lens = load_lens(lens_dirs["symmetric"])
    emb = LensEmbeddings(EmbedderEmbeddings(local_embedder), lens)
    raw = local_embedder.embed(TEXTS)
    np.testing.assert_allclose(emb.embed_documents(TEXTS), lens.project_documents(raw), atol=1e-6)
    np.testing.assert_allclose(emb.embed_query(TEXTS[0]), lens.project_queries(raw[:1])[0], atol=1e-6)
    assert all(type(v) is float for v in emb.embed_query("x"))


def test_query_lens_passes_documents_through(lens_dirs: dict[str, Path], local_embedder) -> None:  # type: ignore[no-untyped-def]
    emb = LensEmbeddings(EmbedderEmbeddings(local_embedder), lens_dirs["query"])
    raw = local_embedder.embed(TEXTS)
    np.testing.assert_allclose(emb.embed_documents(TEXTS), raw, atol=1e-6)
    assert not np.allclose(emb.embed_query(TEXTS[0]), raw[0], atol=1e-3)


class _AsyncOnly(Embeddings):
    """Sync methods fail; async ones work: proves the adapter awaits the base's async methods."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if texts and texts[0] == "The quick brown fox jumps over the lazy dog.":  # probe at init
            return self.inner.embed_documents(texts)
        raise AssertionError("sync path used")

    def embed_query(self, text: str) -> list[float]:
        raise AssertionError("sync path used")

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        await asyncio.sleep(0)
        return self.inner.embed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        await asyncio.sleep(0)
        return self.inner.embed_query(text)


async def test_async_uses_base_async(lens_dirs: dict[str, Path], local_embedder) -> None:  # type: ignore[no-untyped-def]
    emb = LensEmbeddings(_AsyncOnly(EmbedderEmbeddings(local_embedder)), lens_dirs["symmetric"])
    docs, query = await asyncio.gather(emb.aembed_documents(TEXTS), emb.aembed_query(TEXTS[0]))
    assert len(docs) == 3 and len(query) == 384
    np.testing.assert_allclose(docs[0], query, atol=1e-5)


def test_thread_safe(lens_dirs: dict[str, Path], local_embedder) -> None:  # type: ignore[no-untyped-def]
    emb = LensEmbeddings(EmbedderEmbeddings(local_embedder), lens_dirs["symmetric"])
    expected = emb.embed_documents(TEXTS)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: emb.embed_documents(TEXTS), range(16)))
    for r in results:
        np.testing.assert_allclose(r, expected, atol=1e-6)


def test_wrong_base_model_refused(lens_dirs: dict[str, Path]) -> None:
    with pytest.raises(FingerprintMismatchError, match="not the model this lens was trained on"):
        LensEmbeddings(DeterministicFakeEmbedding(size=384), lens_dirs["symmetric"])
    LensEmbeddings(DeterministicFakeEmbedding(size=384), lens_dirs["symmetric"], check_fingerprint=False)


def test_langchain_chroma_vector_store_and_chain(
    tmp_path: Path, lens_dirs: dict[str, Path], local_embedder
) -> None:  # type: ignore[no-untyped-def]
    import chromadb
    from langchain_chroma import Chroma
    from langchain_core.runnables import RunnableLambda

    from embedlens.app.demo import demo_data_dir
    from embedlens.datasets import read_beir

    ds = read_beir(demo_data_dir())
    lens = load_lens(lens_dirs["symmetric"])
    emb = LensEmbeddings(EmbedderEmbeddings(local_embedder), lens)
    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    store = Chroma(
        client=client,
        collection_name="helpdesk",
        embedding_function=emb,
        collection_metadata={"hnsw:space": "cosine"},
    )
    store.add_texts(ds.corpus_texts, ids=ds.corpus_ids)
    # documents were projected at index time: the stored vectors are the lens's document vectors
    stored = client.get_collection("helpdesk").get(ids=ds.corpus_ids[:3], include=["embeddings"])[
        "embeddings"
    ]
    np.testing.assert_allclose(
        stored, lens.project_documents(local_embedder.embed(ds.corpus_texts[:3])), atol=1e-5
    )
    qids, qtexts = ds.split_queries("test")
    chain = store.as_retriever(search_kwargs={"k": 3}) | RunnableLambda(lambda docs: [d.id for d in docs])
    got = chain.invoke(qtexts[0])
    q = lens.project_queries(local_embedder.embed(qtexts[:1]))[0]
    expected = [
        ds.corpus_ids[i]
        for i in np.argsort(-(lens.project_documents(local_embedder.embed(ds.corpus_texts)) @ q))[:3]
    ]
    assert got == expected
