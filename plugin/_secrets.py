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
    "is_secret_name",
    "looks_like_secret",
    "redact",
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
    # A password in a URL: scheme://user:PASSWORD@host
    re.compile(r"(://[^/\s:@]+:)[^/\s@]+(?=@)"),
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


def _segments(name: str) -> list[str]:
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
    words = _segments(str(name))
    if not words or words[-1] in _REFERENCE_TAILS:
        return False
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in zip(words, words[1:], strict=False))


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


def looks_like_secret(value: str, *, env_values: Iterable[str] | None = None) -> bool:
    """Whether a string holds a credential: a known key format, an auth header value, or a secret env value."""
    if not isinstance(value, str) or not value:
        return False
    if any(p.search(value) for p in _VALUE_PATTERNS):
        return True
    values = env_secret_values() if env_values is None else env_values
    return any(v in value for v in values)


def redact(text: str) -> str:
    """``text`` with every credential replaced by ``[REDACTED]`` (secret env values, then known formats)."""
    if not text:
        return text
    out = str(text)
    for v in env_secret_values():
        out = out.replace(v, REDACTED)
    for p in _VALUE_PATTERNS:
        out = p.sub(lambda m: m.group(1) + REDACTED, out)
    return out


def find_secret(obj: Any, where: str = "config") -> str | None:
    """The path (``config.default_headers.Authorization``) of the first credential in ``obj``, or None.

    Checks every key by name (a non-empty string value under a secret name) and every string, key or
    value, by value; recurses into dicts, lists and tuples.
    """
    return _find(obj, where, env_secret_values())


def _find(obj: Any, where: str, env_values: list[str]) -> str | None:
    if isinstance(obj, str):
        return where if looks_like_secret(obj, env_values=env_values) else None
    if isinstance(obj, bytes):
        return _find(obj.decode("utf-8", "replace"), where, env_values)
    if isinstance(obj, dict):
        for k, v in obj.items():
            path = f"{where}.{k}"
            if isinstance(k, str) and looks_like_secret(k, env_values=env_values):
                return f"{where} (a key)"
            if isinstance(k, str) and is_secret_name(k) and _has_text(v):
                return path
            hit = _find(v, path, env_values)
            if hit is not None:
                return hit
        return None
    if isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            hit = _find(v, f"{where}[{i}]", env_values)
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
