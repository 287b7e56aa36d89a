"""Adapter safety: no credential reaches a Chroma store, no text is split into characters, a lax
instance never vouches for a model, and ``make bench`` runs every benchmark."""

from __future__ import annotations

import asyncio
import importlib.util
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from embedlens import EmbedlensInputError, FingerprintMismatchError, Lens, load_lens
from embedlens.lens import PROBE_SENTENCES
from tests.conftest import HashEmbedder
from tests.support.openai_server import FakeOpenAIServer

chromadb = pytest.importorskip("chromadb")
DIM = 16
ROOT = Path(__file__).resolve().parents[2]


class HashFunction:
    """A Chroma-style base embedding function over :class:`HashEmbedder`, with a config."""

    def __init__(self, seed: int = 0, config: dict[str, Any] | None = None) -> None:
        self.embedder = HashEmbedder(DIM, seed=seed)
        self.config = {"model_name": "hash-test"} if config is None else config

    def __call__(self, input: list[str]) -> list[np.ndarray]:
        return list(self.embedder.embed(list(input)))

    def name(self) -> str:
        return "hash_test_fn"

    def get_config(self) -> dict[str, Any]:
        return self.config


def _lens(tmp_path: Path, *, fingerprint_seed: int | None = None) -> Path:
    """A saved symmetric lens with unique weights (so no process-wide check cache is shared between tests)."""
    rng = np.random.default_rng(secrets.randbits(32))
    w = np.eye(DIM, dtype=np.float32) + 0.01 * rng.standard_normal((DIM, DIM)).astype(np.float32)
    fp = None
    if fingerprint_seed is not None:
        fp = HashEmbedder(DIM, seed=fingerprint_seed).embed(list(PROBE_SENTENCES))
    out = tmp_path / f"lens-{secrets.token_hex(4)}"
    Lens(w, mode="symmetric", fingerprint=fp).save(out)
    return out


def _stop_chroma() -> None:
    """Stop every embedded Chroma system of this process, so its files are complete and still."""
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def _files_holding(root: Path, needle: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


# --------------------------------------------------------------------------- 1. credentials in a base config
@pytest.fixture
def hash_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(HashEmbedder(DIM).embed) as srv:
        yield srv


ENV_KEY = "Zq" + secrets.token_hex(24)  # opaque: recognisable only as the value of OPENAI_API_KEY
HEADER_TOKEN = secrets.token_urlsafe(32)  # a Bearer token that is in no environment variable


@pytest.mark.parametrize(
    ("headers", "secret"),
    [
        ({"Authorization": f"Bearer {HEADER_TOKEN}"}, HEADER_TOKEN),
        ({"api-key": ENV_KEY}, ENV_KEY),
        ({"X-Custom-Auth": f"Bearer {HEADER_TOKEN}"}, HEADER_TOKEN),  # harmless name, credential value
        ({"X-Trace": ENV_KEY}, ENV_KEY),  # harmless name, the value of a *_KEY variable
    ],
    ids=["authorization-bearer", "api-key-header", "bearer-value", "env-key-value"],
)
def test_credential_in_base_headers_is_never_stored(
    tmp_path: Path,
    hash_server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
    headers: dict[str, str],
    secret: str,
) -> None:
    from chromadb.utils.embedding_functions import OpenAIEmbeddingFunction

    from embedlens.adapters.chroma import LensEmbeddingFunction

    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    base = OpenAIEmbeddingFunction(
        api_key_env_var="OPENAI_API_KEY",
        model_name="text-embedding-3-small",
        api_base=hash_server.base_url,
        dimensions=DIM,
        default_headers=headers,
    )
    lens = _lens(tmp_path)
    db = tmp_path / "db"
    client = chromadb.PersistentClient(path=str(db))
    try:
        with pytest.raises(EmbedlensInputError, match="default_headers") as info:
            col = client.create_collection("docs", embedding_function=LensEmbeddingFunction(base, lens))
            col.add(ids=["a"], documents=["hello world"])
        assert secret not in str(info.value)
    finally:
        del client
        _stop_chroma()
    assert _files_holding(db, secret) == []


def test_harmless_names_are_stored(tmp_path: Path) -> None:
    from embedlens.adapters.chroma import LensEmbeddingFunction

    config = {
        "model_name": "hash-test",
        "max_tokens": 8191,
        "tokenizer": "cl100k_base",
        "api_key_env_var": "OPENAI_API_KEY",
        "token_limit": 5,
    }
    ef = LensEmbeddingFunction(HashFunction(config=config), _lens(tmp_path))
    assert ef.get_config()["base"]["config"] == config


def test_secret_by_name_still_refused(tmp_path: Path) -> None:
    from embedlens.adapters.chroma import LensEmbeddingFunction

    for config in ({"model_name": "m", "apiKey": "abc"}, {"model_name": "m", "client_secret": "abc"}):
        with pytest.raises(EmbedlensInputError, match="looks like a credential"):
            LensEmbeddingFunction(HashFunction(config=config), _lens(tmp_path))


# --------------------------------------------------------------------------- 4. a bare string
def test_langchain_bare_string_is_refused() -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    from embedlens.adapters.langchain import LensEmbeddings

    emb = LensEmbeddings(DeterministicFakeEmbedding(size=DIM), Lens.identity(DIM, mode="symmetric"))
    for call in (lambda: emb.embed_documents("hello world"), lambda: asyncio.run(emb.aembed_documents("hi"))):
        with pytest.raises(TypeError, match=r"list of texts.*\[text\]") as info:
            call()
        assert isinstance(info.value, EmbedlensInputError)
    with pytest.raises(TypeError, match="one string"):
        emb.embed_query(["a", "b"])  # type: ignore[arg-type]
    assert len(emb.embed_documents(["hello world"])) == 1  # a list still works
    assert len(emb.embed_documents(("a", "b"))) == 2  # type: ignore[arg-type]


def test_chroma_bare_string_is_refused(tmp_path: Path) -> None:
    from embedlens.adapters.chroma import LensEmbeddingFunction

    ef = LensEmbeddingFunction(HashFunction(), _lens(tmp_path))
    for call in (lambda: ef("hello world"), lambda: ef.embed_query("hello world")):
        with pytest.raises(TypeError, match=r"list of texts.*\[text\]") as info:
            call()  # type: ignore[no-untyped-call]
        assert isinstance(info.value, EmbedlensInputError)
    assert len(ef(["hello world"])) == 1 and len(ef.embed_query(["hello world"])) == 1


# --------------------------------------------------------------------------- 5. fingerprint cache
def test_lax_instance_does_not_vouch_for_a_strict_one(tmp_path: Path) -> None:
    from embedlens.adapters.chroma import LensEmbeddingFunction

    lens = _lens(tmp_path, fingerprint_seed=0)
    wrong = HashFunction(seed=1)  # another model behind the same config
    LensEmbeddingFunction(wrong, lens, check_fingerprint=False)  # accepted: the caller opted out
    with pytest.raises(FingerprintMismatchError):
        LensEmbeddingFunction(wrong, lens)
    with pytest.raises(FingerprintMismatchError):  # and again: a failed check is not cached either
        LensEmbeddingFunction(HashFunction(seed=1), lens)
    right = LensEmbeddingFunction(HashFunction(seed=0), lens)  # the lens's model passes ...
    calls = right.base_ef.embedder.calls
    LensEmbeddingFunction(right.base_ef, lens)  # ... and a verified pair is not probed again
    LensEmbeddingFunction(right.base_ef, lens, check_fingerprint=False)
    assert right.base_ef.embedder.calls == calls


# --------------------------------------------------------------------------- 6. make bench runs every benchmark
def _run_all() -> ModuleType:
    spec = importlib.util.spec_from_file_location("embedlens_bench_run_all", ROOT / "bench" / "run_all.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_run_all_runs_every_bench_script() -> None:
    run_all = _run_all()
    scripts = sorted(p.name for p in (ROOT / "bench").glob("bench_*.py"))
    assert {"bench_llamaindex.py", "bench_snli_variants.py"} <= set(scripts)
    # scripts run by hand elsewhere (the GPU machine) are named in MANUAL with the reason
    assert set(run_all.MANUAL) <= set(scripts)
    assert sorted(run_all.SCRIPTS) == sorted(set(scripts) - set(run_all.MANUAL))
    assert run_all.SCRIPTS.index("bench_llamaindex.py") > run_all.SCRIPTS.index("bench_quality.py")
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_all.py"), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    planned = [ln.split(": ", 1)[1] for ln in out.stdout.splitlines() if ln.startswith("would run: ")]
    assert planned == run_all.SCRIPTS, out.stdout + out.stderr
    assert ".venv-bench" in out.stdout  # the LlamaIndex environment is checked, not skipped


def test_run_all_fails_loudly_without_the_llamaindex_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_all = _run_all()
    monkeypatch.setattr(run_all, "BENCH_PYTHON", tmp_path / "no-venv-bench" / "bin" / "python")
    monkeypatch.setattr(run_all, "missing_data", lambda: [])
    ran: list[list[str]] = []

    def fake_run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        ran.append([str(c) for c in cmd])
        return subprocess.CompletedProcess(cmd, 2)  # `make bench-env` fails (offline, say)

    monkeypatch.setattr(run_all.subprocess, "run", fake_run)
    monkeypatch.setattr(run_all, "render", lambda: pytest.fail("rendered stale results"))
    with pytest.raises(SystemExit) as info:
        run_all.main([])
    assert info.value.code not in (0, None) and "bench-env" in str(info.value.code)
    assert ran == [["make", "bench-env"]]  # tried to build it; ran no benchmark


# --------------------------------------------------------------------------- 7. reproject: sources, targets, --path
from chromadb.utils.embedding_functions import register_embedding_function  # noqa: E402


@register_embedding_function
class RegisteredHashFunction(HashFunction, chromadb.EmbeddingFunction):  # type: ignore[misc]
    """A base function Chroma can rebuild from its stored config (seed in the config)."""

    def __init__(self, seed: int = 0) -> None:
        HashFunction.__init__(self, seed=seed, config={"model_name": "hash-test", "seed": seed})

    @staticmethod
    def name() -> str:
        return "embedlens_test_hash"

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> RegisteredHashFunction:
        return RegisteredHashFunction(int(config.get("seed", 0)))


def _stored_ef(client: Any, name: str) -> Any:
    return client.get_collection(name, embedding_function=None).configuration_json.get("embedding_function")


def _no_function(stored: Any) -> bool:
    """What Chroma stores for ``embedding_function=None``: nothing, or its ``legacy`` marker (no builder)."""
    return stored is None or stored == {"type": "legacy"}


def _source(client: Any, name: str, ef: Any) -> Any:
    col = client.create_collection(name, embedding_function=ef)
    texts = [f"doc {i} alpha{i}" for i in range(5)]
    vectors = HashEmbedder(DIM).embed(texts)
    col.add(ids=[f"d{i}" for i in range(5)], embeddings=vectors, documents=texts)
    return col


def _names(client: Any) -> set[str]:
    return {c if isinstance(c, str) else c.name for c in client.list_collections()}


def test_reproject_refuses_an_already_projected_source(tmp_path: Path) -> None:
    from embedlens.adapters.chroma import LensEmbeddingFunction, reproject_collection

    lens = _lens(tmp_path)
    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    _source(client, "projected", LensEmbeddingFunction(RegisteredHashFunction(), lens))
    with pytest.raises(EmbedlensInputError, match="already projected"):
        reproject_collection(client, "projected", "twice", lens, progress=False)
    assert "twice" not in _names(client)


def test_reproject_target_gets_the_lens_over_the_source_base(tmp_path: Path) -> None:
    from embedlens.adapters.chroma import reproject_collection

    lens_dir = _lens(tmp_path)
    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    _source(client, "raw", RegisteredHashFunction())
    assert reproject_collection(client, "raw", "lensed", lens_dir, progress=False) == 5
    stored = _stored_ef(client, "lensed")
    assert stored["name"] == "embedlens" and stored["config"]["base"]["name"] == "embedlens_test_hash"
    assert stored["config"]["lens_sha256"] == load_lens(lens_dir).weights_sha256
    # query_texts through the target are projected by the lens (not embedded raw by Chroma's default)
    tgt = client.get_collection("lensed")
    got = tgt.query(query_texts=["doc 3 alpha3"], n_results=1, include=["distances"])
    assert got["ids"][0] == ["d3"] and got["distances"][0][0] < 1e-4
    assert reproject_collection(client, "raw", "lensed", lens_dir, progress=False) == 0  # resumable


def test_reproject_base_that_cannot_be_rebuilt_needs_explicit_no_function(tmp_path: Path) -> None:
    from embedlens.adapters.chroma import reproject_collection

    wrong_model = _lens(tmp_path, fingerprint_seed=1)  # the source's base (seed 0) is not the lens's model
    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    _source(client, "raw", RegisteredHashFunction())
    with pytest.raises(EmbedlensInputError, match="cannot be rebuilt.*allow_no_function=True"):
        reproject_collection(client, "raw", "lensed", wrong_model, progress=False)
    assert "lensed" not in _names(client)
    assert (
        reproject_collection(client, "raw", "lensed", wrong_model, progress=False, allow_no_function=True)
        == 5
    )
    assert _no_function(
        _stored_ef(client, "lensed")
    )  # explicitly none: never Chroma's DefaultEmbeddingFunction
    vectors_only = client.create_collection("vectors-only", embedding_function=None)
    vectors_only.add(ids=["a"], embeddings=HashEmbedder(DIM).embed(["a b"]))
    assert (
        reproject_collection(client, "vectors-only", "vectors-lensed", _lens(tmp_path), progress=False) == 1
    )
    assert _no_function(_stored_ef(client, "vectors-lensed"))
    # an existing target with another function is not written into
    with pytest.raises(EmbedlensInputError, match="not a re-projection of .raw."):
        reproject_collection(client, "raw", "vectors-lensed", _lens(tmp_path), progress=False)


def _reproject_cli(path: Path, lens: Path, *extra: str, source: str = "raw", target: str = "lensed") -> int:
    from embedlens.app.cli import main

    argv = ["reproject", "--path", str(path), "--source", source, "--target", target, "--lens", str(lens)]
    return main([*argv, *extra])


def _one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("embedlens: error: "), err
    return err[0]


def test_reproject_cli_checks_everything_before_opening_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lens = _lens(tmp_path)
    query_lens = Lens.identity(DIM, mode="query").save(tmp_path / "query-lens")
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.tex").write_bytes(b"four years")
    afile = tmp_path / "afile"
    afile.write_bytes(b"x")
    for path, lens_dir, extra, expect in [
        (thesis, query_lens, {}, "--lens"),
        (thesis, lens, {}, "no chroma.sqlite3"),
        (tmp_path / "missing", lens, {}, "--path"),
        (afile, lens, {}, "is not a directory"),
        (thesis, lens, {"target": "t3"}, "--target 't3': is not a valid collection name"),
        (thesis, lens, {"target": "a..b"}, "--target"),
        (thesis, lens, {"source": "-x-"}, "--source"),
        (thesis, lens, {"target": "raw"}, "--target 'raw' is the --source"),
    ]:
        assert _reproject_cli(path, lens_dir, "--quiet", **extra) == 2
        assert expect in _one_error(capsys)
    assert sorted(p.name for p in thesis.iterdir()) == ["thesis.tex"]
    assert not (tmp_path / "missing").exists() and afile.read_bytes() == b"x"


def test_reproject_cli_quiet_and_no_embedding_function(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import embedlens.adapters.chroma as chroma_adapter

    db = tmp_path / "db"
    client = chromadb.PersistentClient(path=str(db))
    _source(client, "raw", RegisteredHashFunction())
    wrong_model = _lens(tmp_path, fingerprint_seed=1)
    seen: list[bool] = []
    real = chroma_adapter.reproject_collection

    def spy(*a: Any, **k: Any) -> int:
        seen.append(k["progress"])
        return real(*a, **k)

    monkeypatch.setattr(chroma_adapter, "reproject_collection", spy)
    assert _reproject_cli(db, wrong_model, "--quiet") == 2
    assert "--no-embedding-function" in _one_error(capsys)
    assert _reproject_cli(db, wrong_model, "--quiet", "--no-embedding-function") == 0
    assert _reproject_cli(db, _lens(tmp_path), target="other") == 0
    assert seen == [False, False, True]
    assert _no_function(_stored_ef(chromadb.PersistentClient(path=str(db)), "lensed"))


def test_reproject_never_writes_into_a_collection_it_did_not_create(tmp_path: Path) -> None:
    """An existing target is resumed only when it is a re-projection of the same source through the same lens."""
    from embedlens.adapters.chroma import reproject_collection

    lens_dir = _lens(tmp_path)
    other_lens = _lens(tmp_path)  # random weights: another lens
    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    _source(client, "raw", RegisteredHashFunction())
    foreign = client.create_collection("foreign", embedding_function=None)
    foreign.add(ids=["d1", "mine"], embeddings=[[0.5] * 8, [0.25] * 8])
    with pytest.raises(EmbedlensInputError, match="not a re-projection"):
        reproject_collection(client, "raw", "foreign", lens_dir, progress=False, allow_no_function=True)
    assert client.get_collection("foreign").count() == 2
    assert reproject_collection(client, "raw", "lensed", lens_dir, progress=False) == 5
    with pytest.raises(EmbedlensInputError, match="not a re-projection"):  # same target, another lens
        reproject_collection(client, "raw", "lensed", other_lens, progress=False)
    assert client.get_collection("lensed").count() == 5


def test_reproject_cli_refuses_a_foreign_sqlite_and_a_huge_batch_without_touching_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import hashlib
    import sqlite3

    lens = _lens(tmp_path)
    other = tmp_path / "notes"
    other.mkdir()
    with sqlite3.connect(other / "chroma.sqlite3") as con:
        con.execute("CREATE TABLE notes (body TEXT)")
        con.execute("INSERT INTO notes VALUES ('mine')")
    before = hashlib.sha256((other / "chroma.sqlite3").read_bytes()).hexdigest()
    assert _reproject_cli(other, lens, "--quiet") == 2
    assert "not a Chroma database" in _one_error(capsys)
    assert hashlib.sha256((other / "chroma.sqlite3").read_bytes()).hexdigest() == before
    text = tmp_path / "text"
    text.mkdir()
    (text / "chroma.sqlite3").write_text("just text, not a database\n")
    assert _reproject_cli(text, lens, "--quiet") == 2
    assert "--path" in _one_error(capsys)
    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    _source(client, "raw", RegisteredHashFunction())
    assert _reproject_cli(tmp_path / "db", lens, "--batch-size", "99999999999999", "--target", "zz2") == 2
    assert "--batch-size" in _one_error(capsys)
    assert "zz2" not in _names(client)
