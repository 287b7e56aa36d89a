"""Evaluation at scale: 1,000,000 x 384 synthetic documents streamed from disk in batches.

Prints peak memory above the vectors themselves, and exact top-100 search time of embedlens's
:class:`~embedlens.index.FlatIndex` and of FAISS's ``IndexFlatIP`` as ratios to numpy brute force (one
product with every row, one ``argpartition``; 100 queries at a time) on the same rows, for 300 and 1,000
queries. Run: python bench/bench_eval_scale.py [N_DOCS]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _util import file_blocks, peak_rss_mb, rss_mb, save

from embedlens import Lens
from embedlens.evaluation.retrieval import evaluate_retrieval
from embedlens.index import Qrels

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


def _brute_force(queries: np.ndarray, rows: np.ndarray, start: int) -> np.ndarray:
    """numpy brute force for 100 queries from ``start``: one product with every row, one ``argpartition``."""
    q = queries[start : start + 100]
    scores = q @ rows.T  # (100, n_docs)
    return np.argpartition(-scores, 100, axis=1)[:, :100]


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

    def batches():  # the corpus read back from disk in blocks, never held whole
        return file_blocks(path, offset, n_docs, D, BATCH)

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

    # exact search: ours (FlatIndex), FAISS IndexFlatIP and numpy brute force on the same normalised rows
    import faiss

    from embedlens.index import FlatIndex

    rows = np.concatenate([b / np.linalg.norm(b, axis=1, keepdims=True) for b in batches()]).astype(
        np.float32
    )
    flat = FlatIndex(D)
    flat.add(rows, copy=False)
    ref = faiss.IndexFlatIP(D)
    ref.add(rows)
    searches = {}
    for n_q in (300, 1000):
        qs = rng.standard_normal((n_q, D)).astype(np.float32)
        qs /= np.linalg.norm(qs, axis=1, keepdims=True)
        t0 = time.perf_counter()
        _, ids_ours = flat.search(qs, 100)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, ids_faiss = ref.search(qs, 100)
        t_faiss = time.perf_counter() - t0
        t0 = time.perf_counter()
        ids_np = np.concatenate([_brute_force(qs, rows, s) for s in range(0, n_q, 100)])
        t_numpy = time.perf_counter() - t0
        same = float(np.mean([set(a) == set(b) for a, b in zip(ids_ours, ids_np, strict=True)]))
        same_faiss = float(np.mean([set(a) == set(b) for a, b in zip(ids_ours, ids_faiss, strict=True)]))
        print(
            f"{n_q} queries x {n_docs:,} docs top-100: embedlens FlatIndex {t_ours:.2f} s, FAISS IndexFlatIP "
            f"{t_faiss:.2f} s, numpy brute force {t_numpy:.2f} s -> ours {t_numpy / t_ours:.2f}x numpy, FAISS "
            f"{t_numpy / t_faiss:.2f}x numpy; identical top-100 sets: vs numpy {same:.4f}, vs FAISS {same_faiss:.4f}"
        )
        searches[str(n_q)] = {
            "ours_s": t_ours, "faiss_s": t_faiss, "numpy_s": t_numpy, "ours_over_numpy": t_numpy / t_ours,
            "faiss_over_numpy": t_numpy / t_faiss, "identical_vs_numpy": same, "identical_vs_faiss": same_faiss,
        }  # fmt: skip
    del flat, ref, rows
    blas = _blas_kernels()
    print(f"BLAS kernels: {blas}")
    save(
        "eval_scale",
        {
            "n_docs": n_docs,
            "eval_s": t_eval,
            "peak_rss_above_start_mb": peak_above,
            "vectors_mb": vectors_mb,
            "exact_search": searches,
            "blas": blas,
        },
    )
    path.unlink()


if __name__ == "__main__":
    main()
