"""LensEmbeddingFunction against real Chroma: embedded PersistentClient and a real server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedlens import LensFormatError, load_lens
from embedlens.adapters.chroma import LensEmbeddingFunction
from embedlens.app.demo import demo_data_dir
from embedlens.datasets import read_beir
from embedlens.embedders.local import default_model_path

chromadb = pytest.importorskip("chromadb")


def base_ef() -> Any:
    from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction

    return SentenceTransformerEmbeddingFunction(model_name=str(default_model_path()))


@pytest.fixture(params=["persistent", "server"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "persistent":
        c = chromadb.PersistentClient(path=str(tmp_path / "db"))
        c._embedlens_reopen = ("persistent", str(tmp_path / "db"))
    else:
        host, port = request.getfixturevalue("chroma_server")
        c = chromadb.HttpClient(host=host, port=port)
        c._embedlens_reopen = ("server", f"{host}:{port}")
    return c


def _collection_name(request: pytest.FixtureRequest) -> str:
    return "c" + str(abs(hash(request.node.nodeid)) % 10**10)


def _expected_top(lens_dir: Path, docs: list[str], ids: list[str], query: str, k: int) -> list[str]:
    ef = base_ef()
    lens = load_lens(lens_dir)
    d = lens.project_documents(np.asarray(ef(docs)))
    q = lens.project_queries(np.asarray(ef([query])))[0]
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    return [ids[i] for i in np.argsort(-(d @ q))[:k]]


REOPEN = """
import json, sys
import chromadb
import embedlens.adapters.chroma  # registers the 'embedlens' embedding function
kind, where, name, query = sys.argv[1:5]
if kind == "persistent":
    client = chromadb.PersistentClient(path=where)
else:
    host, port = where.split(":")
    client = chromadb.HttpClient(host=host, port=int(port))
try:
    col = client.get_collection(name)  # no embedding function passed: rebuilt from the stored config
    res = col.query(query_texts=[query], n_results=5)
    print(json.dumps({"ids": res["ids"][0], "ef": type(col.configuration.get("embedding_function")).__name__}))
except Exception as e:
    print(json.dumps({"error": str(e)}))
"""


def reopen(client: Any, name: str, query: str) -> dict[str, Any]:
    kind, where = client._embedlens_reopen
    out = subprocess.run(
        [sys.executable, "-c", REOPEN, kind, where, name, query], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", ["symmetric", "query"])
def test_add_query_and_reopen_in_new_process(
    client: Any, lens_dirs: dict[str, Path], mode: str, request: pytest.FixtureRequest
) -> None:
    ds = read_beir(demo_data_dir())
    name = _collection_name(request)
    ef = LensEmbeddingFunction(base_ef(), lens_dirs[mode])
    col = client.create_collection(name, embedding_function=ef, configuration={"hnsw": {"space": "cosine"}})
    col.add(ids=ds.corpus_ids, documents=ds.corpus_texts)
    lens = load_lens(lens_dirs[mode])
    stored = np.asarray(col.get(ids=ds.corpus_ids[:2], include=["embeddings"])["embeddings"])
    raw = np.asarray(base_ef()(ds.corpus_texts[:2]))
    np.testing.assert_allclose(stored, lens.project_documents(raw), atol=1e-5)
    if mode == "query":
        np.testing.assert_allclose(stored, raw, atol=1e-5)  # documents stay raw: no re-indexing
    _, qtexts = ds.split_queries("test")
    got = col.query(query_texts=[qtexts[0]], n_results=5)["ids"][0]
    assert got == _expected_top(lens_dirs[mode], ds.corpus_texts, ds.corpus_ids, qtexts[0], 5)
    again = reopen(client, name, qtexts[0])
    assert again == {"ids": got, "ef": "LensEmbeddingFunction"}


def test_stored_config_has_no_secret_and_no_matrix(
    client: Any, lens_dirs: dict[str, Path], request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _collection_name(request)
    col = client.create_collection(
        name, embedding_function=LensEmbeddingFunction(base_ef(), lens_dirs["symmetric"])
    )
    col.add(ids=["a"], documents=["hello"])
    stored = client.get_collection(name, embedding_function=None)
    cfg = stored.configuration_json
    text = json.dumps(cfg)
    ef_cfg = cfg["embedding_function"]
    assert ef_cfg["name"] == "embedlens"
    assert ef_cfg["config"]["lens_sha256"] == load_lens(lens_dirs["symmetric"]).weights_sha256
    assert len(text) < 4000, len(text)  # a 384x384 matrix inline would be megabytes
    assert "api_key" not in text.replace("api_key_env_var", "")


def test_secret_in_base_config_refused(lens_dirs: dict[str, Path]) -> None:
    class Leaky:
        def __call__(self, input: list[str]) -> list[np.ndarray]:
            return list(base_ef()(input))

        def name(self) -> str:
            return "leaky"

        def get_config(self) -> dict[str, Any]:
            return {"model_name": "x", "api_key": "sk-secret"}

    # refused at construction: Chroma swallows a failing get_config() and would store no lens at all
    with pytest.raises(ValueError, match="api_key"):
        LensEmbeddingFunction(Leaky(), lens_dirs["symmetric"])


def test_moved_lens_gives_actionable_error(
    client: Any, lens_dirs: dict[str, Path], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    moved_src = tmp_path / "lens-copy"
    shutil.copytree(lens_dirs["symmetric"], moved_src)
    name = _collection_name(request)
    col = client.create_collection(name, embedding_function=LensEmbeddingFunction(base_ef(), moved_src))
    col.add(ids=["a"], documents=["hello"])
    shutil.move(moved_src, tmp_path / "elsewhere")
    res = reopen(client, name, "hello")
    assert str(moved_src) in res["error"] and "collection.modify" in res["error"]
    with pytest.raises(LensFormatError, match="collection.modify"):
        LensEmbeddingFunction.build_from_config(col.configuration_json["embedding_function"]["config"])


def test_config_update_refuses_other_model(lens_dirs: dict[str, Path]) -> None:
    ef = LensEmbeddingFunction(base_ef(), lens_dirs["symmetric"])
    old = ef.get_config()
    new = json.loads(json.dumps(old))
    new["base"]["config"]["model_name"] = "some-other-model"
    with pytest.raises(ValueError, match="cannot change the base model"):
        ef.validate_config_update(old, new)
    new = json.loads(json.dumps(old))
    new["lens_d_out"] = 64
    with pytest.raises(ValueError, match="lens_d_out"):
        ef.validate_config_update(old, new)
    ef.validate_config_update(old, json.loads(json.dumps(old)))  # no change is fine


def test_protocol_basics(lens_dirs: dict[str, Path]) -> None:
    ef = LensEmbeddingFunction(base_ef(), lens_dirs["symmetric"])
    assert LensEmbeddingFunction.name() == "embedlens"
    assert ef.default_space() == "cosine" and "cosine" in ef.supported_spaces()
    assert not ef.is_legacy()
    from chromadb.utils.embedding_functions import known_embedding_functions

    assert known_embedding_functions["embedlens"] is LensEmbeddingFunction


def test_rebuild_is_cached(lens_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import embedlens.adapters._lenses as lenses

    cfg = LensEmbeddingFunction(base_ef(), lens_dirs["symmetric"]).get_config()
    calls = []
    real = lenses.load_lens
    monkeypatch.setattr(lenses, "load_lens", lambda p: calls.append(p) or real(p))
    a = LensEmbeddingFunction.build_from_config(cfg)
    b = LensEmbeddingFunction.build_from_config(cfg)
    assert a.base_ef is b.base_ef and a.lens is b.lens
    assert calls == []  # served from the cache of loaded lenses


def test_reproject_resumes_after_interruption(
    tmp_path: Path, lens_dirs: dict[str, Path], local_embedder
) -> None:  # type: ignore[no-untyped-def]
    from embedlens.adapters.chroma import reproject_collection

    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    ds = read_beir(demo_data_dir())
    raw = local_embedder.embed(ds.corpus_texts)
    src = client.create_collection(
        "raw-docs", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
    )
    metas = [{"n": i} for i in range(len(ds.corpus_ids))]
    src.add(ids=ds.corpus_ids, embeddings=raw, documents=ds.corpus_texts, metadatas=metas)

    class Stop(Exception):
        pass

    def interrupt(written: int) -> None:
        if written >= 10:
            raise Stop

    with pytest.raises(Stop):
        reproject_collection(
            client,
            "raw-docs",
            "lens-docs",
            lens_dirs["symmetric"],
            batch_size=10,
            progress=False,
            on_batch=interrupt,
        )
    assert client.get_collection("lens-docs").count() == 10
    n = reproject_collection(
        client, "raw-docs", "lens-docs", lens_dirs["symmetric"], batch_size=10, progress=False
    )
    assert n == len(ds.corpus_ids) - 10  # resumed: only the rest was written
    tgt = client.get_collection("lens-docs")
    got = tgt.get(ids=ds.corpus_ids, include=["embeddings", "documents", "metadatas"])
    order = [got["ids"].index(i) for i in ds.corpus_ids]
    lens = load_lens(lens_dirs["symmetric"])
    np.testing.assert_allclose(np.asarray(got["embeddings"])[order], lens.project_documents(raw), atol=1e-5)
    assert [got["documents"][i] for i in order] == ds.corpus_texts
    assert [got["metadatas"][i]["n"] for i in order] == list(range(len(ds.corpus_ids)))


def test_reproject_cli(tmp_path: Path, lens_dirs: dict[str, Path]) -> None:
    from embedlens.app.cli import main

    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    src = client.create_collection("src-docs", embedding_function=None)
    src.add(ids=["a", "b"], embeddings=np.random.default_rng(0).standard_normal((2, 384)).astype("float32"))
    assert (
        main(
            [
                "reproject",
                "--path",
                str(tmp_path / "db"),
                "--source",
                "src-docs",
                "--target",
                "dst-docs",
                "--lens",
                str(lens_dirs["symmetric"]),
            ]
        )
        == 0
    )
    assert chromadb.PersistentClient(path=str(tmp_path / "db")).get_collection("dst-docs").count() == 2
    assert (
        main(
            [
                "reproject",
                "--path",
                str(tmp_path / "db"),
                "--source",
                "src-docs",
                "--target",
                "q-docs",
                "--lens",
                str(lens_dirs["query"]),
            ]
        )
        == 2
    )
