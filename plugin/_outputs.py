"""Output safety: never write over anything that is not ours, nor over, inside or around an input.

Every command that writes goes through one of the guards below *before* any work is done:

- :func:`guard_lens_dir` — a lens directory (``train --out``, :meth:`Lens.save`, the demo's lens);
- :func:`guard_dir` with :func:`export_dir_problem` — an ``embedlens export`` model folder;
- :func:`guard_file` with :func:`report_problem` or :func:`npy_problem` — a single file
  (``evaluate --json``, ``project --output``);
- :func:`guard_plots_dir` — a folder that receives only our own PNG file names (``evaluate --plots``);
- :func:`prepare_demo_workdir` — the demo's work directory (new, empty, or marked as a demo's).

What is ours: a missing path; an empty directory (for directory outputs); a lens directory (``lens.json``
of format ``embedlens-lens`` and no foreign file) or an export folder (holding only the files its marker
lists) — replaced only with ``force``; a report with the
:data:`REPORT_FORMAT` marker, a float32 ``.npy`` we could have written, or a PNG of our own name — each
replaced only with ``force``. Anything else is refused with :class:`OutputRefusedError` (exit 2), in
one line naming the option and the path. Paths are compared resolved (symlinks followed): the output
may not be an input, lie inside an input directory, or contain an input.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from embedlens.errors import EmbedlensInputError

__all__ = [
    "DEMO_MARKER",
    "EXPORT_MARKER",
    "REPORT_FORMAT",
    "OutputRefusedError",
    "check_overlap",
    "export_dir_problem",
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


def _no_constant(name: str) -> object:
    msg = f"{name} is not JSON"
    raise ValueError(msg)


def _read_small_json(path: Path, *, limit: int = MAX_JSON_BYTES, strict: bool = False) -> object:
    """Parse ``path`` as JSON if it is a regular file of at most ``limit`` bytes; raises ValueError otherwise.

    ``strict`` also refuses ``NaN`` / ``Infinity`` (which :func:`json.loads` accepts) and nesting too deep
    to parse.
    """
    with path.open("rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            msg = "not a small regular file"
            raise ValueError(msg)
        text = f.read(limit + 1).decode()
    if not strict:
        return json.loads(text)
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        msg = "nested too deeply"
        raise ValueError(msg) from None


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


#: the file that marks a folder as written by ``embedlens export`` (:data:`embedlens.export.EXPORT_MARKER`).
EXPORT_MARKER = "embedlens_export.json"
#: ``format`` field of :data:`EXPORT_MARKER`.
EXPORT_FORMAT = "embedlens-export"
#: largest export marker we parse (it lists the files of one model folder).
MAX_MARKER_BYTES = 4 << 20
#: names of the files a sentence-transformers save writes (configs, weights, tokenizer files), in the folder
#: or in a module's folder: the rule for an export whose marker lists no files (made by an older embedlens).
ST_FILE_NAMES = frozenset(
    {
        "README.md", "modules.json", "config_sentence_transformers.json", "sentence_bert_config.json",
        "config.json", "generation_config.json", "router_config.json",
        "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt",
        "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model",
        "chat_template.jinja",
    }
)  # fmt: skip
_ST_SHARD = re.compile(r"(model|pytorch_model)-\d{5}-of-\d{5}\.(safetensors|bin)\Z")
_ST_MODULE_DIR = re.compile(r"\d+_[A-Za-z]\w*\Z")  # 1_Pooling, 3_Dense, 3_Router
_ST_ROUTE_DIR = re.compile(r"[A-Za-z]\w*_\d+_[A-Za-z]\w*\Z")  # a Router's query_0_Dense


def _is_rel_path(value: object) -> bool:
    """Whether ``value`` is a plain relative POSIX path (no empty, ``.`` or ``..`` part)."""
    return (
        isinstance(value, str)
        and "\0" not in value
        and not value.startswith("/")
        and all(part not in ("", ".", "..") for part in value.split("/"))
    )


def _st_dir(rel: str) -> bool:
    parts = rel.split("/")
    return _ST_MODULE_DIR.match(parts[0]) is not None and (
        len(parts) == 1 or (len(parts) == 2 and _ST_ROUTE_DIR.match(parts[1]) is not None)
    )


def _st_file(rel: str) -> bool:
    parent, _, name = rel.rpartition("/")
    return (name in ST_FILE_NAMES or _ST_SHARD.match(name) is not None) and (parent == "" or _st_dir(parent))


def _first_foreign(
    root: Path, file_problem: Callable[[str, os.stat_result], str | None], dir_ok: Callable[[str], bool]
) -> str | None:
    """The first entry under ``root`` that is not ours, as ``holds 'REL', ...``; None when all are.

    Links and special files are never ours; a directory is ours when ``dir_ok`` accepts it (everything
    inside one that is not ours is foreign), and an empty directory that is not ours is named itself.
    """
    stack: list[tuple[str, bool]] = [("", True)]
    while stack:
        rel_dir, ours_dir = stack.pop()
        try:
            with os.scandir(root / rel_dir) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            return f"holds {rel_dir or '.'!r}, which cannot be read ({e.strerror or e})"
        if not entries and not ours_dir:
            return f"holds {rel_dir!r}, an empty directory embedlens export did not make"
        subdirs = []
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if entry.is_symlink():
                return f"holds {rel!r}, a symbolic link embedlens export did not write"
            if entry.is_dir(follow_symlinks=False):
                subdirs.append((rel, ours_dir and dir_ok(rel)))
                continue
            if rel == EXPORT_MARKER:
                continue
            if not entry.is_file(follow_symlinks=False):
                return f"holds {rel!r}, which is not a regular file"
            st = entry.stat(follow_symlinks=False)
            why = file_problem(rel, st) if ours_dir else "embedlens export did not write"
            if why is not None:
                return f"holds {rel!r}, which {why}"
        stack.extend(reversed(subdirs))
    return None


def export_dir_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is not an earlier ``embedlens export`` folder we may replace, or None when it is one.

    An export folder is a real directory (not a symlink) whose :data:`EXPORT_MARKER` is a regular file of
    strict JSON (at most :data:`MAX_MARKER_BYTES`) with ``"format": "embedlens-export"``. Its ``"files"``
    maps every file the export wrote (relative POSIX path) to its size, and ``"dirs"`` lists the
    directories it made: the folder may hold nothing else (no other file, link or directory), and each
    listed file still has its recorded size (a file the user rewrote is theirs). Listed files may be
    missing. A marker that records no ``"files"`` (an export by an older embedlens) is judged by name
    only: every file must be one a sentence-transformers save writes (:data:`ST_FILE_NAMES`, or a weights
    shard), at the top or in a module folder (``1_Pooling``, ``3_Router/query_0_Dense``).
    """
    root = Path(path)
    if root.is_symlink():
        return "is a symbolic link, not an earlier embedlens export"
    if not root.is_dir():
        return "exists and is not a directory"
    marker = root / EXPORT_MARKER
    if marker.is_symlink() or not marker.is_file():
        return f"exists and was not written by embedlens export (no {EXPORT_MARKER})"
    try:
        cfg = _read_small_json(marker, limit=MAX_MARKER_BYTES, strict=True)
    except (OSError, ValueError):
        cfg = None
    if not isinstance(cfg, dict) or cfg.get("format") != EXPORT_FORMAT:
        return f"exists and was not written by embedlens export ({EXPORT_MARKER} is not an export marker)"
    if "files" not in cfg:
        return _first_foreign(
            root,
            lambda rel, _st: None if _st_file(rel) else "is not a file a sentence-transformers save writes",
            _st_dir,
        )
    files, dirs = cfg["files"], cfg.get("dirs", [])
    if not (
        isinstance(files, dict)
        and all(_is_rel_path(k) and type(v) is int and v >= 0 for k, v in files.items())
        and isinstance(dirs, list)
        and all(_is_rel_path(d) for d in dirs)
    ):
        return f"exists and its {EXPORT_MARKER} has a malformed file list"
    made = set(dirs) | {rel.rsplit("/", i)[0] for rel in files for i in range(1, rel.count("/") + 1)}

    def file_problem(rel: str, st: os.stat_result) -> str | None:
        if rel not in files:
            return "embedlens export did not write"
        if st.st_size != files[rel]:
            return "changed since embedlens export wrote it"
        return None

    return _first_foreign(root, file_problem, made.__contains__)


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
