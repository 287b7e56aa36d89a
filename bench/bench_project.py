"""Projection at scale: N (default 10,000,000) synthetic 384-d vectors streamed from disk through a lens.

Prints throughput and peak RSS (bounded: a few batches, whatever N is). Run: python bench/bench_project.py [N]
Needs about 2 x N x 1.5 KB of free disk (31 GB for 10 M); the files are deleted afterwards.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _util import peak_rss_mb, rss_mb, save

from embedlens import Lens
from embedlens.project import project_npy

D, CHUNK = 384, 250_000


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    work = Path(tempfile.mkdtemp(prefix="embedlens-project-", dir=os.environ.get("EMBEDLENS_BENCH_TMP")))
    src, dst = work / "x.npy", work / "y.npy"
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    with src.open("wb") as f:  # written chunk by chunk, never held in memory
        np.lib.format.write_array_header_2_0(f, {"descr": "<f4", "fortran_order": False, "shape": (n, D)})
        for s in range(0, n, CHUNK):
            f.write(rng.standard_normal((min(CHUNK, n - s), D), dtype=np.float32).tobytes())
    t_gen = time.perf_counter() - t0
    lens = Lens(
        np.eye(D, dtype=np.float32) + 0.01 * rng.standard_normal((D, D)).astype(np.float32), mode="symmetric"
    )
    base = rss_mb()
    t0 = time.perf_counter()
    project_npy(src, dst, lens, batch_size=65536, progress=False)
    t_proj = time.perf_counter() - t0
    peak = peak_rss_mb()
    check = np.load(dst, mmap_mode="r")
    ok = np.allclose(check[:1000], lens.project_documents(np.load(src, mmap_mode="r")[:1000]), atol=1e-5)
    gb = n * D * 4 / 2**30
    print(
        f"projected {n:,} x {D} ({gb:.1f} GiB) in {t_proj:.1f} s = {n / t_proj:,.0f} vectors/s "
        f"({2 * gb / t_proj:.2f} GiB/s read+write); peak RSS {peak:,.0f} MiB (at start {base:,.0f} MiB); "
        f"spot check {'ok' if ok else 'FAILED'}; generating the input took {t_gen:.0f} s"
    )
    save(
        "project_scale",
        {
            "n": n,
            "gib": gb,
            "project_s": t_proj,
            "vectors_per_s": n / t_proj,
            "peak_rss_mb": peak,
            "start_rss_mb": base,
            "spot_check": bool(ok),
        },
    )
    src.unlink()
    dst.unlink()
    work.rmdir()


if __name__ == "__main__":
    main()
