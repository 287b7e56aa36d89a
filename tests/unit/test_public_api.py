import embedlens


def test_all_is_pinned() -> None:
    assert sorted(embedlens.__all__) == sorted(
        [
            "BeirDataset",
            "CachedEmbedder",
            "DataFormatError",
            "DimensionMismatchError",
            "Embedder",
            "EmbedderError",
            "EmbeddingCache",
            "EmbedlensInputError",
            "FingerprintMismatchError",
            "Lens",
            "LensFormatError",
            "PROBE_SENTENCES",
            "PairsDataset",
            "__version__",
            "get_embedder",
            "load_lens",
            "read_beir",
            "read_pairs",
        ]
    )


def test_applying_a_lens_imports_numpy_only() -> None:
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, embedlens\n"
        "l = embedlens.Lens.identity(4)\n"
        "l.project_queries(np.ones((2, 4)))\n"
        "heavy = [m for m in ('torch', 'faiss', 'chromadb', 'langchain_core', 'sentence_transformers', 'openai') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
