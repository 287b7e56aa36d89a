"""The wheel ships every package of the source tree (a non-editable install imports everything)."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]


def _declared() -> set[str]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return set(cfg["packages"])


def _tree() -> set[str]:
    found = set()
    for top, name in ((ROOT / "plugin", "embedlens"), (ROOT / "adapters", "embedlens.adapters")):
        for d in [top, *[p for p in top.rglob("*") if p.is_dir()]]:
            if "__pycache__" in d.parts or not any(f.is_file() for f in d.iterdir()):
                continue
            rel = d.relative_to(top).parts
            found.add(".".join((name, *rel)))
    return found


def test_every_source_folder_is_a_declared_package() -> None:
    assert _tree() == _declared()


def test_version_has_one_source() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in text and "\nversion =" not in text.split("[tool.setuptools.dynamic]")[0]
