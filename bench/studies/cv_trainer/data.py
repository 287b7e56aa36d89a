"""Loading the precomputed embeddings (emb/*.npy) and the shared protocol's splits and metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2].parent / "shared" / "data"  # ../shared/data beside the repository
EMB = HERE / "emb"
SCI = SHARED / "beir/scifact"


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for i, line in enumerate(path.open()):
        parts = line.rstrip("\n").split("\t")
        if i == 0 and parts[0] == "query-id":
            continue
        if len(parts) == 3:
            out.setdefault(parts[0], {})[parts[1]] = int(float(parts[2]))
    return out


@dataclass
class SciFact:
    docs: np.ndarray
    titles: np.ndarray
    leads: np.ndarray | None
    minus_lead: np.ndarray | None
    train_q: np.ndarray
    train_rel: tuple[np.ndarray, np.ndarray, np.ndarray]  # (query row, doc row, grade)
    test_q: np.ndarray
    test_rel: tuple[np.ndarray, np.ndarray, np.ndarray]
    seen: np.ndarray  # (n_test,) bool


def load_scifact() -> SciFact:
    meta = json.loads((EMB / "scifact_meta.json").read_text())
    doc_row = {d: i for i, d in enumerate(meta["doc_ids"])}
    q_row = {q: i for i, q in enumerate(meta["query_ids"])}
    queries = np.load(EMB / "scifact_queries.npy")

    def part(split: str) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray], list[str]]:
        rel = _qrels(SCI / "qrels" / f"{split}.tsv")
        qids = list(rel)
        qq, dd, gg = [], [], []
        for i, q in enumerate(qids):
            for d, g in rel[q].items():
                qq.append(i)
                dd.append(doc_row[d])
                gg.append(g)
        return queries[[q_row[q] for q in qids]], (np.array(qq), np.array(dd), np.array(gg, float)), qids

    tq, trel, _ = part("train")
    sq, srel, sids = part("test")
    train_docs = set(trel[1][trel[2] > 0].tolist())
    seen = np.zeros(len(sids), bool)
    for q, d, g in zip(*srel, strict=True):
        if g > 0 and d in train_docs:
            seen[q] = True

    def opt(name: str) -> np.ndarray | None:
        p = EMB / f"{name}.npy"
        return np.load(p) if p.exists() else None

    return SciFact(
        np.load(EMB / "scifact_docs.npy"),
        np.load(EMB / "scifact_titles.npy"),
        opt("scifact_leads"),
        opt("scifact_docs_minus_lead"),
        tq,
        trel,
        sq,
        srel,
        seen,
    )


@dataclass
class Pairs:
    a: np.ndarray
    b: np.ndarray
    labels: np.ndarray
    text_1: list[str]
    text_2: list[str]
    binary: bool


def components(text_1: list[str], text_2: list[str]) -> np.ndarray:
    """Connected component id ``(n,)`` of each pair in the graph of shared texts."""
    n = len(text_1)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, (a, b) in enumerate(zip(text_1, text_2, strict=True)):
        for t in (a, b):
            j = first.setdefault(t, i)
            ri, rj = find(i), find(j)
            if ri != rj:
                parent[ri] = rj
    roots = np.array([find(i) for i in range(n)])
    return np.unique(roots, return_inverse=True)[1]


def load_pairs(name: str) -> tuple[Pairs, Pairs]:
    """(train, test) of ``"stsb"`` (split column) or ``"snli"`` (50/50 by text, seed 0, as embedlens)."""
    meta = json.loads((EMB / f"{name}_meta.json").read_text())
    a, b = np.load(EMB / f"{name}_a.npy"), np.load(EMB / f"{name}_b.npy")
    lab = np.asarray(meta["label"], np.float32)
    t1, t2 = meta["text_1"], meta["text_2"]
    if name == "stsb":
        split = np.asarray(meta["split"])
        tr, te = split == "train", split == "test"
        binary = False
    else:
        from embedlens.datasets import PairsDataset, split_pairs_by_text

        ds = PairsDataset(t1, t2, lab, "binary")
        tr, te = split_pairs_by_text(ds, test_fraction=0.5, seed=0)
        binary = True

    def sub(m: np.ndarray) -> Pairs:
        idx = np.flatnonzero(m)
        return Pairs(a[idx], b[idx], lab[idx], [t1[i] for i in idx], [t2[i] for i in idx], binary)

    return sub(tr), sub(te)
