"""A real Chroma server (``chroma run``) on a free loopback port, for tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def chroma_server(path: Path, env: Mapping[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """Run ``chroma run --path PATH`` on loopback until the block ends (then stop it, files flushed).

    Args:
        path: the server's data directory; its log goes to ``PATH.log``.
        env: the server's environment (default: this process's, without telemetry).
    """
    import chromadb

    port = free_port()
    exe = Path(sys.executable).with_name("chroma")
    cmd = [str(exe) if exe.exists() else "chroma", "run", "--path", str(path), "--host", "127.0.0.1"]
    log_path = path.with_suffix(".log")
    env = {**(os.environ if env is None else env), "ANONYMIZED_TELEMETRY": "False"}
    with log_path.open("wb") as log:
        proc = subprocess.Popen([*cmd, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.time() + 60
            while True:
                try:
                    chromadb.HttpClient(host="127.0.0.1", port=port).heartbeat()
                    break
                except Exception as e:
                    if proc.poll() is not None or time.time() > deadline:
                        msg = f"chroma server did not start: {log_path.read_text()}"
                        raise RuntimeError(msg) from e
                    time.sleep(0.2)
            yield "127.0.0.1", port
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
