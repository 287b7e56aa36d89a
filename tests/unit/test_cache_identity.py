"""Cache identity: two settings that give different vectors never share cache rows, and queries are
embedded as queries (the model's query path) in training, evaluation and serving alike."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedlens.cache import CachedEmbedder, EmbeddingCache
from tests.conftest import HashEmbedder

# --------------------------------------------------------------------------- helpers


def _vec(seed: str, dim: int) -> np.ndarray:
    h = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "little")
    v = np.random.default_rng(h).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


class QueryHash(HashEmbedder):
    """A HashEmbedder whose queries are embedded with a prompt (like e5/bge), counting each path."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.doc_texts: list[str] = []
        self.query_texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.doc_texts.extend(texts)
        return super().embed(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.query_texts.extend(texts)
        return HashEmbedder.embed(self, [f"query prompt {t}" for t in texts])


class FakeST:
    """Stands in for a loaded SentenceTransformer: vectors depend on the weights file, prompt and text."""

    def __init__(self, location: str, prompts: dict[str, str] | None = None) -> None:
        weights = Path(location) / "model.safetensors"
        self.seed = hashlib.sha256(weights.read_bytes()).hexdigest() if weights.exists() else location
        cfg = Path(location) / "config_sentence_transformers.json"
        stored = json.loads(cfg.read_text())["prompts"] if cfg.exists() else {}
        self.prompts: dict[str, str] = prompts if prompts is not None else stored
        self.default_prompt_name: str | None = None
        self.calls: list[tuple[str, str | None]] = []

    def get_sentence_embedding_dimension(self) -> int:
        return 8

    def encode(self, texts: list[str], prompt: str | None = None, **_: Any) -> np.ndarray:
        self.calls.append(("encode", prompt))
        return np.stack([_vec(f"{self.seed}|{prompt or ''}{t}", 8) for t in texts])

    def encode_query(self, texts: list[str], prompt: str | None = None, **kw: Any) -> np.ndarray:
        self.calls.append(("query", prompt))
        return self.encode(texts, prompt=prompt, **kw)

    def encode_document(self, texts: list[str], prompt: str | None = None, **kw: Any) -> np.ndarray:
        self.calls.append(("document", prompt))
        return self.encode(texts, prompt=prompt, **kw)


@pytest.fixture
def fake_st(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeST]:
    """Replace model loading by :class:`FakeST` (no torch); returns the loaded fakes by location."""
    import embedlens.embedders.local as local

    loaded: dict[str, FakeST] = {}

    def load(location: str, device: str) -> FakeST:
        loaded[location] = FakeST(location)
        return loaded[location]

    monkeypatch.setattr(local, "_load_model", load)
    return loaded


def _model_dir(path: Path, weights: bytes, prompts: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True)
    (path / "modules.json").write_text('[{"idx": 0, "name": "0", "path": "", "type": "Transformer"}]')
    (path / "config.json").write_text('{"hidden_size": 8}')
    (path / "model.safetensors").write_bytes(weights)
    (path / "README.md").write_text("notes do not change vectors")
    if prompts is not None:
        (path / "config_sentence_transformers.json").write_text(json.dumps({"prompts": prompts}))
    return path


# --------------------------------------------------------------------------- 1. local model directories


def test_local_dirs_with_the_same_basename_do_not_share_rows(tmp_path: Path, fake_st: dict) -> None:
    from embedlens.embedders.local import SentenceTransformerEmbedder

    a = _model_dir(tmp_path / "a" / "final", b"weights of run A")
    b = _model_dir(tmp_path / "b" / "final", b"weights of run B")
    cache = EmbeddingCache(tmp_path / "cache")
    first = CachedEmbedder(SentenceTransformerEmbedder(str(a)), cache, progress=False)
    va = first.embed(["hello world"])
    second = CachedEmbedder(SentenceTransformerEmbedder(str(b)), cache, progress=False)
    vb = second.embed(["hello world"])
    assert second.base_texts == 1  # B's model was asked, not A's cached row
    np.testing.assert_allclose(vb, fake_st[str(b)].encode(["hello world"]))
    assert not np.allclose(va, vb)
    assert cache.count() == 2


def test_same_path_with_new_weights_gets_new_rows(tmp_path: Path, fake_st: dict) -> None:
    from embedlens.embedders.local import SentenceTransformerEmbedder

    d = _model_dir(tmp_path / "final", b"checkpoint 1")
    cache = EmbeddingCache(tmp_path / "cache")
    CachedEmbedder(SentenceTransformerEmbedder(str(d)), cache, progress=False).embed(["x"])
    (d / "model.safetensors").write_bytes(b"checkpoint 2, retrained")
    again = CachedEmbedder(SentenceTransformerEmbedder(str(d)), cache, progress=False)
    got = again.embed(["x"])
    assert again.base_texts == 1
    np.testing.assert_allclose(got, fake_st[str(d)].encode(["x"]))


def test_identity_is_a_digest_and_ignores_readme(tmp_path: Path, fake_st: dict) -> None:
    from embedlens.embedders.local import SentenceTransformerEmbedder

    d = _model_dir(tmp_path / "m", b"w")
    emb = SentenceTransformerEmbedder(str(d))
    assert emb.name == f"st:{d.resolve()}"  # readable, and reopens the same directory
    assert emb.identity.startswith(emb.name + "#") and len(emb.identity.split("#")[1]) == 64
    (d / "README.md").write_text("edited notes")
    assert SentenceTransformerEmbedder(str(d)).identity == emb.identity
    (d / "config.json").write_text('{"hidden_size": 8, "max_position_embeddings": 128}')
    assert SentenceTransformerEmbedder(str(d)).identity != emb.identity


def test_file_digests_are_memoised_in_the_cache(tmp_path: Path, fake_st: dict) -> None:
    from embedlens.embedders import identity
    from embedlens.embedders.local import SentenceTransformerEmbedder

    d = _model_dir(tmp_path / "m", b"some weights")
    cache = EmbeddingCache(tmp_path / "cache")
    first = CachedEmbedder(SentenceTransformerEmbedder(str(d)), cache, progress=False)
    ident = first.identity
    weights = (d / "model.safetensors").resolve()
    st = weights.stat()
    stored = cache.get_file_digest(str(weights), st.st_size, st.st_mtime_ns)
    assert stored == hashlib.sha256(b"some weights").hexdigest()
    # A later run (empty in-process memo) reads the remembered digest instead of the file:
    identity._MEMO.clear()
    cache.put_file_digest(str(weights), st.st_size, st.st_mtime_ns, "0" * 64)
    later = CachedEmbedder(SentenceTransformerEmbedder(str(d)), cache, progress=False)
    assert later.identity != ident  # proves the memo was used (the poisoned digest)
    # ... and a changed file (other size / mtime) is hashed again.
    identity._MEMO.clear()
    (d / "model.safetensors").write_bytes(b"some weights!")
    third = CachedEmbedder(SentenceTransformerEmbedder(str(d)), cache, progress=False)
    assert third.identity not in (ident, later.identity)
    st2 = weights.stat()
    assert cache.get_file_digest(str(weights), st2.st_size, st2.st_mtime_ns) == (
        hashlib.sha256(b"some weights!").hexdigest()
    )


# --------------------------------------------------------------------------- 2. OpenAI


def _openai(monkeypatch: pytest.MonkeyPatch, base_url: str | None, dims: int = 8) -> Any:
    from embedlens.embedders.openai import OpenAIEmbedder

    emb = OpenAIEmbedder("text-embedding-3-small", dimensions=dims, base_url=base_url, max_concurrency=1)
    server = str(emb._client.base_url)
    emb.sent = []

    def request(texts: list[str]) -> np.ndarray:  # no server: vectors depend on the server's URL
        emb.sent.extend(texts)
        return np.stack([_vec(f"{server}|{t}", dims) for t in texts])

    monkeypatch.setattr(emb, "_request", request)
    return emb


def test_openai_base_urls_do_not_share_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdefghij")
    cache = EmbeddingCache(tmp_path)
    a = _openai(monkeypatch, "http://127.0.0.1:8001/v1")
    b = _openai(monkeypatch, "http://127.0.0.1:8002/v1")
    va = CachedEmbedder(a, cache, progress=False).embed(["hello"])
    vb = CachedEmbedder(b, cache, progress=False).embed(["hello"])
    assert b.sent == ["hello"]  # the second server was asked
    assert not np.allclose(va, vb)


def test_openai_base_url_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdefghij")
    cache = EmbeddingCache(tmp_path)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8001/v1")
    a = _openai(monkeypatch, None)
    CachedEmbedder(a, cache, progress=False).embed(["hello"])
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8002/v1")
    b = _openai(monkeypatch, None)
    CachedEmbedder(b, cache, progress=False).embed(["hello"])
    assert b.sent == ["hello"]


def test_openai_identity_has_dims_and_url_but_never_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-first-key-0123456789")
    one = _openai(monkeypatch, "http://127.0.0.1:8001/v1/")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-other-key-9876543210")
    same = _openai(monkeypatch, "HTTP://127.0.0.1:8001/v1")
    assert one.identity == same.identity  # the key does not change a vector: same rows
    assert "sk-test" not in one.identity
    assert one.query_identity == one.identity  # OpenAI embeds queries like documents
    assert _openai(monkeypatch, "http://127.0.0.1:8001/v1", dims=16).identity != one.identity
    creds = _openai(monkeypatch, "http://user:hunter2secret@127.0.0.1:8001/v1")
    assert creds.identity == one.identity  # credentials in the URL are left out


# --------------------------------------------------------------------------- 3. LangChain


def test_langchain_sizes_do_not_share_rows(tmp_path: Path) -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    from embedlens.adapters.langchain import LangChainEmbedder

    cache = EmbeddingCache(tmp_path)
    small = CachedEmbedder(LangChainEmbedder(DeterministicFakeEmbedding(size=8)), cache, progress=False)
    assert small.embed(["hello"]).shape == (1, 8)
    big = CachedEmbedder(LangChainEmbedder(DeterministicFakeEmbedding(size=16)), cache, progress=False)
    assert big.embed(["hello"]).shape == (1, 16)
    assert big.base_texts == 1


def _openai_like() -> type:
    """A LangChain Embeddings shaped like langchain-openai's ``OpenAIEmbeddings``."""
    from langchain_core.embeddings import Embeddings
    from pydantic import BaseModel, SecretStr

    class OpenAILikeEmbeddings(BaseModel, Embeddings):
        model: str = "text-embedding-3-small"
        dimensions: int | None = None
        openai_api_key: SecretStr | None = None
        default_headers: dict[str, str] | None = None
        max_tokens: int = 8191

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [_vec(f"{self.dimensions}|{t}", self.dimensions or 4).tolist() for t in texts]

        def embed_query(self, text: str) -> list[float]:
            return self.embed_documents([text])[0]

    return OpenAILikeEmbeddings


def test_langchain_dimensions_do_not_share_rows(tmp_path: Path) -> None:
    from embedlens.adapters.langchain import LangChainEmbedder

    cls = _openai_like()
    cache = EmbeddingCache(tmp_path)
    e384 = CachedEmbedder(LangChainEmbedder(cls(dimensions=384)), cache, progress=False)
    e384.embed(["hello"])
    e256 = CachedEmbedder(LangChainEmbedder(cls(dimensions=256)), cache, progress=False)
    assert e256.embed(["hello"]).shape == (1, 256)  # not the 384-d vector cached for dimensions=384
    assert e256.base_texts == 1


def test_langchain_identity_leaves_secrets_out() -> None:
    from embedlens.adapters.langchain import LangChainEmbedder
    from embedlens.embedders.identity import public_config

    cls = _openai_like()
    secret = "sk-live-abcdefghijklmnop0123"
    emb = cls(
        dimensions=8,
        openai_api_key=secret,
        default_headers={"Authorization": f"Bearer {secret}", "User-Agent": "a"},
    )
    other = cls(
        dimensions=8, openai_api_key="sk-live-zzzzzzzzzzzzzzzz9999", default_headers={"User-Agent": "a"}
    )
    shown = json.dumps(public_config(emb))
    assert secret not in shown and "Authorization" not in shown
    assert '"max_tokens": 8191' in shown and '"User-Agent": "a"' in shown  # harmless names are kept
    assert LangChainEmbedder(emb).identity == LangChainEmbedder(other).identity


def test_langchain_queries_go_through_embed_query(tmp_path: Path) -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

    from embedlens.adapters.langchain import LangChainEmbedder

    class Prompted(Embeddings):
        def __init__(self) -> None:
            self.query_calls = 0

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [_vec(t, 8).tolist() for t in texts]

        def embed_query(self, text: str) -> list[float]:
            self.query_calls += 1
            return _vec(f"query: {text}", 8).tolist()

    lc = Prompted()
    emb = CachedEmbedder(LangChainEmbedder(lc), EmbeddingCache(tmp_path), progress=False)
    q = emb.embed_queries(["a", "b"])
    np.testing.assert_allclose(q[1], _vec("query: b", 8))
    assert emb.query_identity != emb.identity
    assert not np.allclose(emb.embed(["a"]), q[:1])  # a document row, not the query row
    # a model whose embed_query equals embed_documents shares rows and is batched
    same = LangChainEmbedder(DeterministicFakeEmbedding(size=8))
    assert same.query_identity == same.identity and same.queries_as_documents


# --------------------------------------------------------------------------- 4. Chroma


def _chroma_fn(config: dict[str, Any], *, query_prefix: str | None = None) -> Any:
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

    class FakeFunction(EmbeddingFunction[Documents]):
        def __init__(self) -> None:
            self.config = config

        def __call__(self, input: Documents) -> Embeddings:
            return [
                _vec(f"{json.dumps(config, sort_keys=True)}|{t}", int(config["dimensions"])) for t in input
            ]

        @staticmethod
        def name() -> str:
            return "fake"

        def get_config(self) -> dict[str, Any]:
            return dict(self.config)

    if query_prefix is None:
        return FakeFunction()

    class QueryFunction(FakeFunction):
        def embed_query(self, input: Documents) -> Embeddings:
            return self([f"{query_prefix}{t}" for t in input])

    return QueryFunction()


def test_chroma_configs_do_not_share_rows(tmp_path: Path) -> None:
    from embedlens.adapters.chroma import ChromaEmbedder

    cache = EmbeddingCache(tmp_path)
    a = CachedEmbedder(
        ChromaEmbedder(_chroma_fn({"model_name": "m", "dimensions": 8})), cache, progress=False
    )
    a.embed(["hello"])
    b = CachedEmbedder(
        ChromaEmbedder(_chroma_fn({"model_name": "m", "dimensions": 16})), cache, progress=False
    )
    assert b.embed(["hello"]).shape == (1, 16)
    c = CachedEmbedder(
        ChromaEmbedder(_chroma_fn({"model_name": "m", "dimensions": 8, "api_base": "http://other/v1"})),
        cache,
        progress=False,
    )
    c.embed(["hello"])
    assert b.base_texts == 1 and c.base_texts == 1


def test_legacy_chroma_functions_are_keyed_by_their_attributes(tmp_path: Path) -> None:
    from embedlens.adapters.chroma import ChromaEmbedder

    class Legacy:  # no name(), no get_config(): a plain callable
        def __init__(self, dim: int) -> None:
            self.dim = dim

        def __call__(self, input: list[str]) -> list[np.ndarray]:
            return [_vec(t, self.dim) for t in input]

    cache = EmbeddingCache(tmp_path)
    CachedEmbedder(ChromaEmbedder(Legacy(8)), cache, progress=False).embed(["x"])
    other = CachedEmbedder(ChromaEmbedder(Legacy(12)), cache, progress=False)
    assert other.embed(["x"]).shape == (1, 12) and other.base_texts == 1


def test_chroma_identity_leaves_header_secrets_out() -> None:
    from embedlens.adapters.chroma import ChromaEmbedder

    cfg = {"model_name": "m", "dimensions": 8, "default_headers": {"Authorization": "Bearer abcdefghijkl"}}
    other = {"model_name": "m", "dimensions": 8, "default_headers": {"Authorization": "Bearer zzzzzzzzzzzz"}}
    assert ChromaEmbedder(_chroma_fn(cfg)).identity == ChromaEmbedder(_chroma_fn(other)).identity


def test_chroma_queries_use_embed_query(tmp_path: Path) -> None:
    from embedlens.adapters.chroma import ChromaEmbedder

    cfg = {"model_name": "m", "dimensions": 8}
    emb = CachedEmbedder(ChromaEmbedder(_chroma_fn(cfg, query_prefix="query: ")), EmbeddingCache(tmp_path))
    emb.progress = False
    doc = emb.embed(["x"])
    query = emb.embed_queries(["x"])
    np.testing.assert_allclose(query[0], _chroma_fn(cfg)(["query: x"])[0])
    assert not np.allclose(doc, query) and emb.query_identity != emb.identity
    plain = ChromaEmbedder(_chroma_fn(cfg))  # Chroma's default embed_query is the same call
    assert plain.query_identity == plain.identity


# --------------------------------------------------------------------------- 5. query vs document path


def test_query_and_document_rows_are_kept_apart(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    base = QueryHash()
    emb = CachedEmbedder(base, cache, progress=False)
    doc = emb.embed(["same text"])
    query = emb.embed_queries(["same text"])
    assert base.query_texts == ["same text"] and cache.count() == 2
    assert not np.allclose(doc, query)
    np.testing.assert_allclose(CachedEmbedder(QueryHash(), cache).embed_queries(["same text"]), query)


def test_embedder_without_query_path_shares_rows(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    base = HashEmbedder()
    emb = CachedEmbedder(base, cache, progress=False)
    doc = emb.embed(["t"])
    np.testing.assert_array_equal(emb.embed_queries(["t"]), doc)
    assert base.texts_seen == 1 and cache.count() == 1


def test_prompted_sentence_transformer_embeds_queries_with_the_query_prompt(
    tmp_path: Path, fake_st: dict
) -> None:
    from embedlens.embedders.local import SentenceTransformerEmbedder

    d = _model_dir(tmp_path / "e5", b"w", prompts={"query": "query: ", "document": "passage: "})
    emb = SentenceTransformerEmbedder(str(d))
    model = fake_st[str(d)]
    q = emb.embed_queries(["hi"])
    doc = emb.embed(["hi"])
    assert ("query", "query: ") in model.calls and ("document", "passage: ") in model.calls
    np.testing.assert_allclose(q, model.encode(["hi"], prompt="query: "))
    np.testing.assert_allclose(doc, model.encode(["hi"], prompt="passage: "))
    assert emb.query_identity != emb.identity
    cache = EmbeddingCache(tmp_path / "cache")
    cached = CachedEmbedder(emb, cache, progress=False)
    cached.embed(["hi"])
    np.testing.assert_allclose(cached.embed_queries(["hi"]), q)
    assert cache.count() == 2


def test_user_prompts_override_and_change_the_identity(tmp_path: Path, fake_st: dict) -> None:
    from embedlens.embedders.local import SentenceTransformerEmbedder

    d = _model_dir(tmp_path / "plain", b"w")  # no prompts: queries are documents
    plain = SentenceTransformerEmbedder(str(d))
    assert plain.query_identity == plain.identity
    np.testing.assert_allclose(plain.embed_queries(["x"]), plain.embed(["x"]))
    custom = SentenceTransformerEmbedder(str(d), query_prompt="Represent this question: ")
    np.testing.assert_allclose(
        custom.embed_queries(["x"]), fake_st[str(d)].encode(["x"], prompt="Represent this question: ")
    )
    assert custom.identity == plain.identity  # documents unchanged: rows shared
    assert custom.query_identity != plain.query_identity
    doc_prompted = SentenceTransformerEmbedder(str(d), document_prompt="passage: ")
    assert doc_prompted.identity != plain.identity


# --------------------------------------------------------------------------- pipeline uses the query path


def test_beir_training_and_evaluation_embed_queries_as_queries(tiny_beir: Path) -> None:
    from embedlens.cache import open_embedder
    from embedlens.datasets import read_beir
    from embedlens.evaluation.workflow import evaluate_lens
    from embedlens.training import TrainConfig
    from embedlens.training.workflow import train_lens

    base = QueryHash()
    emb = open_embedder(base=base, no_cache=True)
    lens = train_lens(tiny_beir, emb, TrainConfig(progress=False, max_steps=1)).lens
    ds = read_beir(tiny_beir)
    train_q = set(ds.split_queries("train")[1])
    assert train_q <= set(base.query_texts)
    assert train_q.isdisjoint(base.doc_texts)  # never embedded as documents
    base.query_texts.clear()
    evaluate_lens(tiny_beir, lens, emb, split="test", n_boot=50)
    assert set(ds.split_queries("test")[1]) == set(base.query_texts)


def test_pairs_text_1_is_the_query_side(tmp_path: Path) -> None:
    from embedlens.cache import open_embedder
    from embedlens.evaluation.workflow import evaluate_lens
    from embedlens.training import TrainConfig
    from embedlens.training.workflow import train_lens

    rows = ["text_1,text_2,label"]
    rows += [f"question {i} about q{i},answer {i} about a{i},{1 if i % 2 else -1}" for i in range(60)]
    path = tmp_path / "pairs.csv"
    path.write_text("\n".join(rows) + "\n")
    base = QueryHash()
    emb = open_embedder(base=base, no_cache=True)
    lens = train_lens(path, emb, TrainConfig(progress=False, max_steps=1)).lens
    assert base.query_texts and all(t.startswith("question") for t in base.query_texts)
    assert not any(t.startswith("question") for t in base.doc_texts)
    base.query_texts.clear()
    evaluate_lens(path, lens, emb, n_boot=50)
    assert base.query_texts and all(t.startswith("question") for t in base.query_texts)


def test_training_inputs_and_missing_count_each_side(tmp_path: Path, tiny_beir: Path) -> None:
    from embedlens.datasets import read_beir
    from embedlens.training.workflow import training_inputs

    docs, queries = training_inputs(tiny_beir)
    ds = read_beir(tiny_beir)
    pseudo, _ = ds.pseudo_queries("auto")  # the titles, embedded as queries
    assert docs == ds.corpus_texts and queries == ds.split_queries("train")[1] + pseudo
    assert pseudo == [f"topic {i}" for i in range(12)]
    emb = CachedEmbedder(QueryHash(), EmbeddingCache(tmp_path), progress=False)
    emb.embed(queries)  # stored as documents: the query rows are still missing
    assert set(emb.missing(docs, queries)) == set(docs) | set(queries)


# --------------------------------------------------------------------------- serving uses the query path


def test_langchain_embedder_embeddings_serve_queries_as_queries() -> None:
    from embedlens.adapters.langchain import EmbedderEmbeddings

    base = QueryHash()
    lc = EmbedderEmbeddings(CachedEmbedder(base, None, progress=False))
    np.testing.assert_allclose(
        lc.embed_query("find me"), QueryHash().embed_queries(["find me"])[0], atol=1e-6
    )
    np.testing.assert_allclose(lc.embed_documents(["doc"])[0], QueryHash().embed(["doc"])[0], atol=1e-6)
    from embedlens.errors import TextsTypeError

    with pytest.raises(TextsTypeError):  # a bare string is not embedded character by character
        lc.embed_documents("one document")  # type: ignore[arg-type]


def test_chroma_base_function_serves_queries_as_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    import embedlens.cache
    from embedlens.adapters.chroma import EmbedderEmbeddingFunction

    monkeypatch.setattr(embedlens.cache, "get_embedder", lambda model=None, **kw: QueryHash(name=str(model)))
    fn = EmbedderEmbeddingFunction("query-hash-test-model", "")
    np.testing.assert_allclose(
        fn.embed_query(["find me"])[0], QueryHash().embed_queries(["find me"])[0], atol=1e-6
    )
    np.testing.assert_allclose(fn(["doc"])[0], QueryHash().embed(["doc"])[0], atol=1e-6)


def test_secret_names_are_whole_words() -> None:
    from embedlens.embedders.identity import is_secret_name, looks_like_secret

    assert all(
        is_secret_name(n) for n in ("api_key", "openai_api_key", "Authorization", "X-Api-Key", "token")
    )
    assert not any(is_secret_name(n) for n in ("max_tokens", "model_name", "dimensions", "keyword", "monkey"))
    assert looks_like_secret("Bearer abc.defghij") and looks_like_secret("sk-proj-0123456789abcdef")
    assert not looks_like_secret("text-embedding-3-small")


def test_wrapped_local_model_paths_are_digested(tmp_path: Path) -> None:
    from embedlens.adapters.chroma import ChromaEmbedder

    d = _model_dir(tmp_path / "final", b"checkpoint 1")
    cfg = {"model_name": str(d), "dimensions": 8}
    before = ChromaEmbedder(_chroma_fn(cfg)).identity
    (d / "model.safetensors").write_bytes(b"checkpoint 2, retrained")
    assert ChromaEmbedder(_chroma_fn(cfg)).identity != before


def test_prompts_for_an_openai_model_are_refused() -> None:
    from embedlens.cache import open_embedder
    from embedlens.errors import EmbedlensInputError

    with pytest.raises(EmbedlensInputError, match="sentence-transformers"):
        open_embedder("openai:text-embedding-3-small", query_prompt="query: ", no_cache=True)


# --------------------------------------------------------------------------- review finding 5: model objects


class _Model:
    """Stands in for a model object held by a wrapper (e.g. a loaded SentenceTransformer)."""

    def __init__(self, seed: int) -> None:
        self.W = np.random.default_rng(seed).standard_normal((8, 8)).astype(np.float32)

    def __repr__(self) -> str:
        return "Model(dim=8)"  # the same for both: the type name and repr identify nothing

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.stack([_vec(t, 8) for t in texts]) @ self.W


def _plain_lc(model: Any) -> Any:
    from langchain_core.embeddings import Embeddings

    class MyEmbeddings(Embeddings):  # not pydantic
        def __init__(self, model: Any) -> None:
            self.model = model

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return self.model.encode(texts).tolist()

        def embed_query(self, text: str) -> list[float]:
            return self.model.encode([text])[0].tolist()

    return MyEmbeddings(model)


class _LegacyFn:
    """A Chroma function without get_config() holding a model object."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, input: list[str]) -> list[np.ndarray]:
        return list(self.model.encode(list(input)))


def test_wrappers_holding_different_model_objects_do_not_share_rows(tmp_path: Path) -> None:
    from embedlens.adapters.chroma import ChromaEmbedder
    from embedlens.adapters.langchain import LangChainEmbedder

    cache = EmbeddingCache(tmp_path)
    for wrap in (lambda m: LangChainEmbedder(_plain_lc(m)), lambda m: ChromaEmbedder(_LegacyFn(m))):
        a = CachedEmbedder(wrap(_Model(1)), cache, progress=False)
        b = CachedEmbedder(wrap(_Model(2)), cache, progress=False)
        assert a.identity != b.identity
        va, vb = a.embed(["hello"]), b.embed(["hello"])
        np.testing.assert_allclose(vb, _Model(2).encode(["hello"]), rtol=1e-5)  # not a's row
        assert not np.allclose(va, vb)
        # the same model again: same key, served from the cache
        again = CachedEmbedder(wrap(_Model(1)), cache, progress=False)
        assert again.identity == a.identity
        again.embed(["hello"])
        assert again.base_texts == 0


class _Opaque:
    """An object whose state cannot be read (slots, no __dict__), like a C-extension handle."""

    __slots__ = ("handle",)

    def __init__(self, handle: int) -> None:
        self.handle = handle


def test_unidentifiable_wrapper_is_refused_by_the_cache_not_guessed(tmp_path: Path) -> None:
    from embedlens.adapters.chroma import ChromaEmbedder
    from embedlens.adapters.langchain import LangChainEmbedder
    from embedlens.errors import EmbedlensInputError

    for wrap in (
        lambda **k: LangChainEmbedder(_plain_lc(_Opaque(1)), **k),
        lambda **k: ChromaEmbedder(_LegacyFn(_Opaque(1)), **k),
    ):
        with pytest.raises(EmbedlensInputError, match="cache_id="):
            CachedEmbedder(wrap(), EmbeddingCache(tmp_path), progress=False)
        # without a cache it still embeds (nothing is keyed) ...
        with pytest.raises(AttributeError):  # _Opaque has no encode: only reached when embedding
            CachedEmbedder(wrap(), None, progress=False).embed(["x"])
        # ... and an explicit cache_id is the user's key
        ok = CachedEmbedder(wrap(cache_id="my-model-v1"), EmbeddingCache(tmp_path), progress=False)
        assert ok.identity != CachedEmbedder(wrap(cache_id="my-model-v2"), None).identity


def _fake_sentence_transformer(location: Path) -> Any:
    class Tok:
        name_or_path = str(location)

    class SentenceTransformer:  # named and placed like sentence-transformers' class
        prompts: dict[str, str] = {}
        default_prompt_name = None
        truncate_dim = None

        def __init__(self) -> None:
            self.tokenizer = Tok()

        def __repr__(self) -> str:
            return "SentenceTransformer()"

    SentenceTransformer.__module__ = "sentence_transformers.sentence_transformer.model"
    return SentenceTransformer()


def test_wrapped_sentence_transformer_objects_are_keyed_by_their_files(tmp_path: Path) -> None:
    from embedlens.adapters.langchain import LangChainEmbedder

    dirs = []
    for root, weights in (("a", b"weights-a"), ("b", b"weights-b")):
        d = tmp_path / root / "final"
        d.mkdir(parents=True)
        (d / "modules.json").write_text("[]")
        (d / "model.safetensors").write_bytes(weights)
        dirs.append(d)
    ids = [LangChainEmbedder(_plain_lc(_fake_sentence_transformer(d))).identity for d in dirs]
    assert ids[0] != ids[1]  # /a/final and /b/final
    assert ids[0] == LangChainEmbedder(_plain_lc(_fake_sentence_transformer(dirs[0]))).identity
    (dirs[0] / "model.safetensors").write_bytes(b"retrained")
    assert LangChainEmbedder(_plain_lc(_fake_sentence_transformer(dirs[0]))).identity != ids[0]


_IDENTITY_SCRIPT = """
import numpy as np
from langchain_core.embeddings import Embeddings
from embedlens.adapters.chroma import ChromaEmbedder
from embedlens.adapters.langchain import LangChainEmbedder

class Model:
    def __init__(self):
        self.W = np.arange(12, dtype=np.float32).reshape(3, 4)
        self.opts = {"b": 1, "a": {2, 3, "x", "y"}}
        self.fn = lambda t: t.upper()

class E(Embeddings):
    def __init__(self):
        self.model = Model()
    def embed_documents(self, texts):
        return [[0.0]] * len(texts)
    def embed_query(self, text):
        return [0.0]

class F:
    def __init__(self):
        self.model = Model()
    def __call__(self, input):
        return [[0.0]] * len(input)

print(LangChainEmbedder(E()).identity, ChromaEmbedder(F()).identity)
"""


def test_identity_is_stable_across_processes(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    script = tmp_path / "ident.py"
    script.write_text(_IDENTITY_SCRIPT)
    outs = []
    for seed in ("1", "2"):  # different string hash seeds and addresses
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
        )
        assert run.returncode == 0, run.stderr
        outs.append(run.stdout.strip())
    assert outs[0] == outs[1] and "0x" not in outs[0]
