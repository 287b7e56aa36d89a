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

from embedlens._atomic import atomic_write_dir, current_umask, strict_json_dumps
from embedlens._outputs import EXPORT_FORMAT, EXPORT_MARKER, OutputRefusedError, export_dir_problem, guard_dir
from embedlens.errors import EmbedlensInputError
from embedlens.lens import PROBE_SENTENCES, Lens

__all__ = ["EXPORT_MARKER", "export_sentence_transformer", "local_model_dir"]

# EXPORT_MARKER (``embedlens_export.json``, defined with the other output guards) marks a folder as written by
# this export and lists the files it wrote: only a folder holding nothing else is ever replaced.


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


def _guard_out(out: Path, inputs: dict[str, Any], overwrite: bool) -> None:
    """Refuse an ``out`` that overlaps an input or holds anything an earlier export did not write."""
    guard_dir(
        out, option="--out", ours=export_dir_problem, what="an earlier embedlens export", inputs=inputs,
        force=overwrite,
    )  # fmt: skip


def _plain_modes(root: Path) -> tuple[dict[str, int], list[str]]:
    """Give everything under ``root`` the mode of a plain open / mkdir (umask honoured); list it.

    safetensors and sentence-transformers write their weights through 0600 temp files.

    Returns:
        Every file (relative POSIX path -> size) and every directory under ``root``, sorted.
    """
    umask = current_umask()
    files: dict[str, int] = {}
    dirs: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for name in sorted(dirnames):
            p = here / name
            if not p.is_symlink():
                os.chmod(p, 0o777 & ~umask)
                dirs.append(p.relative_to(root).as_posix())
        for name in filenames:
            p = here / name
            if not p.is_symlink():
                os.chmod(p, 0o666 & ~umask)
                files[p.relative_to(root).as_posix()] = p.stat().st_size
    return dict(sorted(files.items())), sorted(dirs)


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
        out: the folder to write (atomically; files and folders get the mode of a plain open / mkdir). A
            missing or empty folder is written; an existing one is replaced only with ``overwrite`` and only
            if it holds nothing but what an earlier export wrote: its ``embedlens_export.json`` (strict JSON,
            ``"format": "embedlens-export"``) lists every file the export wrote with its size, and any other
            file, link or directory, or a listed file whose size changed, is the user's and refuses the
            replace. An export by an older embedlens (no file list) is replaced only if every file in it is
            one a sentence-transformers save writes (config, weights and tokenizer files, at the top or in a
            module folder). This is checked before the model loads and again right before the replace.
        model: a local sentence-transformers folder or name, overriding the lens's recorded base model.
        check_fingerprint: refuse a base model whose probe embeddings differ from the lens's fingerprint.
        overwrite: replace an earlier export at ``out``.

    Raises:
        EmbedlensInputError: a base model that is not local.
        OutputRefusedError: an existing ``out`` that may not be replaced (naming the first file that is not
            the export's), or one that overlaps the lens or the base model.
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
    inputs: dict[str, Any] = {"--lens": lens.path, "--model": source}
    _guard_out(out, inputs, overwrite)
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
        "format": EXPORT_FORMAT,
        "base_model": model or lens.base_model,
        "base_dir": str(source),
        "lens": str(lens.path) if lens.path is not None else None,
        "lens_sha256": lens.weights_sha256,
        "mode": lens.mode,
    }

    def fill(tmp: Path) -> None:
        st.save(str(tmp))
        files, dirs = _plain_modes(tmp)
        files.pop(EXPORT_MARKER, None)
        (tmp / EXPORT_MARKER).write_text(strict_json_dumps({**marker, "files": files, "dirs": dirs}))

    return atomic_write_dir(out, fill, check=lambda path: _guard_out(path, inputs, overwrite))
