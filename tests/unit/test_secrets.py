"""Credentials are recognised by value and by whole-word name, and redacted from every error message."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from embedlens._secrets import (
    REDACTED,
    env_secret_values,
    find_secret,
    is_secret_name,
    looks_like_secret,
    redact,
    refuse_secrets,
)
from embedlens.app.cli import main
from embedlens.errors import EmbedderError, EmbedlensInputError

# Keys that cannot occur by chance: an OpenAI-style one and an opaque one (only its env variable gives it away).
SK_KEY = "sk-proj-" + secrets.token_urlsafe(32)
OPAQUE_KEY = "Zq" + secrets.token_hex(20)


# --------------------------------------------------------------------------- names
@pytest.mark.parametrize(
    "name",
    [
        "api_key",
        "apiKey",
        "API_KEY",
        "api-key",
        "x-api-key",
        "X-Api-Key",
        "Authorization",
        "proxy-authorization",
        "token",
        "access_token",
        "authToken",
        "secret",
        "client_secret",
        "password",
        "OPENAI_API_KEY",
        "private_key",
        "Ocp-Apim-Subscription-Key",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "max_tokens",
        "tokenizer",
        "tokens_per_minute",
        "api_key_env_var",
        "api_key_env",
        "token_limit",
        "secret_name",
        "password_file",
        "model_name",
        "default_headers",
        "keyword",
        "key",
        "monkey",
        "sort_key",
    ],
)
def test_harmless_names(name: str) -> None:
    assert not is_secret_name(name)


# --------------------------------------------------------------------------- values
@pytest.mark.parametrize(
    "value",
    [
        f"Bearer {secrets.token_urlsafe(24)}",
        "bearer abcdefgh12345678",
        "Basic dXNlcjpwYXNzd29yZDEyMw==",
        SK_KEY,
        "sk-ant-api03-" + secrets.token_urlsafe(30),
        "hf_" + "a1" * 17,
        "ghp_" + "b2" * 18,
        "https://user:hunter2secret@proxy.example/v1",
        "https://api.example/v1?api_key=abc123def456",
        f"x-api-key: {secrets.token_hex(12)}",
    ],
)
def test_credential_values(value: str) -> None:
    assert looks_like_secret(value, env_values=[])
    assert find_secret({"model_name": "m", "some_field": value}) == "config.some_field"


@pytest.mark.parametrize(
    "value",
    [
        "text-embedding-3-small",
        "sentence-transformers/all-MiniLM-L6-v2",
        "https://api.openai.com/v1",
        "OPENAI_API_KEY",
        "cl100k_base",
        "token budget exceeded",
        "Basic retrieval",
        "sk-learn",
        "",
    ],
)
def test_harmless_values(value: str) -> None:
    assert not looks_like_secret(value, env_values=[])


def test_env_secret_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPAQUE_KEY)
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-" + "7" * 20)
    monkeypatch.setenv("SOME_SECRET", "x" * 30)
    monkeypatch.setenv("FEATURE_KEY", "1")  # too short to be a credential
    monkeypatch.setenv("CREDS_KEY", str(tmp_path))  # an existing path is no secret
    monkeypatch.setenv("MY_PLAIN_SETTING", "y" * 30)
    vals = env_secret_values()
    assert OPAQUE_KEY in vals and "tok-" + "7" * 20 in vals and "x" * 30 in vals
    assert "1" not in vals and str(tmp_path) not in vals and "y" * 30 not in vals
    # an opaque key is recognised by value once it is the value of a *_KEY variable, even embedded
    assert looks_like_secret(OPAQUE_KEY) and looks_like_secret(f"prefix-{OPAQUE_KEY}")
    assert find_secret({"headers": {"X-Custom": OPAQUE_KEY}}) == "config.headers.X-Custom"


def test_find_secret_by_name_and_value_nested() -> None:
    cfg = {
        "name": "openai",
        "config": {
            "api_key_env_var": "OPENAI_API_KEY",
            "max_tokens": 8191,
            "tokenizer": "cl100k_base",
            "token_limit": 5,
            "default_headers": {"Authorization": "x"},
        },
    }
    assert find_secret(cfg) == "config.config.default_headers.Authorization"
    cfg["config"]["default_headers"] = {"Authorization": ""}  # an empty value stores nothing
    assert find_secret(cfg) is None
    cfg["config"]["extra"] = [{"opts": ("a", f"Bearer {secrets.token_hex(8)}")}]
    assert find_secret(cfg) == "config.config.extra[0].opts[1]"
    assert find_secret({"api_key": {"value": "abc"}}) == "config.api_key"
    assert find_secret({"password": 1234}) is None  # numbers and flags are not credentials


def test_refuse_names_the_field_never_the_value() -> None:
    token = secrets.token_urlsafe(24)
    with pytest.raises(EmbedlensInputError, match=r"config\.default_headers\.Authorization") as info:
        refuse_secrets({"default_headers": {"Authorization": f"Bearer {token}"}})
    assert token not in str(info.value)


def test_redact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPAQUE_KEY)
    text = (
        f"Incorrect API key provided: {OPAQUE_KEY}. Also {SK_KEY}; Authorization: Bearer abcdefgh12345678; "
        "proxy https://u:pw123456@h/x?api_key=zzz123&b=1; max tokens 8192"
    )
    out = redact(text)
    for secret in (OPAQUE_KEY, SK_KEY, "abcdefgh12345678", "pw123456", "zzz123"):
        assert secret not in out
    assert out.count(REDACTED) == 6  # every query value of a URL is redacted (finding 9), b=1 too
    assert "Incorrect API key provided" in out and "max tokens 8192" in out and "&b=" in out


# --------------------------------------------------------------------------- a server that echoes the key
class _EchoKeyServer:
    """An OpenAI-compatible endpoint that refuses every key with HTTP 401 and echoes it, as some servers do."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                body = json.dumps(
                    {
                        "error": {
                            "message": f"Incorrect API key provided: {key}. Check it at https://example/keys",
                            "type": "invalid_request_error",
                            "code": "invalid_api_key",
                        }
                    }
                ).encode()
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> _EchoKeyServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def echo_server() -> Iterator[_EchoKeyServer]:
    with _EchoKeyServer() as srv:
        yield srv


@pytest.mark.parametrize("key", [SK_KEY, OPAQUE_KEY], ids=["sk-key", "opaque-key"])
def test_openai_401_echo_is_redacted(
    echo_server: _EchoKeyServer, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    pytest.importorskip("openai")
    from embedlens.embedders.openai import OpenAIEmbedder

    monkeypatch.setenv("OPENAI_API_KEY", key)
    emb = OpenAIEmbedder("text-embedding-3-small", base_url=echo_server.base_url, max_retries=0)
    with pytest.raises(EmbedderError) as info:
        emb.embed(["hello"])
    err = info.value
    assert "401" in str(err) and "Incorrect API key provided" in str(err) and REDACTED in str(err)
    assert "OPENAI_API_KEY" in str(err)  # says which variable holds the refused key
    chained = [err.__cause__, err.__context__ if not err.__suppress_context__ else None]
    for e in [err, *[c for c in chained if c is not None]]:
        assert key not in str(e) and key not in repr(e)


@pytest.mark.parametrize("key", [SK_KEY, OPAQUE_KEY], ids=["sk-key", "opaque-key"])
def test_cli_error_line_never_shows_the_key(
    echo_server: _EchoKeyServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    demo_dir: Path,
    key: str,
) -> None:
    pytest.importorskip("openai")
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("OPENAI_BASE_URL", echo_server.base_url)
    code = main(
        [
            "train",
            "--data",
            str(demo_dir),
            "--out",
            str(tmp_path / "lens"),
            "--model",
            "openai:text-embedding-3-small",
            "--no-cache",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code != 0 and key not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("embedlens: error:")]
    assert len(lines) == 1 and "401" in lines[0] and REDACTED in lines[0], err


def test_cli_redacts_any_error_and_the_debug_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The CLI's last line of defence: whatever raised, a key in the message is never printed."""
    import embedlens.app.cli as cli

    monkeypatch.setenv("OPENAI_API_KEY", OPAQUE_KEY)

    def boom(args: Any) -> int:
        raise RuntimeError(f"\nupstream said: bad key {OPAQUE_KEY} and {SK_KEY}")

    monkeypatch.setitem(cli._COMMANDS, "info", boom)
    assert main(["info", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert OPAQUE_KEY not in err and SK_KEY not in err
    assert err == f"embedlens: error: upstream said: bad key {REDACTED} and {REDACTED}\n"
    assert main(["info", str(tmp_path), "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and OPAQUE_KEY not in err and SK_KEY not in err


# --------------------------------------------------------------------------- review findings 7, 8, 9
@pytest.mark.parametrize(
    "header",
    [
        "x-functions-key",
        "X-Auth-Token-Id",
        "x-session-id",
        "Ocp-Apim-Subscription-Key",
        "X-Session",
        "Cookie",
    ],
)
@pytest.mark.parametrize("field", ["default_headers", "headers", "extra_headers"])
def test_secret_header_names_are_refused_in_header_mappings(header: str, field: str) -> None:
    """Finding 7: a header whose name has a key/token/auth/session/cookie segment is a secret there."""
    value = "f8Q2kLm9Pz3xVb7Nw1Rt"  # opaque: nothing in the value gives it away
    with pytest.raises(EmbedlensInputError) as info:
        refuse_secrets({"model_name": "m", field: {header: value}}, "base config")
    assert f"base config.{field}.{header}" in str(info.value) and value not in str(info.value)


def test_harmless_headers_and_max_tokens_stay_allowed() -> None:
    cfg = {"max_tokens": 512, "default_headers": {"X-Client-Name": "my-app", "X-Max-Tokens": "512"}}
    assert find_secret(cfg) is None


def test_chroma_function_with_secret_header_is_refused(tmp_path: Path) -> None:
    """Finding 7, end to end: the value would be stored in chroma.sqlite3."""
    pytest.importorskip("chromadb")
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

    from embedlens.adapters.chroma import LensEmbeddingFunction
    from embedlens.lens import Lens

    class Fn(EmbeddingFunction[Documents]):
        def __init__(self) -> None:
            pass

        def __call__(self, input: Documents) -> Embeddings:
            return [[1.0, 0.0, 0.0, 0.0] for _ in input]

        @staticmethod
        def name() -> str:
            return "fake-headers"

        def get_config(self) -> dict[str, Any]:
            return {"model_name": "m", "default_headers": {"x-functions-key": "f8Q2kLm9Pz3xVb7Nw1Rt"}}

    Lens.identity(4).save(tmp_path / "lens")
    with pytest.raises(EmbedlensInputError, match="x-functions-key"):
        LensEmbeddingFunction(Fn(), tmp_path / "lens", check_fingerprint=False)


@pytest.mark.parametrize("key", ["shortk2", "abc"])
def test_short_configured_key_is_redacted(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    """Finding 8: the configured key variable's value is redacted whatever its length (whole tokens)."""
    monkeypatch.setenv("OPENAI_API_KEY", key)
    out = redact(f"Incorrect API key provided: {key}. A {key}-tail and tabc{key}x and 'abc' stay")
    assert f"provided: {REDACTED}." in out and f"A {REDACTED}-tail" in out
    assert f"tabc{key}x" in out  # inside a word: left alone


def test_short_key_of_a_custom_variable_is_redacted(
    echo_server: _EchoKeyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 8, end to end: a 401 echoing a 7-character key from api_key_env."""
    pytest.importorskip("openai")
    from embedlens.embedders.openai import OpenAIEmbedder

    monkeypatch.setenv("MY_SERVICE_CRED", "shortk2")
    emb = OpenAIEmbedder(
        "text-embedding-3-small", base_url=echo_server.base_url, api_key_env="MY_SERVICE_CRED", max_retries=0
    )
    with pytest.raises(EmbedderError) as info:
        emb.embed(["hello"])
    assert "shortk2" not in str(info.value) and REDACTED in str(info.value)
    assert "shortk2" not in redact("later, elsewhere: shortk2")  # remembered for the CLI's last line


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("http://tok_abcdef0123456789@127.0.0.1:1/v1", "tok_abcdef0123456789"),
        ("http://:emptyuserSECRET99@127.0.0.1:1/v1", "emptyuserSECRET99"),
        ("http://127.0.0.1:1/v1?code=azfuncSECRET0123456789", "azfuncSECRET0123456789"),
        ("http://user:pw@127.0.0.1:1/v1", "user"),
    ],
)
def test_url_credentials_are_redacted(url: str, secret: str) -> None:
    """Finding 9: a URL's whole userinfo and every query value."""
    out = redact(f"no answer from {url} after retries")
    assert secret not in out and REDACTED in out and "127.0.0.1:1" in out


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("http://tok_abcdef0123456789@127.0.0.1:1/v1", "tok_abcdef0123456789"),
        ("http://:emptyuserSECRET99@127.0.0.1:1/v1", "emptyuserSECRET99"),
        ("http://127.0.0.1:1/v1?code=azfuncSECRET0123456789", "azfuncSECRET0123456789"),
    ],
)
def test_unreachable_base_url_credentials_never_printed(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    demo_dir: Path,
    url: str,
    secret: str,
) -> None:
    """Finding 9, end to end: the error line, the embedder's repr and the --debug traceback."""
    pytest.importorskip("openai")
    from embedlens.embedders.openai import OpenAIEmbedder

    monkeypatch.setenv("OPENAI_API_KEY", "sk-dummyKEYabcdefghijklmnop0000")
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    assert secret not in repr(OpenAIEmbedder("text-embedding-3-small", max_retries=0))
    args = ["train", "--data", str(demo_dir), "--out", str(tmp_path / "lens"), "--no-cache", "--quiet"]
    args += ["--model", "openai:text-embedding-3-small"]
    monkeypatch.setitem(OpenAIEmbedder.__init__.__kwdefaults__, "max_retries", 0)  # fail fast
    for extra in ([], ["--debug"]):
        assert main([*args, *extra]) == 1
        err = capsys.readouterr().err
        assert secret not in err, err
        assert "no answer from" in err


@pytest.mark.parametrize(
    "cfg",
    [
        {"default_headers": {"X-Pass": "hunter2hunter2"}},
        {"default_headers": {"X-Hmac": "0f9e8d7c6b5a4f3e2d1c"}},
        {"headers": {"X-Custom-Gateway": "abc123def456"}},
        {"api_base": "https://fn.example.invalid/api/embed?code=azfuncSECRET0123456789"},
        {"api_base": "https://acct.blob.example.invalid/c?sv=2024&sig=AbCdEf0123456789"},
    ],
)
def test_custom_headers_and_url_query_credentials_are_never_stored(cfg: dict[str, Any]) -> None:
    assert find_secret(cfg) is not None


def test_metadata_headers_and_api_version_are_stored() -> None:
    cfg = {
        "default_headers": {
            "User-Agent": "app/1.0",
            "OpenAI-Organization": "org-x",
            "x-stainless-os": "Linux",
        },
        "api_base": "https://res.openai.azure.example.invalid/openai?api-version=2024-02-01",
    }
    assert find_secret(cfg) is None
