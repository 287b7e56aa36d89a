"""Every bad input exits 2 with one line naming the file (and line) or the option, before any model loads.

The CLI tests replace ``embedlens.app.cli._embedder`` with one that fails the test if it is called (the model
must not load before the data and options are checked) or with the fast hashing embedder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedlens.app import cli
from embedlens.app.cli import build_parser, main
from embedlens.datasets import read_beir, read_pairs
from embedlens.errors import DataFormatError, EmbedlensInputError
from embedlens.lens import Lens
from tests.conftest import HashEmbedder, write_beir

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("embedlens: error:"), err
    return err[0]


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the model now fails the command (exit 1): every check below must come first."""

    def boom(*args: object, **kwargs: object) -> Any:
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(cli, "_embedder", boom)


@pytest.fixture
def hash_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from embedlens.cache import open_embedder

    monkeypatch.setattr(
        cli, "_embedder", lambda args, model: open_embedder(base=HashEmbedder(dim=16), no_cache=True)
    )


def _pairs_rows(n: int = 24) -> list[tuple[str, str, int]]:
    topics = ["password reset", "refund request", "dark mode", "export csv", "invite users", "delete account"]
    return [(f"how do I {topics[i % 6]} {i}", f"{topics[i % 6]} article {i}", 1) for i in range(n)]


@pytest.fixture
def good_pairs(tmp_path: Path) -> Path:
    p = tmp_path / "good.csv"
    p.write_text("text_1,text_2,label\n" + "".join(f"{a},{b},{y}\n" for a, b, y in _pairs_rows()))
    return p


def _train(data: Path, tmp_path: Path, *extra: str) -> int:
    return main(["train", "--data", str(data), "--out", str(tmp_path / "lens"), "--no-cache", *extra])


# --------------------------------------------------------------------------- data files
def test_latin1_csv_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_model: None
) -> None:
    p = tmp_path / "latin.csv"
    p.write_bytes(b"text_1,text_2,label\nfine,ok,1\ncaf\xe9 au lait,coffee,1\n")
    assert _train(p, tmp_path) == 2
    line = _one_line_error(capsys)
    assert f"{p}:3" in line and "not UTF-8" in line


def test_binary_csv_names_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], no_model: None) -> None:
    p = tmp_path / "image.csv"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    assert _train(p, tmp_path) == 2
    line = _one_line_error(capsys)
    assert f"{p}:1" in line and "not UTF-8" in line
    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"text_1,text_2,label\na\x00b,c,1\n")
    assert _train(nul, tmp_path) == 2
    assert f"{nul}:2" in _one_line_error(capsys)


def test_bad_utf8_line_found_across_chunks(tmp_path: Path) -> None:
    p = tmp_path / "long.csv"
    body = "text_1,text_2,label\n" + ("é" * 999 + ",x,1\n") * 1200  # 2.4 MB: "é" straddles chunk ends
    p.write_bytes(body.encode() + b"bad\xff,x,1\n")
    with pytest.raises(DataFormatError, match=r"long.csv:1202: not UTF-8"):
        read_pairs(p)


def test_csv_field_over_131072_chars_reads_like_jsonl(tmp_path: Path) -> None:
    long = "word " * 30_000  # 150,000 characters
    csv_path, jsonl_path = tmp_path / "p.csv", tmp_path / "p.jsonl"
    csv_path.write_text(f"text_1,text_2,label\n{long},short,1\nother,thing,0\n")
    jsonl_path.write_text(
        json.dumps({"text_1": long, "text_2": "short", "label": 1})
        + "\n"
        + json.dumps({"text_1": "other", "text_2": "thing", "label": 0})
        + "\n"
    )
    a, b = read_pairs(csv_path), read_pairs(jsonl_path)
    assert a.text_1 == b.text_1 and a.text_2 == b.text_2 and len(a.text_1[0]) == 150_000
    np.testing.assert_array_equal(a.labels, b.labels)


def test_utf8_bom_csv_excel(tmp_path: Path) -> None:
    p = tmp_path / "excel.csv"
    p.write_bytes(b"\xef\xbb\xbftext_1,text_2,label\r\nfirst,second,1\r\nthird,fourth,0\r\n")
    ds = read_pairs(p)
    assert ds.text_1 == ["first", "third"] and ds.labels.tolist() == [1.0, -1.0]
    j = tmp_path / "bom.jsonl"
    j.write_bytes(b"\xef\xbb\xbf" + json.dumps({"text_1": "a", "text_2": "b", "label": 1}).encode() + b"\n")
    assert read_pairs(j).text_1 == ["a"]


def _beir(tmp_path: Path, train_rows: list[tuple[str, str, Any]]) -> Path:
    corpus = [{"_id": f"d{i}", "title": f"t{i}", "text": f"alpha{i} beta{i}"} for i in range(6)]
    queries = [{"_id": f"q{i}", "text": f"about alpha{i}"} for i in range(6)]
    return write_beir(tmp_path / "beir", corpus, queries, {"train": train_rows})  # type: ignore[arg-type]


@pytest.mark.parametrize("score", ["inf", "nan", "-inf", "Infinity"])
def test_non_finite_qrels_score_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_model: None, score: str
) -> None:
    root = _beir(tmp_path, [("q0", "d0", 1), ("q1", "d1", score), ("q2", "d2", 1)])
    assert _train(root, tmp_path) == 2
    line = _one_line_error(capsys)
    assert f"{root / 'qrels' / 'train.tsv'}:3" in line and "finite" in line


def test_header_only_qrels(tmp_path: Path, capsys: pytest.CaptureFixture[str], no_model: None) -> None:
    root = _beir(tmp_path, [])
    with pytest.raises(DataFormatError, match="train.tsv: no judgement"):
        read_beir(root).split_queries("train")
    assert _train(root, tmp_path) == 2
    assert f"{root / 'qrels' / 'train.tsv'}: no judgement" in _one_line_error(capsys)


def test_all_zero_qrels(tmp_path: Path, capsys: pytest.CaptureFixture[str], no_model: None) -> None:
    root = _beir(tmp_path, [(f"q{i}", f"d{i}", 0) for i in range(6)])
    with pytest.raises(DataFormatError, match="train.tsv: no positive judgement"):
        read_beir(root).split_queries("train")
    assert _train(root, tmp_path) == 2
    assert f"{root / 'qrels' / 'train.tsv'}: no positive judgement" in _one_line_error(capsys)


def test_too_few_pairs_fail_before_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_model: None
) -> None:
    p = tmp_path / "two.csv"
    p.write_text("text_1,text_2,label\na b,c d,1\ne f,g h,0\n")
    assert _train(p, tmp_path) == 2
    line = _one_line_error(capsys)
    assert str(p) in line and "too few" in line


# --------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("opt", "value"),
    [
        ("--lr", "nan"),
        ("--lr", "-1"),
        ("--lr", "inf"),
        ("--dim", "0"),
        ("--dim", "abc"),
        ("--batch-size", "0"),
        ("--batch-size", "-3"),
        ("--max-steps", "-1"),
        ("--max-steps", "0"),
        ("--temperature", "0"),
        ("--seed", "-1"),
        ("--model", "openai:text-embedding-3-small@abc"),
        ("--model", "openai:text-embedding-3-small@0"),
    ],
)
def test_bad_train_option_one_line_exit_2(
    tmp_path: Path,
    good_pairs: Path,
    capsys: pytest.CaptureFixture[str],
    no_model: None,
    opt: str,
    value: str,
) -> None:
    assert _train(good_pairs, tmp_path, opt, value) == 2
    line = _one_line_error(capsys)
    assert opt in line and value in line


@pytest.mark.parametrize("command", ["project", "reproject"])
def test_bad_batch_size_other_commands(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = {
        "project": ["project", "--lens", "L", "--input", "x.npy", "--output", "y.npy"],
        "reproject": ["reproject", "--path", "db", "--source", "a", "--target", "b", "--lens", "L"],
    }[command]
    assert main([*args, "--batch-size", "-1"]) == 2
    assert "--batch-size" in _one_line_error(capsys)


def test_usage_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--out", "x"]) == 2
    assert "--data" in _one_line_error(capsys)


def test_bad_openai_spec_python_api() -> None:
    from embedlens.embedders import get_embedder

    with pytest.raises(EmbedlensInputError, match="--model"):
        get_embedder("openai:text-embedding-3-small@abc")
    with pytest.raises(EmbedlensInputError, match="--model"):
        get_embedder("openai:@256")


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"lr": float("nan")}, "--lr"),
        ({"lr": -1.0}, "--lr"),
        ({"dim": 0}, "--dim"),
        ({"batch_size": 0}, "--batch-size"),
        ({"batch_size": -3}, "--batch-size"),
        ({"max_steps": -1}, "--max-steps"),
        ({"rank": 0}, "--rank"),
        ({"folds": 1}, "--folds"),
        ({"pseudo_queries": "bodies"}, "--pseudo-queries"),
        ({"wide_grid": "yes"}, "wide_grid"),
        ({"temperature": 0.0}, "--temperature"),
        ({"seed": -1}, "--seed"),
        ({"patience": 0}, "patience"),
        ({"reg": float("inf")}, "reg"),
        ({"loss": "hinge"}, "--loss"),
        ({"batch_size": True}, "--batch-size"),
    ],
)
def test_train_config_validates(kwargs: dict[str, Any], named: str) -> None:
    from embedlens.training import TrainConfig

    with pytest.raises(EmbedlensInputError, match=named):
        TrainConfig(**kwargs)
    ok = TrainConfig(lr=1e-3, batch_size=8, max_steps=1, dim=8)
    assert ok.mode == "symmetric"


def test_dim_above_model_dimension_names_dim(
    tmp_path: Path, good_pairs: Path, capsys: pytest.CaptureFixture[str], hash_model: None
) -> None:
    assert _train(good_pairs, tmp_path, "--dim", "32", "--quiet") == 2  # the hash model is 16-d
    line = _one_line_error(capsys)
    assert "--dim 32" in line and "16" in line
    assert not (tmp_path / "lens").exists()


# --------------------------------------------------------------------------- evaluate
@pytest.fixture
def lens_dir(tmp_path: Path) -> Path:
    return Lens.identity(16).save(tmp_path / "lens16")


def test_evaluate_checks_data_before_the_model(
    tmp_path: Path, lens_dir: Path, capsys: pytest.CaptureFixture[str], no_model: None
) -> None:
    p = tmp_path / "latin.csv"
    p.write_bytes(b"text_1,text_2,label\n\xe9,b,1\n")
    assert main(["evaluate", "--data", str(p), "--lens", str(lens_dir), "--no-cache"]) == 2
    assert f"{p}:2" in _one_line_error(capsys)


def test_evaluate_unknown_split_of_pairs_without_split_column(
    lens_dir: Path, good_pairs: Path, capsys: pytest.CaptureFixture[str], no_model: None
) -> None:
    rc = main(
        ["evaluate", "--data", str(good_pairs), "--lens", str(lens_dir), "--split", "dev", "--no-cache"]
    )
    assert rc == 2
    line = _one_line_error(capsys)
    assert str(good_pairs) in line and "'dev'" in line and "'train'" in line and "'test'" in line


def test_split_train_of_pairs_without_split_column_is_the_train_half(good_pairs: Path) -> None:
    from embedlens.datasets import pairs_train_test

    data = read_pairs(good_pairs)
    train, test_half, _ = pairs_train_test(data, "test")
    train2, asked, how = pairs_train_test(data, "train")
    assert asked.text_1 == train.text_1 == train2.text_1
    assert not set(asked.text_1) & set(test_half.text_1)
    assert how["test"] == "train"
    with pytest.raises(DataFormatError, match="'train' and 'test'"):
        pairs_train_test(data, "validation")


# --------------------------------------------------------------------------- quiet, timing
def test_every_subcommand_has_quiet() -> None:
    parser = build_parser()
    for argv in (
        ["train", "--data", "d", "--out", "o"],
        ["evaluate", "--data", "d", "--lens", "l"],
        ["info", "l"],
        ["demo"],
        ["project", "--lens", "l", "--input", "i.npy", "--output", "o.npy"],
        ["reproject", "--path", "p", "--source", "s", "--target", "t", "--lens", "l"],
    ):
        assert parser.parse_args([*argv, "--quiet"]).quiet is True, argv


def test_bad_data_fails_fast_without_loading_torch(tmp_path: Path) -> None:
    p = tmp_path / "latin.csv"
    p.write_bytes(b"text_1,text_2,label\n\xe9t\xe9,b,1\n")
    code = (
        "import sys, time\n"
        "from embedlens.app.cli import main\n"
        "t = time.perf_counter()\n"
        f"rc = main(['train', '--data', {str(p)!r}, '--out', {str(tmp_path / 'lens')!r}, '--no-cache'])\n"
        "took = time.perf_counter() - t\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]\n"
        "print(rc, round(took, 3), ','.join(heavy) or '-')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120)
    rc, took, heavy = proc.stdout.split()
    assert rc == "2" and heavy == "-", proc.stdout
    assert float(took) < 2.0
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and f"{p}:2" in err[0] and "not UTF-8" in err[0]


def test_quiet_prints_only_the_result(tmp_path: Path, good_pairs: Path) -> None:
    """The real model loads (its loaders draw progress bars): with --quiet, stdout is the result, stderr empty."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "embedlens.app.cli",
            "train",
            "--data",
            str(good_pairs),
            "--out",
            str(tmp_path / "lens"),
            "--no-cache",
            "--dry-run",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env={k: v for k, v in ENV.items() if k not in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS")},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    out = proc.stdout.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("to embed:"), out


@pytest.mark.parametrize("labels", ["0", "-1"])
def test_pairs_without_positive_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_model: None, labels: str
) -> None:
    p = tmp_path / "negatives.csv"
    p.write_text("text_1,text_2,label\n" + "".join(f"{a},{b},{labels}\n" for a, b, _ in _pairs_rows()))
    assert _train(p, tmp_path) == 2
    line = _one_line_error(capsys)
    assert str(p) in line and "no positive pair" in line


def test_graded_pairs_all_equal_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_model: None
) -> None:
    p = tmp_path / "flat.csv"
    p.write_text("text_1,text_2,label\n" + "".join(f"{a},{b},2.5\n" for a, b, _ in _pairs_rows()))
    assert _train(p, tmp_path) == 2
    assert "every label in split train" in _one_line_error(capsys)


# --------------------------------------------------------------------------- review finding 12: options first
@pytest.mark.parametrize(
    ("opt", "value"),
    [
        ("--seed", "99999999999999999999999"),
        ("--seed", "4294967296"),
        ("--lr", "1e308"),
        ("--lr", "11"),
        ("--temperature", "1e-300"),
        ("--temperature", "100"),
    ],
)
def test_extreme_train_options_refused_before_the_model(
    tmp_path: Path, good_pairs: Path, capsys: pytest.CaptureFixture[str], no_model: None, opt: str, value: str
) -> None:
    assert _train(good_pairs, tmp_path, opt, value) == 2
    line = _one_line_error(capsys)
    assert opt in line and value in line


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [({"seed": 2**32}, "--seed"), ({"lr": 1e308}, "--lr"), ({"temperature": 1e-300}, "--temperature")],
)
def test_train_config_bounds(kwargs: dict[str, Any], named: str) -> None:
    from embedlens.training import TrainConfig

    with pytest.raises(EmbedlensInputError, match=named):
        TrainConfig(**kwargs)
    TrainConfig(seed=2**32 - 1, lr=10.0, temperature=1e-3)  # the bounds themselves are fine


def test_diverged_training_names_the_options_not_the_vectors(tiny_beir: Path, good_pairs: Path) -> None:
    from embedlens.cache import open_embedder
    from embedlens.training import TrainConfig
    from embedlens.training.workflow import TrainingDivergedError, train_lens

    for data, named in ((tiny_beir, "--temperature"), (good_pairs, "--lr")):
        cfg = TrainConfig(progress=False, max_steps=2)
        cfg.lr = 1e308  # past validation (as an API user could): training itself must still be guarded
        emb = open_embedder(base=HashEmbedder(dim=16), no_cache=True)
        try:
            out = train_lens(data, emb, cfg)
        except TrainingDivergedError as e:
            assert "--lr" in str(e) and named in str(e) and "vectors" not in str(e)
        else:  # or it shipped a finite matrix (the start), never NaN
            assert np.isfinite(out.lens.weights).all()


@pytest.mark.parametrize("model", ["/nonexistent/path", "./no/such/model", "~/no-such-embedlens-model/x"])
def test_model_path_that_does_not_exist_refused_before_loading(
    tmp_path: Path,
    good_pairs: Path,
    lens_dir: Path,
    capsys: pytest.CaptureFixture[str],
    no_model: None,
    model: str,
) -> None:
    assert _train(good_pairs, tmp_path, "--model", model) == 2
    assert "--model" in _one_line_error(capsys)
    args = ["evaluate", "--data", str(good_pairs), "--lens", str(lens_dir), "--model", model, "--no-cache"]
    assert main(args) == 2
    assert "--model" in _one_line_error(capsys)


def test_dim_above_default_model_dimension_refused_before_loading(
    tmp_path: Path, good_pairs: Path, capsys: pytest.CaptureFixture[str], no_model: None
) -> None:
    assert _train(good_pairs, tmp_path, "--dim", "999") == 2
    line = _one_line_error(capsys)
    assert "--dim 999" in line and "384" in line


def test_dim_above_local_model_dimension_read_from_its_files(
    tmp_path: Path, good_pairs: Path, capsys: pytest.CaptureFixture[str], no_model: None
) -> None:
    model = tmp_path / "my-model"
    (model / "1_Pooling").mkdir(parents=True)
    (model / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        )
    )
    (model / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32}))
    assert _train(good_pairs, tmp_path, "--dim", "64", "--model", str(model)) == 2
    line = _one_line_error(capsys)
    assert "--dim 64" in line and "32" in line


# --------------------------------------------------------------------------- findings 13 and 14: --data
def test_symlink_loop_as_data(
    tmp_path: Path, lens_dir: Path, capsys: pytest.CaptureFixture[str], no_model: None
) -> None:
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    assert _train(tmp_path / "loop1", tmp_path) == 2
    assert "--data" in _one_line_error(capsys)
    assert main(["evaluate", "--data", str(tmp_path / "loop1"), "--lens", str(lens_dir), "--no-cache"]) == 2
    assert "--data" in _one_line_error(capsys)
    with pytest.raises(DataFormatError, match="loop1"):
        read_pairs(tmp_path / "loop1")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_and_device_as_data_are_not_regular_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_model: None
) -> None:
    fifo = tmp_path / "pairs.csv"
    os.mkfifo(fifo)
    for data in (fifo, Path("/dev/zero")):
        if not data.exists():
            continue
        assert _train(data, tmp_path) == 2
        assert "not a regular file" in _one_line_error(capsys)
        with pytest.raises(DataFormatError, match="not a regular file"):
            read_pairs(data)  # never opened: a FIFO would hang, /dev/zero never end
    with pytest.raises(DataFormatError, match="not a regular file"):
        read_pairs(tmp_path)  # a directory


@pytest.mark.parametrize("value", [123, ["a", "b"], {"t": "x"}, True])
def test_jsonl_text_must_be_a_string(tmp_path: Path, value: Any) -> None:
    p = tmp_path / "pairs.jsonl"
    rows = [
        {"text_1": "fine", "text_2": "also fine", "label": 1},
        {"text_1": value, "text_2": "b", "label": 1},
    ]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataFormatError, match=r"pairs.jsonl:2: text_1 must be a string"):
        read_pairs(p)


def test_upper_case_suffix_is_jsonl(tmp_path: Path) -> None:
    p = tmp_path / "data.JSONL"
    p.write_text(
        "".join(json.dumps({"text_1": a, "text_2": b, "label": y}) + "\n" for a, b, y in _pairs_rows(4))
    )
    assert len(read_pairs(p)) == 4


def test_missing_column_names_the_header_line(tmp_path: Path) -> None:
    p = tmp_path / "pairs.csv"
    p.write_text("text_1,text_2\na,b\nc,d\n")
    with pytest.raises(DataFormatError, match=r"pairs.csv:1: missing column"):
        read_pairs(p)


@pytest.mark.parametrize("score", ["0.5", "1.7"])
def test_fractional_qrels_score_refused(tmp_path: Path, score: str) -> None:
    root = _beir(tmp_path, [("q0", "d0", 1), ("q1", "d1", score)])
    with pytest.raises(DataFormatError, match=r"train.tsv:3: score .* not an integer"):
        read_beir(root)
    read_beir(_beir(tmp_path / "ok", [("q0", "d0", "2.0"), ("q1", "d1", 1)]))  # an integral float is fine


def test_pairs_with_only_a_train_split_trains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], hash_model: None
) -> None:
    p = tmp_path / "train_only.csv"
    p.write_text("text_1,text_2,label,split\n" + "".join(f"{a},{b},{y},train\n" for a, b, y in _pairs_rows()))
    assert _train(p, tmp_path, "--quiet", "--max-steps", "2") == 0, capsys.readouterr().err
    assert (tmp_path / "lens" / "lens.json").is_file()


def test_too_few_pairs_of_one_label_for_the_folds_exit_2_before_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_model: None
) -> None:
    """3 positive pairs cannot give each of 5 folds one: refused with the remedy, not "training diverged"."""
    rows = ["text_1,text_2,label"] + [f"q{i},d{i},{1 if i < 3 else 0},train" for i in range(40)]
    rows[0] += ",split"
    p = tmp_path / "fewpos.csv"
    p.write_text("\n".join(rows) + "\n")
    assert _train(p, tmp_path) == 2
    err = capsys.readouterr().err
    assert "only 3 positive pair(s)" in err and "--folds" in err and err.count("\n") == 1, err


def test_beir_queries_without_a_positive_judgement_do_not_count_for_the_folds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_model: None
) -> None:
    from tests.conftest import write_beir

    corpus = [{"_id": f"d{i}", "title": "", "text": f"doc {i}"} for i in range(6)]
    queries = [{"_id": f"q{i}", "text": f"query {i}"} for i in range(5)]
    qrels = {"train": [(f"q{i}", f"d{i}", 1 if i else 0) for i in range(5)]}
    data = write_beir(tmp_path / "beir", corpus, queries, qrels)
    assert _train(data, tmp_path) == 2
    err = capsys.readouterr().err
    assert "4 queries relevant to some document" in err and "--folds" in err, err
    assert _train(data, tmp_path, "--folds", "4") == 1  # with 4 folds every check passes: the model loads
    assert "the model was loaded" in capsys.readouterr().err


def test_dim_reduction_keeps_the_dimension_asked_with_fewer_texts_than_dimensions() -> None:
    import numpy as np

    from embedlens.training import initial_matrix

    x = np.random.default_rng(0).standard_normal((5, 12)).astype(np.float32)
    w = initial_matrix(x, 8)  # 5 texts, 8 dimensions asked
    assert w.shape == (12, 8)
    np.testing.assert_allclose(w.T @ w, np.eye(8), atol=1e-5)


# --------------------------------------------------------------------------- issue 25, item 9
@pytest.mark.parametrize(("field", "value"), [("title", ["a", "b"]), ("text", {"en": "x"}), ("title", 7)])
def test_beir_title_or_text_not_a_string_names_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_model: None, field: str, value: Any
) -> None:
    corpus: list[dict[str, Any]] = [{"_id": f"d{i}", "title": f"t{i}", "text": f"alpha{i}"} for i in range(6)]
    corpus[2][field] = value  # line 3 of corpus.jsonl
    queries = [{"_id": f"q{i}", "text": f"about alpha{i}"} for i in range(6)]
    root = write_beir(
        tmp_path / "beir", corpus, queries, {"train": [(f"q{i}", f"d{i}", 1) for i in range(6)]}
    )
    assert _train(root, tmp_path) == 2
    line = _one_line_error(capsys)
    assert f"{root / 'corpus.jsonl'}:3" in line and f"{field} must be a string" in line
    with pytest.raises(DataFormatError, match=rf"corpus.jsonl:3: {field} must be a string"):
        read_beir(root)


def test_beir_query_text_not_a_string_names_file_and_line(tmp_path: Path) -> None:
    corpus = [{"_id": "d0", "text": "alpha"}]
    queries = [{"_id": "q0", "text": "fine"}, {"_id": "q1", "text": ["a", "list"]}]
    root = write_beir(tmp_path / "beir", corpus, queries, {"train": [("q0", "d0", 1)]})
    with pytest.raises(DataFormatError, match=r"queries.jsonl:2: text must be a string, got a list"):
        read_beir(root)


def test_beir_null_or_missing_title_is_empty_as_before(tmp_path: Path) -> None:
    corpus = [
        {"_id": "d0", "title": None, "text": "alpha"},
        {"_id": "d1", "text": "beta"},
        {"_id": "d2", "title": "t"},
    ]
    root = write_beir(tmp_path / "beir", corpus, [{"_id": "q0", "text": "q"}], {"train": [("q0", "d0", 1)]})
    ds = read_beir(root)
    assert ds.corpus_texts == ["alpha", "beta", "t"] and ds.corpus_titles == ["", "", "t"]


def test_pairs_labels_minus_one_zero_one_are_ambiguous_and_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_model: None
) -> None:
    p = tmp_path / "pairs.csv"
    labels = [1, -1, 0]
    p.write_text(
        "text_1,text_2,label\n"
        + "".join(f"{a},{b},{labels[i % 3]}\n" for i, (a, b, _) in enumerate(_pairs_rows()))
    )
    assert _train(p, tmp_path) == 2
    line = _one_line_error(capsys)
    assert str(p) in line and "{-1, 0, 1}" in line and "ambiguous" in line
    with pytest.raises(DataFormatError, match=r"pairs.csv.*\{-1, 0, 1\}.*ambiguous"):
        read_pairs(p)


def test_unterminated_csv_quote_names_the_line_where_it_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_model: None
) -> None:
    p = tmp_path / "pairs.csv"
    rows = "".join(f"{a},{b},{y}\n" for a, b, y in _pairs_rows())
    p.write_text("text_1,text_2,label\n" + rows + '"never closed,b,1\n' + rows)  # the quote opens on line 26
    assert _train(p, tmp_path) == 2
    line = _one_line_error(capsys)
    assert f"{p}:26" in line and "unterminated quoted field" in line and "None" not in line
    with pytest.raises(DataFormatError, match=r"pairs.csv:26: unterminated quoted field"):
        read_pairs(p)


def test_info_of_a_lens_saved_through_the_api_shows_its_dimension(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Lens(np.eye(8, dtype=np.float32)).save(tmp_path / "lens")
    assert main(["info", str(tmp_path / "lens")]) == 0
    out = capsys.readouterr().out
    assert "None" not in out and "8-d" in out
