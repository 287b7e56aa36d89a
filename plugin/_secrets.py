"""Recognise and redact credentials: by value (Bearer tokens, ``sk-…`` keys, secret environment values) and by name.

Used where embedlens persists a configuration (the Chroma adapter's stored config) and where it shows a
message (the OpenAI embedder's errors, the CLI's one-line error). Names are matched by whole word
(``api_key``, ``apiKey``, ``x-api-key``, ``token``, ``client_secret``, ``password``), so ``max_tokens``,
``tokenizer`` and ``api_key_env_var`` (which names a variable, not a value) are not secrets.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from embedlens.errors import EmbedlensInputError

__all__ = [
    "REDACTED",
    "SecretInConfigError",
    "env_secret_values",
    "find_secret",
    "is_secret_env_name",
    "is_secret_header_name",
    "is_secret_name",
    "looks_like_secret",
    "redact",
    "is_header_field",
    "register_key_env",
    "refuse_secrets",
]

REDACTED = "[REDACTED]"

#: Environment values shorter than this are never treated as secrets (``FOO_KEY=1`` is a flag, not a key).
MIN_SECRET_LEN = 8

# Words that make a name a credential when they appear as a whole segment of it.
_SECRET_WORDS = frozenset(
    {
        "apikey",
        "token",
        "secret",
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "authorization",
        "credential",
        "credentials",
        "cookie",
        "bearer",
    }
)
# Two consecutive segments that make a name a credential (``api_key``, ``apiKey``, ``x-api-key``, ``private_key``).
_SECRET_PAIRS = frozenset(
    {
        ("api", "key"),
        ("access", "key"),
        ("private", "key"),
        ("secret", "key"),
        ("auth", "key"),
        ("client", "key"),
        ("subscription", "key"),
        ("session", "key"),
        ("signing", "key"),
        ("auth", "header"),
    }
)
# A trailing segment that makes the name describe a credential rather than hold one
# (``api_key_env_var`` holds a variable name, ``token_limit`` a number, ``password_file`` a path).
_REFERENCE_TAILS = frozenset(
    {
        "env",
        "var",
        "variable",
        "name",
        "file",
        "path",
        "type",
        "limit",
        "limits",
        "count",
        "length",
        "len",
        "size",
        "budget",
        "url",
        "uri",
        "endpoint",
        "id",
        "field",
        "kind",
        "format",
        "ttl",
        "expiry",
        "expires",
        "prefix",
        "scheme",
        "location",
    }
)

# Values that are credentials whatever they are called. Each pattern's first group is kept when redacting.
_VALUE_PATTERNS = [
    # HTTP auth schemes with a credential: "Bearer <token>", "Basic <base64>", "Token <token>".
    # (Bearer takes any 8+ token characters; the other schemes need a digit, so prose is left alone.)
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=\-]{8,}"),
    re.compile(r"(?i)(\b(?:basic|token|digest)\s+)(?=[A-Za-z._~+/=\-]*[0-9])[A-Za-z0-9._~+/=\-]{8,}"),
    # OpenAI / Anthropic / many compatible servers: sk-..., sk-proj-..., sk-ant-...
    re.compile(r"()\bsk-[A-Za-z0-9][A-Za-z0-9_\-]{15,}"),
    # GitHub, Hugging Face, Slack, Google, AWS access key ids, GitLab.
    re.compile(r"()\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}"),
    re.compile(r"()\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"()\bhf_[A-Za-z0-9]{20,}"),
    re.compile(r"()\bxox[abprs]-[A-Za-z0-9\-]{10,}"),
    re.compile(r"()\bAIza[0-9A-Za-z_\-]{30,}"),
    re.compile(r"()\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"()\bglpat-[A-Za-z0-9_\-]{20,}"),
    # Credentials in a URL: scheme://USER:PASSWORD@host, scheme://TOKEN@host, scheme://:PASSWORD@host
    re.compile(r"(://)[^/\s@?#]+(?=@)"),
    # A key in a URL query: ?api_key=..., &token=..., &key=...
    re.compile(
        r"(?i)([?&](?:api[_-]?key|key|token|access[_-]?token|secret|password|sig|signature)=)[^&#\s]+"
    ),
    # "api-key: VALUE", "x-api-key=VALUE", "Authorization: VALUE", '"password": "VALUE"' in a message.
    re.compile(
        r"(?i)(\b(?:x-)?(?:api[-_]?key|authorization|access[-_]?token|client[-_]?secret|password)"
        r"[\"']?\s*[:=]\s*[\"']?)(?!bearer\b|basic\b|token\b|digest\b)[^\s\"',;&}]{4,}"
    ),
]


# Words that make a header name a credential wherever they appear as a segment of it: in a header
# mapping, ``X-Auth-Token-Id``, ``x-functions-key`` and ``x-session-id`` all carry secrets.
_HEADER_SECRET_WORDS = frozenset(
    {
        "key",
        "apikey",
        "token",
        "auth",
        "authorization",
        "authentication",
        "secret",
        "session",
        "sessionid",
        "cookie",
        "signature",
        "sig",
        "password",
        "passwd",
        "pwd",
        "credential",
        "credentials",
        "bearer",
        "jwt",
    }
)
# Names of config fields whose value is a mapping of HTTP headers.
_HEADER_FIELD = re.compile(r"(?i)(?:^|[^a-z])headers?$")

#: Environment variables named by embedders as their key variable (``api_key_env``): their values are
#: redacted from every message whatever their length.
_KEY_ENVS: set[str] = {"OPENAI_API_KEY"}

# A URL (to redact its userinfo and query values).
_URL = re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s'\"<>]+")


def register_key_env(name: str) -> None:
    """Remember that environment variable ``name`` holds an API key: its value is always redacted."""
    if name:
        _KEY_ENVS.add(str(name))


def segments(name: str) -> list[str]:
    """Lower-case words of an identifier: ``apiKey`` -> api, key; ``X-API-Key`` -> x, api, key."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def is_secret_name(name: str) -> bool:
    """Whether a config key or header name holds a credential (whole-word match).

    ``api_key``, ``apiKey``, ``X-Api-Key``, ``Authorization``, ``token``, ``client_secret``,
    ``password`` are secret names; ``max_tokens``, ``tokenizer``, ``api_key_env_var``, ``token_limit``
    are not.
    """
    words = segments(str(name))
    if not words or words[-1] in _REFERENCE_TAILS:
        return False
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in zip(words, words[1:], strict=False))


#: Header names whose values are plain metadata; inside a header mapping every other header is treated as a
#: credential (custom headers are how most gateways take keys: x-functions-key, X-Hmac, X-Pass, ...).
_HARMLESS_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "api-version",
        "cache-control",
        "content-type",
        "http-referer",
        "openai-beta",
        "openai-organization",
        "openai-project",
        "referer",
        "user-agent",
        "x-client-name",
        "x-client-version",
        "x-max-tokens",
        "x-ms-useragent",
        "x-request-id",
        "x-title",
    }
)


def is_secret_header_name(name: str) -> bool:
    """Whether an HTTP header (inside a header mapping) may carry a credential: every header but plain
    metadata (``Content-Type``, ``User-Agent``, ``OpenAI-Organization``, ``X-Request-Id``, ``x-stainless-*``
    ...). ``x-functions-key``, ``X-Auth-Token-Id``, ``X-Hmac`` and ``X-Pass`` are credentials.
    """
    lowered = str(name).strip().lower()
    if lowered in _HARMLESS_HEADERS or lowered.startswith("x-stainless-"):
        return False
    return True


def is_header_field(name: str) -> bool:
    """Whether a config field holds HTTP headers (``headers``, ``default_headers``, ``extraHeaders`` …)."""
    return bool(_HEADER_FIELD.search(str(name).replace("Headers", "_headers").replace("Header", "_header")))


def is_secret_env_name(name: str) -> bool:
    """Whether an environment variable holds a secret: ``*_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*_PASSWORD`` …"""
    upper = name.upper()
    if re.search(r"(?:^|_)(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|PAT|APIKEY|CREDENTIALS?)$", upper):
        return True
    return is_secret_name(name)


def env_secret_values(environ: dict[str, str] | None = None) -> list[str]:
    """The values of secret environment variables (longest first), at least :data:`MIN_SECRET_LEN` long."""
    env = os.environ if environ is None else environ
    values = {v.strip() for k, v in env.items() if v and is_secret_env_name(k)}
    return sorted(
        (v for v in values if len(v) >= MIN_SECRET_LEN and not _is_existing_path(v)), key=len, reverse=True
    )


def _is_existing_path(value: str) -> bool:
    """A variable such as ``GOOGLE_APPLICATION_CREDENTIALS`` names a file: the path itself is no secret."""
    return value.startswith(("/", "~", ".")) and os.path.exists(os.path.expanduser(value))


#: URL query parameters that never carry a credential (Azure's ``api-version`` and the like).
_HARMLESS_QUERY = frozenset(
    {"api-version", "api_version", "version", "format", "deployment", "model", "region"}
)
_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s\"'<>]+", re.IGNORECASE)


def _url_carries_secret(value: str) -> bool:
    """Whether a URL in ``value`` has userinfo or a query parameter other than plain metadata
    (``?code=...`` is an Azure Functions key, ``?sig=...`` a SAS signature)."""
    from urllib.parse import parse_qsl, urlsplit

    for m in _URL.finditer(value):
        try:
            parts = urlsplit(m.group(0))
        except ValueError:
            return True
        if "@" in parts.netloc:
            return True
        if any(k.lower() not in _HARMLESS_QUERY for k, _ in parse_qsl(parts.query, keep_blank_values=True)):
            return True
    return False


def looks_like_secret(value: str, *, env_values: Iterable[str] | None = None) -> bool:
    """Whether a string holds a credential: a known key format, an auth header value, or a secret env value."""
    if not isinstance(value, str) or not value:
        return False
    if any(p.search(value) for p in _VALUE_PATTERNS) or _url_carries_secret(value):
        return True
    values = env_secret_values() if env_values is None else env_values
    return any(v in value for v in values)


def redact(text: str, *, key_envs: Iterable[str] = ()) -> str:
    """``text`` with every credential replaced by ``[REDACTED]``.

    Replaced: the values of secret environment variables; the value of every key variable an embedder
    uses (``OPENAI_API_KEY``, ``api_key_env``, ``key_envs``) whatever its length (a short one only as a
    whole token, so ``ab`` inside ``tab`` stays); a URL's whole userinfo (``scheme://USER:PASS@``) and
    every value of its query string; known key formats (Bearer tokens, ``sk-…``).
    """
    if not text:
        return text
    out = str(text)
    for v in env_secret_values():
        out = out.replace(v, REDACTED)
    short = {os.environ.get(k, "").strip() for k in {*_KEY_ENVS, *key_envs}}
    for v in sorted((v for v in short if v), key=len, reverse=True):
        if len(v) >= MIN_SECRET_LEN:
            out = out.replace(v, REDACTED)
        else:
            out = re.sub(rf"(?<![A-Za-z0-9]){re.escape(v)}(?![A-Za-z0-9])", REDACTED, out)
    out = _URL.sub(lambda m: _redact_url(m.group(0)), out)
    for p in _VALUE_PATTERNS:
        out = p.sub(lambda m: m.group(1) + REDACTED, out)
    return out


def _redact_url(url: str) -> str:
    """``url`` with its userinfo and every query value replaced by ``[REDACTED]``."""
    scheme, sep, rest = url.partition("://")
    end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        authority = REDACTED + "@" + authority.rpartition("@")[2]
    path, q, query = tail.partition("?")
    if q:
        query, h, frag = query.partition("#")
        query = re.sub(r"=[^&;]*", "=" + REDACTED, query)
        path = path + "?" + query + h + frag
    return scheme + sep + authority + path


def find_secret(obj: Any, where: str = "config") -> str | None:
    """The path (``config.default_headers.Authorization``) of the first credential in ``obj``, or None.

    Checks every key by name (a non-empty string value under a secret name) and every string, key or
    value, by value; recurses into dicts, lists and tuples.
    """
    return _find(obj, where, env_secret_values())


def _find(obj: Any, where: str, env_values: list[str], headers: bool = False) -> str | None:
    if isinstance(obj, str):
        return where if looks_like_secret(obj, env_values=env_values) else None
    if isinstance(obj, bytes):
        return _find(obj.decode("utf-8", "replace"), where, env_values)
    if isinstance(obj, dict):
        for k, v in obj.items():
            path = f"{where}.{k}"
            if isinstance(k, str) and looks_like_secret(k, env_values=env_values):
                return f"{where} (a key)"
            secret_name = is_secret_header_name(k) if headers else is_secret_name(k)
            if isinstance(k, str) and secret_name and _has_text(v):
                return path
            hit = _find(v, path, env_values, isinstance(k, str) and is_header_field(k))
            if hit is not None:
                return hit
        return None
    if isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            hit = _find(v, f"{where}[{i}]", env_values, headers)
            if hit is not None:
                return hit
    return None


def _has_text(obj: Any) -> bool:
    """Whether ``obj`` is, or holds, a non-empty string (numbers and booleans are never credentials)."""
    if isinstance(obj, str | bytes):
        return bool(obj)
    if isinstance(obj, dict):
        return any(_has_text(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return any(_has_text(v) for v in obj)
    return False


class SecretInConfigError(EmbedlensInputError):
    """A configuration that would be persisted holds a credential."""


def refuse_secrets(obj: Any, where: str = "config", *, store: str = "a stored config") -> None:
    """Raise if ``obj`` holds anything that looks like a credential (the message names where, never the value).

    Raises:
        SecretInConfigError: naming the offending field.
    """
    hit = find_secret(obj, where)
    if hit is not None:
        msg = (
            f"refusing to store {hit} in {store}: it looks like a credential (an API key, token or "
            "Authorization header); pass secrets by environment variable (e.g. api_key_env_var) instead"
        )
        raise SecretInConfigError(msg)
