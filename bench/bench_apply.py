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
        lens = Lens(
            rng.standard_normal((d, k)).astype(np.float32) / np.sqrt(d), mode="symmetric", normalize=False
        )
        normed_lens = Lens(lens.weights, mode="symmetric", normalize=True)
        bare = ours = normed = float("inf")
        for _ in range(15):  # interleaved, best of 15 each: BLAS timing drifts between runs
            bare = min(bare, best_of(lambda x=x, w=lens.weights: x @ w, 1))
            ours = min(ours, best_of(lambda x=x, lens=lens: lens.project_queries(x), 1))
            normed = min(normed, best_of(lambda x=x, lens=normed_lens: lens.project_queries(x), 1))
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
    from embedlens.app.demo import demo_data_dir
    from embedlens.datasets import read_beir
    from embedlens.embedders.local import SentenceTransformerEmbedder, default_model_path
    from embedlens.lens import compute_fingerprint

    texts = read_beir(demo_data_dir()).corpus_texts * 10  # 400 texts
    st = SentenceTransformerEmbedder()
    lens = Lens(
        np.eye(384, dtype=np.float32) + 0.01 * rng.standard_normal((384, 384)).astype(np.float32),
        mode="symmetric",  # documents are projected too: the cost measured is the lens on both sides
        fingerprint=compute_fingerprint(st),
    )
    import tempfile

    lens_dir = lens.save(tempfile.mkdtemp() + "/lens")
    raw = st.embed(texts)
    t_embed = best_of(lambda: st.embed(texts), 3)
    t_lens = best_of(lambda: lens.project_documents(raw), 7)
    out["lens_share_of_embedding"] = {
        "embed_s": t_embed,
        "lens_s": t_lens,
        "ratio": t_lens / t_embed,
        "texts": len(texts),
    }
    print(
        f"lens share of local embedding time: {t_lens / t_embed:.5f} ({t_lens * 1e3:.2f} ms vs {t_embed:.2f} s, {len(texts)} texts)"
    )

    # Adapter overhead = (adapter over an instant base - the instant base) / the real base's time.
    # Timing the whole path twice would drown a ~1 ms difference in the model's own run-to-run noise.
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
    from langchain_core.embeddings import Embeddings as LCEmbeddings

    raw_lists = raw.astype(float).tolist()

    class InstantLC(LCEmbeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return raw_lists if len(texts) == len(raw_lists) else st.embed(texts).astype(float).tolist()

        def embed_query(self, text: str) -> list[float]:
            return raw_lists[0]

    class InstantEF(EmbeddingFunction[Documents]):
        def __init__(self) -> None:
            self.real = SentenceTransformerEmbeddingFunction(model_name=str(default_model_path()))

        def __call__(self, input: Documents) -> Embeddings:
            return list(raw) if len(input) == len(raw) else self.real(input)

        @staticmethod
        def name() -> str:
            return "instant"

        def get_config(self) -> dict:
            return {"model_name": str(default_model_path())}

    t_real_lc = best_of(lambda: EmbedderEmbeddings(st).embed_documents(texts), 3)
    fast_lc = InstantLC()
    lens_lc = LensEmbeddings(fast_lc, lens_dir, check_fingerprint=False)
    t_fast = best_of(lambda: fast_lc.embed_documents(texts), 20)
    t_ad = best_of(lambda: lens_lc.embed_documents(texts), 20)
    ratio = (t_ad - t_fast) / t_real_lc
    out["langchain_adapter_overhead"] = {
        "base_s": t_real_lc,
        "adapter_extra_s": t_ad - t_fast,
        "ratio": ratio,
    }
    print(
        f"LangChain adapter overhead: {100 * ratio:.3f} % of base embedding time "
        f"({(t_ad - t_fast) * 1e3:.2f} ms extra vs {t_real_lc:.2f} s for {len(texts)} texts)"
    )

    base_ef = SentenceTransformerEmbeddingFunction(model_name=str(default_model_path()))
    t_real_ef = best_of(lambda: base_ef(texts), 3)
    fast_ef = InstantEF()
    lens_ef = LensEmbeddingFunction(fast_ef, lens_dir, check_fingerprint=False)
    t_fast = best_of(lambda: fast_ef(texts), 20)
    t_ad = best_of(lambda: lens_ef(texts), 20)
    ratio = (t_ad - t_fast) / t_real_ef
    out["chroma_adapter_overhead"] = {"base_s": t_real_ef, "adapter_extra_s": t_ad - t_fast, "ratio": ratio}
    print(
        f"Chroma adapter overhead: {100 * ratio:.3f} % of base embedding time "
        f"({(t_ad - t_fast) * 1e3:.2f} ms extra vs {t_real_ef:.2f} s for {len(texts)} texts)"
    )
    save("apply", out)


if __name__ == "__main__":
    main()
