"""Training cost against corpus size: 800 labelled queries, 50k / 500k / 5M synthetic 384-d documents.

Each size runs in its own process (its own peak RSS). The corpus is written to a raw float32 file and
streamed back in blocks with plain file reads (a memory map would count the file in RSS). Reports the
one-time pass (mining negatives and validation candidates), seconds per training step (one epoch: every
labelled item in every step, validation included, over the 5 fold lenses and the refit), the final
whole-corpus check, and peak RSS.

Run: python bench/bench_train_scale.py [SIZES...]   (default 50000 500000 5000000)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _util import file_blocks, peak_rss_mb, save

D, N_QUERIES, BLOCK = 384, 800, 65_536


def _one(n_docs: int) -> dict[str, float]:
    """Train at one corpus size (in this process); returns its timings."""
    from embedlens.index import Qrels
    from embedlens.training import TrainConfig
    from embedlens.training import retrieval as rt
    from embedlens.training.loop import fit

    rng = np.random.default_rng(0)
    path = Path(tempfile.mkdtemp()) / "docs.f32"
    target = np.sort(rng.choice(n_docs, N_QUERIES, replace=False))
    picked = []
    with path.open("wb") as f:  # plain writes: a memory map would count the file in this process's RSS
        for s in range(0, n_docs, BLOCK):
            block = rng.standard_normal((min(BLOCK, n_docs - s), D), dtype=np.float32)
            lo, hi = np.searchsorted(target, [s, s + len(block)])
            picked.append(block[target[lo:hi] - s])
            f.write(block.tobytes())
    # queries: their document plus strong noise confined to a hidden 64-d subspace (a query lens learns to
    # discount it) and weak noise everywhere
    basis, _ = np.linalg.qr(rng.standard_normal((D, 64)))
    nuisance = 8.0 * rng.standard_normal((N_QUERIES, 64)) @ basis.T
    queries = (np.concatenate(picked) + nuisance + 0.3 * rng.standard_normal((N_QUERIES, D))).astype(
        np.float32
    )
    offset = 0
    qrels = Qrels.from_pairs(np.arange(N_QUERIES), target, np.ones(N_QUERIES), N_QUERIES, n_docs)

    def blocks():  # the corpus read back from disk in blocks, never held whole
        return file_blocks(path, offset, n_docs, D, BLOCK)

    t0 = time.perf_counter()
    obj = rt.RetrievalObjective(queries, blocks, qrels, n_hard=8)
    t_setup = time.perf_counter() - t0
    steps = 60
    cfg = TrainConfig(progress=False, lr=1e-2, max_steps=steps, patience=100,
                      require_significant=False)  # fmt: skip
    # the whole-corpus check (start and chosen fold matrices, inside fit above the threshold) is timed
    # apart, so that the per-step figure holds training and checkpoint validation alone
    t_exact = 0.0
    exact_scores = obj.exact_scores

    def timed_exact(w: np.ndarray, units: np.ndarray) -> np.ndarray:
        nonlocal t_exact
        t0 = time.perf_counter()
        out = exact_scores(w, units)
        t_exact += time.perf_counter() - t0
        return out

    obj.exact_scores = timed_exact  # type: ignore[method-assign]
    t0 = time.perf_counter()
    result = fit(obj, cfg, {"lr": (1e-2,), "rank": ("full",), "reg": (0.0,)})
    t_fit = time.perf_counter() - t0
    n_steps = cfg.folds * steps + result.chosen_steps
    per_step = (t_fit - t_exact) / n_steps
    path.unlink()
    return {
        "n_docs": n_docs,
        "setup_s": t_setup,
        "fit_s": t_fit,
        "exact_check_s": t_exact,
        "steps": n_steps,
        "s_per_step": per_step,
        "held_docs": len(obj.doc_rows),
        "peak_rss_mb": peak_rss_mb(),
        "cv_start": result.cv_start,
        "cv_best": result.cv_best,
    }


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        print(json.dumps(_one(int(sys.argv[2]))))
        return
    sizes = [int(a) for a in sys.argv[1:]] or [50_000, 500_000, 5_000_000]
    rows = []
    for n in sizes:
        proc = subprocess.run(
            [sys.executable, __file__, "--one", str(n)], capture_output=True, text=True, check=True
        )
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{n:>9,} docs: one pass {row['setup_s']:.1f} s; {row['s_per_step'] * 1000:.0f} ms per step "
            f"({row['steps']} steps, checkpoint validation included; {row['held_docs']:,} documents held); "
            f"whole-corpus check {row['exact_check_s']:.1f} s; peak RSS {row['peak_rss_mb']:,.0f} MiB; "
            f"validation nDCG@10 {row['cv_start']:.3f} -> {row['cv_best']:.3f}"
        )
    by_n = {r["n_docs"]: r for r in rows}
    if 50_000 in by_n and 5_000_000 in by_n:
        ratio = by_n[5_000_000]["s_per_step"] / by_n[50_000]["s_per_step"]
        print(
            f"per-step time 5M / 50k = {ratio:.2f} (goal <= 3); 5M peak RSS {by_n[5_000_000]['peak_rss_mb']:,.0f} MiB (goal < 8192)"
        )
    save("train_scale", {"rows": rows})


if __name__ == "__main__":
    main()
