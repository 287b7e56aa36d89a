"""Import every subpackage and module of the installed embedlens (run from outside the source tree)."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import embedlens

if "site-packages" not in embedlens.__file__:
    sys.exit(f"embedlens imported from {embedlens.__file__}, not from an installed wheel")
names = ["embedlens"] + [m.name for m in pkgutil.walk_packages(embedlens.__path__, "embedlens.")]
for name in names:
    importlib.import_module(name)
for sub in ("adapters", "app", "datasets", "embedders", "evaluation", "training"):
    assert f"embedlens.{sub}" in names, f"embedlens.{sub} missing from the installed package"
print(f"imported {len(names)} modules from {embedlens.__file__}")
