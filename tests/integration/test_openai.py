"""The real ``openai`` client against a loopback OpenAI-compatible server serving real local embeddings."""

from __future__ import annotations

import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from embedlens import EmbedderError, EmbedlensInputError
from embedlens.cache import CachedEmbedder, EmbeddingCache
from embedlens.embedders.openai import OpenAIEmbedder, estimate_cost
from tests.support.chroma_server import chroma_server
from tests.support.openai_server import FakeOpenAIServer

# Long and random per run: it cannot occur by chance in binary data, nor linger from an earlier run's files.
KEY = "sk-test-embedlens-" + secrets.token_urlsafe(32)
TEXTS = ["insulin resistance and diabetes", "the quick brown fox", "capital of France"]


@pytest.fixture
def server(local_embedder) -> Iterator[FakeOpenAIServer]:  # type: ignore[no-untyped-def]
    with FakeOpenAIServer(local_embedder.base.embed) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def _emb(srv: FakeOpenAIServer, **kw: object) -> OpenAIEmbedder:
    kw.setdefault("max_retries", 3)
    return OpenAIEmbedder(
        "text-embedding-3-small", dimensions=kw.pop("dimensions", 384), base_url=srv.base_url, **kw
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["float", "base64"])
def test_encodings_return_the_served_vectors(server: FakeOpenAIServer, local_embedder, fmt: str) -> None:  # type: ignore[no-untyped-def]
    got = _emb(server, encoding_format=fmt).embed(TEXTS)
    np.testing.assert_allclose(got, local_embedder.base.embed(TEXTS), atol=1e-5)
    assert got.dtype == np.float32
    assert server.auth_headers[-1] == f"Bearer {KEY}"


def test_dimensions(server: FakeOpenAIServer) -> None:
    emb = _emb(server, dimensions=128)
    got = emb.embed(TEXTS)
    assert got.shape == (3, 128) and emb.dim == 128 and emb.name == "openai:text-embedding-3-small@128"
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_429_retry_after_is_honoured(server: FakeOpenAIServer) -> None:
    server.faults = [{"status": 429, "retry_after": 1}]
    t0 = time.monotonic()
    assert _emb(server).embed(TEXTS).shape == (3, 384)
    assert server.requests == 2 and time.monotonic() - t0 >= 0.9


def test_500_is_retried(server: FakeOpenAIServer) -> None:
    server.faults = [{"status": 500}, {"status": 503}]
    assert _emb(server).embed(TEXTS).shape == (3, 384)
    assert server.requests == 3


def test_slow_response_times_out_and_is_retried(server: FakeOpenAIServer) -> None:
    server.faults = [{"sleep": 2.0}]
    assert _emb(server, timeout=0.5).embed(TEXTS).shape == (3, 384)
    assert server.requests == 2


def test_persistent_failure_reported_clearly(server: FakeOpenAIServer) -> None:
    server.faults = [{"status": 500}] * 3
    with pytest.raises(EmbedderError, match="HTTP 500 after retries"):
        _emb(server, max_retries=1).embed(TEXTS)


@pytest.mark.parametrize(
    ("fault", "match"),
    [({"malformed": True}, "malformed"), ({"drop_one": True}, "returned 2 vectors for 3 inputs")],
)
def test_bad_bodies_reported_and_cache_intact(
    server: FakeOpenAIServer, tmp_path: Path, fault: dict, match: str
) -> None:
    cache = EmbeddingCache(tmp_path)
    emb = CachedEmbedder(_emb(server), cache, progress=False)
    first = emb.embed(["already paid for"])
    server.faults = [fault]
    with pytest.raises(EmbedderError, match=match):
        emb.embed(TEXTS)
    assert cache.count() == 1  # nothing half-written; the earlier row is intact
    np.testing.assert_array_equal(emb.embed(["already paid for"]), first)
    assert emb.embed(TEXTS).shape == (3, 384)  # a later call succeeds and fills the cache
    assert cache.count() == 4


def test_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(EmbedlensInputError, match="export OPENAI_API_KEY"):
        OpenAIEmbedder()


def test_batches_respect_limits(server: FakeOpenAIServer) -> None:
    texts = [f"t{i}" for i in range(5000)]
    emb = _emb(server)
    assert emb.embed(texts).shape == (5000, 384)
    assert server.texts_by_request == [2048, 2048, 904]
    small = _emb(server, max_batch_tokens=100)
    assert all(s.stop - s.start <= 100 for s in small.batches(texts[:500]))


def test_bounded_concurrency_through_cache(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.delay = 0.2
    emb = CachedEmbedder(
        _emb(server, max_batch_size=10, max_concurrency=3), EmbeddingCache(tmp_path), progress=False
    )
    texts = [f"text {i}" for i in range(120)]
    out = emb.embed(texts)
    assert out.shape == (120, 384) and server.requests == 12
    assert 2 <= server.max_in_flight <= 3


def test_cost_estimate() -> None:
    # ordinary prose: ~100 tokens per text exactly (tiktoken, when its vocabulary is at hand: LlamaIndex ships
    # one) or by the bytes / 4 fallback alike (a run of one letter would tokenise 8x shorter than the fallback)
    est = estimate_cost(["The quick brown fox jumps over the lazy dog. " * 10] * 10, "text-embedding-3-small")
    assert 900 <= est["tokens"] <= 1200 and est["usd"] == pytest.approx(est["tokens"] / 1e6 * 0.02)
    assert estimate_cost(["x"], "some-model")["usd"] is None


RESUME = """
import sys
from embedlens.cache import CachedEmbedder, EmbeddingCache
from embedlens.embedders.openai import OpenAIEmbedder
base = OpenAIEmbedder("text-embedding-3-small", dimensions=384, base_url=sys.argv[1], max_batch_size=50, max_concurrency=1)
emb = CachedEmbedder(base, EmbeddingCache(sys.argv[2]), progress=False)
emb.embed([f"resume text {i}" for i in range(1000)])
print("done", emb.base_texts)
"""


def test_kill_and_resume_sends_only_missing_texts(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.delay = 0.1
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    proc = subprocess.Popen([sys.executable, "-c", RESUME, server.base_url, str(tmp_path)], env=env)
    deadline = time.time() + 120
    while server.requests < 6 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    while server.in_flight:  # the killed client's last request may still be answered (and lost)
        time.sleep(0.05)
    stored = (
        sqlite3.connect(tmp_path / EmbeddingCache.FILENAME)
        .execute("SELECT COUNT(*) FROM vectors")
        .fetchone()[0]
    )
    assert 0 < stored < 1000
    before = server.texts
    out = subprocess.run(
        [sys.executable, "-c", RESUME, server.base_url, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert server.texts - before == 1000 - stored  # counted at the server
    assert out.stdout.split() == ["done", str(1000 - stored)]


@contextmanager
def _chroma_server(path: Path) -> Iterator[tuple[str, int]]:
    """A ``chroma run`` server that never sees the key (its environment leaves it out)."""
    with chroma_server(path, env={k: v for k, v in os.environ.items() if v != KEY}) as address:
        yield address


def _scan(root: Path) -> tuple[list[Path], list[Path]]:
    """Every file under ``root`` (sqlite databases, their WAL, HNSW segments, lens, plots ...) and those holding KEY."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return files, [p for p in files if KEY.encode() in p.read_bytes()]


def test_openai_as_base_everywhere_and_key_never_stored(
    server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key is used everywhere and stored nowhere: embedding cache, lens, Chroma config and segments.

    Chroma runs as a server process that never sees the key, so every one of its files can be
    scanned. (An embedded client's HNSW files are not scanned: Chroma writes their preallocated,
    unused capacity from uninitialised heap memory, which in this process may hold the HTTP
    request buffers that carried the Authorization header; that made the old scan flaky.)
    """
    import chromadb
    from chromadb.utils.embedding_functions import OpenAIEmbeddingFunction

    from embedlens.adapters.chroma import LensEmbeddingFunction
    from embedlens.adapters.langchain import EmbedderEmbeddings, LensEmbeddings
    from embedlens.app.cli import main
    from embedlens.app.demo import demo_data_dir

    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    cache, lens_dir, db = tmp_path / "cache", tmp_path / "lens", tmp_path / "chroma"
    db.mkdir()
    assert (
        main(
            [
                "train",
                "--data",
                str(demo_data_dir()),
                "--out",
                str(lens_dir),
                "--model",
                "openai:text-embedding-3-small@256",
                "--cache",
                str(cache),
                "--quiet",
                "--max-steps",
                "2",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "train",
                "--data",
                str(demo_data_dir()),
                "--out",
                str(tmp_path / "x"),
                "--model",
                "openai:text-embedding-3-small@256",
                "--cache",
                str(cache),
                "--dry-run",
            ]
        )
        == 0
    )
    assert not (tmp_path / "x").exists()
    ef = OpenAIEmbeddingFunction(
        api_key_env_var="OPENAI_API_KEY",
        model_name="text-embedding-3-small",
        api_base=server.base_url,
        dimensions=256,
    )
    with _chroma_server(db) as (host, port):
        client = chromadb.HttpClient(host=host, port=port)
        col = client.create_collection("openai-docs", embedding_function=LensEmbeddingFunction(ef, lens_dir))
        col.add(ids=["a", "b"], documents=["reset password", "export csv"])
        assert col.query(query_texts=["forgot my login"], n_results=1)["ids"][0] == ["a"]
        assert "api_key_env_var" in str(col.configuration_json)
    lc = LensEmbeddings(
        EmbedderEmbeddings(OpenAIEmbedder("text-embedding-3-small", dimensions=256)), lens_dir
    )
    assert len(lc.embed_query("hello")) == 256
    assert server.auth_headers and set(server.auth_headers) == {f"Bearer {KEY}"}  # the key was in use

    files, leaks = _scan(tmp_path)
    assert leaks == []
    # The scan is meaningful: it read the stores that hold what embedlens persisted.
    names = {p.name for p in files}
    assert {"chroma.sqlite3", "lens.json", "weights.safetensors"} <= names
    assert any(p.suffix == ".bin" for p in db.rglob("*"))  # Chroma's HNSW segment files
    stored = b"".join(p.read_bytes() for p in files if p.name.startswith(("chroma.sqlite3", "embeddings")))
    assert b"api_key_env_var" in stored and b"OPENAI_API_KEY" in stored and b"reset password" in stored
