"""The layers point one way (ARCHITECTURE.md): every import of an embedlens module is checked from the source.

primitives (lens, index) → embedders + cache → datasets → training / evaluation → workflows → app (CLI, demo).
Adapters depend on the core; the core imports them only in the app layer (the CLI and the demo serve them).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: rank of each core module or subpackage: a module may import only modules of a rank at or below its own.
RANKS = {
    "_version": 0,
    "errors": 0,
    "_arrays": 0,
    "_atomic": 0,
    "_secrets": 0,
    "_outputs": 0,
    "lens": 1,
    "index": 1,
    "embedders": 2,
    "cache": 2,
    "datasets": 3,
    "evaluation": 4,
    "training": 4,
    "project": 5,
    "evaluation.workflow": 5,
    "training.workflow": 5,
    "app": 6,
    "adapters": 6,
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    if rel.parts[0] == "adapters":
        parts = ["adapters", *rel.parts[1:]]
    else:
        parts = list(rel.parts[1:])
    parts[-1] = parts[-1].removesuffix(".py")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _rank(module: str) -> int | None:
    """Rank of ``module`` (dotted, below ``embedlens``): its most specific entry in :data:`RANKS`."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in RANKS:
            return RANKS[".".join(parts[:n])]
    return None


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every ``embedlens.*`` module ``path`` imports (at any depth: lazy imports count), with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {  # ``if TYPE_CHECKING:`` blocks run under the type checker only
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for stmt in block.body
        for n in ast.walk(stmt)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith("embedlens."):
                found.append((node.lineno, name.removeprefix("embedlens.")))
    return found


def _sources() -> list[Path]:
    return sorted((ROOT / "plugin").rglob("*.py")) + sorted((ROOT / "adapters").rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    missing = [
        str(p.relative_to(ROOT)) for p in _sources() if _module_name(p) and _rank(_module_name(p)) is None
    ]
    assert not missing, f"add these modules to RANKS (and ARCHITECTURE.md): {missing}"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path: Path) -> None:
    me = _module_name(path)
    if not me:  # the package root: a facade of lazy exports, no layer of its own
        return
    mine = _rank(me)
    assert mine is not None
    bad = []
    for line, target in _imports(path):
        rank = _rank(target)
        if rank is None:  # a name imported from a package (``from embedlens.app import cli``): its package
            rank = _rank(target.rsplit(".", 1)[0])
        if rank is not None and rank > mine:
            bad.append(f"line {line}: {me} (layer {mine}) imports {target} (layer {rank})")
    assert not bad, "\n".join(bad)


def test_only_the_app_imports_adapters() -> None:
    bad = [
        f"{p.relative_to(ROOT)}:{line} imports embedlens.{target}"
        for p in (ROOT / "plugin").rglob("*.py")
        if not _module_name(p).startswith("app")
        for line, target in _imports(p)
        if target.startswith("adapters")
    ]
    assert not bad, bad


def test_evaluation_never_imports_training() -> None:
    bad = [
        f"{p.relative_to(ROOT)}:{line} imports embedlens.{target}"
        for p in (ROOT / "plugin" / "evaluation").rglob("*.py")
        for line, target in _imports(p)
        if target.startswith("training")
    ]
    assert not bad, bad


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The walk finds a lazy import inside a function: a check that cannot fail would prove nothing."""
    src = tmp_path / "x.py"
    src.write_text("def f():\n    from embedlens.app.cli import main\n    return main\n")
    assert _imports(src) == [(2, "app.cli"), (2, "app.cli.main")]
    assert _rank("app.cli") > _rank("lens")  # type: ignore[operator]
