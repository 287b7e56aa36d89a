"""LlamaIndex's linear adapter on SciFact (the anchor), trained in .venv-bench, scored here on the same test queries.

Run: python bench/bench_llamaindex.py   (needs `make bench-env`; set LLAMAINDEX_SETTINGS=defaults to skip the tuned run)
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from _util import BENCH_CACHE as CACHE
from _util import SHARED, save


def llamaindex_anchor(work: Path) -> dict:
    """Run LlamaIndex's adapter in .venv-bench (if present) and score its test-query vectors here."""
    import subprocess

    from embedlens.cache import open_embedder
    from embedlens.datasets import read_beir
    from embedlens.evaluation.retrieval import per_query_metrics
    from embedlens.index import Qrels, build_index, search

    py = Path(__file__).resolve().parents[1] / ".venv-bench" / "bin" / "python"
    if not py.exists():
        print("LlamaIndex anchor skipped: run `make bench-env` to create .venv-bench")
        return {}
    out = work / "llamaindex"
    subprocess.run([str(py), str(Path(__file__).with_name("llamaindex_anchor.py")), str(out)], check=True)
    info = json.loads((out / "llamaindex.json").read_text())
    ds = read_beir(SHARED / "beir" / "scifact")
    emb = open_embedder(None, cache_dir=CACHE)
    emb.progress = False
    index = build_index(emb.embed(ds.corpus_texts))
    train_docs = {d for rel in ds.qrels["train"].values() for d in rel}
    res = {}
    for name, meta in info.items():
        qids = meta["query_ids"]
        qrels = Qrels.from_dict(ds.qrels["test"], qids, ds.corpus_ids)
        pq = per_query_metrics(search(index, np.load(out / f"{name}.npy"), 100), qrels, (10, 100))
        seen = np.array([any(d in train_docs for d in ds.qrels["test"][q]) for q in qids])
        res[name] = {
            "ndcg@10": float(pq["ndcg@10"].mean()),
            "recall@100": float(pq["recall@100"].mean()),
            "mrr@10": float(pq["mrr@10"].mean()),
            "ndcg@10_seen": float(pq["ndcg@10"][seen].mean()),
            "ndcg@10_unseen": float(pq["ndcg@10"][~seen].mean()),
            "train_s": meta["train_s"],
            "peak_rss_mb": meta["peak_rss_mb"],
            "settings": meta["settings"],
        }
        print(
            f"LlamaIndex {name}: nDCG@10 {res[name]['ndcg@10']:.4f} (unseen {res[name]['ndcg@10_unseen']:.4f}); "
            f"finetune {meta['train_s']:.1f} s"
        )
    return res


def main() -> None:
    if not (SHARED / "beir" / "scifact").exists():
        print("skipped: SciFact not found")
        return
    res = llamaindex_anchor(Path(tempfile.mkdtemp(prefix="embedlens-llamaindex-")))
    if res:
        save("llamaindex", res)


if __name__ == "__main__":
    main()
