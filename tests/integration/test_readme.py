"""Every Python block of the README runs as written, in order, in one folder (each in its own process)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)


def _linear_adapter(root: Path) -> None:
    """What LlamaIndex's LinearLayer.save writes for a 384-d identity adapter (the migration snippet reads it)."""
    import json

    import torch

    root.mkdir()
    (root / "config.json").write_text(json.dumps({"in_features": 384, "out_features": 384, "bias": False}))
    torch.save({"linear.weight": torch.eye(384)}, root / "pytorch_model.bin")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("readme")
    _linear_adapter(work / "adapter_dir")
    return work


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 6, "the README's Python quick-starts went missing"
    assert "my_lens" in BLOCKS[0] and ".save(" in BLOCKS[0]  # the first block makes the lens the others use


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=lambda i: f"block{i + 1}")
def test_readme_block_runs(index: int, workdir: Path) -> None:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "EMBEDLENS_CACHE_DIR": str(workdir / "cache"),
        "TQDM_DISABLE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", BLOCKS[index]],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"README block {index + 1}:\n{BLOCKS[index]}\n{done.stderr[-3000:]}"
    assert done.stdout.strip(), "every block prints what it shows"
