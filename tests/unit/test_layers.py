"""The layers point one way (ARCHITECTURE.md): every import of an embedlens module is checked from the source.

primitives (lens, index) → embedders + cache → datasets → training / evaluation → workflows → adapters → app.
Adapters depend on the core; the core imports them only in the app layer (the CLI and the demo serve them).
Imports are found by parsing: absolute and relative, lazy ones inside functions, names taken from the package
root (its lazy exports resolve to their modules) and ``importlib.import_module("embedlens....")``.
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
    "_device": 0,
    "vector_files": 0,
    "lens": 1,
    "index": 1,
    "embedders": 2,
    "cache": 2,
    "datasets": 3,
    "evaluation": 4,
    "training": 4,
    "project": 5,
    "embed_table": 5,
    "distributed": 5,
    "export": 5,
    "evaluation.workflow": 5,
    "training.workflow": 5,
    "adapters": 6,
    "app": 7,
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


def _root_exports() -> dict[str, str]:
    """Names the package root exports lazily -> the module (below ``embedlens``) that defines them."""
    import embedlens

    return {name: module.removeprefix("embedlens.") for name, module in embedlens._LAZY.items()}


def _imports(path: Path, module: str | None = None) -> list[tuple[int, str]]:
    """Every ``embedlens.*`` module ``path`` imports (lazy ones too), with its line (``module``: its dotted name)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {  # ``if TYPE_CHECKING:`` blocks run under the type checker only
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for stmt in block.body
        for n in ast.walk(stmt)
    }
    package = (module or "").split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    lazy = _root_exports()
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        names: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the module's own package
                base = package[: len(package) - node.level + 1] if node.level > 1 else package
                target = ".".join(["embedlens", *base, *([node.module] if node.module else [])]).rstrip(".")
            else:
                target = node.module or ""
            names = [target] + [f"{target}.{a.name}" for a in node.names]
            if target == "embedlens":
                names += [f"embedlens.{lazy[a.name]}" for a in node.names if a.name in lazy]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module") and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names = [arg.value]
        for name in names:
            if name.startswith("embedlens."):
                found.append((node.lineno, name.removeprefix("embedlens.")))
    return found


def _violations(path: Path, me: str) -> list[str]:
    """The imports of module ``me`` (at ``path``) that point up the layers."""
    mine = _rank(me)
    assert mine is not None, f"{me} has no layer"
    bad = []
    for line, target in _imports(path, me):
        rank = _rank(target)
        if rank is None:  # a name imported from a package (``from embedlens.app import cli``): its package
            rank = _rank(target.rsplit(".", 1)[0])
        if rank is not None and rank > mine:
            bad.append(f"line {line}: {me} (layer {mine}) imports {target} (layer {rank})")
    return bad


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
    bad = _violations(path, me)
    assert not bad, "\n".join(bad)


def test_only_the_app_imports_adapters() -> None:
    bad = [
        f"{p.relative_to(ROOT)}:{line} imports embedlens.{target}"
        for p in (ROOT / "plugin").rglob("*.py")
        if not _module_name(p).startswith("app")
        for line, target in _imports(p, _module_name(p))
        if target.startswith("adapters")
    ]
    assert not bad, bad


def test_evaluation_never_imports_training() -> None:
    bad = [
        f"{p.relative_to(ROOT)}:{line} imports embedlens.{target}"
        for p in (ROOT / "plugin" / "evaluation").rglob("*.py")
        for line, target in _imports(p, _module_name(p))
        if target.startswith("training")
    ]
    assert not bad, bad
    probe = ROOT / "plugin" / "evaluation" / "pairs.py"
    assert not any(t.startswith("training") for _, t in _imports(probe, "evaluation.pairs"))


@pytest.mark.parametrize(
    "source",
    [
        "def f():\n    from embedlens.app.cli import main\n    return main\n",  # lazy, inside a function
        "from ..app.cli import main\n",  # relative
        "from embedlens import train_lens\n",  # a lazy export of the package root
        "import importlib\nimportlib.import_module('embedlens.adapters.chroma')\n",  # by name
        "from embedlens import adapters\n",  # a package taken as a name
    ],
)
def test_the_checker_sees_a_violation(tmp_path: Path, source: str) -> None:
    """Each way of importing upward is caught in an evaluation module: a check that cannot fail proves nothing."""
    src = tmp_path / "retrieval.py"
    src.write_text(source)
    assert _violations(src, "evaluation.retrieval"), source
    typing_only = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    " + source.replace("\n", "\n    ")
    if "def f" not in source and "importlib" not in source:
        src.write_text(typing_only)
        assert not _violations(src, "evaluation.retrieval")  # annotations only: allowed
