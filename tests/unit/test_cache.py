from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from embedlens.cache import CachedEmbedder, EmbeddingCache
from tests.conftest import HashEmbedder


def test_second_run_served_from_cache(tmp_path: Path) -> None:
    texts = [f"text number {i}" for i in range(50)] + ["text number 3"]  # one duplicate
    base = HashEmbedder()
    first = CachedEmbedder(base, EmbeddingCache(tmp_path), batch_size=16, progress=False).embed(texts)
    assert base.texts_seen == 50  # the duplicate was embedded once
    base2 = HashEmbedder()
    again = CachedEmbedder(base2, EmbeddingCache(tmp_path), batch_size=16, progress=False).embed(texts)
    assert base2.calls == 0  # not called at all
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first[3], first[-1])
    assert first.dtype == np.float32 and first.shape == (51, 16)


def test_only_missing_texts_are_embedded(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    CachedEmbedder(HashEmbedder(), cache, progress=False).embed(["a", "b"])
    base = HashEmbedder()
    CachedEmbedder(base, cache, progress=False).embed(["a", "b", "c", "d"])
    assert base.texts_seen == 2


def test_models_do_not_share_rows(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    CachedEmbedder(HashEmbedder(name="m1"), cache, progress=False).embed(["a"])
    other = HashEmbedder(name="m2", seed=5)
    CachedEmbedder(other, cache, progress=False).embed(["a"])
    assert other.texts_seen == 1 and cache.count() == 2


def test_damaged_rows_are_fetched_again(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    good = CachedEmbedder(HashEmbedder(), cache, progress=False).embed(["x", "y", "z"])
    cache.close()
    db = sqlite3.connect(tmp_path / EmbeddingCache.FILENAME)
    rows = db.execute("SELECT key, vec FROM embeddings").fetchall()
    db.execute("UPDATE embeddings SET vec=? WHERE key=?", (rows[0][1][:-4], rows[0][0]))  # truncated
    db.execute("UPDATE embeddings SET vec=? WHERE key=?", (b"\x00" * len(rows[1][1]), rows[1][0]))  # bad crc
    db.commit()
    db.close()
    cache = EmbeddingCache(tmp_path)
    base = HashEmbedder()
    again = CachedEmbedder(base, cache, progress=False).embed(["x", "y", "z"])
    assert base.texts_seen == 2 and cache.damaged_rows == 2
    np.testing.assert_allclose(again, good)


def test_no_cache_calls_base_every_time() -> None:
    base = HashEmbedder()
    emb = CachedEmbedder(base, None, progress=False)
    emb.embed(["a"])
    emb.embed(["a"])
    assert base.texts_seen == 2


def test_wal_mode(tmp_path: Path) -> None:
    EmbeddingCache(tmp_path).close()
    mode = sqlite3.connect(tmp_path / EmbeddingCache.FILENAME).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
