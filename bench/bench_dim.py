"""Dimension reduction: symmetric lenses 384 -> 128 / 64 on SciFact, index memory saved vs nDCG@10 kept (a plot).

Run: python bench/bench_dim.py   (needs ../shared/data/beir/scifact; embeddings from the bench cache)
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _util import BENCH_CACHE as CACHE
from _util import HERE_PLOTS, SHARED, save

from embedlens.cache import open_embedder
from embedlens.datasets import read_beir
from embedlens.evaluation.workflow import evaluate_lens
from embedlens.training import TrainConfig
from embedlens.training.workflow import train_lens


def main() -> None:
    data = SHARED / "beir" / "scifact"
    if not data.exists():
        print(f"skipped: {data} not found")
        return
    emb = open_embedder(None, cache_dir=CACHE)
    emb.progress = False
    n_docs = len(read_beir(data).corpus_ids)
    rows = []
    for dim in (384, 128, 64):
        lens = train_lens(data, emb, TrainConfig(dim=None if dim == 384 else dim, progress=False)).lens
        rep = evaluate_lens(data, lens, emb, n_boot=200)
        rows.append(
            {
                "dim": dim,
                "index_mb": n_docs * dim * 4 / 2**20,
                "ndcg@10": rep.lens["ndcg@10"],
                "raw_ndcg@10": rep.raw["ndcg@10"],
            }
        )
        print(
            f"dim {dim}: nDCG@10 {rep.lens['ndcg@10']:.4f} (raw 384-d {rep.raw['ndcg@10']:.4f}); "
            f"flat index {rows[-1]['index_mb']:.2f} MiB"
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.plot(
        [r["index_mb"] for r in rows], [r["ndcg@10"] for r in rows], "o-", label="embedlens symmetric --dim K"
    )
    for r in rows:
        ax.annotate(
            f"{r['dim']}-d", (r["index_mb"], r["ndcg@10"]), textcoords="offset points", xytext=(5, -12)
        )
    ax.axhline(rows[0]["raw_ndcg@10"], color="gray", ls="--", label="raw 384-d")
    ax.set_xlabel("flat index size for SciFact's 5,183 docs (MiB)")
    ax.set_ylabel("nDCG@10 (test)")
    ax.legend(fontsize=8)
    HERE_PLOTS.mkdir(exist_ok=True)
    fig.savefig(HERE_PLOTS / "dim_tradeoff.png", dpi=110, bbox_inches="tight")
    save("dim_reduction", {"rows": rows})


if __name__ == "__main__":
    main()
