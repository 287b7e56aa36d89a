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
    rows = db.execute("SELECT key, vec FROM vectors").fetchall()
    db.execute("UPDATE vectors SET vec=? WHERE key=?", (rows[0][1][:-4], rows[0][0]))  # truncated
    db.execute("UPDATE vectors SET vec=? WHERE key=?", (b"\x00" * len(rows[1][1]), rows[1][0]))  # bad crc
    db.commit()
    db.close()
    cache = EmbeddingCache(tmp_path)
    base = HashEmbedder()
    again = CachedEmbedder(base, cache, progress=False).embed(["x", "y", "z"])
    assert base.texts_seen == 2 and cache.damaged_rows == 2
    np.testing.assert_allclose(again, good)


def test_first_layout_is_moved_over_once(tmp_path: Path) -> None:
    """A cache written by the first layout (table ``embeddings`` WITHOUT ROWID) keeps every row."""
    cache = EmbeddingCache(tmp_path / "new")
    emb = CachedEmbedder(HashEmbedder(), cache, progress=False)
    want = emb.embed(["x", "y"])
    rows = cache._db.execute("SELECT model, key, dim, vec, crc FROM vectors").fetchall()
    cache.close()
    old = tmp_path / "old"
    old.mkdir()
    db = sqlite3.connect(old / EmbeddingCache.FILENAME)
    db.execute(
        "CREATE TABLE embeddings (model TEXT NOT NULL, key BLOB NOT NULL, dim INTEGER NOT NULL, vec BLOB NOT NULL, "
        "crc INTEGER NOT NULL, PRIMARY KEY (model, key)) WITHOUT ROWID"
    )
    db.executemany("INSERT INTO embeddings VALUES (?,?,?,?,?)", rows)
    db.commit()
    db.close()
    base = HashEmbedder()
    reopened = EmbeddingCache(old)
    np.testing.assert_allclose(CachedEmbedder(base, reopened, progress=False).embed(["x", "y"]), want)
    assert base.texts_seen == 0 and reopened.count() == 2  # every row found: nothing embedded again
    tables = {r[0] for r in reopened._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "embeddings" not in tables
    reopened.close()
    assert EmbeddingCache(old).count() == 2  # a second open has nothing left to move


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
