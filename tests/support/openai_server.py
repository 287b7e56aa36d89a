"""A small OpenAI-compatible embeddings server for tests and benchmarks (loopback only).

It serves ``POST /v1/embeddings`` with real vectors from an embedding callable, supports
``encoding_format`` (float/base64) and ``dimensions`` (truncate + renormalise, like OpenAI's
text-embedding-3 models), counts requests and texts, and injects faults from a queue:
``{"status": 429, "retry_after": 0.2}``, ``{"status": 500}``, ``{"sleep": 3.0}``,
``{"malformed": True}``, ``{"drop_one": True}``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np


class FakeOpenAIServer:
    """Run with ``with FakeOpenAIServer(embed) as srv: ... srv.base_url``."""

    def __init__(self, embed: Callable[[Sequence[str]], np.ndarray], *, delay: float = 0.0) -> None:
        self.embed = embed
        self.delay = delay
        self.faults: list[dict[str, Any]] = []
        self.requests = 0
        self.texts = 0  # texts answered successfully
        self.texts_by_request: list[int] = []
        self.auth_headers: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms delayed-ACK stalls)

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                with server.lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._handle()
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server.lock:
                    server.requests += 1
                    server.auth_headers.append(self.headers.get("Authorization", ""))
                    fault = server.faults.pop(0) if server.faults else {}
                if not self.path.rstrip("/").endswith("/embeddings"):
                    return self._send(404, {"error": {"message": "not found"}})
                if "sleep" in fault:
                    time.sleep(fault["sleep"])
                if "status" in fault:
                    headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else {}
                    return self._send(
                        fault["status"], {"error": {"message": "injected", "type": "test"}}, headers
                    )
                if server.delay:
                    time.sleep(server.delay)
                inputs = body.get("input")
                inputs = [inputs] if isinstance(inputs, str) else list(inputs)
                vecs = np.asarray(server.embed(inputs), dtype=np.float32)
                dims = body.get("dimensions")
                if dims:
                    vecs = vecs[:, :dims]
                    vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
                if fault.get("drop_one"):
                    vecs = vecs[:-1]
                fmt = body.get("encoding_format", "float")
                data = [
                    {
                        "object": "embedding",
                        "index": i,
                        "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode()
                        if fmt == "base64"
                        else v.tolist(),
                    }
                    for i, v in enumerate(vecs)
                ]
                payload = {
                    "object": "list",
                    "data": data,
                    "model": body.get("model"),
                    "usage": {"prompt_tokens": 0, "total_tokens": 0},
                }
                if fault.get("malformed"):
                    return self._send_raw(200, b'{"object": "list", "data": [ {"embed')
                with server.lock:
                    server.texts += len(inputs)
                    server.texts_by_request.append(len(inputs))
                return self._send(200, payload)

            def _send(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
                self._send_raw(status, json.dumps(obj).encode(), headers)

            def _send_raw(self, status: int, raw: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main() -> None:
    """``python -m tests.support.openai_server PORT_FILE``: serve the local model until killed."""
    import sys

    from embedlens.embedders.local import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder()
    with FakeOpenAIServer(emb.embed) as srv:
        with open(sys.argv[1], "w") as f:
            f.write(str(srv.port))
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
