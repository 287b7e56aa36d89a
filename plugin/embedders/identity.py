"""Cache identities: a digest of everything that changes a vector, and never a secret.

An embedder's ``identity`` is the key its vectors are stored under in the embedding cache. Two
embedders share cached rows only when their identities are equal, so the identity must cover
every setting that changes a vector (model files, prompts, output dimensions, server, wrapper
config) and leave out what does not (API keys, timeouts, batch sizes). Secrets are dropped before
anything is digested: a digest that is stored never depends on a key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from embedlens import _secrets

__all__ = [
    "DigestMemo",
    "digest",
    "make_identity",
    "file_sha256",
    "model_dir_digest",
    "public_config",
    "local_model_digests",
    "is_secret_name",
    "looks_like_secret",
    "embed_queries",
    "identity_of",
    "query_identity_of",
]

#: extra words that keep a field out of an identity digest (stricter than what stored configs refuse:
#: leaving a harmless field out of a digest costs nothing, hashing a key would tie the cache to it).
_EXTRA_SECRET_WORDS = frozenset({"key", "auth", "signature"})
_SKIP_DIRS = frozenset({"onnx", "openvino"})
_CHUNK = 1 << 20


class DigestMemo(Protocol):
    """A persistent store of file digests (the embedding cache implements it)."""

    def get_file_digest(self, path: str, size: int, mtime_ns: int) -> str | None:
        """The stored sha256 of ``path`` at this size and mtime, or None."""
        ...

    def put_file_digest(self, path: str, size: int, mtime_ns: int, sha256: str) -> None:
        """Remember the sha256 of ``path`` at this size and mtime."""
        ...


_MEMO: dict[tuple[str, int, int], str] = {}
_MEMO_LOCK = threading.Lock()


def digest(obj: Any) -> str:
    """The sha256 (hex) of ``obj`` as canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_type_name)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def make_identity(name: str, parts: Any) -> str:
    """A cache identity: the readable ``name`` then the digest of ``parts`` (what changes a vector)."""
    return f"{name}#{digest(parts)}"


def _type_name(obj: Any) -> str:
    t = type(obj)
    return f"<{t.__module__}.{t.__qualname__}>"


def file_sha256(path: str | os.PathLike[str], memo: DigestMemo | None = None) -> str:
    """sha256 (hex) of a file's bytes, memoised by (resolved path, size, mtime_ns).

    The in-process memo is always used; ``memo`` (e.g. the embedding cache) keeps digests across
    runs, so a large model is read in full only when one of its files changes.
    """
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), int(st.st_size), int(st.st_mtime_ns))
    with _MEMO_LOCK:
        found = _MEMO.get(key)
    if found is None and memo is not None:
        try:
            found = memo.get_file_digest(*key)
        except Exception:  # noqa: BLE001 - a closed or read-only cache is only a missed speed-up
            memo = None
    if found is None:
        h = hashlib.sha256()
        with p.open("rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        found = h.hexdigest()
        if memo is not None:
            try:
                memo.put_file_digest(*key, found)
            except Exception:  # noqa: BLE001 - as above
                pass
    with _MEMO_LOCK:
        _MEMO[key] = found
    return found


def _model_files(root: Path) -> list[Path]:
    """The files of a sentence-transformers directory that can change a vector.

    Top-level files (configs, tokenizer, weights) and every module folder named in
    ``modules.json``, recursively; hidden files, Markdown and other backends' exports
    (``onnx/``, ``openvino/``) are left out.
    """
    dirs: set[Path] = set()
    modules = root / "modules.json"
    if modules.is_file():
        try:
            entries = json.loads(modules.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            entries = []
        for entry in entries if isinstance(entries, list) else []:
            sub = entry.get("path") if isinstance(entry, dict) else None
            if isinstance(sub, str) and sub:
                dirs.add(root / sub)

    def keep(p: Path) -> bool:
        return not p.name.startswith(".") and p.suffix.lower() != ".md" and p.is_file()

    files = [p for p in root.iterdir() if keep(p)]
    for d in sorted(dirs):
        if not d.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(d, followlinks=True):
            dirnames[:] = sorted(n for n in dirnames if not n.startswith(".") and n not in _SKIP_DIRS)
            files.extend(p for p in (Path(dirpath) / n for n in filenames) if keep(p))
    return sorted(set(files))


def model_dir_digest(root: str | os.PathLike[str], memo: DigestMemo | None = None) -> str:
    """sha256 (hex) over the relative names and contents of a model directory's files."""
    base = Path(root).resolve()
    listing = [(p.relative_to(base).as_posix(), file_sha256(p, memo)) for p in _model_files(base)]
    return digest(listing)


def array_digest(tensors: Mapping[str, Any]) -> str:
    """sha256 (hex) of named arrays (names, dtypes, shapes and bytes), for models without files."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        arr = np.ascontiguousarray(np.asarray(tensors[name]))
        h.update(f"{name}|{arr.dtype.str}|{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def is_secret_name(name: str) -> bool:
    """Whether a field/header name may hold a credential: :func:`embedlens._secrets.is_secret_name`
    (whole words: ``api_key``, ``Authorization``; ``max_tokens`` is not), or any name with the word
    ``key``, ``auth`` or ``signature``."""
    return _secrets.is_secret_name(str(name)) or bool(_EXTRA_SECRET_WORDS.intersection(_words(str(name))))


def _secret_env_values() -> set[str]:
    return set(_secrets.env_secret_values())


def looks_like_secret(value: Any, env_values: set[str] | None = None) -> bool:
    """Whether a value is a credential: a pydantic ``SecretStr``/``SecretBytes``, raw bytes, or what
    :func:`embedlens._secrets.looks_like_secret` recognises (Bearer/Basic headers, ``sk-…`` keys, the
    value of a secret environment variable)."""
    if type(value).__name__ in {"SecretStr", "SecretBytes", "Secret"}:
        return True
    if isinstance(value, bytes | bytearray):
        return True
    if not isinstance(value, str):
        return False
    envs = _secret_env_values() if env_values is None else env_values
    return _secrets.looks_like_secret(value, env_values=envs)


def public_config(obj: Any, *, _depth: int = 0, _env: set[str] | None = None) -> Any:
    """A JSON-able view of a config (dict, pydantic model or object), with every secret left out.

    Fields whose name is a credential name and values that look like credentials are dropped;
    objects that are not plain data (clients, callables) are reduced to their type name, so the
    result is stable across processes.
    """
    env = _secret_env_values() if _env is None else _env
    if _depth > 8:
        return _type_name(obj)
    if obj is None or isinstance(obj, bool | int | str):
        return None if isinstance(obj, str) and looks_like_secret(obj, env) else obj
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else str(obj)
    if isinstance(obj, np.generic):
        return public_config(obj.item(), _depth=_depth + 1, _env=env)
    if looks_like_secret(obj, env):
        return None
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            if is_secret_name(str(k)) or looks_like_secret(v, env):
                continue
            out[str(k)] = public_config(v, _depth=_depth + 1, _env=env)
        return out
    if isinstance(obj, set | frozenset):
        return sorted(json.dumps(public_config(v, _depth=_depth + 1, _env=env)) for v in obj)
    if isinstance(obj, Sequence):
        return [public_config(v, _depth=_depth + 1, _env=env) for v in obj]
    dump = getattr(obj, "model_dump", None)
    if callable(dump) and _depth == 0:
        try:
            return {"@type": _type_name(obj), **public_config(dump(), _depth=_depth + 1, _env=env)}
        except Exception:  # noqa: BLE001 - a model that cannot dump: fall back to attributes
            pass
    if _depth == 0 and hasattr(obj, "__dict__"):
        attrs = {k: v for k, v in vars(obj).items() if not k.startswith("_")}
        return {"@type": _type_name(obj), **public_config(attrs, _depth=_depth + 1, _env=env)}
    return _type_name(obj)


def local_model_digests(config: Any, memo: DigestMemo | None = None) -> dict[str, str]:
    """Digests of the local model directories a config names (e.g. ``model_name="/a/final"``).

    A wrapper's config holds a local model by path only; the path alone would let ``/a/final``
    and a retrained ``/a/final`` share rows, so the directory's files are digested too.
    """
    found: dict[str, str] = {}

    def visit(value: Any, depth: int) -> None:
        if depth > 8:
            return
        if isinstance(value, Mapping):
            for v in value.values():
                visit(v, depth + 1)
        elif isinstance(value, list | tuple):
            for v in value:
                visit(v, depth + 1)
        elif isinstance(value, str) and 0 < len(value) < 4096 and ("/" in value or os.sep in value):
            path = Path(value).expanduser()
            try:
                is_model = path.is_dir() and any(
                    (path / n).is_file() for n in ("config.json", "modules.json")
                )
            except OSError:
                return
            if is_model:
                root = path.resolve()
                found[str(root)] = model_dir_digest(root, memo)

    visit(config, 0)
    return found


# --------------------------------------------------------------------------- embedder helpers
def identity_of(embedder: Any) -> str:
    """The cache identity of an embedder's document vectors (its ``identity``, else its ``name``)."""
    value = getattr(embedder, "identity", None)
    return str(value) if value else str(embedder.name)


def query_identity_of(embedder: Any) -> str:
    """The cache identity of an embedder's query vectors.

    Its ``query_identity`` when it has one; else the document identity for an embedder without a
    query path (queries are documents), else the document identity marked ``|query``.
    """
    value = getattr(embedder, "query_identity", None)
    if value:
        return str(value)
    base = identity_of(embedder)
    return f"{base}|query" if callable(getattr(embedder, "embed_queries", None)) else base


def embed_queries(embedder: Any, texts: Sequence[str]) -> np.ndarray:
    """Embed ``texts`` as queries: ``embedder.embed_queries`` when it has one, else ``embed``."""
    fn = getattr(embedder, "embed_queries", None)
    return np.asarray(fn(texts) if callable(fn) else embedder.embed(texts), dtype=np.float32)
