from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embedlens import DataFormatError, read_beir, read_pairs
from embedlens.datasets import split_pairs_by_text
from tests.conftest import write_beir


def _csv(tmp_path: Path, text: str, name: str = "pairs.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_pairs_csv_binary_01_mapped(tmp_path: Path) -> None:
    ds = read_pairs(_csv(tmp_path, "text_1,text_2,label\na,b,1\nc,d,0\n"))
    assert ds.kind == "binary" and ds.labels.tolist() == [1.0, -1.0] and ds.splits is None


def test_pairs_graded_and_split(tmp_path: Path) -> None:
    ds = read_pairs(_csv(tmp_path, "text_1,text_2,label,split\na,b,0.2,train\nc,d,0.9,test\n"))
    assert ds.kind == "graded" and ds.split("test").text_1 == ["c"]


def test_pairs_jsonl(tmp_path: Path) -> None:
    p = tmp_path / "p.jsonl"
    p.write_text(
        json.dumps({"text_1": "a", "text_2": "b", "label": -1})
        + "\n\n"
        + json.dumps({"text_1": "c", "text_2": "d", "label": 1})
        + "\n"
    )
    assert read_pairs(p).labels.tolist() == [-1.0, 1.0]


def test_snli_layout(tmp_path: Path) -> None:
    ds = read_pairs(
        _csv(tmp_path, "gold_label,sentence1,sentence2\nentailment,a,b\nneutral,a,c\ncontradiction,a,d\n")
    )
    assert ds.labels.tolist() == [1.0, -1.0] and ds.text_2 == ["b", "d"]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("text_1,text_2,label\na,b,1\nc,,1\n", r"pairs.csv:3: empty or missing text_2"),
        ("text_1,text_2,label\na,b,yes\n", r"pairs.csv:2: label 'yes' is not a number"),
        ("text_1,text_2\na,b\n", r"pairs.csv:1: missing column\(s\) \['label'\]"),  # the header line
        ("text_1,text_2,label\na,b,1,extra\n", r"pairs.csv:2: more fields"),
    ],
)
def test_pairs_errors_name_file_and_line(tmp_path: Path, content: str, match: str) -> None:
    with pytest.raises(DataFormatError, match=match):
        read_pairs(_csv(tmp_path, content))


def test_pairs_bad_jsonl_line(tmp_path: Path) -> None:
    p = tmp_path / "p.jsonl"
    p.write_text('{"text_1": "a", "text_2": "b", "label": 1}\n{oops\n')
    with pytest.raises(DataFormatError, match=r"p.jsonl:2: invalid JSON"):
        read_pairs(p)


def test_missing_pairs_file(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="nope.csv: pairs file not found"):
        read_pairs(tmp_path / "nope.csv")


def test_beir_reads(tiny_beir: Path) -> None:
    ds = read_beir(tiny_beir)
    assert len(ds.corpus_ids) == 12 and ds.corpus_texts[0] == "topic 0 alpha0 beta0 gamma0"
    ids, texts = ds.split_queries("test")
    assert ids[0] == "q0b" and texts[0] == "what about alpha0 b"


@pytest.mark.parametrize(
    ("corpus", "queries", "qrels", "match"),
    [
        (
            [{"_id": "d1", "text": "x"}, {"_id": "d1", "text": "y"}],
            [{"_id": "q", "text": "t"}],
            [],
            r"corpus.jsonl:2: duplicate _id 'd1'",
        ),
        (
            [{"_id": "d1", "title": "", "text": " "}],
            [{"_id": "q", "text": "t"}],
            [],
            r"corpus.jsonl:1: document 'd1' has empty",
        ),
        ([{"text": "x"}], [{"_id": "q", "text": "t"}], [], r"corpus.jsonl:1: missing '_id'"),
        (
            [{"_id": "d1", "text": "x"}],
            [{"_id": "q", "text": ""}],
            [],
            r"queries.jsonl:1: query 'q' has empty text",
        ),
        (
            [{"_id": "d1", "text": "x"}],
            [{"_id": "q", "text": "t"}],
            [("q", "d9", 1)],
            r"train.tsv:2: corpus id 'd9' is not in corpus.jsonl",
        ),
        (
            [{"_id": "d1", "text": "x"}],
            [{"_id": "q", "text": "t"}],
            [("zz", "d1", 1)],
            r"train.tsv:2: query id 'zz' is not in queries.jsonl",
        ),
    ],
)
def test_beir_errors_name_file_and_line(
    tmp_path: Path, corpus: list, queries: list, qrels: list, match: str
) -> None:
    root = write_beir(tmp_path / "b", corpus, queries, {"train": qrels})
    with pytest.raises(DataFormatError, match=match):
        read_beir(root)


def test_beir_malformed_qrels_row(tmp_path: Path) -> None:
    root = write_beir(
        tmp_path / "b", [{"_id": "d1", "text": "x"}], [{"_id": "q", "text": "t"}], {"train": []}
    )
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq d1 1\n")
    with pytest.raises(DataFormatError, match=r"train.tsv:2: expected 3 tab-separated fields"):
        read_beir(root)


def test_split_by_text_keeps_texts_on_one_side(tmp_path: Path) -> None:
    rows = ["text_1,text_2,label"]
    rng = np.random.default_rng(0)
    for i in range(200):
        premise = f"p{i // 3}"  # premises repeat, like SNLI
        rows.append(f"{premise},h{i},{1 if rng.random() < 0.5 else -1}")
    ds = read_pairs(_csv(tmp_path, "\n".join(rows) + "\n"))
    tr, te = split_pairs_by_text(ds, test_fraction=0.5, seed=0)
    train_texts = {t for i in np.flatnonzero(tr) for t in (ds.text_1[i], ds.text_2[i])}
    test_texts = {t for i in np.flatnonzero(te) for t in (ds.text_1[i], ds.text_2[i])}
    assert not train_texts & test_texts
    assert 0.4 < te.mean() < 0.6
    pos = ds.labels > 0
    assert abs(pos[te].mean() - pos[tr].mean()) < 0.1  # stratified


@pytest.mark.parametrize(
    ("labels", "kind", "mapped"),
    [
        ([1, -1, 1], "binary", [1, -1, 1]),
        ([1, 0, 1], "binary", [1, -1, 1]),
        ([0.0, 0.5, 1.0], "graded", [0.0, 0.5, 1.0]),
        ([-1, 0, 0.5, 1], "graded", [-1.0, 0.0, 0.5, 1.0]),  # a fourth level: graded, nothing ambiguous
    ],
)
def test_pairs_label_rules(tmp_path: Path, labels: list[float], kind: str, mapped: list[float]) -> None:
    rows = "".join(f"a{i},b{i},{y}\n" for i, y in enumerate(labels))
    ds = read_pairs(_csv(tmp_path, "text_1,text_2,label\n" + rows))
    assert ds.kind == kind and ds.labels.tolist() == mapped


@pytest.mark.parametrize("labels", [[1, 0, -1], [-1, 0, 0], [-1.0, 0.0, 1.0, 1.0]])
def test_pairs_labels_mixing_the_two_binary_conventions_are_refused(
    tmp_path: Path, labels: list[float]
) -> None:
    rows = "".join(f"a{i},b{i},{y}\n" for i, y in enumerate(labels))
    want = "{-1, 0, 1}" if 1 in labels else "{-1, 0}"
    with pytest.raises(DataFormatError, match=r"pairs.csv:\d+: labels are .*ambiguous.*0 could mean") as e:
        read_pairs(_csv(tmp_path, "text_1,text_2,label\n" + rows))
    msg = str(e.value)
    assert want in msg and "\n" not in msg
    assert f"pairs.csv:{2 + [float(y) for y in labels].index(0.0)}:" in msg  # the first 0 label


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ('text_1,text_2,label\na,b,1\n"c,d,1\ne,f,1\n', 3),
        ('text_1,text_2,label\na,b,1\nc,"d,1\ne,f,1', 3),  # no final newline
        (
            'text_1,text_2,label\r\na,"multi\r\nline",1\r\nc,d,1\r\ne,"f,1\r\ng,h,1\r\n',
            5,
        ),  # CRLF, a good quote first
        ('"text_1,text_2,label\na,b,1\n', 1),  # in the header
    ],
)
def test_unterminated_csv_quote(tmp_path: Path, content: str, line: int) -> None:
    p = tmp_path / "pairs.csv"
    p.write_bytes(content.encode())
    with pytest.raises(DataFormatError, match=rf"pairs.csv:{line}: unterminated quoted field"):
        read_pairs(p)


def test_quoted_fields_with_newlines_and_quotes_read(tmp_path: Path) -> None:
    p = tmp_path / "pairs.csv"
    p.write_bytes(b'text_1,text_2,label\n"two\nlines","say ""hi""",1\nc,"d",0\n')
    ds = read_pairs(p)
    assert ds.text_1 == ["two\nlines", "c"] and ds.text_2 == ['say "hi"', "d"]
