"""GPU against CPU on one machine, in one run: SciFact training on cached embeddings, and exact search.

Two steps, because the GPU machine has neither the model files nor the embedding cache:

    python bench/bench_gpu.py --export bench/gpu-data/scifact.npz   # here: SciFact vectors from the cache
    python bench/bench_gpu.py bench/gpu-data/scifact.npz            # there: writes $OUT/gpu.json (or ./gpu.json)

Training: the defaults (``TrainConfig()``, cross-validated) with ``device="cpu"`` and ``device="cuda"``;
test nDCG@10 of both lenses. Exact search: :class:`~embedlens.index.FlatIndex` on the CPU and on the GPU,
1,000,000 x 384 random rows, 300 and 1,000 queries, top-100 sets compared. Embedding on the GPU is not
measured here (the model's files are not carried to that machine).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np


def export(out: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from _util import BENCH_CACHE, SHARED

    from embedlens.cache import open_embedder
    from embedlens.datasets import read_beir
    from embedlens.index import Qrels
    from embedlens.training import TrainConfig
    from embedlens.training.workflow import pseudo_query_texts

    data = read_beir(SHARED / "beir" / "scifact")
    emb = open_embedder(None, cache_dir=BENCH_CACHE)
    emb.progress = False
    arrays: dict[str, np.ndarray] = {"docs": emb.embed(data.corpus_texts)}
    for split in ("train", "test"):
        qids, qtexts = data.split_queries(split)
        arrays[f"{split}_queries"] = emb.embed_queries(qtexts)
        qrels = Qrels.from_dict(data.qrels[split], qids, data.corpus_ids)
        arrays[f"{split}_qrels"] = np.stack([qrels.query_rows, qrels.doc_rows, qrels.grades.astype(np.int64)])
    ptexts, prows = pseudo_query_texts(data, TrainConfig(progress=False))
    arrays["pseudo"], arrays["pseudo_docs"] = emb.embed_queries(ptexts), prows
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB)")


def _qrels(a: np.ndarray, n_queries: int, n_docs: int):  # type: ignore[no-untyped-def]
    from embedlens.index import Qrels

    return Qrels.from_pairs(a[0], a[1], a[2].astype(np.float64), n_queries, n_docs)


def run(path: Path) -> dict[str, object]:
    import torch

    from embedlens.index import FlatIndex
    from embedlens.training import TrainConfig, train_retrieval
    from embedlens.training.retrieval import retrieval_ndcg10

    z = np.load(path)
    docs, tq, sq = z["docs"], z["train_queries"], z["test_queries"]
    train_qrels = _qrels(z["train_qrels"], len(tq), len(docs))
    test_qrels = _qrels(z["test_qrels"], len(sq), len(docs))
    cuda = torch.cuda.is_available()
    out: dict[str, object] = {
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    train: dict[str, object] = {}
    raw = float(
        retrieval_ndcg10(np.eye(docs.shape[1], dtype=np.float32), sq, docs, test_qrels, mode="query").mean()
    )
    for device in ["cpu"] + (["cuda"] if cuda else []):
        if device == "cuda":  # warm the CUDA context (not timed)
            torch.ones(1, device="cuda").sum().item()
        t0 = time.perf_counter()
        result, _ = train_retrieval(
            tq, docs, train_qrels, TrainConfig(progress=False, device=device),
            pseudo_queries=z["pseudo"], pseudo_docs=z["pseudo_docs"],
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        ndcg = float(retrieval_ndcg10(result.weights, sq, docs, test_qrels, mode="query").mean())
        train[device] = {"seconds": seconds, "test_ndcg10": ndcg, "chosen": result.chosen,
                         "steps": result.chosen_steps}  # fmt: skip
        print(
            f"SciFact training on {device}: {seconds:.1f} s, test nDCG@10 {raw:.4f} -> {ndcg:.4f} ({result.chosen})"
        )
    out["train"] = {**train, "raw_test_ndcg10": raw}
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((1_000_000, 384), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    search: dict[str, object] = {}
    indexes = {"cpu": FlatIndex(384)}
    if cuda:
        indexes["cuda"] = FlatIndex(384, device="cuda")
    for index in indexes.values():
        index.add(rows)
    for n_q in (300, 1000):
        qs = rng.standard_normal((n_q, 384), dtype=np.float32)
        qs /= np.linalg.norm(qs, axis=1, keepdims=True)
        found: dict[str, np.ndarray] = {}
        row: dict[str, float] = {}
        for device, index in indexes.items():
            index.search(qs[:10], 100)  # warm up
            t0 = time.perf_counter()
            found[device] = index.search(qs, 100)[1]
            row[f"{device}_s"] = time.perf_counter() - t0
        if cuda:
            row["identical"] = float(
                np.mean([set(a) == set(b) for a, b in zip(found["cpu"], found["cuda"], strict=True)])
            )
            row["gpu_over_cpu"] = row["cpu_s"] / row["cuda_s"]
        search[str(n_q)] = row
        print(f"exact search {n_q} queries x 1M docs: {row}")
    out["search"] = search
    return out


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--export":
        export(Path(sys.argv[2]))
        return
    result = run(Path(sys.argv[1]))
    dest = Path(os.environ.get("OUT", ".")) / "gpu.json"
    dest.write_text(json.dumps(result, indent=2))
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
