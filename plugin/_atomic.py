"""Crash-safe writes: a file or a directory appears whole or not at all (temp + rename).

Temp names are unique (``mkstemp`` / ``mkdtemp`` beside the target), so concurrent writers never share
one, and carry the writer's pid: ``.NAME.embedlens-tmp-<pid>-<random>``. A run killed midway leaves its
temp behind; the next write to the same target removes the temps (and moved-aside ``.NAME.old-<pid>-<hex>``
directories) of writers that are no longer alive, and nothing else. What appears at the target has the
permissions a plain ``open``/``mkdir`` would give it (the umask is honoured, an existing file's mode is
kept), not the 0600/0700 of the temp functions. JSON is written strictly (``NaN``/``Infinity`` become
``null``), so any JSON parser can read it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
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


#: marker in the name of every temp file or directory we create beside a target.
TEMP_MARK = "embedlens-tmp"


def temp_prefix(path: str | os.PathLike[str]) -> str:
    """The name prefix of this process's temps for ``path``: ``.NAME.embedlens-tmp-<pid>-``."""
    return f".{Path(path).name}.{TEMP_MARK}-{os.getpid()}-"


def _temp_pattern(name: str) -> re.Pattern[str]:
    """Our temp names for a target called ``name``: ``.NAME.embedlens-tmp-<pid>-<rand>``."""
    return re.compile(rf"\.{re.escape(name)}\.{TEMP_MARK}-(\d+)-[A-Za-z0-9_]+\Z")


def _old_pattern(name: str) -> re.Pattern[str]:
    """The names :func:`atomic_write_dir` moves an old directory to: ``.NAME.old-<pid>-<hex>``."""
    return re.compile(rf"\.{re.escape(name)}\.old-(\d+)-[0-9a-f]{{12}}\Z")


def is_our_temp_name(entry: str, target: str) -> bool:
    """Whether ``entry`` is the name of a temp we create when writing a file called ``target``."""
    return _temp_pattern(target).match(entry) is not None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a process we may not signal counts as alive)."""
    if pid <= 0:
        return True  # never a writer's pid: treat as alive, so nothing is removed
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def _dead_entries(path: Path, pattern: re.Pattern[str]) -> list[Path]:
    """Entries beside ``path`` whose name matches ``pattern`` and whose writer pid is dead, oldest first."""
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    found = []
    for name in names:
        m = pattern.match(name)
        if m is not None and not pid_alive(int(m.group(1))):
            entry = path.parent / name
            try:
                found.append((entry.lstat().st_ctime, entry))
            except OSError:
                continue
    return [entry for _, entry in sorted(found)]


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)


def remove_stale_temps(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temps of ``path`` left by writers that died (``.NAME.embedlens-tmp-<pid>-…``, dead pid).

    Nothing else is touched: another name, or a temp of a live process, stays.

    Returns:
        The paths removed.
    """
    stale = _dead_entries(Path(path), _temp_pattern(Path(path).name))
    for entry in stale:
        _remove(entry)
    return stale


def recover_dir(path: str | os.PathLike[str]) -> Path | None:
    """Finish what a killed :func:`atomic_write_dir` left: restore or drop its moved-aside old directory.

    A writer killed between moving the old directory aside (``.NAME.old-<pid>-<hex>``) and moving the
    new one in leaves nothing at ``path``: the newest such directory of a dead writer is moved back.
    When ``path`` exists, the old directories of dead writers are leftovers and are removed.

    Returns:
        The directory restored to ``path``, or None.
    """
    path = Path(path)
    olds = _dead_entries(path, _old_pattern(path.name))
    restored = None
    if olds and not os.path.lexists(path):
        newest = olds.pop()
        if newest.is_dir() and not newest.is_symlink():
            os.replace(newest, path)
            restored = newest
    for entry in olds:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
    return restored


def unique_temp_file(path: str | os.PathLike[str]) -> tuple[int, Path]:
    """Create a uniquely named temp file beside ``path`` with the mode ``path`` should get.

    Its name is ``.NAME.embedlens-tmp-<pid>-<random>``; stale temps of ``path`` left by dead writers
    are removed first (see :func:`remove_stale_temps`).

    Returns:
        The open file descriptor and the temp path (the caller renames it over ``path`` or unlinks it).
    """
    path = Path(path)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), dir=path.parent)
    try:
        os.fchmod(fd, new_file_mode(path))
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    return fd, Path(tmp)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A unique temp path beside ``path`` to write; renamed over ``path`` when the block ends cleanly,
    removed when it raises (the caller fsyncs what it wrote)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = unique_temp_file(path)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
    a non-empty one is first moved aside under a unique name (``.NAME.old-<pid>-<hex>``), then removed.
    ``check(path)`` (if given) runs right before an existing ``path`` is replaced and may raise to keep
    it. Before anything, what a killed writer left is cleaned up: its temp directories are removed and,
    if it died with the old directory moved aside and nothing at ``path``, the old one is put back
    (:func:`recover_dir`), so ``check`` sees it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(path)
    remove_stale_temps(path)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path), dir=path.parent))
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
