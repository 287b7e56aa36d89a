"""Output safety: never write over anything that is not ours, nor over, inside or around an input.

Every command that writes goes through one of the guards below *before* any work is done:

- :func:`guard_lens_dir` — a lens directory (``train --out``, :meth:`Lens.save`, the demo's lens);
- :func:`guard_file` with :func:`report_problem` or :func:`npy_problem` — a single file
  (``evaluate --json``, ``project --output``);
- :func:`guard_plots_dir` — a folder that receives only our own PNG file names (``evaluate --plots``);
- :func:`prepare_demo_workdir` — the demo's work directory (new, empty, or marked as a demo's).

What is ours: a missing path; an empty directory (for directory outputs); a lens directory (``lens.json``
of format ``embedlens-lens`` and no foreign file) — replaced only with ``force``; a report with the
:data:`REPORT_FORMAT` marker, a float32 ``.npy`` we could have written, or a PNG of our own name — each
replaced only with ``force``. Anything else is refused with :class:`OutputRefusedError` (exit 2), in
one line naming the option and the path. Paths are compared resolved (symlinks followed): the output
may not be an input, lie inside an input directory, or contain an input.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from embedlens.errors import EmbedlensInputError

__all__ = [
    "DEMO_MARKER",
    "REPORT_FORMAT",
    "OutputRefusedError",
    "check_overlap",
    "guard_file",
    "guard_lens_dir",
    "guard_plots_dir",
    "lens_dir_problem",
    "npy_problem",
    "prepare_demo_workdir",
    "report_problem",
]

#: ``"format"`` value written at the top of every ``evaluate --json`` report (our marker).
REPORT_FORMAT = "embedlens-report"
#: file that marks a directory as an ``embedlens demo`` work directory.
DEMO_MARKER = ".embedlens-demo"
#: ``format`` field of ``lens.json`` (the same constant as :data:`embedlens.lens.FORMAT`).
LENS_FORMAT = "embedlens-lens"
LENS_CONFIG = "lens.json"
#: the weights file of every lens (the same constant as :data:`embedlens.lens.WEIGHTS_FILE`).
LENS_WEIGHTS = "weights.safetensors"
#: the only files a lens directory may hold (besides the temps of these names we write atomically).
LENS_FILES = frozenset({LENS_CONFIG, LENS_WEIGHTS, "validation_curve.png"})
#: largest ``lens.json`` / report we parse to decide whether it is ours.
MAX_JSON_BYTES = 64 << 20


class OutputRefusedError(EmbedlensInputError):
    """An output path holds something that is not ours, or overlaps an input: nothing was written."""


def _refuse(option: str, path: Path, why: str) -> OutputRefusedError:
    return OutputRefusedError(f"{option} {path}: {why}")


def _resolved(path: str | os.PathLike[str], option: str) -> Path:
    """``path`` made absolute with symlinks resolved; a symlink loop is bad input naming ``option``."""
    try:
        return Path(path).expanduser().resolve(strict=False)
    except (RuntimeError, OSError) as e:  # RuntimeError: "Symlink loop from ..." (Python < 3.13)
        raise OutputRefusedError(f"{option} {path}: cannot resolve the path ({e})") from None


def check_overlap(
    path: str | os.PathLike[str], *, option: str, inputs: Mapping[str, str | os.PathLike[str] | None]
) -> None:
    """Refuse an output that is an input, lies inside an input directory or contains an input.

    Args:
        path: the output path.
        option: how the output was given (``"--out"``), for the message.
        inputs: option name -> input path (``None`` entries are skipped).

    Raises:
        OutputRefusedError: naming both options and paths.
    """
    out = _resolved(path, option)
    for name, value in inputs.items():
        if value is None or str(value) == "":
            continue
        src = _resolved(value, name)
        if out == src:
            why = f"is the same path as the input {name} {value}"
        elif out.is_relative_to(src):
            why = f"lies inside the input {name} {value}"
        elif src.is_relative_to(out):
            why = f"contains the input {name} {value}"
        else:
            continue
        raise _refuse(option, Path(path), f"{why}; refusing to write there")


def _read_small_json(path: Path) -> object:
    """Parse ``path`` as JSON if it is a regular file of bounded size; raises ValueError otherwise."""
    with path.open("rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_JSON_BYTES:
            msg = "not a small regular file"
            raise ValueError(msg)
        return json.loads(f.read(MAX_JSON_BYTES + 1).decode())


def lens_dir_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is not a lens directory we may replace, or None when it is one.

    A lens directory is a real directory (not a symlink) holding a ``lens.json`` of format
    ``embedlens-lens`` whose ``weights_file`` is ``weights.safetensors``, and no other file than the
    fixed names of :data:`LENS_FILES` (and temps of those names left by a killed writer). The file
    names come from this list only, never from ``lens.json``: a ``weights_file`` naming any other file
    makes the directory not ours.
    """
    from embedlens._atomic import is_our_temp_name

    root = Path(path)
    if root.is_symlink():
        return "is a symbolic link, not a lens directory"
    if not root.is_dir():
        return "exists and is not a directory"
    cfg_path = root / LENS_CONFIG
    if cfg_path.is_symlink() or not cfg_path.is_file():
        return f"exists and is not an embedlens lens directory (no {LENS_CONFIG})"
    try:
        cfg = _read_small_json(cfg_path)
    except (OSError, ValueError):
        return f"exists and is not an embedlens lens directory ({LENS_CONFIG} is not a lens file)"
    if not isinstance(cfg, dict) or cfg.get("format") != LENS_FORMAT:
        return f"exists and is not an embedlens lens directory ({LENS_CONFIG} is not a lens file)"
    if cfg.get("weights_file") != LENS_WEIGHTS:
        return (
            f"exists and is not an embedlens lens directory ({LENS_CONFIG} names the weights file "
            f"{cfg.get('weights_file')!r}, not {LENS_WEIGHTS!r})"
        )
    for entry in sorted(root.iterdir()):
        ours = entry.name in LENS_FILES or any(is_our_temp_name(entry.name, name) for name in LENS_FILES)
        if not ours or entry.is_symlink() or not entry.is_file():
            return f"holds {entry.name!r}, which is not part of a lens"
    return None


def guard_dir(
    path: str | os.PathLike[str],
    *,
    option: str,
    ours: Callable[[Path], str | None],
    what: str,
    inputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
    force: bool = False,
    force_hint: str = "--force",
) -> Path:
    """Check that an output directory may be written at ``path``.

    Allowed: a missing path, an empty directory, or (with ``force``) a directory ``ours`` accepts
    (``ours`` returns why one is not ours, or None; ``what`` names ours in the messages). A directory
    that a killed writer left moved aside (nothing at ``path``) is put back first and judged as such.

    Raises:
        OutputRefusedError: anything else, or an overlap with an input.
    """
    from embedlens._atomic import recover_dir

    p = Path(path)
    check_overlap(p, option=option, inputs=inputs or {})
    if not os.path.lexists(p):
        recover_dir(p)  # a writer killed mid-replace: put its previous directory back, then judge that
    if not os.path.lexists(p):
        return p
    if p.is_dir() and not p.is_symlink() and not any(p.iterdir()):
        return p
    why = ours(p)
    if why is not None:
        raise _refuse(option, p, f"{why}; refusing to replace it (only {what} can be replaced)")
    if not force:
        raise _refuse(option, p, f"is {what}; pass {force_hint} to replace it")
    return p


def guard_lens_dir(
    path: str | os.PathLike[str],
    *,
    option: str = "--out",
    inputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
    force: bool = False,
    force_hint: str = "--force",
) -> Path:
    """Check that a lens directory may be written at ``path`` (see :func:`guard_dir`).

    Allowed: a missing path, an empty directory, or (with ``force``) an existing lens directory.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputRefusedError: anything else, or an overlap with an input.
    """
    return guard_dir(
        path, option=option, ours=lens_dir_problem, what="an existing lens directory", inputs=inputs,
        force=force, force_hint=force_hint,
    )  # fmt: skip


def report_problem(path: Path) -> str | None:
    """Why ``path`` is not an ``evaluate --json`` report we wrote, or None when it is one."""
    try:
        obj = _read_small_json(path)
    except (OSError, ValueError):
        return "is not an embedlens report"
    if not isinstance(obj, dict) or obj.get("format") != REPORT_FORMAT:
        return f'is not an embedlens report (no "format": "{REPORT_FORMAT}")'
    return None


def npy_problem(path: Path) -> str | None:
    """Why ``path`` is not a ``.npy`` that ``project`` could have written, or None when it could be.

    That is a C-order little-endian float32 2-d array whose file size matches its header.
    """
    import numpy as np

    from embedlens._arrays import read_npy_header

    try:
        with path.open("rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                return "is not a regular file"
            shape, fortran, dtype = read_npy_header(f)
            offset = f.tell()
    except (OSError, ValueError):
        return "is not a .npy array file"
    if dtype != np.dtype("<f4") or fortran or len(shape) != 2:
        return f"is a .npy of dtype {dtype} and shape {shape}, not a float32 matrix this command writes"
    if st.st_size != offset + 4 * int(shape[0]) * int(shape[1]):
        return "is a .npy whose size does not match its header"
    return None


def guard_file(
    path: str | os.PathLike[str],
    *,
    option: str,
    ours: Callable[[Path], str | None],
    inputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
    force: bool = False,
    force_hint: str = "--force",
) -> Path:
    """Check that a single output file may be written at ``path``.

    Args:
        path: the output file.
        option: how it was given, for messages.
        ours: returns why an existing file is not one of ours (None when it is).
        inputs: option name -> input path, none of which may overlap ``path``.
        force: replace an existing file of ours.
        force_hint: how the caller spells ``force`` in the refusal message.

    Raises:
        OutputRefusedError: ``path`` overlaps an input, is a link, a directory or another file than
            ours, or is ours but ``force`` is not set.
    """
    p = Path(path)
    check_overlap(p, option=option, inputs=inputs or {})
    if not os.path.lexists(p):
        return p
    if p.is_symlink():
        raise _refuse(option, p, "is a symbolic link; refusing to replace it")
    if p.is_dir():
        raise _refuse(option, p, "is a directory; refusing to replace it")
    if not p.is_file():  # a FIFO or a device: never opened (a FIFO would block)
        raise _refuse(option, p, "is not a regular file; refusing to replace it")
    why = ours(p)
    if why is not None:
        raise _refuse(option, p, f"exists and {why}; refusing to replace it")
    if not force:
        raise _refuse(option, p, f"exists; pass {force_hint} to replace it")
    return p


def _png_problem(path: Path) -> str | None:
    try:
        with path.open("rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode) or f.read(8) != b"\x89PNG\r\n\x1a\n":
                return "is not a PNG image"
    except OSError:
        return "is not a readable file"
    return None


def guard_plots_dir(
    folder: str | os.PathLike[str],
    names: Iterable[str],
    *,
    option: str = "--plots",
    inputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
    force: bool = False,
) -> Path:
    """Check that our PNG files ``names`` may be written into ``folder`` (which may hold other files).

    Raises:
        OutputRefusedError: ``folder`` overlaps an input or is not a directory, or one of ``names``
            exists (without ``force``, or when it is not a PNG file).
    """
    p = Path(folder)
    check_overlap(p, option=option, inputs=inputs or {})
    if not os.path.lexists(p):
        return p
    if not p.is_dir():
        raise _refuse(option, p, "exists and is not a directory")
    for name in names:
        guard_file(p / name, option=option, ours=_png_problem, force=force)
    return p


def prepare_demo_workdir(
    workdir: str | os.PathLike[str], *, inputs: Mapping[str, str | os.PathLike[str] | None] | None = None
) -> Path:
    """Create or reuse the demo's work directory and mark it as ours.

    Allowed: a missing path, an empty directory, or a directory holding :data:`DEMO_MARKER` (a
    previous demo's). The marker is written before anything else goes there.

    Raises:
        OutputRefusedError: anything else (a foreign lens, Chroma database, or any other content).
    """
    p = Path(workdir)
    option = "--workdir"
    check_overlap(p, option=option, inputs=inputs or {})
    if os.path.lexists(p):
        if not p.is_dir():
            raise _refuse(option, p, "exists and is not a directory")
        marker = p / DEMO_MARKER
        if marker.is_file() and not marker.is_symlink():
            return p
        if any(p.iterdir()):
            raise _refuse(
                option,
                p,
                f"is not empty and is not a previous demo workdir (no {DEMO_MARKER}); "
                "refusing to write into it (give a new or empty directory)",
            )
    p.mkdir(parents=True, exist_ok=True)
    (p / DEMO_MARKER).write_text("written by `embedlens demo`: its lens/ and chroma/ may be replaced\n")
    return p
