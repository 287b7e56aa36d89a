"""20,000 texts through a loopback OpenAI-compatible server with the real ``openai`` client:
batched + concurrent (embedlens defaults) vs one request per text.

The server answers with cheap deterministic vectors so the measurement isolates the client path
(HTTP, JSON/base64, batching, concurrency). Run: python bench/bench_openai.py [N_TEXTS]
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time

import numpy as np
from _util import save

from embedlens.cache import CachedEmbedder, EmbeddingCache
from embedlens.embedders.openai import OpenAIEmbedder
from tests.support.openai_server import FakeOpenAIServer


def cheap_embed(texts: list[str]) -> np.ndarray:
    seeds = [int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little") for t in texts]
    return np.stack([np.random.default_rng(s).standard_normal(384).astype(np.float32) for s in seeds])


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    os.environ["OPENAI_API_KEY"] = "sk-bench-not-a-real-key"
    texts = [f"benchmark sentence number {i} about embeddings" for i in range(n)]
    with FakeOpenAIServer(cheap_embed) as srv:
        fast = CachedEmbedder(
            OpenAIEmbedder(dimensions=384, base_url=srv.base_url),
            EmbeddingCache(tempfile.mkdtemp()),
            progress=False,
        )
        t0 = time.perf_counter()
        a = fast.embed(texts)
        t_fast = time.perf_counter() - t0
        req_fast = srv.requests
        slow = OpenAIEmbedder(dimensions=384, base_url=srv.base_url, max_batch_size=1, max_concurrency=1)
        t0 = time.perf_counter()
        b = np.concatenate([slow.embed([t]) for t in texts])
        t_slow = time.perf_counter() - t0
        req_slow = srv.requests - req_fast
    assert np.allclose(a, b)
    print(
        f"{n} texts: batched+concurrent {t_fast:.2f} s in {req_fast} requests vs one request per text "
        f"{t_slow:.2f} s in {req_slow} requests -> {t_slow / t_fast:.1f}x faster"
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
