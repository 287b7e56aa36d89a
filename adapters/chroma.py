"""Chroma, both directions: an embedding function that applies a lens on top of any Chroma embedding function
(:class:`LensEmbeddingFunction`), an embedlens base model as a Chroma function (:class:`EmbedderEmbeddingFunction`),
and any Chroma function as an embedlens base embedder (:class:`ChromaEmbedder`, for training and the cache).

Documents (``__call__``) are projected at index time by a symmetric lens and passed through by a
query lens; queries arrive through ``embed_query`` (Chroma sends ``query_texts`` there) and are
always projected. The stored configuration names the base function and the lens directory with its
sha256: never the matrix, never an API key. Importing this module registers the function with
Chroma, so a persisted collection re-opens with the same lens.

Example:
    >>> import chromadb
    >>> from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction
    >>> from embedlens.adapters.chroma import LensEmbeddingFunction
    >>> ef = LensEmbeddingFunction(SentenceTransformerEmbeddingFunction(model_path), "my_lens/")
    >>> col = chromadb.PersistentClient("db").get_or_create_collection("docs", embedding_function=ef)
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import (
    config_to_embedding_function,
    register_embedding_function,
)

from embedlens._arrays import stack_vectors
from embedlens._secrets import refuse_secrets
from embedlens.adapters._lenses import as_lens
from embedlens.adapters._wrapping import LazyDim, as_list, cache_problem, checked, qualname
from embedlens.embedders.identity import (
    UnidentifiableConfigError,
    identity_of,
    local_model_digests,
    make_identity,
    public_config,
    query_identity_of,
)
from embedlens.errors import DimensionMismatchError, EmbedlensInputError, LensFormatError, TextsTypeError
from embedlens.lens import PROBE_SENTENCES, Lens

__all__ = [
    "ChromaEmbedder",
    "LensEmbeddingFunction",
    "EmbedderEmbeddingFunction",
    "check_collection_name",
    "reproject_collection",
    "wrap_function",
]

NAME = "embedlens"
_BASE_CACHE: dict[str, Any] = {}
_BASE_LOCK = threading.RLock()
# (base config, lens sha256) pairs whose probes passed the fingerprint check (strict instances only) ...
_CHECKED: set[tuple[str, str]] = set()
# ... and those whose probes only passed the dimension check (check_fingerprint=False).
_DIM_CHECKED: set[tuple[str, str]] = set()


def _config_key(config: dict[str, Any]) -> str:
    import json

    return json.dumps(config, sort_keys=True, default=str)


@register_embedding_function
class LensEmbeddingFunction(EmbeddingFunction[Documents]):
    """A Chroma embedding function: ``base_ef`` followed by a lens.

    Args:
        base_ef: any Chroma embedding function with a config (``name()``/``get_config()``), e.g.
            ``SentenceTransformerEmbeddingFunction`` or ``OpenAIEmbeddingFunction`` configured
            with ``api_key_env_var``.
        lens: a :class:`~embedlens.Lens` saved to disk, or the path of a lens directory (the
            path is what the collection's config records).
        check_fingerprint: embed the probe sentences once and refuse a base model that is not the
            one the lens was trained on.

    Raises:
        LensFormatError: the lens was never saved (no path to record) or is invalid.
        EmbedlensInputError: the base function's config holds a credential (an API key, a token, an
            ``Authorization`` header), which Chroma would store in plain text.
        DimensionMismatchError / FingerprintMismatchError: the base function does not fit the lens.
    """

    def __init__(
        self, base_ef: Any, lens: Lens | str | os.PathLike[str], *, check_fingerprint: bool = True
    ) -> None:
        self.base_ef = base_ef
        self.lens = as_lens(lens)
        if self.lens.path is None or self.lens.weights_sha256 is None:
            msg = "the Chroma adapter records the lens by path: save the lens first (lens.save(dir))"
            raise LensFormatError(msg)
        self.check_fingerprint = check_fingerprint
        # Refuse now: Chroma swallows a failing get_config() and would store the collection without its lens.
        _refuse_secrets(self._base_config())
        self._verify_base()

    def _verify_base(self) -> None:
        key = (_config_key(self._base_config()), str(self.lens.weights_sha256))
        # A lax instance never vouches for the pair: a later strict one must still check the fingerprint.
        if key in _CHECKED or (not self.check_fingerprint and key in _DIM_CHECKED):
            return
        probes = stack_vectors(self.base_ef(list(PROBE_SENTENCES)), name="base embedding function")
        self.lens.check_probes(probes, model_name=self._base_name(), check_fingerprint=self.check_fingerprint)
        if self.check_fingerprint:
            _CHECKED.add(key)
        _DIM_CHECKED.add(key)

    # ------------------------------------------------------------------ embedding
    def __call__(self, input: Documents) -> Embeddings:
        """Embed documents: ``(n, doc_dim)`` float32 rows (projected by a symmetric lens).

        Raises:
            TextsTypeError: ``input`` is a single string (it would be embedded character by character).
        """
        _check_texts(input, "LensEmbeddingFunction.__call__")
        raw = stack_vectors(self.base_ef(input), name=self._base_name())
        return list(self.lens.project_documents(raw))

    def embed_query(self, input: Documents) -> Embeddings:
        """Embed query texts: always projected by the lens.

        Raises:
            TextsTypeError: ``input`` is a single string (pass ``[text]``).
        """
        _check_texts(input, "LensEmbeddingFunction.embed_query")
        base_query = getattr(self.base_ef, "embed_query", None)
        raw_list = base_query(input) if callable(base_query) else self.base_ef(input)
        raw = stack_vectors(raw_list, name=self._base_name())
        return list(self.lens.project_queries(raw))

    # ------------------------------------------------------------------ Chroma protocol
    @staticmethod
    def name() -> str:
        """Registry name: ``"embedlens"``."""
        return NAME

    def default_space(self) -> Space:
        """Lens outputs are compared by cosine."""
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        """Cosine first; ``ip`` and ``l2`` are equivalent on normalised outputs."""
        return ["cosine", "ip", "l2"]

    def _base_name(self) -> str:
        return str(self.base_ef.name()) if hasattr(self.base_ef, "name") else type(self.base_ef).__name__

    def _base_config(self) -> dict[str, Any]:
        cfg = self.base_ef.get_config() if hasattr(self.base_ef, "get_config") else NotImplemented
        if cfg is NotImplemented or not isinstance(cfg, dict):
            msg = f"base embedding function {self._base_name()!r} has no config; Chroma could not rebuild it"
            raise EmbedlensInputError(msg)
        return {"name": self._base_name(), "config": cfg}

    def get_config(self) -> dict[str, Any]:
        """JSON config: base function (name + its own config), lens path, sha256 and shape."""
        base = self._base_config()
        _refuse_secrets(base)
        return {
            "base": base,
            "lens_path": str(self.lens.path),
            "lens_sha256": self.lens.weights_sha256,
            "lens_d_in": self.lens.d_in,
            "lens_d_out": self.lens.d_out,
            "lens_mode": self.lens.mode,
            "check_fingerprint": self.check_fingerprint,
        }

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> LensEmbeddingFunction:
        """Rebuild from a stored config (the base function and lens are loaded once per process).

        Raises:
            LensFormatError: the lens directory is missing, moved or changed since the collection
                was configured; the message names the path and how to re-point the collection.
        """
        LensEmbeddingFunction.validate_config(config)
        path = config["lens_path"]
        try:
            lens = as_lens(path)
        except LensFormatError as e:
            raise LensFormatError(
                f"the collection's lens at {path} cannot be loaded ({e}). If the lens moved, re-point "
                "the collection: collection.modify(configuration={'embedding_function': "
                "LensEmbeddingFunction(base_ef, NEW_PATH)})"
            ) from e
        if lens.weights_sha256 != config["lens_sha256"]:
            raise LensFormatError(
                f"the lens at {path} has sha256 {str(lens.weights_sha256)[:12]}… but the collection was "
                f"built with {str(config['lens_sha256'])[:12]}…; vectors would not match. Re-point with "
                "collection.modify(configuration={'embedding_function': LensEmbeddingFunction(base_ef, PATH)})"
            )
        key = _config_key(config["base"])
        with _BASE_LOCK:
            base = _BASE_CACHE.get(key)
            if base is None:
                base = config_to_embedding_function(config["base"])
                _BASE_CACHE[key] = base
        return LensEmbeddingFunction(
            base, lens, check_fingerprint=bool(config.get("check_fingerprint", True))
        )

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Check the stored config has every field.

        Raises:
            ValueError: naming the missing field.
        """
        for key in ("base", "lens_path", "lens_sha256", "lens_d_in", "lens_d_out"):
            if key not in config:
                msg = f"embedlens embedding function config lacks {key!r}"
                raise ValueError(msg)
        if not isinstance(config["base"], dict) or "name" not in config["base"]:
            msg = "embedlens config 'base' must be {'name': ..., 'config': {...}}"
            raise ValueError(msg)

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        """Refuse a change of base model or of the lens's dimensions (stored vectors would not match).

        Raises:
            ValueError: naming what would change.
        """
        old_base, new_base = old_config.get("base", {}), new_config.get("base", {})
        if (
            new_base
            and old_base
            and (old_base.get("name") != new_base.get("name") or _model_of(old_base) != _model_of(new_base))
        ):
            msg = (
                f"cannot change the base model of an embedlens collection "
                f"({old_base.get('name')}:{_model_of(old_base)} -> {new_base.get('name')}:{_model_of(new_base)})"
            )
            raise ValueError(msg)
        for key in ("lens_d_in", "lens_d_out"):
            if key in new_config and key in old_config and new_config[key] != old_config[key]:
                msg = (
                    f"cannot change {key} of an embedlens collection ({old_config[key]} -> {new_config[key]})"
                )
                raise ValueError(msg)

    def __repr__(self) -> str:
        return f"LensEmbeddingFunction(base={self._base_name()!r}, lens={str(self.lens.path)!r})"


def _model_of(base: dict[str, Any]) -> Any:
    cfg = base.get("config") or {}
    return cfg.get("model_name", cfg.get("model"))


def _refuse_secrets(obj: Any, where: str = "base config") -> None:
    """Raise if a config would store a credential: checked by value and by whole-word name.

    Raises:
        SecretInConfigError: naming the field (never its value).
    """
    refuse_secrets(obj, where, store="a Chroma collection config (stored in plain text)")


def _check_texts(texts: Any, where: str) -> None:
    """Refuse a bare string where a list of texts is expected (it would become a list of characters)."""
    if isinstance(texts, str | bytes):
        msg = f"{where} takes a list of texts, got a single {type(texts).__name__}: pass [text]"
        raise TextsTypeError(msg)


@register_embedding_function
class EmbedderEmbeddingFunction(EmbeddingFunction[Documents]):
    """A Chroma embedding function over an embedlens base model, through the embedding cache.

    Use it as ``base_ef`` of :class:`LensEmbeddingFunction` to share the cache with training and
    evaluation (the offline default model by default). Its config holds the model spec, the
    cache directory and the prompts given, only. Documents (``__call__``) and queries
    (``embed_query``) are embedded as in training: queries through the model's query path.

    Args:
        model: embedder spec (see :func:`embedlens.get_embedder`); ``None`` for all-MiniLM-L6-v2.
        cache_dir: embedding cache directory; ``None`` for the default; ``""`` disables caching.
        query_prompt / document_prompt: override a sentence-transformers model's prompts.
    """

    def __init__(
        self,
        model: str | None = None,
        cache_dir: str | None = None,
        *,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
    ) -> None:
        from embedlens.cache import open_embedder

        self.model = model
        self.cache_dir = cache_dir
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        key = _config_key(
            {
                "model": model,
                "cache_dir": cache_dir,
                "query_prompt": query_prompt,
                "document_prompt": document_prompt,
            }
        )
        with _BASE_LOCK:
            emb = _BASE_CACHE.get(key)
            if emb is None:
                emb = open_embedder(
                    model,
                    cache_dir=cache_dir or None,
                    no_cache=cache_dir == "",
                    query_prompt=query_prompt,
                    document_prompt=document_prompt,
                )
                emb.progress = False
                _BASE_CACHE[key] = emb
        self.embedder = emb

    def __call__(self, input: Documents) -> Embeddings:
        """Embed documents: ``(n, d)`` float32 rows.

        Raises:
            TextsTypeError: ``input`` is a single string (pass ``[text]``).
        """
        _check_texts(input, "EmbedderEmbeddingFunction.__call__")
        return list(self.embedder.embed(list(input)))

    def embed_query(self, input: Documents) -> Embeddings:
        """Embed query texts through the model's query path (its query prompt): ``(n, d)`` float32 rows.

        Raises:
            TextsTypeError: ``input`` is a single string (pass ``[text]``).
        """
        _check_texts(input, "EmbedderEmbeddingFunction.embed_query")
        return list(self.embedder.embed_queries(list(input)))

    @staticmethod
    def name() -> str:
        """Registry name: ``"embedlens_base"``."""
        return "embedlens_base"

    def default_space(self) -> Space:
        """Cosine."""
        return "cosine"

    def get_config(self) -> dict[str, Any]:
        """``{"model_name": spec, "cache_dir": dir}``, plus the prompts when they were given."""
        config: dict[str, Any] = {"model_name": self.model or self.embedder.name, "cache_dir": self.cache_dir}
        for key in ("query_prompt", "document_prompt"):
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        return config

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> EmbedderEmbeddingFunction:
        """Rebuild (the model is loaded once per process)."""
        model = config.get("model_name")
        return EmbedderEmbeddingFunction(
            None if model == "st:all-MiniLM-L6-v2" else model,
            config.get("cache_dir"),
            query_prompt=config.get("query_prompt"),
            document_prompt=config.get("document_prompt"),
        )


# --------------------------------------------------------------------------- re-projection
_NAME_RULES = (
    "3-512 characters from [a-zA-Z0-9._-], starting and ending with a letter or digit, "
    "no '..', and not an IPv4 address"
)


def collection_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid Chroma collection name (Chroma's own rules), or None when it is."""
    if not isinstance(name, str):
        return f"must be a string, got {type(name).__name__}"
    if not (3 <= len(name) <= 512) or re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]", name) is None:
        return f"is not a valid collection name (Chroma needs {_NAME_RULES})"
    if ".." in name:
        return f"is not a valid collection name (it holds '..'; Chroma needs {_NAME_RULES})"
    if re.fullmatch(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}", name):
        return f"is not a valid collection name (it is an IPv4 address; Chroma needs {_NAME_RULES})"
    return None


def check_collection_name(name: str, option: str) -> None:
    """Refuse an invalid Chroma collection name before any client is opened.

    Raises:
        EmbedlensInputError: one line naming ``option`` (e.g. ``--target``) and the name.
    """
    why = collection_name_problem(name)
    if why is not None:
        raise EmbedlensInputError(f"{option} {name!r}: {why}")


def reproject_collection(
    client: Any,
    source: str,
    target: str,
    lens: Lens | str | os.PathLike[str],
    *,
    batch_size: int = 1000,
    progress: bool = True,
    on_batch: Callable[[int], None] | None = None,
    allow_no_function: bool = False,
    workers: int = 1,
) -> int:
    """Copy ``source``'s stored raw vectors through a symmetric ``lens`` into collection ``target``.

    Ids, documents and metadata are kept; the embedding model is not called. The source is read in
    pages of ``batch_size`` (in Chroma's stored order) by up to ``workers`` threads at once (a Chroma
    server answers them in parallel; at most ``workers`` pages are in memory); each page's ids already
    in ``target`` are skipped, so a run interrupted or killed midway resumes where it stopped and
    never writes a vector twice. The target collection is created with the cosine space and an
    embedding function chosen from the source's stored configuration, never Chroma's default:

    - a source with a (rebuildable) base function: a :class:`LensEmbeddingFunction` over it, so later
      ``query_texts`` through ``target`` are projected too;
    - a source stored without an embedding function Chroma can rebuild (vectors only, or Chroma's
      ``legacy`` marker): none either;
    - a source built through :class:`LensEmbeddingFunction`: refused, its vectors are already projected;
    - a source whose function cannot be rebuilt here (unknown, no config, another model than the
      lens's): refused, unless ``allow_no_function`` accepts a target without an embedding function.

    What Chroma stored for ``target`` is checked (an existing ``target`` must hold the same function).

    Args:
        client: a Chroma client (persistent or HTTP).
        source, target: collection names.
        lens: a symmetric lens (a query lens needs no re-projection).
        batch_size: vectors per batch.
        progress: tqdm bar.
        on_batch: called with the number of vectors written after each batch (tests use it to
            interrupt a run).
        allow_no_function: create ``target`` without an embedding function when the source's
            cannot be rebuilt (queries must then be projected by the caller).
        workers: pages copied at once (threads), 1 to 64.

    Returns:
        The number of vectors written by this call.

    Raises:
        EmbedlensInputError: a query-mode lens, an invalid or missing collection, ``source`` equal to
            ``target``, an already projected source, a base function that cannot be rebuilt (without
            ``allow_no_function``), an existing ``target`` with another embedding function, or stored
            vectors of the wrong dimension.
    """
    lens = as_lens(lens)
    if lens.mode != "symmetric":
        raise EmbedlensInputError("re-projection needs a symmetric lens; a query lens keeps documents raw")
    check_collection_name(source, "source")
    check_collection_name(target, "target")
    if source == target:
        raise EmbedlensInputError(f"target {target!r} is the source collection; give another name")
    src = _get_collection(client, source)
    if src is None:
        raise EmbedlensInputError(f"source collection {source!r} does not exist")
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 64:
        raise EmbedlensInputError(f"workers must be an integer from 1 to 64, got {workers!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise EmbedlensInputError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    first = src.get(limit=1, include=["embeddings"])["embeddings"]
    if first is not None and len(first) and len(first[0]) != lens.d_in:  # before the target is created
        raise DimensionMismatchError(
            f"source collection {source!r} stores {len(first[0])}-d vectors but the lens expects {lens.d_in}-d"
        )
    tgt = _target_collection(client, src, target, lens, allow_no_function=allow_no_function)
    total = src.count()
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    from tqdm.auto import tqdm

    from embedlens.project import end_progress_bar

    written = 0  # counted in this thread only, as pages finish

    def copy_page(offset: int) -> tuple[int, int]:
        """Copy one page; returns (vectors read, vectors written)."""
        ids, vectors, documents, metadatas = _read_page(src, offset, batch_size)
        have = set(tgt.get(ids=ids, include=[])["ids"]) if ids else set()
        keep = [i for i, x in enumerate(ids) if x not in have]
        if keep:
            tgt.upsert(
                ids=[ids[i] for i in keep],
                embeddings=lens.project_documents(vectors[keep]),
                documents=None if documents is None else [documents[i] for i in keep],
                metadatas=None if metadatas is None else [metadatas[i] for i in keep],
            )
        return len(ids), len(keep)

    bar = tqdm(total=total, desc=f"re-projecting {source} -> {target}", disable=not progress, leave=False)

    def finished(future: Future[tuple[int, int]]) -> None:
        nonlocal written
        read, new = future.result()
        written += new
        bar.update(read)
        if new and on_batch is not None:
            on_batch(written)

    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embedlens-reproject") as pool:
            running: set[Future[tuple[int, int]]] = set()
            try:
                for offset in range(0, total, batch_size):  # at most `workers` pages in flight
                    running.add(pool.submit(copy_page, offset))
                    if len(running) >= workers:
                        done, running = wait(running, return_when=FIRST_COMPLETED)
                        for future in done:
                            finished(future)
                for future in running:
                    finished(future)
            except BaseException:
                for future in running:
                    future.cancel()
                raise
    finally:
        end_progress_bar(bar)  # an error printed next starts on a line of its own
    if src.count() != total:
        raise EmbedlensInputError(
            f"source collection {source!r} changed while it was copied ({total} -> {src.count()} vectors); run again"
        )
    return written


def _read_page(src: Any, offset: int, limit: int) -> tuple[list[str], np.ndarray, Any, Any]:
    """One page of the source: ids, raw vectors, documents and metadata (None where none is stored)."""
    got = src.get(limit=limit, offset=offset, include=["embeddings", "documents", "metadatas"])
    ids = list(got["ids"])
    vectors = np.asarray(got["embeddings"], dtype=np.float32).reshape(len(ids), -1)
    docs = got.get("documents")
    metas = got.get("metadatas")
    has_docs = docs is not None and any(d is not None for d in docs)
    has_meta = metas is not None and any(m for m in metas)
    return (
        ids,
        vectors,
        (list(docs) if has_docs else None),
        ([m if m else None for m in metas] if has_meta else None),
    )


def _get_collection(client: Any, name: str) -> Any:
    """The collection ``name`` opened without building its embedding function, or None if missing."""
    from chromadb.errors import NotFoundError

    try:
        # embedding_function=None: no model is loaded just to read stored vectors
        return client.get_collection(name, embedding_function=None)
    except NotFoundError:
        return None
    except ValueError as e:  # older Chroma versions raise ValueError for a missing collection
        if "does not exist" in str(e):
            return None
        raise


def _stored_function(col: Any) -> dict[str, Any] | None:
    """The embedding function config Chroma stored for ``col`` (raw: nothing is built), or None.

    ``{"type": "legacy"}`` (what Chroma stores for ``embedding_function=None`` with a configuration,
    or for a function without a config) is None too: Chroma rebuilds no function from either.
    """
    try:
        raw = (col.configuration_json or {}).get("embedding_function")
    except Exception:  # noqa: BLE001 - a client without configurations stores no function
        return None
    if not isinstance(raw, dict) or raw.get("type") == "legacy":
        return None
    return raw


def _target_function(src: Any, lens: Lens, *, allow_no_function: bool) -> LensEmbeddingFunction | None:
    """The embedding function ``target`` must get: the lens over the source's base function, or None.

    Raises:
        EmbedlensInputError: the source is already projected, or its base function cannot be rebuilt
            and ``allow_no_function`` is False.
    """
    stored = _stored_function(src)
    if stored is None:  # a vectors-only source (no function Chroma could rebuild): the target is one too
        return None
    name = stored.get("name")
    if name == NAME:
        raise EmbedlensInputError(
            f"source collection {src.name!r} was built through LensEmbeddingFunction: its vectors are "
            "already projected by a lens; re-project the collection of raw vectors instead"
        )
    hint = (
        "pass allow_no_function=True (CLI: --no-embedding-function) to create the target without an "
        "embedding function (queries must then be projected by you)"
    )
    try:
        if stored.get("type") != "known" or not isinstance(stored.get("config"), dict):
            msg = "it has no stored config"
            raise EmbedlensInputError(msg)
        base = config_to_embedding_function(stored)
        return LensEmbeddingFunction(base, lens)
    except Exception as e:
        if allow_no_function:
            return None
        why = " ".join(str(e).split())[:300] or type(e).__name__
        raise EmbedlensInputError(
            f"the embedding function of source collection {src.name!r} ({name or stored.get('type')}) "
            f"cannot be rebuilt with this lens ({why}); {hint}"
        ) from e


def _function_matches(stored: dict[str, Any] | None, ef: LensEmbeddingFunction | None) -> bool:
    """Whether Chroma's stored function config is ``ef`` (None: no function at all)."""
    if ef is None:
        return stored is None
    if stored is None or stored.get("name") != NAME or not isinstance(stored.get("config"), dict):
        return False
    cfg = stored["config"]
    want = ef.get_config()
    return bool(
        cfg.get("lens_sha256") == want["lens_sha256"]
        and _config_key(cfg.get("base", {})) == _config_key(want["base"])
    )


def _describe(stored: dict[str, Any] | None) -> str:
    if stored is None:
        return "no embedding function"
    return f"embedding function {stored.get('name') or stored.get('type')!r}"


#: metadata that marks a collection written by :func:`reproject_collection` (only such a target is resumed).
_MARK_SOURCE = "embedlens_reprojected_from"
_MARK_LENS = "embedlens_lens_sha256"


def _target_collection(client: Any, src: Any, target: str, lens: Lens, *, allow_no_function: bool) -> Any:
    """Open or create ``target`` with the right embedding function, checked against what Chroma stored.

    Raises:
        EmbedlensInputError: see :func:`_target_function`; or an existing ``target`` stores another
            embedding function; or Chroma stored another function than the one given.
    """
    ef = _target_function(src, lens, allow_no_function=allow_no_function)
    want = "a lens over the source's base function" if ef is not None else "no embedding function"
    lens_id = lens.weights_sha256 or hashlib.sha256(lens.weights.tobytes()).hexdigest()
    marker = {_MARK_SOURCE: str(src.name), _MARK_LENS: lens_id}
    existing = _get_collection(client, target)
    if existing is not None:
        meta = dict(existing.metadata or {})
        if any(meta.get(k) != v for k, v in marker.items()):
            raise EmbedlensInputError(
                f"target collection {target!r} already exists and is not a re-projection of {src.name!r} "
                "through this lens (only such a target is resumed); give a new target name"
            )
        stored = _stored_function(existing)
        if not _function_matches(stored, ef):
            raise EmbedlensInputError(
                f"target collection {target!r} exists with {_describe(stored)}, but re-projecting "
                f"{src.name!r} through this lens needs {want}; give a new target name"
            )
        return existing
    # embedding_function passed explicitly (None included): Chroma's DefaultEmbeddingFunction is never attached
    tgt = client.create_collection(
        target, configuration={"hnsw": {"space": "cosine"}}, embedding_function=ef, metadata=marker
    )
    stored = _stored_function(tgt)
    if not _function_matches(stored, ef):
        client.delete_collection(target)  # just created by us, still empty
        raise EmbedlensInputError(
            f"Chroma stored {_describe(stored)} for target collection {target!r} instead of {want}; "
            "nothing was written"
        )
    return tgt


class ChromaEmbedder(LazyDim):
    """Any Chroma embedding function as a base model.

    Documents go through ``function(texts)``; queries through ``function.embed_query(texts)``
    when the function defines its own (Chroma's default ``embed_query`` is the same call).

    Args:
        function: a Chroma ``EmbeddingFunction`` (callable on a list of documents).
        name: display name; defaults to ``"chroma:<name()>:<model>"`` from the function's
            ``name()`` and the ``model_name`` in its config.
        cache_id: an explicit cache key, for a function whose config cannot be identified (see
            :class:`LangChainEmbedder`).

    Attributes:
        identity / query_identity: cache keys, a digest of the function's name and full config
            (``get_config()``, else its attributes, nested objects by their state) with every
            secret left out.
        cache_problem: why the function cannot be cached (None when it can).
    """

    def __init__(self, function: Any, *, name: str | None = None, cache_id: str | None = None) -> None:
        self.function = function
        ef_name = function.name() if hasattr(function, "name") else type(function).__name__
        try:
            cfg = function.get_config()
        except Exception:  # noqa: BLE001 - legacy functions have no config
            cfg = None
        if name is None:
            model = (cfg.get("model_name") or cfg.get("model")) if isinstance(cfg, dict) else None
            model = model if isinstance(model, str) else None
            name = f"chroma:{ef_name}" + (f":{model}" if model else "")
        self.name = name
        self._dim: int | None = None
        self.cache_problem: str | None = None
        inner = getattr(function, "embedder", None)  # embedlens' own EmbedderEmbeddingFunction
        if inner is not None and callable(getattr(inner, "embed", None)):
            doc_parts: Any = {"kind": "embedlens", "identity": identity_of(inner)}
            query_parts: Any = {"kind": "embedlens", "identity": query_identity_of(inner)}
        else:
            if cache_id is not None:
                config: Any = {"cache_id": str(cache_id)}
            else:
                try:
                    config = public_config(cfg if isinstance(cfg, dict) else function, strict=True)
                except UnidentifiableConfigError as e:
                    self.cache_problem = cache_problem("ChromaEmbedder", function, e)
                    config = None
            models = local_model_digests(config)
            doc_parts = {
                "kind": "chroma",
                "name": str(ef_name),
                "type": qualname(function),
                "config": config,
                "models": models,
            }
            query_parts = {**doc_parts, "side": "embed_query"} if self.has_query_path else doc_parts
        self.identity = make_identity(self.name, doc_parts)
        self.query_identity = make_identity(self.name, query_parts)

    @property
    def has_query_path(self) -> bool:
        """Whether the function defines an ``embed_query`` of its own."""
        own = getattr(type(self.function), "embed_query", None)
        if own is None:
            return False
        return own is not getattr(EmbeddingFunction, "embed_query", None)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` by calling the function; returns ``(n, d)`` float32."""
        texts = as_list(texts)
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        return checked(self.function(texts), len(texts), self.name)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` as queries (``embed_query`` when the function has its own)."""
        texts = as_list(texts)
        if not texts or not self.has_query_path:
            return self.embed(texts)
        return checked(self.function.embed_query(texts), len(texts), self.name)


def wrap_function(obj: object) -> Any:
    """The ``embedlens.wrappers`` entry point: a Chroma embedding function as a base embedder, else None.

    An :class:`EmbedderEmbeddingFunction` gives back the embedlens embedder it wraps; a
    :class:`LensEmbeddingFunction` is refused (its queries already went through a lens).
    """
    if isinstance(obj, LensEmbeddingFunction):
        msg = "a LensEmbeddingFunction already applies a lens: pass its base function as the base model"
        raise TypeError(msg)
    if isinstance(obj, EmbedderEmbeddingFunction):
        return obj.embedder
    return ChromaEmbedder(obj) if isinstance(obj, EmbeddingFunction) and callable(obj) else None
