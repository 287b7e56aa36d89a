"""A persisted Chroma collection with a lens, re-opened later without passing the function.

Run: python examples/chroma_collection.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import chromadb
from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction

from embedlens.adapters.chroma import LensEmbeddingFunction
from embedlens.app.demo import demo_data_dir
from embedlens.cache import open_embedder
from embedlens.datasets import read_beir
from embedlens.embedders.local import default_model_path
from embedlens.training import TrainConfig
from embedlens.training.workflow import train_lens

REOPEN = """
import sys, chromadb
import embedlens.adapters.chroma  # registers the 'embedlens' function so Chroma can rebuild it
col = chromadb.PersistentClient(path=sys.argv[1]).get_collection("helpdesk")
print("re-opened in a new process:", col.query(query_texts=[sys.argv[2]], n_results=3)["ids"][0])
"""


def main() -> None:
    work = tempfile.mkdtemp(prefix="embedlens-chroma-")
    lens_dir = train_lens(demo_data_dir(), open_embedder(), TrainConfig(progress=False)).lens.save(
        f"{work}/lens"
    )
    base = SentenceTransformerEmbeddingFunction(model_name=str(default_model_path()))  # Chroma's own function
    client = chromadb.PersistentClient(path=f"{work}/db")
    col = client.create_collection(
        "helpdesk",
        embedding_function=LensEmbeddingFunction(base, lens_dir),
        configuration={"hnsw": {"space": "cosine"}},
    )
    ds = read_beir(demo_data_dir())
    col.add(ids=ds.corpus_ids, documents=ds.corpus_texts)
    question = "Falcon - which team uses it"
    print("query:", question)
    print("this process:", col.query(query_texts=[question], n_results=3)["ids"][0])
    print("stored config:", col.configuration_json["embedding_function"])
    subprocess.run([sys.executable, "-c", REOPEN, f"{work}/db", question], check=True)


if __name__ == "__main__":
    main()
