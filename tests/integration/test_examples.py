"""Every script in examples/ runs as a user would run it (offline, its own process, a shared test cache)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.py"))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("examples-cache")


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script: Path, cache_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EMBEDLENS_CACHE_DIR": str(cache_dir), "TQDM_DISABLE": "1"}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    if script.name == "in_memory.py":  # the in-memory train + evaluate pays off on held-out data
        ndcg = re.search(
            r"retrieval nDCG@10 ([\d.]+) -> ([\d.]+) \(95% CI of the gain \[([+-][\d.]+)", done.stdout
        )
        acc = re.search(r"pairs accuracy ([\d.]+) -> ([\d.]+)", done.stdout)
        assert ndcg and acc, done.stdout
        assert float(ndcg[2]) > float(ndcg[1]) and float(ndcg[3]) > 0
        assert float(acc[2]) > float(acc[1])
