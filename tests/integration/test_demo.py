"""The README's first command: `embedlens demo` runs offline on the shipped data and prints each step.

The shipped data is a help desk whose questions use codenames the base model cannot know ("Falcon"
for the billing service); with the default settings the lens must win significantly, also on test
questions about documents that no training question is about. The demo runs once per module.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from embedlens.app.cli import main
from embedlens.app.demo import demo_data_dir, seen_unseen_line
from embedlens.datasets import read_beir


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> tuple[str, Path, Path]:
    """(stdout, workdir, report) of one `embedlens demo --json` run (the report inside the workdir)."""
    work = tmp_path_factory.mktemp("demo") / "work"
    report = work / "report.json"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(
            ["demo", "--workdir", str(work), "--cache", str(cache_dir), "--json", str(report), "--quiet"]
        )
    assert rc == 0, out.getvalue()
    return out.getvalue(), work, report


def test_demo_prints_every_step(demo_run: tuple[str, Path, Path]) -> None:
    out, work, _ = demo_run
    n_docs = len(read_beir(demo_data_dir()).corpus_ids)
    for step in ("[1/4]", "[2/4]", "[3/4]", "[4/4]", "ndcg@10", "95% CI", "why this lens:"):
        assert step in out, step
    assert f"{n_docs} documents in collection" in out
    assert (work / "lens" / "lens.json").is_file() and (work / "chroma").is_dir()
    # the one line on seen/unseen: the gain reaches documents no training question is about
    line = next(ln for ln in out.splitlines() if "unseen documents (no training question about them" in ln)
    assert "learned the jargon" in line, line
    # step 4: a question about such a document, answered right through LangChain and Chroma
    assert "a test question about a document no training question is about" in out
    top, relevant = re.search(r"top-3 ids \['(\w+)'.*relevant: \[(.*)\]", out).groups()  # type: ignore[union-attr]
    assert f"'{top}'" in relevant, out


def test_demo_json_is_the_evaluate_report(demo_run: tuple[str, Path, Path]) -> None:
    _, _, path = demo_run
    rep: dict[str, Any] = json.loads(path.read_text())
    assert rep["format"] == "embedlens-report" and rep["task"] == "retrieval"
    assert {"raw", "lens", "uplift", "groups", "info"} <= rep.keys()
    d = rep["uplift"]["ndcg@10"]
    assert d["significant"] and d["delta"] > 0 and d["ci95"][0] > 0
    assert rep["lens"]["ndcg@10"] > rep["raw"]["ndcg@10"]
    seen, unseen = rep["groups"]["seen"], rep["groups"]["unseen"]
    assert seen["n"] > 0 and unseen["n"] >= 0.3 * (seen["n"] + unseen["n"])
    assert unseen["uplift"]["ndcg@10"]["significant"] and unseen["uplift"]["ndcg@10"]["delta"] > 0
    assert rep["raw"]["ndcg@10"] < 0.7  # the base model genuinely misses the jargon


def test_demo_json_refuses_what_is_not_ours(tmp_path: Path, cache_dir: Path) -> None:
    """Checked before any work: a foreign file, or a report of ours without --force, stays as it is."""
    foreign = tmp_path / "notes.json"
    foreign.write_text('{"mine": true}')
    ours = tmp_path / "old-report.json"
    ours.write_text('{"format": "embedlens-report"}')
    work = tmp_path / "work"
    for target in (foreign, ours, tmp_path / "work" / "lens"):
        argv = ["demo", "--workdir", str(work), "--cache", str(cache_dir), "--json", str(target), "--quiet"]
        assert main(argv) == 2, target
    assert foreign.read_text() == '{"mine": true}' and ours.read_text() == '{"format": "embedlens-report"}'
    assert not work.exists()  # refused before the work directory was made


def _group(raw: float, lens: float, significant: bool, n: int = 50) -> dict[str, Any]:
    delta = {"delta": lens - raw, "ci95": [lens - raw - 0.05, lens - raw + 0.05], "significant": significant}
    return {"n": n, "raw": {"ndcg@10": raw}, "lens": {"ndcg@10": lens}, "uplift": {"ndcg@10": delta}}


@pytest.mark.parametrize(
    ("seen", "unseen", "words"),
    [
        (_group(0.4, 0.9, True), _group(0.5, 0.8, True), "learned the jargon"),
        (_group(0.4, 0.9, True), _group(0.5, 0.51, False), "memorised answers"),
        (_group(0.4, 0.9, True), _group(0.5, 0.3, True), "over-fitted"),
        (_group(0.4, 0.4, False), _group(0.5, 0.5, False), "changes nothing measurable"),
    ],
)
def test_seen_unseen_line_says_what_happened(seen: dict, unseen: dict, words: str) -> None:
    line = seen_unseen_line({"groups": {"seen": seen, "unseen": unseen}})
    assert words in line and "\n" not in line
    assert f"{unseen['raw']['ndcg@10']:.2f} -> {unseen['lens']['ndcg@10']:.2f}" in line
