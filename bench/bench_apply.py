"""Apply cost: lens transform vs a bare ``X @ W``; lens and adapter share of base embedding time.

Run: python bench/bench_apply.py   (ratios are measured in this one run)
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from _util import best_of, save

from embedlens import Lens


def main() -> None:
    rng = np.random.default_rng(0)
    out: dict[str, object] = {}
    for n, d, k in ((100_000, 384, 384), (100_000, 384, 64), (1_000, 384, 384)):
        x = rng.standard_normal((n, d)).astype(np.float32)
        lens = Lens(rng.standard_normal((d, k)).astype(np.float32) / np.sqrt(d), normalize=False)
        bare = best_of(lambda x=x, w=lens.weights: x @ w, 7)
        ours = best_of(lambda x=x, lens=lens: lens.transform_queries(x), 7)
        lens.normalize = True
        normed = best_of(lambda x=x, lens=lens: lens.transform_queries(x), 7)
        key = f"{n}x{d}->{k}"
        out[key] = {
            "bare_matmul_s": bare,
            "lens_s": ours,
            "ratio": ours / bare,
            "lens_normalized_s": normed,
            "ratio_normalized": normed / bare,
        }
        print(
            f"transform {key}: lens / bare X@W = {ours / bare:.3f} ({ours * 1e3:.2f} ms vs {bare * 1e3:.2f} ms); "
            f"with L2 normalisation {normed / bare:.3f}"
        )

    from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction

    from embedlens.adapters.chroma import LensEmbeddingFunction
    from embedlens.adapters.langchain import EmbedderEmbeddings, LensEmbeddings
    from embedlens.data import read_beir
    from embedlens.demo import demo_data_dir
    from embedlens.embedders.local import SentenceTransformerEmbedder, default_model_path
    from embedlens.lens import compute_fingerprint

    texts = read_beir(demo_data_dir()).corpus_texts * 10  # 400 texts
    st = SentenceTransformerEmbedder()
    lens = Lens(
        np.eye(384, dtype=np.float32) + 0.01 * rng.standard_normal((384, 384)).astype(np.float32),
        fingerprint=compute_fingerprint(st),
    )
    import tempfile

    lens_dir = lens.save(tempfile.mkdtemp() + "/lens")
    raw = st.embed(texts)
    t_embed = best_of(lambda: st.embed(texts), 3)
    t_lens = best_of(lambda: lens.transform_documents(raw), 7)
    out["lens_share_of_embedding"] = {
        "embed_s": t_embed,
        "lens_s": t_lens,
        "ratio": t_lens / t_embed,
        "texts": len(texts),
    }
    print(
        f"lens share of local embedding time: {t_lens / t_embed:.5f} ({t_lens * 1e3:.2f} ms vs {t_embed:.2f} s, {len(texts)} texts)"
    )

    base_lc = EmbedderEmbeddings(st)
    lens_lc = LensEmbeddings(base_lc, lens_dir)
    t_base = best_of(lambda: base_lc.embed_documents(texts), 3)
    t_ad = best_of(lambda: lens_lc.embed_documents(texts), 3)
    out["langchain_adapter_overhead"] = {"base_s": t_base, "adapter_s": t_ad, "ratio": t_ad / t_base - 1}
    print(
        f"LangChain adapter overhead: {100 * (t_ad / t_base - 1):+.2f} % of base embedding time ({t_ad:.2f} s vs {t_base:.2f} s)"
    )

    base_ef = SentenceTransformerEmbeddingFunction(model_name=str(default_model_path()))
    lens_ef = LensEmbeddingFunction(base_ef, lens_dir)
    t_base = best_of(lambda: base_ef(texts), 3)
    t_ad = best_of(lambda: lens_ef(texts), 3)
    out["chroma_adapter_overhead"] = {"base_s": t_base, "adapter_s": t_ad, "ratio": t_ad / t_base - 1}
    print(
        f"Chroma adapter overhead: {100 * (t_ad / t_base - 1):+.2f} % of base embedding time ({t_ad:.2f} s vs {t_base:.2f} s)"
    )
    save("apply", out)


if __name__ == "__main__":
    main()
