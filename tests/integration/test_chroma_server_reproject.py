"""`embedlens reproject` against a real `chroma run` server: pages copied in parallel, a killed run resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from embedlens.lens import Lens, load_lens

D, N = 64, 20_000


def _client(address: tuple[str, int]):  # type: ignore[no-untyped-def]
    import chromadb
    from chromadb.config import Settings

    return chromadb.HttpClient(
        host=address[0], port=address[1], settings=Settings(anonymized_telemetry=False)
    )


def _cli(*args: str, wait: bool = True) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "embedlens.app.cli", *args]
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_a_killed_parallel_reproject_resumes_to_an_exact_copy(
    chroma_server: tuple[str, int], tmp_path: Path
) -> None:
    client = _client(chroma_server)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, D)).astype(np.float32)
    ids = [f"v{i:06d}" for i in range(N)]
    src = client.create_collection(
        "reproject-src", embedding_function=None, metadata={"hnsw:space": "cosine"}
    )
    for s in range(0, N, 5000):
        src.add(
            ids=ids[s : s + 5000], embeddings=x[s : s + 5000], documents=[f"doc {i}" for i in range(s, s + 5000)],
            metadatas=[{"n": i} for i in range(s, s + 5000)],
        )  # fmt: skip
    w = np.linalg.qr(rng.standard_normal((D, D)))[0].astype(np.float32)
    lens = Lens(w, mode="symmetric").save(tmp_path / "lens")
    host, port = chroma_server
    args = (
        "reproject", "--host", host, "--port", str(port), "--source", "reproject-src", "--target", "reproject-dst",
        "--lens", str(lens), "--batch-size", "250", "--workers", "4", "--quiet",
    )  # fmt: skip
    proc = _cli(*args, wait=False)
    assert isinstance(proc, subprocess.Popen)
    killed_at, deadline = None, time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        try:
            have = client.get_collection("reproject-dst", embedding_function=None).count()
        except Exception:  # noqa: BLE001 - not created yet
            have = 0
        if 0 < have < N:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed_at = have
            break
        time.sleep(0.02)
    assert killed_at is not None, "the copy ended before it could be killed mid-run"
    resumed = _cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    n_new = int(resumed.stdout.split("re-projected ")[1].split()[0])
    dst = client.get_collection("reproject-dst", embedding_function=None)
    assert dst.count() == N and 0 < n_new < N  # the rerun wrote only what the killed one had not
    got = dst.get(ids=ids, include=["embeddings", "documents", "metadatas"])
    order = {i: k for k, i in enumerate(got["ids"])}
    rows = [order[i] for i in ids]
    expected = load_lens(lens).project_documents(x)
    np.testing.assert_allclose(np.asarray(got["embeddings"], dtype=np.float32)[rows], expected, atol=1e-5)
    assert [got["documents"][r] for r in rows] == [f"doc {i}" for i in range(N)]
    assert [got["metadatas"][r]["n"] for r in rows] == list(range(N))
    # a lens of another width is refused before the target collection is created
    small = Lens(np.eye(8, dtype=np.float32), mode="symmetric").save(tmp_path / "small")
    wrong = _cli(*args[:7], "--target", "reproject-wrong", "--lens", str(small), "--quiet")
    assert wrong.returncode == 2 and "stores 64-d vectors but the lens expects 8-d" in wrong.stderr
    assert "reproject-wrong" not in [c.name for c in client.list_collections()]


def test_reproject_options_are_checked_before_any_work(
    chroma_server: tuple[str, int], tmp_path: Path
) -> None:
    lens = Lens(np.eye(D, dtype=np.float32), mode="symmetric").save(tmp_path / "lens")
    base = ("reproject", "--source", "src-a", "--target", "dst-b", "--lens", str(lens))
    for extra, words in [
        (("--path", str(tmp_path), "--port", "9"), "--port goes with --host"),
        (("--host", "127.0.0.1", "--port", str(_free_port())), "no Chroma server answers"),
        (("--host", "http://x"), "--host"),
        (("--host", "127.0.0.1", "--workers", "0"), "--workers"),
    ]:
        run = _cli(*base, *extra)
        assert run.returncode == 2 and words in run.stderr, (extra, run.stderr)


def _free_port() -> int:
    from tests.support.chroma_server import free_port

    return free_port()
