"""`project` on Parquet and .npy, locally: rows, ids and every other column kept; bad input named; atomic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from embedlens.app.cli import main as cli  # noqa: E402
from embedlens.errors import EmbedlensInputError  # noqa: E402
from embedlens.lens import Lens, load_lens  # noqa: E402
from embedlens.project import project_vectors  # noqa: E402
from embedlens.vector_files import MANIFEST  # noqa: E402

D = 8


def _table(x: np.ndarray, ids: list[str], *, fixed: bool = True, first: int = 0) -> pa.Table:
    n = len(x)
    flat = pa.array(x.astype(np.float32).ravel())
    vec = (
        pa.FixedSizeListArray.from_arrays(flat, D)
        if fixed
        else pa.ListArray.from_arrays(pa.array(np.arange(0, n * D + 1, D, dtype=np.int32)), flat)
    )
    return pa.table(
        {"id": ids, "vector": vec, "title": [f"title {i}" for i in ids], "year": np.arange(first, first + n)}
    )


def _read(path: Path) -> pa.Table:
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix == ".parquet")
    return pa.concat_tables([pq.read_table(f) for f in files])


def _vectors(table: pa.Table) -> np.ndarray:
    return np.asarray(table.column("vector").combine_chunks().flatten()).reshape(len(table), -1)


@pytest.fixture
def data(tmp_path: Path) -> dict[str, object]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((700, D)).astype(np.float32)
    ids = [f"doc-{i}" for i in range(len(x))]
    (tmp_path / "in").mkdir()
    for k, (lo, hi) in enumerate([(0, 250), (250, 251), (251, 700)]):
        pq.write_table(_table(x[lo:hi], ids[lo:hi], first=lo), tmp_path / "in" / f"f{k}.parquet")
    pq.write_table(_table(x, ids, fixed=False), tmp_path / "list.parquet")
    np.save(tmp_path / "x.npy", x)
    w = np.linalg.qr(rng.standard_normal((D, D)))[0][:, :5].astype(np.float32)
    lens = Lens(w, mode="symmetric").save(tmp_path / "lens")
    return {"x": x, "ids": ids, "lens": load_lens(lens), "root": tmp_path}


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ("in", "out"),
        ("in", "out.parquet"),
        ("in", "out.npy"),
        ("list.parquet", "out"),
        ("x.npy", "out"),
        ("x.npy", "out.parquet"),
    ],
)
def test_every_row_id_and_column_survives(data: dict, src: str, dst: str) -> None:
    root, lens, x = data["root"], data["lens"], data["x"]
    out = project_vectors(root / src, root / dst, lens, batch_size=97, progress=False)
    expected = lens.project_documents(x)
    if dst.endswith(".npy"):
        got = np.load(out)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-6)
        return
    table = _read(out)
    np.testing.assert_allclose(_vectors(table), expected, atol=1e-6)
    if src == "x.npy":
        assert table.column("id").to_pylist() == list(range(len(x)))  # ids are row numbers
        assert table.column_names == ["id", "vector"]
    else:
        assert table.column("id").to_pylist() == data["ids"]
        assert table.column("title").to_pylist() == [f"title {i}" for i in data["ids"]]
        assert table.column("year").to_pylist() == list(range(len(x)))
        kind = pa.types.is_fixed_size_list(table.schema.field("vector").type)
        assert kind == (src != "list.parquet")  # the vector column keeps its kind, now float32
    assert table.schema.field("vector").type.value_type == pa.float32()
    if out.is_dir():
        manifest = json.loads((out / MANIFEST).read_text())
        assert manifest["rows"] == len(x) and manifest["engine"] == "local"


def _bad_file(root: Path, mutate: str) -> Path:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, D)).astype(np.float32)
    ids = [f"b{i}" for i in range(20)]
    bad = root / "bad"
    bad.mkdir()
    pq.write_table(_table(x, ids), bad / "a.parquet")
    if mutate == "nan":
        x[13, 2] = np.nan
        table = _table(x, ids)
    elif mutate == "null":
        vec = pa.array(
            [list(map(float, r)) if i != 13 else None for i, r in enumerate(x)], pa.list_(pa.float32())
        )
        table = pa.table({"id": ids, "vector": vec, "title": ids, "year": np.arange(20)})
    else:  # a short vector
        rows = [list(map(float, r)) for r in x]
        rows[13] = rows[13][:3]
        vec = pa.array(rows, pa.list_(pa.float32()))
        table = pa.table({"id": ids, "vector": vec, "title": ids, "year": np.arange(20)})
    if mutate != "nan":  # one schema for the directory: the first file in the same list type
        pq.write_table(
            pa.table(
                {
                    "id": ids,
                    "vector": pa.array([list(map(float, r)) for r in x], pa.list_(pa.float32())),
                    "title": ids,
                    "year": np.arange(20),
                }
            ),
            bad / "a.parquet",
        )
    pq.write_table(table, bad / "b.parquet")
    return bad


@pytest.mark.parametrize(("mutate", "words"), [("nan", "NaN"), ("null", "null"), ("short", "3 values")])
def test_a_bad_vector_is_named_by_file_row_and_id_and_nothing_is_written(
    data: dict, mutate: str, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = data["root"]
    bad = _bad_file(root, mutate)
    out = root / "o"
    rc = cli(["project", "--lens", str(root / "lens"), "--input", str(bad), "--output", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert str(bad / "b.parquet") in err and "row 13" in err and words in err
    if mutate != "nan":
        assert "'b13'" in err
    assert not out.exists() and not [p for p in root.iterdir() if p.name.startswith(".o.")]


def test_options_and_inputs_are_refused_before_any_work(
    data: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    root = data["root"]
    lens = str(root / "lens")
    base = ["project", "--lens", lens, "--input", str(root / "in"), "--quiet"]
    cases = [
        ([*base, "--output", str(root / "o"), "--id-column", "key"], "no column 'key'"),
        ([*base, "--output", str(root / "o"), "--vector-column", "title"], "has type string"),
        ([*base, "--output", str(root / "o.npy"), "--engine", "ray"], "directory of Parquet files"),
        ([*base, "--output", str(root / "o"), "--ray-address", "127.0.0.1:1"], "only used with --engine ray"),
        ([*base, "--output", str(root / "o"), "--engine", "ray", "--ray-address", "x y"], "--ray-address"),
        ([*base, "--output", str(root / "in")], "--output"),  # the input directory itself
    ]
    for argv, words in cases:
        assert cli(argv) == 2, argv
        err = capsys.readouterr().err
        assert words in err, (argv, err)
    assert not (root / "o").exists()
    mixed = root / "mixed"
    mixed.mkdir()
    pq.write_table(_table(data["x"][:5], data["ids"][:5]), mixed / "a.parquet")
    pq.write_table(_table(data["x"][:5], data["ids"][:5], fixed=False), mixed / "b.parquet")
    with pytest.raises(EmbedlensInputError, match="schema differs"):
        project_vectors(mixed, root / "o", data["lens"], progress=False)


def test_only_an_earlier_output_of_ours_is_replaced(data: dict) -> None:
    root, lens = data["root"], data["lens"]
    out = project_vectors(root / "in", root / "out", lens, progress=False)
    with pytest.raises(EmbedlensInputError, match="pass --force"):
        project_vectors(root / "in", out, lens, progress=False)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(EmbedlensInputError, match="notes.txt"):
        project_vectors(root / "in", out, lens, progress=False, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
    foreign = root / "theirs.parquet"
    pq.write_table(pa.table({"a": [1]}), foreign)
    with pytest.raises(EmbedlensInputError, match="did not write"):
        project_vectors(root / "in", foreign, lens, progress=False, overwrite=True)
    assert pq.read_table(foreign).column_names == ["a"]
    again = project_vectors(root / "in", root / "out.parquet", lens, progress=False)
    project_vectors(root / "x.npy", again, lens, progress=False, overwrite=True)  # ours: replaced
    assert _read(again).column("id").to_pylist()[:2] == [0, 1]


def test_the_local_engine_never_imports_ray(data: dict) -> None:
    root = data["root"]
    code = (
        "import sys\nfrom embedlens.app.cli import main\n"
        f"rc = main(['project', '--lens', {str(root / 'lens')!r}, '--input', {str(root / 'in')!r}, "
        f"'--output', {str(root / 'o')!r}, '--quiet'])\n"
        "print(rc, 'ray' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1].split() == ["0", "False"]


def test_without_ray_the_error_names_the_extra(data: dict) -> None:
    root = data["root"]
    code = (
        "import sys\nsys.modules['ray'] = None  # as if not installed\n"
        "from embedlens.app.cli import main\n"
        f"sys.exit(main(['project', '--lens', {str(root / 'lens')!r}, '--input', {str(root / 'in')!r}, "
        f"'--output', {str(root / 'o')!r}, '--engine', 'ray']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert out.returncode == 2 and "embedlens[ray]" in out.stderr and "Traceback" not in out.stderr
    assert not (root / "o").exists()


def test_embed_adds_a_vector_column_and_names_a_bad_text(tmp_path: Path, hash_embedder: Any) -> None:
    from embedlens.embed_table import embed_table

    texts = [f"text number {i}" for i in range(30)]
    src = tmp_path / "docs"
    src.mkdir()
    pq.write_table(pa.table({"id": [f"d{i}" for i in range(20)], "text": texts[:20]}), src / "a.parquet")
    pq.write_table(pa.table({"id": [f"d{i}" for i in range(20, 30)], "text": texts[20:]}), src / "b.parquet")
    out = embed_table(src, tmp_path / "out", embedder=hash_embedder, text_column="text", progress=False)
    table = _read(out)
    assert table.column_names == ["id", "text", "vector"] and table.column("text").to_pylist() == texts
    np.testing.assert_allclose(_vectors(table), hash_embedder.embed(texts), atol=1e-6)
    with pytest.raises(EmbedlensInputError, match="already has a column 'vector'"):
        embed_table(out, tmp_path / "again.parquet", embedder=hash_embedder, progress=False)
    pq.write_table(pa.table({"id": ["x", "y"], "text": ["fine", None]}), src / "c.parquet")
    with pytest.raises(EmbedlensInputError, match=r"c\.parquet: row 1 \(0-based\) has a null 'text'"):
        embed_table(src, tmp_path / "bad", embedder=hash_embedder, progress=False)
    assert not (tmp_path / "bad").exists()


def test_edge_inputs_and_outputs(data: dict, capsys: pytest.CaptureFixture[str]) -> None:
    """An empty output directory is fine; zero rows, a FIFO and a file as the output's parent are refused."""
    root, lens, x = data["root"], data["lens"], data["x"]
    (root / "empty").mkdir()
    assert project_vectors(root / "in", root / "empty", lens, progress=False) == root / "empty"
    assert (root / "empty" / MANIFEST).is_file()
    np.save(root / "none.npy", np.zeros((0, D), np.float32))
    with pytest.raises(EmbedlensInputError, match="holds no rows"):
        project_vectors(root / "none.npy", root / "o.parquet", lens, progress=False)
    out = project_vectors(
        root / "x.npy", root / "named.parquet", lens, id_column="key", vector_column="emb", progress=False
    )
    assert pq.read_schema(out).names == ["key", "emb"]  # the names given, for a .npy input too
    odd = root / "odd"
    odd.mkdir()
    pq.write_table(_table(x[:5], data["ids"][:5]), odd / "A.PARQUET")  # any case
    pq.write_table(_table(x[5:9], data["ids"][5:9], first=5), odd / "b.parquet")
    assert _read(project_vectors(odd, root / "odd_out", lens, progress=False)).num_rows == 9
    os.mkfifo(odd / "c.parquet")
    with pytest.raises(EmbedlensInputError, match="not a regular file"):
        project_vectors(odd, root / "o2", lens, progress=False)
    (root / "afile").write_text("x")
    argv = ["project", "--lens", str(root / "lens"), "--input", str(root / "in"), "--output"]
    assert cli([*argv, str(root / "afile" / "o.parquet"), "--quiet"]) == 2
    assert "afile is not a directory" in capsys.readouterr().err
