"""``embedlens demo``: the whole path on a small dataset, offline, printing each step.

1. train a lens on the dataset's training queries; 2. evaluate raw vs lens on its test queries;
3. index the documents into an embedded Chroma collection through the adapter;
4. answer a test question with a LangChain retriever (core only: ``InMemoryVectorStore``) in a chain.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from embedlens.datasets import read_beir


def demo_data_dir() -> Path:
    """The small help-desk dataset shipped with embedlens (BEIR format)."""
    return Path(str(resources.files("embedlens") / "resources" / "demo"))


def run_demo(
    *,
    data: str | os.PathLike[str] | None = None,
    workdir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    no_cache: bool = False,
    echo: Callable[[str], None] = lambda s: None,
) -> dict[str, float]:
    """Run the demo; returns the raw and lens nDCG@10 on the test split.

    Args:
        data: a BEIR directory (default: :func:`demo_data_dir`).
        workdir: where the lens and the Chroma database go (default: a temp directory). It must be
            new, empty, or a previous demo's work directory (marked by a ``.embedlens-demo`` file):
            only then are its ``lens/`` and ``chroma/`` ours to replace.
        cache_dir: embedding cache directory.
        no_cache: skip the embedding cache.
        echo: where progress lines go (the CLI prints them).

    Raises:
        EmbedlensInputError: ``workdir`` holds anything else, or overlaps ``data`` (nothing is written).
    """
    from embedlens._outputs import prepare_demo_workdir

    data_dir = Path(data) if data is not None else demo_data_dir()
    work = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="embedlens-demo-"))
    work = prepare_demo_workdir(work, inputs={"--data": data_dir})

    import chromadb
    from langchain_core.runnables import RunnableLambda
    from langchain_core.vectorstores import InMemoryVectorStore

    from embedlens.adapters.chroma import EmbedlensBaseFunction, LensEmbeddingFunction
    from embedlens.adapters.langchain import EmbedderEmbeddings, LensEmbeddings
    from embedlens.pipeline import evaluate_lens, open_embedder, train_lens
    from embedlens.report import format_report
    from embedlens.training import TrainConfig

    cache_arg = "" if no_cache else (str(cache_dir) if cache_dir is not None else None)
    embedder = open_embedder(None, cache_dir=cache_dir, no_cache=no_cache)
    ds = read_beir(data_dir)
    echo(
        f"[1/4] data: {data_dir} — {len(ds.corpus_ids)} documents, "
        f"{len(ds.qrels.get('train', {}))} train / {len(ds.qrels.get('test', {}))} test queries; "
        f"base model {embedder.name} ({embedder.dim}-d)"
    )

    outcome = train_lens(data_dir, embedder, TrainConfig(mode="symmetric"))
    lens = outcome.lens
    lens_dir = lens.save(work / "lens")
    tr = lens.metadata["training"]
    echo(
        f"      trained a {lens.mode} lens {lens.d_in}->{lens.d_out}: validation {tr['val_metric']} "
        f"{tr['val_start']:.3f} -> {tr['val_best']:.3f} (epoch {tr['chosen_epoch']}); saved to {lens_dir}"
    )

    echo(f"      why this lens: {tr['reason']}")

    echo("[2/4] raw vs lens on the held-out test queries:")
    report = evaluate_lens(data_dir, lens, embedder, split="test", n_boot=1000)
    echo(format_report(report.to_json(), metrics=("ndcg@10", "recall@10", "mrr@10", "hit@1")))

    echo("[3/4] indexing the documents into an embedded Chroma collection through the lens adapter")
    client = chromadb.PersistentClient(path=str(work / "chroma"))
    ef = LensEmbeddingFunction(EmbedlensBaseFunction(None, cache_arg), lens_dir)
    name = "embedlens_demo"
    if name in [c.name for c in client.list_collections()]:
        client.delete_collection(name)
    col = client.create_collection(name, embedding_function=ef, configuration={"hnsw": {"space": "cosine"}})
    for start in range(0, len(ds.corpus_ids), 1000):
        col.add(ids=ds.corpus_ids[start : start + 1000], documents=ds.corpus_texts[start : start + 1000])
    echo(f"      {col.count()} documents in collection {name!r} at {work / 'chroma'}")

    qids, qtexts = ds.split_queries("test")
    question, relevant = qtexts[0], set(ds.qrels["test"][qids[0]])
    echo(f"[4/4] LangChain retriever (InMemoryVectorStore + LensEmbeddings); question: {question!r}")
    store = InMemoryVectorStore(LensEmbeddings(EmbedderEmbeddings(embedder), lens))
    store.add_texts(ds.corpus_texts, ids=ds.corpus_ids)
    retriever = store.as_retriever(search_kwargs={"k": 3})

    def fmt(docs: list) -> str:
        return "\n".join(f"      {i + 1}. {d.page_content[:110]}" for i, d in enumerate(docs))

    chain = retriever | RunnableLambda(fmt)
    echo(chain.invoke(question))
    hits = col.query(query_texts=[question], n_results=3)["ids"][0]
    echo(f"      top-3 ids {hits}; relevant: {sorted(relevant)}")
    return {"raw_ndcg@10": report.raw["ndcg@10"], "lens_ndcg@10": report.lens["ndcg@10"]}
