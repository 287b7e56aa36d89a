"""Exact search (:class:`embedlens.index.FlatIndex`): the same rows as FAISS's exact index, blocks merged right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedlens.index import FlatIndex, build_index, search, stream_top_k


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize(
    ("n_docs", "k", "doc_block", "query_block"), [(5000, 100, 1024, 7), (300, 10, 64, 1000)]
)
def test_same_top_k_as_faiss_exact_index(n_docs: int, k: int, doc_block: int, query_block: int) -> None:
    faiss = pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    docs, queries = _unit(rng.standard_normal((n_docs, 48))), _unit(rng.standard_normal((53, 48)))
    ref = faiss.IndexFlatIP(48)
    ref.add(docs)
    ref_s, ref_i = ref.search(queries, k)
    index = FlatIndex(48, doc_block=doc_block, query_block=query_block)
    index.add(docs[: n_docs // 3])
    index.add(docs[n_docs // 3 :])  # rows number on across adds
    s, i = index.search(queries, k)
    assert index.ntotal == n_docs and s.dtype == np.float32 and i.dtype == np.int64
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(s, ref_s, rtol=1e-5, atol=1e-6)


def test_ties_go_to_the_lower_row_and_missing_rows_are_minus_one() -> None:
    docs = np.array([[1, 0], [0, 1], [1, 0], [1, 0]], dtype=np.float32)
    index = FlatIndex(2, doc_block=2)  # the tied rows sit in different blocks
    index.add(docs)
    s, i = index.search(np.array([[1, 0]], np.float32), 6)
    assert i.tolist() == [[0, 2, 3, 1, -1, -1]]
    assert s[0, :4].tolist() == [1, 1, 1, 0] and np.isneginf(s[0, 4:]).all()


def test_added_rows_are_copied_and_checked() -> None:
    docs = np.eye(3, dtype=np.float32)
    index = FlatIndex(3)
    index.add(docs)
    docs[:] = 0  # the caller's array changing later does not change the index
    assert index.search(np.eye(3, dtype=np.float32), 1)[1].ravel().tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="3-d vectors"):
        index.add(np.ones((2, 4), np.float32))


def test_build_index_flat_is_exact_and_normalises() -> None:
    rng = np.random.default_rng(1)
    docs = rng.standard_normal((700, 16)).astype(np.float32) * rng.uniform(0.1, 10, (700, 1)).astype(
        np.float32
    )
    queries = rng.standard_normal((20, 16)).astype(np.float32)
    got = search(build_index(docs, batch_size=128), queries, 25)
    cos = _unit(queries) @ _unit(docs).T
    want = np.argsort(-cos, axis=1, kind="stable")[:, :25]
    np.testing.assert_array_equal(got, want)


def test_stream_top_k_excludes_pairs_and_streams_blocks() -> None:
    rng = np.random.default_rng(2)
    docs, queries = _unit(rng.standard_normal((900, 12))), _unit(rng.standard_normal((30, 12)))
    full = queries @ docs.T
    exclude_q = np.repeat(np.arange(30), 3)
    exclude_d = np.argsort(-full, axis=1)[:, :3].ravel()  # each query's own top 3 are excluded
    s, i = stream_top_k(queries, np.array_split(docs, 7), 20, exclude=(exclude_q, exclude_d))
    masked = full.copy()
    masked[exclude_q, exclude_d] = -np.inf
    want = np.argsort(-masked, axis=1, kind="stable")[:, :20]
    np.testing.assert_array_equal(i, want)
    np.testing.assert_allclose(s, np.take_along_axis(masked, want, 1), rtol=1e-5)
    # every row of the first block excluded for one query: it still gets its best from later blocks
    first = np.arange(100)
    s, i = stream_top_k(queries[:1], [docs[:100], docs[100:]], 5, exclude=(np.zeros(100, np.int64), first))
    assert (i >= 100).all() and s.shape == (1, 5)


def test_rows_and_queries_must_be_finite() -> None:
    index = FlatIndex(2)
    with pytest.raises(ValueError, match="finite"):
        index.add(np.array([[1.0, np.nan]], np.float32))
    index.add(np.eye(2, dtype=np.float32))
    with pytest.raises(ValueError, match="finite"):
        index.search(np.array([[np.inf, 0.0]], np.float32), 1)


def test_build_index_never_writes_into_a_memmap(tmp_path: Path) -> None:
    path = tmp_path / "docs.npy"
    np.save(path, (np.arange(24, dtype=np.float32).reshape(6, 4) + 1) * 3)
    before = path.read_bytes()
    for mode in ("r+", "r"):
        docs = np.load(path, mmap_mode=mode)
        search(build_index(docs), np.ones((1, 4), np.float32), 3)
        del docs
    assert path.read_bytes() == before
