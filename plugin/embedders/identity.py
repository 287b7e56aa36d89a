"""Cache identities: a digest of everything that changes a vector, and never a secret.

An embedder's ``identity`` is the key its vectors are stored under in the embedding cache. Two
embedders share cached rows only when their identities are equal, so the identity must cover
every setting that changes a vector (model files, prompts, output dimensions, server, wrapper
config) and leave out what does not (API keys, timeouts, batch sizes). Secrets are dropped before
anything is digested: a digest that is stored never depends on a key.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
import os
import re
import threading
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from embedlens import _secrets
from embedlens.errors import EmbedlensInputError

__all__ = [
    "DigestMemo",
    "digest",
    "make_identity",
    "file_sha256",
    "model_dir_digest",
    "public_config",
    "UnidentifiableConfigError",
    "check_cacheable",
    "sentence_transformer_dir",
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


def is_secret_name(name: str) -> bool:
    """Whether a field/header name may hold a credential: :func:`embedlens._secrets.is_secret_name`
    (whole words: ``api_key``, ``Authorization``; ``max_tokens`` is not), or any name with the word
    ``key``, ``auth`` or ``signature``."""
    return _secrets.is_secret_name(str(name)) or bool(
        _EXTRA_SECRET_WORDS.intersection(_secrets.segments(str(name)))
    )


def _is_header_mapping(name: str) -> bool:
    return _secrets.is_header_field(name)


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


class UnidentifiableConfigError(EmbedlensInputError):
    """A wrapped object's config holds something whose state cannot be identified reliably.

    Caching its vectors under a guessed key could serve one model's vectors for another, so an
    embedding cache refuses it; pass an explicit ``cache_id=`` to the wrapper (a name that changes
    whenever the vectors would), or embed without a cache.
    """


class _Unknown(Exception):
    """Internal: ``where`` holds an object of type ``what`` whose state cannot be digested."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{where} holds {what}")
        self.where = where
        self.what = what


_MAX_DEPTH = 12
_TORCH_MODULE = "torch.nn.modules.module.Module"


def _mro_names(obj: Any) -> set[str]:
    return {f"{c.__module__}.{c.__qualname__}" for c in type(obj).__mro__}


def public_config(
    obj: Any,
    *,
    strict: bool = False,
    _depth: int = 0,
    _env: set[str] | None = None,
    _where: str = "config",
    _stack: tuple[int, ...] = (),
    _headers: bool = False,
) -> Any:
    """A JSON-able view of a config (dict, pydantic model or object), with every secret left out.

    Fields whose name is a credential name and values that look like credentials are dropped.
    Nested objects are reduced to their plain-data state, recursively (bounded depth): pydantic
    models by ``model_dump()``, numpy arrays and torch modules by a digest of their values, a
    sentence-transformers model by its resolved directory and a digest of its files, functions by
    their qualified name, other objects by their attributes. Nothing depends on an address, so the
    result is stable across processes.

    Args:
        obj: the config or object.
        strict: raise instead of reducing an object whose state cannot be identified (one without
            attributes, a closure, too deep) to its type name.

    Raises:
        UnidentifiableConfigError: with ``strict``, naming where the unidentifiable object is.
    """
    try:
        return _state(
            obj, _depth, _secret_env_values() if _env is None else _env, _where, _stack, strict, _headers
        )
    except _Unknown as e:
        raise UnidentifiableConfigError(
            f"{e.where} holds a {e.what} whose state cannot be identified for the embedding cache"
        ) from None


def _state(
    obj: Any, depth: int, env: set[str], where: str, stack: tuple[int, ...], strict: bool, headers: bool
) -> Any:
    def fail() -> Any:
        if strict:
            raise _Unknown(where, _type_name(obj))
        return _type_name(obj)

    def sub(value: Any, name: str, in_headers: bool = False) -> Any:
        path = f"{where}.{name}" if name else where
        return _state(value, depth + 1 if name else depth, env, path, stack + (id(obj),), strict, in_headers)

    if depth > _MAX_DEPTH:
        return fail()
    if obj is None or isinstance(obj, bool | int | str):
        return None if isinstance(obj, str) and looks_like_secret(obj, env) else obj
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else str(obj)
    if isinstance(obj, np.generic):
        return sub(obj.item(), "item")
    if looks_like_secret(obj, env):
        return None
    if id(obj) in stack:
        return "@cycle"
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            return {
                "@ndarray": [sub(v, f"[{i}]") for i, v in enumerate(obj.ravel().tolist())],
                "shape": obj.shape,
            }
        return {"@ndarray": array_digest({"a": obj})}
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            secret = _secrets.is_secret_header_name(str(k)) if headers else is_secret_name(str(k))
            if secret or looks_like_secret(v, env):
                continue
            out[str(k)] = sub(v, str(k), _is_header_mapping(str(k)))
        return out
    if isinstance(obj, set | frozenset):
        return sorted(json.dumps(sub(v, "[]")) for v in obj)
    if isinstance(obj, Sequence):
        return [sub(v, f"[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, os.PathLike):
        return {"@path": os.fspath(obj)}
    if isinstance(obj, enum.Enum):
        return f"{_type_name(obj)}.{obj.name}"
    if isinstance(obj, type):
        return f"<class {obj.__module__}.{obj.__qualname__}>"
    if isinstance(obj, functools.partial):
        return {
            "@partial": sub(obj.func, "func"),
            "args": sub(obj.args, "args"),
            "kw": sub(obj.keywords, "kw"),
        }
    if isinstance(obj, types.MethodType):
        return {"@method": obj.__func__.__qualname__, "self": sub(obj.__self__, "__self__")}
    if isinstance(obj, types.BuiltinFunctionType):
        return f"<builtin {getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}>"
    if isinstance(obj, types.FunctionType):  # its code, defaults and captured values: two lambdas differ
        cells = [c.cell_contents for c in obj.__closure__ or () if _cell_filled(c)]
        return {
            "@function": f"{obj.__module__}.{obj.__qualname__}",
            "code": _code_digest(obj.__code__),
            "defaults": sub(obj.__defaults__, "__defaults__"),
            "kwdefaults": sub(obj.__kwdefaults__, "__kwdefaults__"),
            "closure": sub(cells, "__closure__"),
        }
    mro = _mro_names(obj)
    if any(n.startswith("sentence_transformers.") and n.endswith(".SentenceTransformer") for n in mro):
        return _sentence_transformer_state(obj, sub)
    if _TORCH_MODULE in mro:
        return _torch_module_state(obj, fail)
    dump = getattr(obj, "model_dump", None)
    if callable(dump) and not isinstance(obj, type):
        try:
            dumped = dump()
        except Exception:  # noqa: BLE001 - a model that cannot dump: fall back to attributes
            dumped = None
        if isinstance(dumped, Mapping):
            return {"@type": _type_name(obj), **sub(dumped, "model_dump()")}
    attrs = getattr(obj, "__dict__", None)
    if not isinstance(attrs, Mapping) or hasattr(type(obj), "__slots__") and _slot_values(obj):
        return fail()
    # Private attributes too: ``self._model`` changes the output as much as a public attribute does.
    keep = {k: v for k, v in attrs.items() if not k.startswith("__")}
    return {"@type": _type_name(obj), **sub(keep, "")}


def _cell_filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def _code_digest(code: types.CodeType) -> str:
    """sha256 of a function's bytecode, names and plain constants (nested code objects recursively)."""
    h = hashlib.sha256(code.co_code)
    h.update(repr(code.co_names).encode())
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            h.update(_code_digest(c).encode())
        else:  # a frozenset's order varies with the string hash seed: sort it
            h.update(repr(sorted(map(repr, c)) if isinstance(c, frozenset) else c).encode())
    return h.hexdigest()


def _slot_values(obj: Any) -> bool:
    """Whether ``obj`` holds values in ``__slots__`` (state that ``__dict__`` does not show)."""
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()) or ():
            if name not in ("__dict__", "__weakref__") and hasattr(obj, name):
                return True
    return False


def _torch_module_state(obj: Any, fail: Any) -> Any:
    text = repr(obj)
    if re.search(r"0x[0-9a-fA-F]{6,}", text):
        return fail()
    try:
        state = {k: v.detach().cpu().float().numpy() for k, v in obj.state_dict().items()}
    except Exception:  # noqa: BLE001 - a module whose state cannot be read
        return fail()
    return {"@type": _type_name(obj), "modules": text, "weights": array_digest(state)}


def sentence_transformer_dir(model: Any) -> Path | None:
    """The directory a loaded sentence-transformers model was read from (holding ``modules.json``), or None."""
    candidates: list[Any] = [getattr(getattr(model, "tokenizer", None), "name_or_path", None)]
    try:
        first = model[0]
        candidates.append(
            getattr(getattr(getattr(first, "auto_model", None), "config", None), "_name_or_path", None)
        )
    except Exception:  # noqa: BLE001 - not indexable: only the tokenizer's path
        pass
    for c in candidates:
        if not isinstance(c, str) or not c:
            continue
        path = Path(c).expanduser()
        for d in (path, path.parent):
            try:
                if (d / "modules.json").is_file():
                    return d.resolve()
            except OSError:
                continue
    return None


def _sentence_transformer_state(obj: Any, sub: Any) -> Any:
    state: dict[str, Any] = {
        "@type": _type_name(obj),
        "prompts": sub(getattr(obj, "prompts", None), "prompts"),
        "default_prompt_name": sub(getattr(obj, "default_prompt_name", None), "default_prompt_name"),
        "truncate_dim": sub(getattr(obj, "truncate_dim", None), "truncate_dim"),
    }
    root = sentence_transformer_dir(obj)
    if root is not None:
        return {**state, "path": str(root), "files": model_dir_digest(root)}
    try:  # not read from a directory we can find: digest the loaded weights
        weights = {k: v.detach().cpu().float().numpy() for k, v in obj.state_dict().items()}
    except Exception:  # noqa: BLE001 - as above
        raise _Unknown("config", _type_name(obj)) from None
    return {**state, "modules": repr(obj), "weights": array_digest(weights)}


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
def check_cacheable(embedder: Any) -> None:
    """Raise when an embedder's vectors cannot be keyed reliably (see :class:`UnidentifiableConfigError`).

    Raises:
        UnidentifiableConfigError: the embedder's ``cache_problem``, naming it and what to do.
    """
    problem = getattr(embedder, "cache_problem", None)
    if problem:
        raise UnidentifiableConfigError(str(problem))


def identity_of(embedder: Any) -> str:
    """The cache identity of an embedder's document vectors (its ``identity``, else its ``name``).

    Raises:
        UnidentifiableConfigError: the embedder cannot be identified (see :func:`check_cacheable`).
    """
    check_cacheable(embedder)
    value = getattr(embedder, "identity", None)
    return str(value) if value else str(embedder.name)


def query_identity_of(embedder: Any) -> str:
    """The cache identity of an embedder's query vectors.

    Its ``query_identity`` when it has one; else the document identity for an embedder without a
    query path (queries are documents), else the document identity marked ``|query``.
    """
    check_cacheable(embedder)
    value = getattr(embedder, "query_identity", None)
    if value:
        return str(value)
    base = identity_of(embedder)
    return f"{base}|query" if callable(getattr(embedder, "embed_queries", None)) else base


def embed_queries(embedder: Any, texts: Sequence[str]) -> np.ndarray:
    """Embed ``texts`` as queries: ``embedder.embed_queries`` when it has one, else ``embed``."""
    fn = getattr(embedder, "embed_queries", None)
    return np.asarray(fn(texts) if callable(fn) else embedder.embed(texts), dtype=np.float32)
