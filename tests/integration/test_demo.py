"""The README's first command: `embedlens demo` runs offline on the shipped data and prints each step."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedlens.cli import main


def test_demo_prints_every_step(tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--workdir", str(tmp_path), "--cache", str(cache_dir)]) == 0
    out = capsys.readouterr().out
    for step in (
        "[1/4]",
        "[2/4]",
        "[3/4]",
        "[4/4]",
        "ndcg@10",
        "95% CI",
        "why this lens:",
        "40 documents in collection",
    ):
        assert step in out, step
    assert (tmp_path / "lens" / "lens.json").is_file() and (tmp_path / "chroma").is_dir()
    assert (
        "top-3 ids ['kb01'" in out
    )  # the LangChain/Chroma answer to the first test question is the right article
