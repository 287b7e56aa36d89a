"""Crash-safe writes: a file or a directory appears whole or not at all (temp + rename).

Temp names are unique (``mkstemp`` / ``mkdtemp`` beside the target), so concurrent writers never share
one; what appears at the target has the permissions a plain ``open``/``mkdir`` would give it (the
umask is honoured, an existing file's mode is kept), not the 0600/0700 of the temp functions.
JSON is written strictly (``NaN``/``Infinity`` become ``null``), so any JSON parser can read it.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def current_umask() -> int:
    """The process umask, read without changing it where the platform allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no read-only API elsewhere: set and restore at once
    os.umask(mask)
    return mask


def new_file_mode(path: str | os.PathLike[str]) -> int:
    """The mode a file written at ``path`` should get: the existing file's, else ``0o666 & ~umask``."""
    try:
        st = os.stat(path)
        if stat.S_ISREG(st.st_mode):
            return stat.S_IMODE(st.st_mode)
    except OSError:
        pass
    return 0o666 & ~current_umask()


def unique_temp_file(path: str | os.PathLike[str]) -> tuple[int, Path]:
    """Create a uniquely named temp file beside ``path`` with the mode ``path`` should get.

    Returns:
        The open file descriptor and the temp path (the caller renames it over ``path`` or unlinks it).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, new_file_mode(path))
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    return fd, Path(tmp)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a unique temp file in the same directory, fsync, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = unique_temp_file(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, ±Inf) replaced by ``None``, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def strict_json_dumps(obj: Any) -> str:
    """Indented, strictly valid JSON (non-finite floats written as ``null``), newline-terminated."""
    return json.dumps(json_safe(obj), indent=2, sort_keys=False, allow_nan=False) + "\n"


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented strict JSON to ``path`` atomically (NaN/Inf become ``null``)."""
    atomic_write_bytes(path, strict_json_dumps(obj).encode())


def atomic_write_dir(
    path: str | os.PathLike[str],
    fill: Callable[[Path], None],
    *,
    check: Callable[[Path], None] | None = None,
) -> Path:
    """Build a directory with ``fill(tmpdir)`` and move it to ``path`` in one rename.

    An existing directory at ``path`` is replaced only after the new one is complete; a failure
    inside ``fill`` leaves ``path`` untouched. An empty directory is replaced by the rename itself;
    a non-empty one is first moved aside under a unique name, then removed. ``check(path)`` (if given)
    runs right before an existing ``path`` is replaced and may raise to keep it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        fill(tmp)
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp made it 0700: give it a plain mkdir's mode
        if not os.path.lexists(path):
            os.replace(tmp, path)
            return path
        if check is not None:
            check(path)
        if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            os.replace(tmp, path)  # rename(2) replaces an empty directory atomically
            return path
        old = path.with_name(f".{path.name}.old-{os.getpid()}-{secrets.token_hex(6)}")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
