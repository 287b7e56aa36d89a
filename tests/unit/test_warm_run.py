"""A run whose every text is cached never loads (or imports) the base model; bad data fails fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

_PROBE = """
import json, sys
from embedlens.app.cli import main
rc = main(sys.argv[1:])
print(json.dumps({
    "rc": rc, "st": "sentence_transformers" in sys.modules, "torch": "torch" in sys.modules,
    "slow_imports": sorted(m for m in ("torch._dynamo", "scipy.stats") if m in sys.modules),
}))
"""


def _cli(*args: str) -> dict[str, object]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "stderr": proc.stderr}


def test_static_model_facts_equal_the_loaded_model() -> None:
    """Prompts, routing and dimension read from the files are what the loaded model says."""
    from embedlens.embedders.local import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder()
    assert not emb.loaded  # nothing asked the model anything yet
    static = (emb.query_prompt, emb.document_prompt, emb.queries_differ, emb.dim)
    identity = emb.identity
    assert not emb.loaded
    prompts, default, routed, dim = emb._from_model()
    assert emb.loaded and dim == emb.dim and routed == emb._routed
    assert static[3] == int(emb.embed(["a probe"]).shape[1])
    assert identity == emb.identity


def test_warm_train_and_evaluate_never_import_the_model(tiny_beir: Path, tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    common = ("--cache", cache, "--quiet", "--folds", "2", "--max-steps", "10")
    cold = _cli("train", "--data", str(tiny_beir), "--out", str(tmp_path / "a"), *common)
    assert cold["rc"] == 0 and cold["st"], cold["stderr"]  # the first run embeds: the model loads
    warm = _cli("train", "--data", str(tiny_beir), "--out", str(tmp_path / "b"), *common)
    assert warm["rc"] == 0, warm["stderr"]
    assert warm["st"] is False  # every text (and the fingerprint probes) came from the cache
    # nor what training does not need: torch.optim.Adam's first call imports torch._dynamo, scipy.stats is slow
    assert warm["slow_imports"] == [], warm["slow_imports"]
    a = json.loads((tmp_path / "a" / "lens.json").read_text())
    b = json.loads((tmp_path / "b" / "lens.json").read_text())
    assert a["metadata"]["training"]["cv_best"] == b["metadata"]["training"]["cv_best"]
    evaluate = ("evaluate", "--data", str(tiny_beir), "--lens", str(tmp_path / "b"), "--cache", cache)
    assert _cli(*evaluate)["rc"] == 0  # embeds the test queries (not seen in training)
    ev = _cli(*evaluate)
    assert ev["rc"] == 0 and ev["st"] is False, ev["stderr"]
    # another cache: the model must load and the fingerprint check still runs against the live model
    other = _cli(
        "evaluate", "--data", str(tiny_beir), "--lens", str(tmp_path / "b"), "--cache", str(tmp_path / "c")
    )
    assert other["rc"] == 0 and other["st"] is True, other["stderr"]


@pytest.mark.parametrize("content", [b"\x00\x01binary", b"text_1,text_2\n"])
def test_bad_data_fails_before_heavy_imports(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    t0 = time.perf_counter()
    out = _cli("train", "--data", str(bad), "--out", str(tmp_path / "lens"), "--cache", str(tmp_path / "c"))
    elapsed = time.perf_counter() - t0
    assert out["rc"] == 2 and str(bad) in str(out["stderr"])
    assert out["torch"] is False and out["st"] is False  # refused before anything heavy was imported
    assert elapsed < 10  # generous on a loaded CI machine; the import check above is the real guard


def test_several_pooling_modes_are_learnt_from_the_model(tmp_path: Path) -> None:
    """Pooling that concatenates modes multiplies the width: the files alone do not tell the dimension."""
    from embedlens.embedders.local import known_dim

    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "modules.json").write_text(
        json.dumps(
            [
                {"path": "", "type": "sentence_transformers.models.Transformer"},
                {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        )  # fmt: skip
    )
    pooling = {
        "word_embedding_dimension": 384,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_cls_token": False,
    }
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    assert known_dim(str(tmp_path)) == 384
    (tmp_path / "1_Pooling" / "config.json").write_text(
        json.dumps({**pooling, "pooling_mode_cls_token": True})
    )
    assert known_dim(str(tmp_path)) is None
