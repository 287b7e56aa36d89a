"""20,000 texts through a loopback OpenAI-compatible server with the real ``openai`` client:
batched + concurrent (embedlens defaults) vs one request per text.

The server runs in a process of its own and answers with cheap deterministic vectors, so the
measurement isolates the client path (HTTP, JSON/base64, batching, concurrency, the cache's writes).
Run: python bench/bench_openai.py [N_TEXTS]
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from typing import Any

import numpy as np
from _util import save

from embedlens.cache import CachedEmbedder, EmbeddingCache
from embedlens.embedders.openai import OpenAIEmbedder
from tests.support.openai_server import FakeOpenAIServer

#: the vectors the loopback server answers with: one row of this table per text, by a hash of the text
_TABLE = np.random.default_rng(0).standard_normal((65536, 384)).astype(np.float32)


def cheap_embed(texts: list[str]) -> np.ndarray:
    """Deterministic vectors at almost no cost (a remote model's compute is not on this machine's cores)."""
    rows = [
        int.from_bytes(hashlib.blake2b(t.encode(), digest_size=4).digest(), "little") % 65536 for t in texts
    ]
    return _TABLE[rows]


def _serve(urls: Any) -> None:
    """The loopback server, in a process of its own (a remote API does not share this client's GIL)."""
    server = FakeOpenAIServer(cheap_embed)
    server.__enter__()
    urls.put(server.base_url)
    while True:
        time.sleep(1)


def main() -> None:
    import multiprocessing as mp

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    os.environ["OPENAI_API_KEY"] = "sk-bench-not-a-real-key"
    texts = [f"benchmark sentence number {i} about embeddings" for i in range(n)]
    urls: Any = mp.Queue()
    server = mp.Process(target=_serve, args=(urls,), daemon=True)
    server.start()
    try:
        base_url = urls.get(timeout=60)
        fast_base = OpenAIEmbedder(dimensions=384, base_url=base_url)  # the defaults: batched, 4 in flight
        fast = CachedEmbedder(fast_base, EmbeddingCache(tempfile.mkdtemp()), progress=False)
        t0 = time.perf_counter()
        a = fast.embed(texts)
        t_fast = time.perf_counter() - t0
        req_fast = fast_base.requests
        slow = OpenAIEmbedder(dimensions=384, base_url=base_url, max_batch_size=1, max_concurrency=1)
        t0 = time.perf_counter()
        b = np.concatenate([slow.embed([t]) for t in texts])
        t_slow = time.perf_counter() - t0
        req_slow = slow.requests
    finally:
        server.terminate()
    assert np.allclose(a, b)
    print(
        f"{n} texts: batched+concurrent (through the cache) {t_fast:.2f} s in {req_fast} requests vs one request "
        f"per text {t_slow:.2f} s in {req_slow} requests -> {t_slow / t_fast:.1f}x faster (goal >= 20x)"
    )
    save(
        "openai_batching",
        {
            "texts": n,
            "batched_s": t_fast,
            "batched_requests": req_fast,
            "per_text_s": t_slow,
            "per_text_requests": req_slow,
            "speedup": t_slow / t_fast,
        },
    )


if __name__ == "__main__":
    main()
