"""``--device auto|cpu|cuda`` on a machine without a GPU: selection, refusal, and where the work runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedlens._device import check_device_spec, resolve_device
from embedlens.app.cli import main
from embedlens.errors import EmbedlensInputError
from embedlens.index import Qrels
from embedlens.training import TrainConfig, train_retrieval


def test_specs_are_checked_without_torch() -> None:
    for ok in ("auto", "cpu", "cuda", "cuda:1"):
        assert check_device_spec(ok) == ok
    for bad in ("gpu", "cuda:", "cuda:x", "CPU", "", None, 0):
        with pytest.raises(EmbedlensInputError, match="--device must be"):
            check_device_spec(bad)


def test_auto_picks_the_gpu_only_when_torch_sees_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    with pytest.raises(EmbedlensInputError, match=r"--device cuda: torch sees 0 CUDA device"):
        resolve_device("cuda")  # never silently the CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda:0") == "cuda:0"
    with pytest.raises(EmbedlensInputError, match=r"cuda:1: torch sees 1 CUDA device"):
        resolve_device("cuda:1")
    assert resolve_device("cpu") == "cpu"


def test_train_config_checks_device() -> None:
    assert TrainConfig(progress=False).device == "auto"
    with pytest.raises(EmbedlensInputError, match=r"--device \(device\) must be"):
        TrainConfig(device="tpu")


def test_training_runs_where_config_device_says(monkeypatch: pytest.MonkeyPatch) -> None:
    """The resolved device reaches the objective (its tensors) and the trained lens comes back as numpy."""
    import embedlens.training.retrieval as retrieval

    seen: list[str] = []
    real = retrieval.RetrievalObjective.__init__

    def spy(self, *a, **kw):  # type: ignore[no-untyped-def]
        seen.append(kw["device"])
        real(self, *a, **kw)

    monkeypatch.setattr(retrieval.RetrievalObjective, "__init__", spy)
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((60, 8)).astype(np.float32)
    queries = docs[:30] + 0.1 * rng.standard_normal((30, 8)).astype(np.float32)
    qrels = Qrels.from_pairs(np.arange(30), np.arange(30), np.ones(30), 30, 60)
    result, _ = train_retrieval(
        queries, docs, qrels, TrainConfig(progress=False, device="auto", max_steps=10)
    )
    assert seen == ["cpu"] and result.weights.dtype == np.float32  # auto on a machine without a GPU


def test_cli_refuses_cuda_without_a_gpu_before_any_work(
    tiny_beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "lens"
    rc = main(
        [
            "train",
            "--data",
            str(tiny_beir),
            "--out",
            str(out),
            "--device",
            "cuda",
            "--cache",
            str(tmp_path / "c"),
        ]
    )
    assert rc == 2 and not out.exists()
    assert "--device cuda: torch sees 0 CUDA device(s)" in capsys.readouterr().err
    assert main(["train", "--data", str(tiny_beir), "--out", str(out), "--device", "gpu"]) == 2
    assert "--device" in capsys.readouterr().err and not out.exists()


def test_local_model_device_resolves_when_it_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    import embedlens.embedders.local as local

    asked: list[str] = []

    def fake_load(location: str, device: str) -> object:
        asked.append(resolve_device(device))
        raise RuntimeError("stop before loading")

    monkeypatch.setattr(local, "_load_model", fake_load)
    emb = local.SentenceTransformerEmbedder()  # no load: the facts come from the files
    assert emb.device == "auto" and not asked
    with pytest.raises(RuntimeError, match="stop before loading"):
        emb.embed(["x"])
    assert asked == ["cpu"]
