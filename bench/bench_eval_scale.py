"""Evaluation at scale: 1,000,000 x 384 synthetic documents streamed from disk in batches.

Prints peak memory above the vectors themselves, and FAISS search throughput as a ratio to a numpy
brute-force search on the same data. Run: python bench/bench_eval_scale.py [N_DOCS]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _util import peak_rss_mb, rss_mb, save

from embedlens import Lens
from embedlens.evaluation.retrieval import evaluate_retrieval
from embedlens.index import Qrels, build_index, search

D, N_QUERIES, BATCH = 384, 300, 100_000


def _blas_kernels() -> dict[str, str]:
    """Which OpenBLAS kernel faiss's and numpy's bundled BLAS picked on this CPU (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {}
    return {
        ("faiss" if "faiss" in i.get("filepath", "") else "numpy"): str(i.get("architecture"))
        for i in threadpool_info()
        if i.get("internal_api") == "openblas"
    }


def main() -> None:
    n_docs = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rng = np.random.default_rng(0)
    path = Path(tempfile.mkdtemp()) / "docs.f32"
    docs = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_docs, D))
    for s in range(0, n_docs, BATCH):
        docs[s : s + BATCH] = rng.standard_normal((min(BATCH, n_docs - s), D), dtype=np.float32)
    docs.flush()
    del docs
    docs = np.load(path, mmap_mode="r")  # read back from disk batch by batch
    target = rng.choice(n_docs, N_QUERIES, replace=False)
    queries = (docs[np.sort(target)] + 0.5 * rng.standard_normal((N_QUERIES, D))).astype(np.float32)
    qrels = Qrels.from_pairs(np.arange(N_QUERIES), np.sort(target), np.ones(N_QUERIES), N_QUERIES, n_docs)
    lens = Lens(
        np.eye(D, dtype=np.float32) + 0.01 * rng.standard_normal((D, D)).astype(np.float32), mode="symmetric"
    )
    vectors_mb = n_docs * D * 4 / 2**20
    base = rss_mb()

    offset = docs.offset  # where the rows start in the .npy file
    del docs  # from here on, rows are read with plain file I/O (a memory map would count in RSS)

    def batches():
        with path.open("rb") as f:
            f.seek(offset)
            for s in range(0, n_docs, BATCH):
                rows = min(BATCH, n_docs - s)
                yield np.frombuffer(f.read(rows * D * 4), dtype=np.float32).reshape(rows, D)

    t0 = time.perf_counter()
    report = evaluate_retrieval(queries, batches, qrels, lens, ks=(10, 100), n_boot=200)
    t_eval = time.perf_counter() - t0
    peak_above = peak_rss_mb() - base
    print(
        f"evaluated {n_docs:,} x {D} docs in {t_eval:.1f} s; nDCG@10 raw {report.raw['ndcg@10']:.3f} lens "
        f"{report.lens['ndcg@10']:.3f}"
    )
    print(
        f"peak RSS above start: {peak_above:,.0f} MiB, one FAISS flat index holding {vectors_mb:,.0f} MiB of it "
        f"(vectors: {vectors_mb:,.0f} MiB on disk; goal <= 4096 MiB above the vectors)"
    )

    index = build_index(batches())
    t0 = time.perf_counter()
    ids_faiss = search(index, queries, 100)
    t_faiss = time.perf_counter() - t0
    del index
    qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    t0 = time.perf_counter()
    best_s = np.full((N_QUERIES, 100), -np.inf, dtype=np.float32)
    best_i = np.zeros((N_QUERIES, 100), dtype=np.int64)
    for s, b in zip(range(0, n_docs, BATCH), batches(), strict=False):
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        sc = qn @ b.T  # (q, batch)
        top = np.argpartition(-sc, 100, axis=1)[:, :100]
        cand_s = np.concatenate([best_s, np.take_along_axis(sc, top, 1)], axis=1)
        cand_i = np.concatenate([best_i, top + s], axis=1)
        keep = np.argpartition(-cand_s, 100, axis=1)[:, :100]
        best_s, best_i = np.take_along_axis(cand_s, keep, 1), np.take_along_axis(cand_i, keep, 1)
    t_numpy = time.perf_counter() - t0
    blas = _blas_kernels()
    agree = np.mean([len(set(a) & set(b)) / 100 for a, b in zip(ids_faiss, best_i, strict=True)])
    print(
        f"search {N_QUERIES} queries top-100: FAISS {t_faiss:.2f} s vs numpy brute force {t_numpy:.2f} s "
        f"(numpy includes normalising each batch) -> FAISS throughput = {t_numpy / t_faiss:.2f}x numpy; "
        f"top-100 overlap {agree:.4f}; BLAS kernels {blas}"
    )
    save(
        "eval_scale",
        {
            "n_docs": n_docs,
            "eval_s": t_eval,
            "peak_rss_above_start_mb": peak_above,
            "vectors_mb": vectors_mb,
            "faiss_search_s": t_faiss,
            "numpy_search_s": t_numpy,
            "faiss_over_numpy_throughput": t_numpy / t_faiss,
            "top100_overlap": agree,
            "blas": blas,
        },
    )
    path.unlink()


if __name__ == "__main__":
    main()
