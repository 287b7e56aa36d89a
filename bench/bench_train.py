"""Training cost on SciFact with cached embeddings, as a ratio to embedding the corpus once.

Run: python bench/bench_train.py   (needs ../shared/data/beir/scifact; the first run fills the cache)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _util import BENCH_CACHE, SHARED, best_of, peak_rss_mb, save

from embedlens.cache import open_embedder
from embedlens.datasets import read_beir
from embedlens.embedders.local import SentenceTransformerEmbedder
from embedlens.training import TrainConfig
from embedlens.training.workflow import train_lens, training_inputs


def main() -> None:
    data = SHARED / "beir" / "scifact"
    if not data.exists():
        print(f"skipped: {data} not found")
        return
    cache = BENCH_CACHE
    emb = open_embedder(None, cache_dir=cache)
    emb.progress = False
    ds = read_beir(data)
    documents, queries = training_inputs(data)
    emb.embed(documents)  # fill the cache (not timed)
    emb.embed_queries(queries)
    st = SentenceTransformerEmbedder()
    sample = ds.corpus_texts[:500]
    t_sample = best_of(lambda: st.embed(sample), 1)
    t_corpus = t_sample * len(ds.corpus_texts) / len(sample)  # extrapolated from 500 documents
    t0 = time.perf_counter()
    out = train_lens(data, emb, TrainConfig(progress=False))
    t_train = time.perf_counter() - t0
    # the whole warm CLI command, in a fresh process (imports, data, cache reads, training, writing the lens)
    out_dir = Path(tempfile.mkdtemp()) / "lens"
    cmd = [sys.executable, "-m", "embedlens.app.cli", "train", "--data", str(data), "--out", str(out_dir)]
    t0 = time.perf_counter()
    subprocess.run([*cmd, "--cache", str(cache), "--quiet"], check=True, capture_output=True)
    t_cli = time.perf_counter() - t0
    print(
        f"whole warm `embedlens train` CLI on SciFact: {t_cli:.1f} s -> {t_cli / t_corpus:.3f} of embedding the corpus "
        f"once (goal <= 0.05)"
    )
    print(
        f"SciFact training with cached embeddings: {t_train:.1f} s (goal < 60 s); embedding the corpus once: "
        f"{t_corpus:.0f} s (from 500 docs) -> ratio {t_train / t_corpus:.3f}; chosen "
        f"{out.lens.metadata['training']['chosen_steps']} steps; peak RSS {peak_rss_mb():.0f} MiB"
    )
    save(
        "train_scifact",
        {
            "train_s": t_train,
            "embed_corpus_s": t_corpus,
            "ratio": t_train / t_corpus,
            "peak_rss_mb": peak_rss_mb(),
            "cli_warm_s": t_cli,
            "cli_ratio": t_cli / t_corpus,
        },
    )


if __name__ == "__main__":
    main()
