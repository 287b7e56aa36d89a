"""Training and evaluating from data held in memory, with any base model (issue 12, item 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedlens import (
    DataFormatError,
    EmbedlensInputError,
    TrainConfig,
    as_embedder,
    evaluate_lens,
    open_embedder,
    pairs_dataset,
    read_beir,
    read_pairs,
    retrieval_dataset,
    train_lens,
)
from tests.conftest import HashEmbedder

FAST = TrainConfig(progress=False, max_steps=20, folds=3, require_significant=False)


def _write_pairs(tmp_path: Path, rows: list[tuple[str, str, float, str]]) -> Path:
    p = tmp_path / "pairs.csv"
    lines = ["text_1,text_2,label,split"] + [f"{a},{b},{y},{s}" for a, b, y, s in rows]
    p.write_text("\n".join(lines) + "\n")
    return p


def _pairs_rows(n: int = 40) -> list[tuple[str, str, float, str]]:
    return [
        (f"question {i}", f"answer {i}", 1.0 if i % 2 else 0.0, "test" if i % 5 == 0 else "train")
        for i in range(n)
    ]


def test_pairs_lists_and_dataframe_read_like_the_file(tmp_path: Path) -> None:
    rows = _pairs_rows()
    from_file = read_pairs(_write_pairs(tmp_path, rows))
    t1, t2, y, s = (list(c) for c in zip(*rows, strict=True))
    from_lists = pairs_dataset(t1, t2, y, split=s)
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"text_1": t1, "text_2": t2, "label": np.asarray(y), "split": s})
    from_frame = pairs_dataset(frame)
    for ds in (from_lists, from_frame):
        assert ds.text_1 == from_file.text_1 and ds.text_2 == from_file.text_2
        np.testing.assert_array_equal(ds.labels, from_file.labels)  # 0/1 mapped to -1/+1 alike
        assert ds.kind == "binary" and list(ds.splits) == list(from_file.splits)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((["a", "b"], ["c"], [1, 1]), "differ in length"),
        ((["a", ""], ["c", "d"], [1, 0]), r"pairs:2: empty or missing text_1"),
        ((["a", "b"], ["c", "d"], [1, "x"]), r"pairs:2: label 'x' is not a number"),
        ((["a", "b"], ["c", "d"], [1, float("nan")]), "pairs:2: label nan is not finite"),
        ((["a", "b"], None, None), "give text_1, text_2 and labels"),
    ],
)
def test_pairs_in_memory_are_checked_like_a_file(args: tuple, message: str) -> None:
    with pytest.raises(DataFormatError, match=message):
        pairs_dataset(*args)


def test_retrieval_dataset_matches_the_beir_files(tmp_path: Path) -> None:
    from embedlens.app.demo import demo_data_dir

    beir = read_beir(demo_data_dir())
    corpus = {
        d: {"title": t, "text": b}
        for d, t, b in zip(beir.corpus_ids, beir.corpus_titles, beir.corpus_bodies, strict=True)
    }
    judged = {
        split: [(beir.queries[q], d, g) for q, docs in beir.qrels[split].items() for d, g in docs.items()]
        for split in ("train", "test")
    }
    mem = retrieval_dataset(corpus, judged["train"], judged["test"])
    assert mem.corpus_ids == beir.corpus_ids and mem.corpus_texts == beir.corpus_texts
    assert mem.pseudo_queries()[0] == beir.pseudo_queries()[0]
    for split in ("train", "test"):
        _, texts = mem.split_queries(split)
        _, want = beir.split_queries(split)
        assert sorted(texts) == sorted(want)


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ([("q", "nope")], r"train judgement 1: document 'nope' is not in the corpus"),
        ([("q", 7)], r"train judgement 1: document position 7 is outside the corpus \(0..1\)"),
        ([("", "0")], "train judgement 1: the query must be a non-empty string"),
        ([("q", "0", 1.5)], "train judgement 1: the grade must be an integer"),
        (["q0"], r"train judgement 1: expected \(query text, doc id\)"),
    ],
)
def test_retrieval_judgements_are_checked(train: list, message: str) -> None:
    with pytest.raises(DataFormatError, match=message):
        retrieval_dataset(["doc zero", "doc one"], train)


def test_corpus_as_a_list_and_documents_by_position() -> None:
    ds = retrieval_dataset(["alpha text", "beta text"], [("find beta", 1), ("find alpha", "0")])
    assert ds.corpus_ids == ["0", "1"] and ds.qrels["train"] == {"train-q0": {"1": 1}, "train-q1": {"0": 1}}
    with pytest.raises(
        DataFormatError, match="document 0 is not in the corpus"
    ):  # positions: list corpora only
        retrieval_dataset({1: "apples", 2: "bananas"}, [("red fruit", 0)])
    assert retrieval_dataset({1: "apples"}, [("red fruit", 1, 2.0)]).qrels["train"] == {"train-q0": {"1": 2}}


def test_a_test_query_that_is_also_a_training_query_is_named_and_kept_apart() -> None:
    from embedlens import EmbedlensWarning

    with pytest.warns(EmbedlensWarning, match="1 test query is also a training query"):
        ds = retrieval_dataset(["a", "b"], train=[("same question", 0)], test=[("same question", 1)])
    assert ds.qrels["train"] == {"train-q0": {"0": 1}} and ds.qrels["test"] == {"test-q0": {"1": 1}}


def test_dataframe_splits_are_checked_like_a_file() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {"text_1": ["a", "b"], "text_2": ["c", "d"], "label": [1, 0], "split": ["train", None]}
    )
    with pytest.raises(DataFormatError, match="pairs:2: empty split"):
        pairs_dataset(frame)
    with pytest.raises(DataFormatError, match="give a DataFrame alone"):
        pairs_dataset(frame, split=["train", "test"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"text_1": None, "text_2": ["b"], "labels": [1]},
            r"pairs_dataset: text_1 must be a list of strings",
        ),
        (
            {"text_1": "ab", "text_2": ["b", "c"], "labels": [1, 1]},
            r"text_1 must be a list of strings.*got a str",
        ),
        ({"text_1": ["a"], "text_2": 5, "labels": [1]}, r"pairs_dataset: text_2 must be a list of strings"),
        ({"text_1": ["a"], "text_2": ["b"], "labels": 1}, r"pairs_dataset: labels must be a list of numbers"),
        (
            {"text_1": ["a"], "text_2": ["b"], "labels": "1"},
            r"pairs_dataset: labels must be a list of numbers",
        ),
        (
            {"text_1": ["a"], "text_2": ["b"], "labels": [1], "split": "train"},
            r"pairs_dataset: split must be",
        ),
        ({"text_1": ["a"], "text_2": ["b"], "labels": [1], "split": 3}, r"pairs_dataset: split must be"),
        ({"text_1": ["a"], "text_2": ["b"], "labels": [1], "name": None}, r"pairs_dataset: name must be"),
        ({"text_1": 7}, r"pairs_dataset: text_1 must be a list of strings or a DataFrame"),
    ],
)
def test_pairs_dataset_arguments_are_checked_by_name(kwargs: dict, message: str) -> None:
    with pytest.raises(EmbedlensInputError, match=message):
        pairs_dataset(**kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (
            (None, [("q", 0)]),
            {},
            r"retrieval_dataset: corpus must be a mapping .* or a list of texts, got None",
        ),
        (("some text", [("q", 0)]), {}, r"retrieval_dataset: corpus must be .*got a str"),
        ((42, [("q", 0)]), {}, r"retrieval_dataset: corpus must be"),
        ((["a"], 5), {}, r"retrieval_dataset: train must be a list of judgements"),
        ((["a"], "q"), {}, r"retrieval_dataset: train must be a list of judgements.*got a str"),
        ((["a"], [("q", 0)], 5), {}, r"retrieval_dataset: test must be a list of judgements"),
        ((["a"], [5]), {}, r"train judgement 1: expected \(query text, doc id\)"),
        ((["a"], [("q", 0)]), {"name": 3}, r"retrieval_dataset: name must be"),
        (({"d": {"title": ["x"], "text": "y"}}, [("q", "d")]), {}, r"document 'd': title must be a string"),
        (({"d": {"text": {"k": "v"}}}, [("q", "d")]), {}, r"document 'd': text must be a string"),
    ],
)
def test_retrieval_dataset_arguments_are_checked_by_name(args: tuple, kwargs: dict, message: str) -> None:
    with pytest.raises(EmbedlensInputError, match=message):
        retrieval_dataset(*args, **kwargs)


def test_pandas_series_are_lists_not_a_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    ds = pairs_dataset(pd.Series(["a", "b"]), pd.Series(["c", "d"]), pd.Series([1, 0]))
    assert ds.text_1 == ["a", "b"] and ds.labels.tolist() == [1.0, -1.0]


def test_retrieval_dataset_without_training_judgements_is_for_evaluation() -> None:
    ds = retrieval_dataset(["a", "b"], None, [("q", 1)])
    assert ds.qrels == {"test": {"test-q0": {"1": 1}}}


def test_a_base_that_already_applies_a_lens_is_refused_and_our_own_wrapper_unwrapped() -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    from embedlens import Lens
    from embedlens.adapters.langchain import EmbedderEmbeddings, LensEmbeddings

    with pytest.raises(TypeError, match="already applies a lens"):
        as_embedder(LensEmbeddings(DeterministicFakeEmbedding(size=4), Lens.identity(4)))
    inner = HashEmbedder()
    assert as_embedder(EmbedderEmbeddings(inner)) is inner


def test_train_and_evaluate_in_memory_retrieval_with_a_langchain_base() -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    corpus = {f"d{i}": f"document number {i} about topic {i % 7}" for i in range(60)}
    train = [(f"what is in doc {i}", f"d{i}") for i in range(0, 45)]
    test = [(f"tell me about doc {i}", f"d{i}") for i in range(45, 60)]
    data = retrieval_dataset(corpus, train, test)
    base = DeterministicFakeEmbedding(size=16)
    out = train_lens(data, base, FAST)  # a LangChain Embeddings, wrapped and cached
    assert out.lens.metadata["base_model"] == "langchain:DeterministicFakeEmbedding"
    assert out.lens.metadata["data"]["source"] == "retrieval data"
    report = evaluate_lens(data, out.lens, base).to_json()
    assert report["info"]["queries"] == 15 and "unseen" in report["groups"]


def test_train_from_pairs_lists_with_an_embedlens_embedder_and_a_lens_path(tmp_path: Path) -> None:
    rows = _pairs_rows(60)
    t1, t2, y, s = (list(c) for c in zip(*rows, strict=True))
    data = pairs_dataset(t1, t2, y, split=s)
    emb = open_embedder(base=HashEmbedder(), no_cache=True)
    lens_dir = train_lens(data, emb, FAST).lens.save(tmp_path / "lens")
    report = evaluate_lens(data, lens_dir, emb).to_json()  # the lens given as its directory
    assert report["task"] == "pairs" and report["info"]["split"]["method"] == "split column"


def test_a_chroma_function_is_a_base_model() -> None:
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

    class Fn(EmbeddingFunction[Documents]):
        def __init__(self) -> None:
            pass

        def __call__(self, input: Documents) -> Embeddings:
            return [np.full(4, len(t), dtype=np.float32) for t in input]

        @staticmethod
        def name() -> str:
            return "fixed-test"

        def get_config(self) -> dict:
            return {"model_name": "fixed"}

    emb = as_embedder(Fn())
    assert type(emb).__name__ == "ChromaEmbedder" and emb.embed(["abc"]).tolist() == [[3.0] * 4]


def test_anything_else_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="cannot use a dict as a base model"):
        as_embedder({"not": "a model"})
    with pytest.raises(TypeError, match="data must be a path, a BeirDataset"):
        train_lens(12345, HashEmbedder(), FAST)  # type: ignore[arg-type]
