"""The LlamaIndex adapter with a real VectorStoreIndex, offline, and the linear-adapter migration path."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import TextNode

from embedlens import FingerprintMismatchError, Lens, LensFormatError
from embedlens.adapters.llama_index import LensEmbedding, lens_from_linear_adapter
from embedlens.lens import PROBE_SENTENCES

DIM = 16


def _vec(text: str, salt: str = "") -> list[float]:
    seed = int.from_bytes(hashlib.sha256((salt + text).encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(DIM)
    return (v / np.linalg.norm(v)).tolist()


class HashEmbedding(BaseEmbedding):
    """Deterministic vectors; queries differ from documents (a query instruction), as real models do."""

    def _get_query_embedding(self, query: str) -> list[float]:
        return _vec(query, "query: ")

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return _vec(query, "query: ")

    def _get_text_embedding(self, text: str) -> list[float]:
        return _vec(text)


def _lens(mode: str, seed: int = 0) -> Lens:
    rng = np.random.default_rng(seed)
    w = np.eye(DIM, dtype=np.float32) + 0.5 * rng.standard_normal((DIM, DIM)).astype(np.float32)
    fingerprint = np.asarray([_vec(t) for t in PROBE_SENTENCES], dtype=np.float32)
    return Lens(w, mode=mode, fingerprint=fingerprint, metadata={"base_model": "hash"})  # type: ignore[arg-type]


TEXTS = [f"document {i} about subject {i % 5}" for i in range(30)]


def _expected(lens: Lens, query: str, k: int) -> list[str]:
    docs = lens.project_documents(np.asarray([_vec(t) for t in TEXTS], dtype=np.float32))
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    q = lens.project_queries(np.asarray([_vec(query, "query: ")], dtype=np.float32))[0]
    return [f"n{i}" for i in np.argsort(-(docs @ q), kind="stable")[:k]]


@pytest.mark.parametrize("mode", ["symmetric", "query"])
def test_vector_store_index_retrieves_through_the_lens(mode: str, tmp_path: Path) -> None:
    lens = _lens(mode)
    lens_dir = lens.save(tmp_path / "lens")
    embed_model = LensEmbedding(HashEmbedding(model_name="hash"), lens_dir)  # the lens by its directory
    nodes = [TextNode(text=t, id_=f"n{i}") for i, t in enumerate(TEXTS)]
    index = VectorStoreIndex(nodes, embed_model=embed_model)
    for query in ("subject 3 please", "where is document 7"):
        got = [r.node.node_id for r in index.as_retriever(similarity_top_k=5).retrieve(query)]
        assert got == _expected(lens, query, 5)
    raw = HashEmbedding(model_name="hash")
    stored = np.asarray(embed_model.get_text_embedding(TEXTS[0]))
    if mode == "query":  # documents stay raw: an index built with the raw model keeps working
        np.testing.assert_allclose(stored, raw.get_text_embedding(TEXTS[0]), atol=1e-6)
    else:
        np.testing.assert_allclose(
            stored, lens.project_documents([raw.get_text_embedding(TEXTS[0])])[0], atol=1e-6
        )


def test_async_and_batch_paths_agree_with_sync() -> None:
    lens = _lens("symmetric")
    emb = LensEmbedding(HashEmbedding(model_name="hash"), lens)
    q = emb.get_query_embedding("a question")
    assert q == asyncio.run(emb.aget_query_embedding("a question"))
    assert all(isinstance(x, float) for x in q)
    batch = emb.get_text_embedding_batch(TEXTS[:4])
    assert batch == asyncio.run(emb.aget_text_embedding_batch(TEXTS[:4]))
    np.testing.assert_allclose(batch[1], emb.get_text_embedding(TEXTS[1]), atol=1e-7)


def test_another_base_model_is_refused() -> None:
    class Other(HashEmbedding):
        def _get_text_embedding(self, text: str) -> list[float]:
            return _vec(text, "another model")

    with pytest.raises(FingerprintMismatchError, match="not the model this lens was trained on"):
        LensEmbedding(Other(model_name="other"), _lens("query"))
    LensEmbedding(Other(model_name="other"), _lens("query"), check_fingerprint=False)  # an explicit opt-out


def _save_adapter(tmp_path: Path, weight: Any, bias: Any = None) -> Path:
    import torch

    root = tmp_path / "adapter"
    root.mkdir(parents=True)
    out, inp = weight.shape
    (root / "config.json").write_text(
        json.dumps({"in_features": inp, "out_features": out, "bias": bias is not None})
    )
    state = {"linear.weight": torch.as_tensor(weight)}
    if bias is not None:
        state["linear.bias"] = torch.as_tensor(bias)
    torch.save(state, root / "pytorch_model.bin")  # what LlamaIndex's BaseAdapter.save writes
    return root


def test_linear_adapter_converts_to_the_same_query_transform(tmp_path: Path) -> None:
    import torch

    rng = np.random.default_rng(1)
    weight = (np.eye(DIM) + 0.3 * rng.standard_normal((DIM, DIM))).astype(np.float32)
    lens = lens_from_linear_adapter(_save_adapter(tmp_path, weight), base_model="hash")
    x = rng.standard_normal((5, DIM)).astype(np.float32)
    adapter = torch.nn.Linear(DIM, DIM, bias=False)  # LlamaIndex's LinearLayer.forward: self.linear(embed)
    adapter.weight.data.copy_(torch.as_tensor(weight))
    want = adapter(torch.as_tensor(x)).detach().numpy()
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(lens.project_queries(x), want, atol=1e-5)
    np.testing.assert_array_equal(lens.project_documents(x), x)  # documents stay raw, as in the adapter model
    assert lens.mode == "query" and lens.base_model == "hash"


def test_adapters_a_lens_cannot_represent_are_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    with pytest.raises(LensFormatError, match="non-zero bias"):
        lens_from_linear_adapter(
            _save_adapter(tmp_path / "b", np.eye(4, dtype=np.float32), np.ones(4, np.float32))
        )
    with pytest.raises(LensFormatError, match="square LinearLayer"):
        lens_from_linear_adapter(
            _save_adapter(tmp_path / "r", rng.standard_normal((3, 4)).astype(np.float32))
        )
    with pytest.raises(LensFormatError, match="config.json"):
        lens_from_linear_adapter(tmp_path / "missing")
    with pytest.raises(LensFormatError, match="non-zero bias"):  # NaN is not zero either
        lens_from_linear_adapter(
            _save_adapter(tmp_path / "n", np.eye(4, dtype=np.float32), np.full(4, np.nan, np.float32))
        )
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / "config.json")  # a FIFO would block a plain read forever
    with pytest.raises(LensFormatError, match="not a regular file"):
        lens_from_linear_adapter(fifo)


class Payload:
    """Unpickling this would run code: ``weights_only`` must refuse it."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("pickled code ran",))


def test_a_pickle_with_code_is_never_executed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    root = tmp_path / "evil"
    root.mkdir()
    (root / "config.json").write_text(json.dumps({"in_features": 4, "out_features": 4, "bias": False}))
    torch.save({"linear.weight": Payload()}, root / "pytorch_model.bin")
    with pytest.raises(LensFormatError, match="not a readable tensor file"):
        lens_from_linear_adapter(root)
    assert "pickled code ran" not in capsys.readouterr().out
