"""Fixtures for integration tests: a real lens on the real local model, a real Chroma server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from embedlens import Lens


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("emb-cache")


@pytest.fixture(scope="session")
def local_embedder(cache_dir: Path):  # type: ignore[no-untyped-def]
    from embedlens.cache import open_embedder

    emb = open_embedder(None, cache_dir=cache_dir)
    emb.progress = False
    return emb


@pytest.fixture(scope="session")
def lens_dirs(tmp_path_factory: pytest.TempPathFactory, local_embedder) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """A symmetric and a query lens trained on the shipped demo data with the real model."""
    from embedlens.app.demo import demo_data_dir
    from embedlens.training import TrainConfig
    from embedlens.training.workflow import train_lens

    root = tmp_path_factory.mktemp("lenses")
    out = {}
    for mode in ("symmetric", "query"):
        lens = train_lens(
            demo_data_dir(), local_embedder, TrainConfig(mode=mode, progress=False, max_steps=4)
        ).lens
        # make sure the lens is not the identity, so tests can tell projected from raw vectors
        import numpy as np

        if np.allclose(lens.weights, np.eye(lens.d_in)):
            rng = np.random.default_rng(0)
            lens = Lens(
                lens.weights + 0.05 * rng.standard_normal(lens.weights.shape).astype("float32"),
                mode=mode,
                metadata=lens.metadata,
                fingerprint=lens.fingerprint,
            )
        out[mode] = lens.save(root / mode)
    return out


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real Chroma server (``chroma run``) on a free loopback port, stopped after the session."""
    from tests.support.chroma_server import chroma_server as run_server

    with run_server(tmp_path_factory.mktemp("chroma-server") / "data") as address:
        yield address
