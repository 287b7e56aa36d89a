"""``embedlens demo``: the whole path on a small dataset, offline, printing each step.

1. train a lens (default settings) on the dataset's training queries; 2. evaluate raw vs lens on its
test queries, and say in one line what the seen/unseen groups show; 3. index the documents into an
embedded Chroma collection through the adapter; 4. answer a test question about a document that no
training question is about with a LangChain retriever (core only: ``InMemoryVectorStore``) in a chain.

The shipped data (written by ``tools/make_demo_data.py``) is an internal help desk: articles in plain
product language, questions in the company's jargon ("Falcon" for the billing service).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, cast

import numpy as np

from embedlens.datasets import BeirDataset, read_beir


def demo_data_dir() -> Path:
    """The small help-desk dataset shipped with embedlens (BEIR format)."""
    return Path(str(resources.files("embedlens") / "resources" / "demo"))


def seen_unseen_line(report: dict[str, Any], metric: str = "ndcg@10") -> str:
    """One line, in plain words, on what the ``seen``/``unseen`` groups of a report show.

    ``report`` is the JSON form of a retrieval report (``RetrievalReport.to_json``).
    """
    groups = report.get("groups") or {}
    seen, unseen = groups.get("seen", {}), groups.get("unseen", {})
    if not groups:
        return "seen/unseen: the data has no training queries to tell seen from unseen documents"
    if not unseen.get("n") or not seen.get("n"):
        which = "a document some" if not unseen.get("n") else "a document no"
        return (
            f"seen/unseen: every test question is about {which} training question is about, so this "
            "data cannot tell a lens that learned the domain from one that memorised the answers"
        )

    def verdict(g: dict[str, Any]) -> int:
        d = g["uplift"][metric]
        return 0 if not d["significant"] else (1 if d["delta"] > 0 else -1)

    def change(g: dict[str, Any]) -> str:
        return f"{g['raw'][metric]:.2f} -> {g['lens'][metric]:.2f}"

    d = unseen["uplift"][metric]
    lo, hi = d["ci95"]
    word = {1: "significant", -1: "significantly worse", 0: "not significant"}
    u_v, s_v = verdict(unseen), verdict(seen)
    if u_v > 0:
        why = "the lens learned the jargon, not just the answers"
    elif u_v < 0:
        why = "the lens over-fitted to the answers it was trained on and hurts new documents"
    elif s_v > 0:
        why = "the gain comes from documents it was trained on (memorised answers) and did not carry over"
    else:
        why = "the lens changes nothing measurable here"
    name = "nDCG@10" if metric == "ndcg@10" else metric
    return (
        f"unseen documents (no training question about them, n={unseen['n']}): {name} {change(unseen)} "
        f"({d['delta']:+.2f}, 95% CI [{lo:+.2f}, {hi:+.2f}], {word[u_v]}); seen (n={seen['n']}): "
        f"{change(seen)} ({word[s_v]}) — {why}"
    )


def _seen_mask(ds: BeirDataset, qids: list[str]) -> np.ndarray:
    """``(n,)`` bool: the test query has a relevant document that some training query also has."""
    train_docs = {d for rel in ds.qrels.get("train", {}).values() for d, g in rel.items() if g > 0}
    return np.array([any(g > 0 and d in train_docs for d, g in ds.qrels["test"][q].items()) for q in qids])


def _pick_question(ds: BeirDataset, qids: list[str], report: Any) -> int:
    """The test question to answer in step 4 (its row in ``qids``).

    The first one about an unseen document whose top hit is right with the lens and wrong without
    it; else right with the lens; else the first unseen one; else the first question.
    """
    lens_hit = report.per_query_lens["hit@1"] > 0
    raw_hit = report.per_query_raw["hit@1"] > 0
    unseen = ~_seen_mask(ds, qids)
    for want in (unseen & lens_hit & ~raw_hit, unseen & lens_hit, unseen):
        if want.any():
            return int(np.flatnonzero(want)[0])
    return 0


def run_demo(
    *,
    data: str | os.PathLike[str] | None = None,
    workdir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    no_cache: bool = False,
    echo: Callable[[str], None] = lambda s: None,
    json_out: str | os.PathLike[str] | None = None,
    force: bool = False,
    progress: bool = True,
    device: str = "auto",
) -> dict[str, Any]:
    """Run the demo; returns the raw and lens nDCG@10 on the test split and the report.

    The returned dict has ``raw_ndcg@10``, ``lens_ndcg@10``, ``report`` (what ``evaluate --json``
    writes) and ``explanation`` (the seen/unseen line).

    Args:
        data: a BEIR directory (default: :func:`demo_data_dir`).
        workdir: where the lens and the Chroma database go (default: a temp directory). It must be
            new, empty, or a previous demo's work directory (marked by a ``.embedlens-demo`` file):
            only then are its ``lens/`` and ``chroma/`` ours to replace.
        cache_dir: embedding cache directory.
        no_cache: skip the embedding cache.
        device: where the model embeds and the lens trains (``auto``: a CUDA GPU when torch sees one).
        echo: where progress lines go (the CLI prints them).
        json_out: also write the evaluation report here, as ``evaluate --json`` does (with its
            ``"format": "embedlens-report"`` marker).
        force: replace an existing report of ours at ``json_out`` (and nothing else).
        progress: show training progress bars (the CLI's ``--quiet`` turns them off).

    Raises:
        EmbedlensInputError: ``workdir`` holds anything else, or overlaps ``data``; ``json_out`` is
            not ours, exists without ``force``, or overlaps ``data``, the cache or the demo's own
            ``lens/``/``chroma/`` (nothing is written).
    """
    from embedlens._outputs import REPORT_FORMAT, prepare_demo_workdir

    data_dir = Path(data) if data is not None else demo_data_dir()
    guard_json = _report_guard(json_out, data_dir, cache_dir, force)
    guard_json(None)  # before any work
    work = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="embedlens-demo-"))
    guard_json(work)
    work = prepare_demo_workdir(work, inputs={"--data": data_dir})

    import chromadb
    from langchain_core.runnables import RunnableLambda
    from langchain_core.vectorstores import InMemoryVectorStore

    from embedlens.adapters.chroma import EmbedderEmbeddingFunction, LensEmbeddingFunction
    from embedlens.adapters.langchain import EmbedderEmbeddings, LensEmbeddings
    from embedlens.app.report import format_report
    from embedlens.cache import open_embedder
    from embedlens.evaluation.workflow import evaluate_lens
    from embedlens.training import TrainConfig
    from embedlens.training.workflow import train_lens

    cache_arg = "" if no_cache else (str(cache_dir) if cache_dir is not None else None)
    embedder = open_embedder(None, cache_dir=cache_dir, no_cache=no_cache, device=device)
    ds = read_beir(data_dir)
    qids, qtexts = ds.split_queries("test")
    n_unseen = int((~_seen_mask(ds, qids)).sum())
    echo(
        f"[1/4] data: {data_dir} — {len(ds.corpus_ids)} documents, "
        f"{len(ds.qrels.get('train', {}))} train / {len(qids)} test queries "
        f"({n_unseen} of them about documents no training query is about); "
        f"base model {embedder.name} ({embedder.dim}-d)"
    )

    outcome = train_lens(
        data_dir, embedder, TrainConfig(progress=progress, device=device)
    )  # defaults, as `train`
    lens = outcome.lens
    lens_dir = lens.save(work / "lens")
    tr = lens.metadata["training"]
    echo(
        f"      trained a {lens.mode} lens {lens.d_in}->{lens.d_out}: {tr['cv_folds']}-fold validation "
        f"{tr['cv_metric']} {tr['cv_start']:.3f} -> {tr['cv_best']:.3f} ({tr['chosen_steps']} steps); "
        f"saved to {lens_dir}"
    )

    echo(f"      why this lens: {tr['reason']}")

    echo("[2/4] raw vs lens on the held-out test queries:")
    report = evaluate_lens(data_dir, lens, embedder, split="test")
    js = report.to_json()
    js = {"format": REPORT_FORMAT, **js}  # the marker `--force` looks for, as `evaluate --json`
    js["info"]["lens"] = str(lens_dir)
    echo(format_report(js, metrics=("ndcg@10", "recall@10", "mrr@10", "hit@1")))
    explanation = seen_unseen_line(js)
    echo(f"      {explanation}")
    if json_out is not None:
        from embedlens._atomic import atomic_write_json

        guard_json(work)  # again: nothing foreign may have appeared meanwhile
        atomic_write_json(json_out, js)
        echo(f"      report written to {json_out}")

    echo("[3/4] indexing the documents into an embedded Chroma collection through the lens adapter")
    client = chromadb.PersistentClient(path=str(work / "chroma"))
    ef = LensEmbeddingFunction(EmbedderEmbeddingFunction(None, cache_arg), lens_dir)
    name = "embedlens_demo"
    if name in [c.name for c in client.list_collections()]:
        client.delete_collection(name)
    col = client.create_collection(
        name,
        embedding_function=cast(Any, ef),  # chroma's stubs expect EmbeddingFunction[Embeddable]
        configuration={"hnsw": {"space": "cosine"}},
    )
    for start in range(0, len(ds.corpus_ids), 1000):
        col.add(ids=ds.corpus_ids[start : start + 1000], documents=ds.corpus_texts[start : start + 1000])
    echo(f"      {col.count()} documents in collection {name!r} at {work / 'chroma'}")

    row = _pick_question(ds, qids, report)
    question, relevant = qtexts[row], set(ds.qrels["test"][qids[row]])
    about = "a document no training question is about" if not _seen_mask(ds, qids)[row] else "a document"
    echo(f"[4/4] LangChain retriever (InMemoryVectorStore + LensEmbeddings); a test question about {about}:")
    echo(f"      {question!r}")
    store = InMemoryVectorStore(LensEmbeddings(EmbedderEmbeddings(embedder), lens))
    store.add_texts(ds.corpus_texts, ids=ds.corpus_ids)
    retriever = store.as_retriever(search_kwargs={"k": 3})

    def fmt(docs: list) -> str:
        return "\n".join(f"      {i + 1}. {d.page_content[:110]}" for i, d in enumerate(docs))

    chain = retriever | RunnableLambda(fmt)
    echo(chain.invoke(question))
    hits = col.query(query_texts=[question], n_results=3)["ids"][0]
    echo(f"      top-3 ids {hits}; relevant: {sorted(relevant)}")
    docs, query = embedder.embed(ds.corpus_texts), embedder.embed_queries([question])[0]
    raw_top = int(np.argmax(docs @ query / np.linalg.norm(docs, axis=1)))  # cosine, as the raw index
    echo(f"      without the lens the top hit is {ds.corpus_ids[raw_top]}: {ds.corpus_texts[raw_top][:90]}")
    return {
        "raw_ndcg@10": report.raw["ndcg@10"],
        "lens_ndcg@10": report.lens["ndcg@10"],
        "report": js,
        "explanation": explanation,
    }


def _report_guard(
    json_out: str | os.PathLike[str] | None,
    data_dir: Path,
    cache_dir: str | os.PathLike[str] | None,
    force: bool,
) -> Callable[[Path | None], None]:
    """A check of ``json_out`` to run before any work and again before writing (no-op without it).

    Called with the work directory, it also refuses a report at, inside or around the demo's own
    ``lens/``, ``chroma/`` or marker there (a report elsewhere in the work directory is fine).
    """
    from embedlens._outputs import DEMO_MARKER, OutputRefusedError, guard_file, report_problem

    def check(work: Path | None) -> None:
        if json_out is None:
            return
        inputs = {"--data": data_dir, "--cache": cache_dir}
        guard_file(json_out, option="--json", ours=report_problem, inputs=inputs, force=force)
        if work is None:
            return
        out = Path(json_out).expanduser().resolve(strict=False)
        for part in ("lens", "chroma", DEMO_MARKER):
            own = (work / part).expanduser().resolve(strict=False)
            if out == own or out.is_relative_to(own) or own.is_relative_to(out):
                why = f"overlaps the demo's own {work / part}; give another path"
                raise OutputRefusedError(f"--json {json_out}: {why}")

    return check
