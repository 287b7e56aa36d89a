"""Process-wide cache of loaded lenses (Chroma rebuilds embedding functions on every add/query)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from embedlens.lens import Lens, load_lens

_LOCK = threading.Lock()
_LOADED: dict[tuple[str, int, int], Lens] = {}


def cached_lens(path: str | os.PathLike[str]) -> Lens:
    """Load the lens at ``path`` once per (path, mtime, size) of its ``lens.json``.

    Raises:
        LensFormatError: when the directory is missing or invalid (the message names the path).
    """
    root = Path(path).resolve()
    try:
        st = (root / "lens.json").stat()
        key = (str(root), st.st_mtime_ns, st.st_size)
    except OSError:
        return load_lens(root)  # raises a LensFormatError naming the path
    with _LOCK:
        lens = _LOADED.get(key)
    if lens is None:
        lens = load_lens(root)
        with _LOCK:
            _LOADED[key] = lens
    return lens


def as_lens(lens: Lens | str | os.PathLike[str]) -> Lens:
    """A :class:`Lens` as is, or the lens loaded (and cached) from a directory path."""
    return lens if isinstance(lens, Lens) else cached_lens(lens)
