"""Integrations: :mod:`embedlens.adapters.langchain` and :mod:`embedlens.adapters.chroma`.

Each module imports its host library when it is imported, not before.
"""

from __future__ import annotations

__all__: list[str] = []
