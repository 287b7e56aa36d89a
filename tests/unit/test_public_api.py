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
            "EmbedlensWarning",
            "FingerprintMismatchError",
            "Lens",
            "LensEmbeddingFunction",
            "LensEmbeddings",
            "LensFormatError",
            "PROBE_SENTENCES",
            "PairsDataset",
            "Qrels",
            "TrainConfig",
            "TrainOutcome",
            "__version__",
            "as_embedder",
            "evaluate_lens",
            "export_sentence_transformer",
            "get_embedder",
            "load_data",
            "load_lens",
            "open_embedder",
            "pairs_dataset",
            "read_beir",
            "read_pairs",
            "retrieval_dataset",
            "train_lens",
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


def test_import_loads_numpy_only_and_the_common_path_is_top_level() -> None:
    import subprocess
    import sys

    code = (
        "import sys, embedlens\n"
        "heavy = {'torch', 'faiss', 'chromadb', 'langchain_core', 'scipy', 'sentence_transformers', 'openai', 'ray', 'pyarrow'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
        "from embedlens import TrainConfig, evaluate_lens, open_embedder, train_lens\n"
        "print(TrainConfig().mode, train_lens.__module__, evaluate_lens.__module__, open_embedder.__module__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "query embedlens.training.workflow embedlens.evaluation.workflow embedlens.cache"
    import pytest

    with pytest.raises(AttributeError, match="no_such_name"):
        import embedlens

        _ = embedlens.no_such_name  # type: ignore[attr-defined]
