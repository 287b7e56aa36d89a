"""LangChain retrieval with a lens, offline: train on the shipped data, index with langchain-chroma, retrieve.

Run: python examples/langchain_rag.py
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import chromadb
from langchain_chroma import Chroma
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from embedlens.adapters.langchain import EmbedderEmbeddings, LensEmbeddings
from embedlens.app.demo import demo_data_dir
from embedlens.cache import open_embedder
from embedlens.datasets import read_beir
from embedlens.training import TrainConfig
from embedlens.training.workflow import train_lens


def main() -> None:
    work = tempfile.mkdtemp(prefix="embedlens-rag-")
    emb = open_embedder()  # offline all-MiniLM-L6-v2 behind the embedding cache
    lens = train_lens(demo_data_dir(), emb, TrainConfig(progress=False)).lens
    lens.save(f"{work}/lens")

    ds = read_beir(demo_data_dir())
    embeddings = LensEmbeddings(EmbedderEmbeddings(emb), f"{work}/lens")
    store = Chroma(
        client=chromadb.PersistentClient(path=f"{work}/db"),
        collection_name="helpdesk",
        embedding_function=embeddings,
        collection_metadata={"hnsw:space": "cosine"},
    )
    store.add_texts(ds.corpus_texts, ids=ds.corpus_ids)

    def format_docs(docs: list) -> str:
        return "\n".join(f"- {d.page_content}" for d in docs)

    chain = {
        "context": store.as_retriever(search_kwargs={"k": 2}) | RunnableLambda(format_docs),
        "question": RunnablePassthrough(),
    } | RunnableLambda(lambda x: f"Question: {x['question']}\nContext:\n{x['context']}")
    print(chain.invoke("PX pw not working"))


if __name__ == "__main__":
    main()
