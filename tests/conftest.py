"""Shared fixtures: a deterministic hashing embedder, tiny datasets written by the tests."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


class HashEmbedder:
    """Deterministic bag-of-words embedder: each word adds a fixed random vector (counts calls)."""

    def __init__(self, dim: int = 16, name: str = "hash-test", seed: int = 0) -> None:
        self.name = name
        self._dim = dim
        self.seed = seed
        self.calls = 0
        self.texts_seen = 0

    @property
    def dim(self) -> int:
        return self._dim

    def _word(self, w: str) -> np.ndarray:
        h = int.from_bytes(hashlib.sha256(f"{self.seed}:{w}".encode()).digest()[:8], "little")
        return np.random.default_rng(h).standard_normal(self._dim).astype(np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts_seen += len(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i] += self._word(w)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-6)


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder()


def write_beir(
    root: Path, corpus: list[dict], queries: list[dict], qrels: dict[str, list[tuple[str, str, int]]]
) -> Path:
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    for split, rows in qrels.items():
        lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, d, s in rows]
        (root / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def tiny_beir(tmp_path: Path) -> Path:
    corpus = [
        {"_id": f"d{i}", "title": f"topic {i}", "text": f"alpha{i} beta{i} gamma{i}"} for i in range(12)
    ]
    queries = [{"_id": f"q{i}{s}", "text": f"what about alpha{i} {s}"} for i in range(12) for s in "ab"]
    qrels = {
        "train": [(f"q{i}a", f"d{i}", 1) for i in range(12)],
        "test": [(f"q{i}b", f"d{i}", 1) for i in range(12)],
    }
    return write_beir(tmp_path / "beir", corpus, queries, qrels)


@pytest.fixture
def demo_dir() -> Path:
    from embedlens.app.demo import demo_data_dir

    return demo_data_dir()


def requires_shared(*parts: str) -> pytest.MarkDecorator:
    path = SHARED_DATA.joinpath(*parts)
    return pytest.mark.skipif(
        not path.exists(), reason=f"real data not found at {path} (see shared/data/README.md)"
    )
