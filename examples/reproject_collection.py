"""Re-project an existing Chroma collection of raw vectors through a symmetric lens, without re-embedding.

Run: python examples/reproject_collection.py
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import chromadb

from embedlens.adapters.chroma import reproject_collection
from embedlens.app.demo import demo_data_dir
from embedlens.cache import open_embedder
from embedlens.datasets import read_beir
from embedlens.training import TrainConfig
from embedlens.training.workflow import train_lens


def main() -> None:
    work = tempfile.mkdtemp(prefix="embedlens-reproject-")
    emb = open_embedder()
    lens = train_lens(demo_data_dir(), emb, TrainConfig(mode="symmetric", progress=False)).lens
    lens_dir = lens.save(f"{work}/lens")
    ds = read_beir(demo_data_dir())
    client = chromadb.PersistentClient(path=f"{work}/db")
    raw = client.create_collection(
        "raw-docs", embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
    )
    raw.add(ids=ds.corpus_ids, embeddings=emb.embed(ds.corpus_texts), documents=ds.corpus_texts)
    n = reproject_collection(client, "raw-docs", "lens-docs", lens_dir, batch_size=16)
    print(f"re-projected {n} vectors; 'lens-docs' holds {client.get_collection('lens-docs').count()}")
    q = lens.project_queries(emb.embed_queries(["get all my stuff out into a spreadsheet"]))
    print(
        "top-3 through the lens:",
        client.get_collection("lens-docs").query(query_embeddings=q, n_results=3)["ids"][0],
    )


if __name__ == "__main__":
    main()
