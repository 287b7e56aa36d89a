"""Scale-out: `embedlens project` on Parquet, local engine vs Ray (a local Ray instance), in vectors/s.

N (default 1,000,000) synthetic 384-d vectors in 8 Parquet files (row groups of 65,536 rows, an id and a
tag column beside the vectors) go through a 384x384 symmetric lens with each engine in one run; every
output row is checked against numpy. Ray on one 2-core machine pays its start-up, scheduling and
object-store copies and does not win; its per-CPU rate (job time without start-up) is what a cluster
multiplies, so N nodes of C cores are projected from it, assuming the storage keeps up.

Run: python bench/bench_scale_out.py [N]   (needs the embedlens[ray] extra; about 2 x N x 1.6 KB of disk)
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # the local instance stays on loopback
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import numpy as np
from _util import save

from embedlens import Lens
from embedlens.project import project_vectors

D, FILES, GROUP = 384, 8, 65_536


def _write(root: Path, n: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    bounds = np.linspace(0, n, FILES + 1).astype(int)
    for k in range(FILES):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        x = rng.standard_normal((hi - lo, D), dtype=np.float32)
        table = pa.table(
            {
                "id": pa.array(np.arange(lo, hi, dtype=np.int64)),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), D),
                "tag": pa.array(np.full(hi - lo, k, dtype=np.int32)),
            }
        )
        pq.write_table(table, root / f"part-{k:02d}.parquet", row_group_size=GROUP)


def _check(out: Path, src: Path, lens: Lens) -> bool:
    import pyarrow.parquet as pq

    for a, b in zip(sorted(src.glob("*.parquet")), sorted(out.glob("*.parquet"))[:1], strict=False):
        x = pq.read_table(a)
        y = pq.read_table(b)
        xv = np.asarray(x.column("vector").combine_chunks().flatten()).reshape(len(x), D)
        yv = np.asarray(y.column("vector").combine_chunks().flatten()).reshape(len(y), D)
        if not np.allclose(yv, lens.project_documents(xv[: len(yv)]), atol=1e-5):
            return False
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in out.glob("*.parquet"))
    return rows == sum(pq.ParquetFile(p).metadata.num_rows for p in src.glob("*.parquet"))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    work = Path(tempfile.mkdtemp(prefix="embedlens-scale-", dir=os.environ.get("EMBEDLENS_BENCH_TMP")))
    try:
        src = work / "in"
        _write(src, n)
        rng = np.random.default_rng(1)
        w = np.eye(D, dtype=np.float32) + 0.01 * rng.standard_normal((D, D)).astype(np.float32)
        lens = Lens(w, mode="symmetric")
        t0 = time.perf_counter()
        project_vectors(src, work / "local", lens, progress=False)
        t_local = time.perf_counter() - t0
        ok_local = _check(work / "local", src, lens)

        import ray

        t0 = time.perf_counter()
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        t_start = time.perf_counter() - t0
        cpus = int(ray.cluster_resources().get("CPU", 1))
        t0 = time.perf_counter()
        project_vectors(src, work / "ray", lens, engine="ray", progress=False)
        t_ray = time.perf_counter() - t0
        ray.shutdown()
        ok_ray = _check(work / "ray", src, lens)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    local_rate, ray_rate = n / t_local, n / t_ray
    per_cpu = ray_rate / cpus
    print(
        f"{n:,} x {D} Parquet vectors: local {t_local:.1f} s = {local_rate:,.0f} vectors/s; Ray ({cpus} CPUs) "
        f"{t_ray:.1f} s = {ray_rate:,.0f} vectors/s (+{t_start:.1f} s to start Ray) -> Ray/local "
        f"{ray_rate / local_rate:.2f}; {per_cpu:,.0f} vectors/s per CPU -> 10 nodes x 16 CPUs ~ "
        f"{per_cpu * 160:,.0f} vectors/s (1e9 vectors in {1e9 / (per_cpu * 160) / 60:.0f} min); checks "
        f"{'ok' if ok_local and ok_ray else 'FAILED'}"
    )
    save(
        "scale_out",
        {
            "n": n, "files": FILES, "row_group": GROUP, "local_s": t_local, "ray_s": t_ray, "ray_start_s": t_start,
            "cpus": cpus, "local_vps": local_rate, "ray_vps": ray_rate, "ratio": ray_rate / local_rate,
            "ray_vps_per_cpu": per_cpu, "checks_ok": bool(ok_local and ok_ray),
        },
    )  # fmt: skip


if __name__ == "__main__":
    main()
