"""Shared helpers for the benchmark scripts: timing, peak RSS, results file."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
HERE_PLOTS = ROOT / "bench" / "plots"
SHARED = ROOT.parent / "shared" / "data"
#: embedding cache shared by the benchmarks (first run fills it)
BENCH_CACHE = os.environ.get(
    "EMBEDLENS_BENCH_CACHE", str(Path(tempfile.gettempdir()) / "embedlens-bench-cache")
)
sys.path.insert(0, str(ROOT))  # for tests.support (the loopback OpenAI server)


def best_of(fn: Callable[[], Any], repeat: int = 5) -> float:
    """Best (minimum) wall time of ``fn`` over ``repeat`` runs (seconds): the least noisy estimate."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Current resident set size (MiB)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def file_blocks(path: Path, offset: int, n_rows: int, dim: int, block: int) -> Iterator[np.ndarray]:
    """Rows of a raw float32 file (from byte ``offset``) in blocks, with plain reads: a memory map would
    count the file in this process's RSS."""
    import numpy as np

    with path.open("rb") as f:
        f.seek(offset)
        for s in range(0, n_rows, block):
            rows = min(block, n_rows - s)
            yield np.frombuffer(f.read(rows * dim * 4), dtype=np.float32).reshape(rows, dim)


def machine() -> dict[str, Any]:
    import numpy
    import torch

    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def save(section: str, data: dict[str, Any]) -> None:
    """Merge ``data`` under ``section`` into bench/results.json (atomic write)."""
    from embedlens._atomic import atomic_write_json

    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[section] = {**data, "measured_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    results["machine"] = machine()
    atomic_write_json(RESULTS, results)
