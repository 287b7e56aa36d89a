"""Train and evaluate a lens on data held in memory: no BEIR files, no CSV.

Retrieval: a corpus ``{doc id: text}`` and ``(question, relevant doc id)`` pairs, e.g. from a support log.
Pairs: three lists (or a pandas DataFrame with those columns) of text_1, text_2 and a label. The same defaults and safeguards as
``embedlens train`` apply (cross-validated choice, significance check, held-out test split).

Run: python examples/in_memory.py
"""

from __future__ import annotations

import csv
import json
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from embedlens import evaluate_lens, open_embedder, pairs_dataset, retrieval_dataset, train_lens
from embedlens.app.demo import demo_data_dir


def support_log() -> tuple[dict[str, dict[str, str]], list[tuple[str, str]], list[tuple[str, str]]]:
    """The shipped help-desk data as plain Python: a corpus and (question, doc id) pairs per split."""
    root = demo_data_dir()
    with open(root / "corpus.jsonl", encoding="utf-8") as f:
        corpus = {d["_id"]: {"title": d["title"], "text": d["text"]} for d in map(json.loads, f)}
    with open(root / "queries.jsonl", encoding="utf-8") as f:
        questions = {q["_id"]: q["text"] for q in map(json.loads, f)}
    splits = {}
    for split in ("train", "test"):
        with open(root / "qrels" / f"{split}.tsv", encoding="utf-8") as f:
            splits[split] = [
                (questions[r["query-id"]], r["corpus-id"]) for r in csv.DictReader(f, delimiter="\t")
            ]
    return corpus, splits["train"], splits["test"]


def main() -> None:
    emb = open_embedder()  # the offline all-MiniLM-L6-v2 behind the embedding cache

    # --- retrieval: a query lens (documents stay raw, so an existing index is kept)
    corpus, train, test = support_log()
    data = retrieval_dataset(corpus, train=train, test=test)
    outcome = train_lens(data, emb)
    report = evaluate_lens(data, outcome.lens, emb).to_json()
    u = report["uplift"]["ndcg@10"]
    print(
        f"retrieval nDCG@10 {report['raw']['ndcg@10']:.3f} -> {report['lens']['ndcg@10']:.3f} "
        f"(95% CI of the gain [{u['ci95'][0]:+.3f}, {u['ci95'][1]:+.3f}])"
    )

    # --- pairs: "this article answers this question", as three lists; with positives only, training and
    # evaluation add negatives by re-pairing texts within each fold / split
    text_1, text_2, split = [], [], []
    for name, judged in (("train", train), ("test", test)):
        for question, doc in judged:
            text_1.append(question)
            text_2.append(f"{corpus[doc]['title']}. {corpus[doc]['text']}")
            split.append(name)
    labels = [1] * len(text_1)
    pairs = pairs_dataset(text_1, text_2, labels, split=split)
    pair_lens = train_lens(pairs, emb).lens
    with tempfile.TemporaryDirectory() as work:
        pair_lens.save(f"{work}/pairs-lens")  # a lens directory, as `embedlens train` writes
        rep = evaluate_lens(pairs, f"{work}/pairs-lens", emb).to_json()
    print(
        f"pairs accuracy {rep['raw']['accuracy']:.3f} -> {rep['lens']['accuracy']:.3f}, "
        f"ROC AUC {rep['raw']['roc_auc']:.3f} -> {rep['lens']['roc_auc']:.3f}"
    )


if __name__ == "__main__":
    main()
