"""Export a lens and its local base model as one sentence-transformers model folder.

``SentenceTransformer(folder)`` then gives base + lens with no embedlens installed:

- a symmetric lens appends ``Dense(W)`` (+ ``Normalize``) to the base model's modules: ``encode``,
  ``encode_query`` and ``encode_document`` all project;
- a query lens appends a ``Router``: the ``query`` route is ``Dense(W)`` (+ ``Normalize``), the ``document``
  route (the default) an identity ``Dense``, so ``encode_query`` projects and ``encode_document`` / ``encode``
  give the raw base vectors, exactly as embedlens serves a query lens.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from embedlens._atomic import atomic_write_dir, strict_json_dumps
from embedlens._outputs import OutputRefusedError, check_overlap
from embedlens.errors import EmbedlensInputError
from embedlens.lens import PROBE_SENTENCES, Lens

__all__ = ["EXPORT_MARKER", "export_sentence_transformer", "local_model_dir"]

#: the file that marks a folder as written by this export (only such a folder is ever replaced).
EXPORT_MARKER = "embedlens_export.json"


def local_model_dir(spec: str | None) -> Path:
    """The local sentence-transformers folder of a base model name (``st:NAME``, a path, or the default).

    Raises:
        EmbedlensInputError: a remote model (OpenAI, a LangChain or Chroma wrapper), or a name that is not a
            folder here nor in the local Hugging Face cache: an export bundles the model's files.
    """
    from embedlens.embedders.local import DEFAULT_MODEL, _resolve_model_dir, default_model_path

    name = (spec or DEFAULT_MODEL).removeprefix("st:")
    if name.split(":", 1)[0] in ("openai", "langchain", "chroma"):
        msg = (
            f"cannot export a lens over {spec!r}: only a local sentence-transformers model can be bundled into a "
            "model folder (an API model's weights are not available); pass --model DIR for a local one"
        )
        raise EmbedlensInputError(msg)
    if name == DEFAULT_MODEL:
        return default_model_path()
    found = _resolve_model_dir(name)
    if found is None or not (found / "modules.json").is_file():
        msg = f"--model {name!r} is not a local sentence-transformers folder (no modules.json found here or in the cache)"
        raise EmbedlensInputError(msg)
    return found


def _dense(weight: np.ndarray) -> Any:
    import torch
    from sentence_transformers.models import Dense

    d_out, d_in = weight.shape
    return Dense(
        d_in,
        d_out,
        bias=False,
        activation_function=torch.nn.Identity(),
        init_weight=torch.as_tensor(np.ascontiguousarray(weight, dtype=np.float32)),
    )


def _refuse_foreign(path: Path) -> None:
    if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        return  # an empty folder holds nothing to lose
    if not (path / EXPORT_MARKER).is_file():
        raise OutputRefusedError(
            f"--out {path}: exists and was not written by embedlens export; refusing to replace it"
        )


def export_sentence_transformer(
    lens: Lens,
    out: str | os.PathLike[str],
    *,
    model: str | None = None,
    check_fingerprint: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write ``out``: the base model's files with the lens appended as sentence-transformers modules.

    Args:
        lens: the lens (its ``base_model`` names the base unless ``model`` is given).
        out: the folder to write (atomically; an existing one only with ``overwrite`` and only if an earlier
            export wrote it).
        model: a local sentence-transformers folder or name, overriding the lens's recorded base model.
        check_fingerprint: refuse a base model whose probe embeddings differ from the lens's fingerprint.
        overwrite: replace an earlier export at ``out``.

    Raises:
        EmbedlensInputError: a base model that is not local, or an existing ``out`` that may not be replaced.
        DimensionMismatchError / FingerprintMismatchError: the base model is not the lens's.
    """
    out = Path(out)
    if model is None and lens.base_model is None:
        msg = "the lens records no base model: pass --model (model=) with the local model it was trained on"
        raise EmbedlensInputError(msg)
    source = local_model_dir(model or lens.base_model)
    if (source / EXPORT_MARKER).is_file():  # its query route already holds a lens: it would apply twice
        msg = (
            f"--model {source}: is an embedlens export, not a base model; pass the model it was exported from"
        )
        raise EmbedlensInputError(msg)
    check_overlap(out, option="--out", inputs={"--lens": lens.path, "--model": source})
    empty_dir = out.is_dir() and not out.is_symlink() and not any(out.iterdir())
    if os.path.lexists(out) and not empty_dir:
        if not overwrite:
            raise OutputRefusedError(f"--out {out}: exists (pass --force to replace an earlier export)")
        _refuse_foreign(out)
    if out.parent.exists() and not out.parent.is_dir():
        raise OutputRefusedError(f"--out {out}: its parent is not a directory")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # sentence_transformers.models is being renamed
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.models import Normalize, Router

    st = SentenceTransformer(str(source), device="cpu")
    probes = st.encode(list(PROBE_SENTENCES), convert_to_numpy=True)
    lens.check_probes(probes, model_name=str(source), check_fingerprint=check_fingerprint)
    projected = [_dense(lens.weights.T)] + ([Normalize()] if lens.normalize else [])
    if lens.mode == "symmetric":
        for module in projected:
            st.append(module)
    else:
        raw = [_dense(np.eye(lens.d_in, dtype=np.float32))]  # documents stay raw (Router needs a module)
        st.append(Router(sub_modules={"query": projected, "document": raw}, default_route="document"))
    marker = {
        "format": "embedlens-export",
        "base_model": model or lens.base_model,
        "base_dir": str(source),
        "lens": str(lens.path) if lens.path is not None else None,
        "lens_sha256": lens.weights_sha256,
        "mode": lens.mode,
    }

    def fill(tmp: Path) -> None:
        st.save(str(tmp))
        (tmp / EXPORT_MARKER).write_text(strict_json_dumps(marker))

    return atomic_write_dir(out, fill, check=_refuse_foreign)
