"""Reproduce the table: raw, current embedlens default, and the CV trainer, on SciFact / STS-B / SNLI.

Usage: python run_all.py [scifact] [stsb] [snli] [noise]   (default: all that have embeddings)
Needs emb/*.npy from embed.py. Writes results/<name>.json and prints one line per row.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import components, load_pairs, load_scifact  # noqa: E402
from trainer import (  # noqa: E402
    CVConfig,
    PairsData,
    PairsObjective,
    RetrievalData,
    RetrievalObjective,
    _normalize,
    fit_cv,
    mean_uplift,
    ndcg10,
    pair_cosines,
    pair_metric,
    stat_uplift,
)

OUT = Path(__file__).resolve().parent / "results"
OUT.mkdir(exist_ok=True)

#: the defaults proposed (grids are searched by k-fold CV inside the training data)
RETRIEVAL_GRID = {"lr": [1e-2], "rank": [64], "pseudo_weight": [0.0, 1.0], "reg": [0.0]}
PAIRS_GRID = {"lr": [3e-3, 1e-2], "rank": [32], "reg": [0.0]}


def fmt(d: tuple[float, float, float]) -> str:
    return f"{d[0]:+.4f} [{d[1]:+.4f}, {d[2]:+.4f}]"


# ------------------------------------------------------------------------------------ SciFact
def scifact_eval(sf, w: np.ndarray) -> dict:
    docs = _normalize(sf.docs)
    rows = np.arange(len(sf.test_q))
    raw = ndcg10(sf.test_q, docs, rows, sf.test_rel)
    lens = ndcg10(sf.test_q @ w, docs, rows, sf.test_rel)
    out = {}
    for name, m in (("all", np.ones(len(rows), bool)), ("seen", sf.seen), ("unseen", ~sf.seen)):
        out[name] = {
            "n": int(m.sum()),
            "raw": float(raw[m].mean()),
            "lens": float(lens[m].mean()),
            "delta": mean_uplift(lens[m], raw[m]),
        }
    return out


def scifact_current(sf) -> tuple[np.ndarray, float]:
    """The current embedlens default (query lens, one 15 % hold-out), as pipeline._train_beir does it."""
    cache = OUT / "scifact_current_W.npy"
    if cache.exists():
        return np.load(cache), float("nan")
    from embedlens.evaluation.retrieval import QrelsIndex
    from embedlens.training.config import TrainConfig
    from embedlens.training.retrieval import train_retrieval

    cfg = TrainConfig(progress=False)
    nq = len(sf.train_q)
    q, d, g = sf.train_rel
    qrels = QrelsIndex.from_pairs(q, d, g, nq, len(sf.docs))
    rng = np.random.default_rng(cfg.seed)
    val = np.zeros(nq, bool)
    val[rng.choice(nq, size=max(1, int(round(cfg.val_fraction * nq))), replace=False)] = True
    t = time.perf_counter()
    res, _ = train_retrieval(sf.train_q, sf.docs, qrels, cfg, val_rows=val)
    secs = time.perf_counter() - t
    np.save(cache, res.weights)
    return res.weights, secs


def run_scifact(
    grid: dict | None = None, pseudo: str = "titles", folds: int = 5, steps: int = 120, tag: str = "cv"
) -> dict:
    sf = load_scifact()
    n_docs = len(sf.docs)
    pq = {"titles": sf.titles, "leads": sf.leads}.get(pseudo)
    data = RetrievalData(
        sf.train_q,
        sf.docs,
        *sf.train_rel,
        pseudo_queries=pq,
        pseudo_docs=None if pq is None else np.arange(n_docs),
    )
    t = time.perf_counter()
    obj = RetrievalObjective(data)
    cfg = CVConfig(folds=folds, grid=grid or RETRIEVAL_GRID, max_steps=steps, eval_every=20)
    summ = fit_cv(obj, cfg)
    secs = time.perf_counter() - t
    res = {
        "tag": tag,
        "pseudo": pseudo,
        "seconds": secs,
        "reason": summ.reason,
        "chosen": summ.chosen,
        "steps": summ.steps,
        "shipped": summ.shipped,
        "grid": summ.grid_table,
        "test": scifact_eval(sf, summ.weights),
    }
    w_cur, cur_s = scifact_current(sf)
    res["current"] = scifact_eval(sf, w_cur)
    (OUT / f"scifact_{tag}.json").write_text(json.dumps(res, indent=1, default=float))
    for name, r in (("current", res["current"]), (tag, res["test"])):
        print(
            f"scifact {name:10s} "
            + "  ".join(
                f"{k} {r[k]['raw']:.4f}->{r[k]['lens']:.4f} ({fmt(r[k]['delta'])})"
                for k in ("all", "seen", "unseen")
            )
        )
    print(f"  {summ.reason}  [{secs:.1f}s]")
    return res


# -------------------------------------------------------------------------------------- pairs
def pairs_current(name: str, tr, te) -> dict:
    """The current embedlens default for pairs (query lens, CoSENT, 15 % hold-out by text)."""
    from embedlens.datasets import PairsDataset, split_pairs_by_text
    from embedlens.training.config import TrainConfig
    from embedlens.training.pairs import train_pairs

    cfg = TrainConfig(progress=False)
    ds = PairsDataset(tr.text_1, tr.text_2, tr.labels, "binary" if tr.binary else "graded")
    fit_m, val_m = split_pairs_by_text(ds, test_fraction=cfg.val_fraction, seed=cfg.seed)
    order = np.concatenate([np.flatnonzero(fit_m), np.flatnonzero(val_m)])
    vm = np.concatenate([np.zeros(fit_m.sum(), bool), np.ones(val_m.sum(), bool)])
    t = time.perf_counter()
    res, _ = train_pairs(tr.a[order], tr.b[order], tr.labels[order], cfg, binary=tr.binary, val_mask=vm)
    secs = time.perf_counter() - t
    w = res.weights
    train_cos = pair_cosines(w, tr.a, tr.b, "query")  # current: threshold from the training pairs
    return {"w": w, "thr_cos": (train_cos, tr.labels), "seconds": secs, "reason": res.reason}


def pairs_report(tr, te, w: np.ndarray, thr_lens: float | None, mode: str = "query") -> dict:
    from embedlens.metrics import accuracy_at_threshold, best_threshold

    cr = pair_cosines(np.eye(w.shape[0], dtype=np.float32), te.a, te.b, "query")
    cl = pair_cosines(w, te.a, te.b, mode)
    out = {
        "spearman": (pair_metric(cr, te.labels, False), pair_metric(cl, te.labels, False)),
        "d_spearman": stat_uplift(
            lambda i: pair_metric(cl[i], te.labels[i], False) - pair_metric(cr[i], te.labels[i], False),
            len(cr),
            n_boot=300,
        ),
    }
    if te.binary:
        pos = te.labels > 0
        thr_raw, _ = best_threshold(
            pair_cosines(np.eye(w.shape[0], dtype=np.float32), tr.a, tr.b, "query"), tr.labels > 0
        )
        acc_r = accuracy_at_threshold(cr, pos, thr_raw)
        acc_l = accuracy_at_threshold(cl, pos, thr_lens if thr_lens is not None else thr_raw)
        out["accuracy"] = (float(acc_r.mean()), float(acc_l.mean()))
        out["d_accuracy"] = mean_uplift(acc_l, acc_r)
        out["auc"] = (pair_metric(cr, te.labels, True), pair_metric(cl, te.labels, True))
        out["d_auc"] = stat_uplift(
            lambda i: pair_metric(cl[i], te.labels[i], True) - pair_metric(cr[i], te.labels[i], True),
            len(cr),
            n_boot=300,
        )
    return out


def run_pairs(
    name: str,
    grid: dict | None = None,
    mode: str = "query",
    folds: int = 5,
    steps: int = 200,
    tag: str = "cv",
) -> dict:
    from embedlens.metrics import best_threshold

    tr, te = load_pairs(name)
    groups = components(tr.text_1, tr.text_2)
    obj = PairsObjective(PairsData(tr.a, tr.b, tr.labels, groups, tr.binary), mode=mode)
    t = time.perf_counter()
    summ = fit_cv(obj, CVConfig(folds=folds, grid=grid or PAIRS_GRID, max_steps=steps, eval_every=20))
    secs = time.perf_counter() - t
    thr = None
    if tr.binary:
        # threshold from out-of-fold cosines (lens) — pairs the lens scoring them never trained on
        thr = best_threshold(summ.oof_scores, tr.labels[summ.oof_units] > 0)[0] if summ.shipped else None
    res = {
        "tag": tag,
        "mode": mode,
        "seconds": secs,
        "reason": summ.reason,
        "chosen": summ.chosen,
        "steps": summ.steps,
        "shipped": summ.shipped,
        "test": pairs_report(tr, te, summ.weights, thr, mode),
    }
    cur = pairs_current(name, tr, te)
    thr_cur = best_threshold(*[cur["thr_cos"][0], cur["thr_cos"][1] > 0])[0] if tr.binary else None
    res["current"] = {
        "reason": cur["reason"],
        "seconds": cur["seconds"],
        "test": pairs_report(tr, te, cur["w"], thr_cur),
    }
    (OUT / f"{name}_{tag}.json").write_text(json.dumps(res, indent=1, default=float))
    for label, r in (("current", res["current"]["test"]), (tag, res["test"])):
        line = f"{name} {label:10s} spearman {r['spearman'][0]:.4f}->{r['spearman'][1]:.4f} ({fmt(r['d_spearman'])})"
        if tr.binary:
            line += (
                f"  acc {r['accuracy'][0]:.4f}->{r['accuracy'][1]:.4f} ({fmt(r['d_accuracy'])})"
                f"  auc {r['auc'][0]:.4f}->{r['auc'][1]:.4f} ({fmt(r['d_auc'])})"
            )
        print(line)
    print(f"  {summ.reason}  [{secs:.1f}s]")
    return res


def run_noise(n_seeds: int = 10) -> None:
    """Pure-noise pair sets (labels independent of the texts): how often is a lens shipped?"""
    shipped = 0
    for seed in range(n_seeds):
        rng = np.random.default_rng(seed)
        tr, _ = load_pairs("snli")
        y = rng.permutation(tr.labels)
        obj = PairsObjective(PairsData(tr.a, tr.b, y, components(tr.text_1, tr.text_2), True))
        s = fit_cv(obj, CVConfig(folds=5, grid=PAIRS_GRID, max_steps=200, eval_every=20, seed=seed))
        shipped += s.shipped
        print(f"noise seed {seed}: shipped={s.shipped}  {s.reason}")
    print(f"noise: lens shipped on {shipped}/{n_seeds} pure-noise sets")


if __name__ == "__main__":
    which = sys.argv[1:] or ["snli", "stsb", "scifact"]
    for w in which:
        if w == "scifact":
            run_scifact()
        elif w == "noise":
            run_noise()
        else:
            run_pairs(w)
