"""Quality vs anchors on the shared data, with the exact CLI commands, in one run.

- SciFact (BEIR): raw vs embedlens defaults (query lens, retrieval objective) and ``--mode symmetric``:
  nDCG@10 / recall@100 / MRR@10, all / seen / unseen test queries.
- STS-B: Spearman raw vs embedlens defaults (query lens) and ``--mode symmetric``.
- SNLI sample, entailment vs contradiction, 50/50 split by text: accuracy (threshold chosen on training pairs)
  for raw, embedlens, and the OpenAI cookbook's procedure written from its description (random-init
  384x2048 matrix, plain SGD, MSE on cosine, dropout) with its learning rate picked on *training* data.

Run: python bench/bench_quality.py   (writes bench/results.json; the first run fills the embedding cache)
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from _util import BENCH_CACHE as CACHE
from _util import SHARED, peak_rss_mb, save

from embedlens.app.cli import main as cli


def run(data: Path, work: Path, name: str, *extra: str) -> dict:
    lens = work / name
    train_cmd = ["train", "--data", str(data), "--out", str(lens), "--cache", CACHE, "--quiet", *extra]
    t0 = time.perf_counter()
    assert cli(train_cmd) == 0
    t_train = time.perf_counter() - t0
    report = work / f"{name}.json"
    eval_cmd = ["evaluate", "--data", str(data), "--lens", str(lens), "--cache", CACHE, "--json", str(report)]
    assert cli(eval_cmd) == 0
    rep = json.loads(report.read_text())
    rep["train_s"] = t_train
    rep["commands"] = [
        "embedlens " + " ".join(c.replace(str(SHARED), "../shared/data") for c in train_cmd),
        "embedlens " + " ".join(c.replace(str(SHARED), "../shared/data") for c in eval_cmd),
    ]
    meta = json.loads((lens / "lens.json").read_text())["metadata"]["training"]
    rep["chosen_steps"], rep["reason"] = meta["chosen_steps"], meta["reason"]
    return rep


def cookbook_snli(seed: int = 0) -> dict:
    """The cookbook's procedure on the same SNLI split; lr chosen by training accuracy (not test)."""
    import torch

    from embedlens.cache import open_embedder
    from embedlens.datasets import pairs_train_test, read_pairs
    from embedlens.evaluation.metrics import accuracy_at_threshold, best_threshold
    from embedlens.evaluation.pairs import pair_cosines

    data = read_pairs(SHARED / "snli_1.0_train_2k.csv")
    train, test, _ = pairs_train_test(data)
    emb = open_embedder(None, cache_dir=CACHE)
    emb.progress = False
    a_tr, b_tr, a_te, b_te = (emb.embed(t) for t in (train.text_1, train.text_2, test.text_1, test.text_2))
    y_tr, y_te = train.labels, test.labels
    t0 = time.perf_counter()
    best = None
    for lr in (10, 100, 1000):  # the cookbook's grid
        torch.manual_seed(seed)
        m = torch.randn(384, 2048, requires_grad=True)
        opt = torch.optim.SGD([m], lr=lr)
        ea, eb, y = map(torch.from_numpy, (a_tr, b_tr, y_tr))
        for _ in range(30):
            for s in range(0, len(y), 100):
                da = torch.nn.functional.dropout(ea[s : s + 100], 0.1)
                db = torch.nn.functional.dropout(eb[s : s + 100], 0.1)
                cos = torch.nn.functional.cosine_similarity(da @ m, db @ m)
                loss = ((cos - y[s : s + 100]) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        w = m.detach().numpy()
        cos_tr = np.einsum("ij,ij->i", a_tr @ w, b_tr @ w) / (
            np.linalg.norm(a_tr @ w, axis=1) * np.linalg.norm(b_tr @ w, axis=1)
        )
        thr, acc_tr = best_threshold(cos_tr, y_tr > 0)
        if best is None or acc_tr > best[0]:
            best = (acc_tr, lr, w, thr)
    t_cook = time.perf_counter() - t0
    _, lr, w, thr = best
    cos_te = np.einsum("ij,ij->i", a_te @ w, b_te @ w) / (
        np.linalg.norm(a_te @ w, axis=1) * np.linalg.norm(b_te @ w, axis=1)
    )
    raw_thr, _ = best_threshold(pair_cosines(a_tr, b_tr), y_tr > 0)
    return {
        "accuracy": float(accuracy_at_threshold(cos_te, y_te > 0, thr).mean()),
        "lr": lr,
        "train_s": t_cook,
        "raw_accuracy": float(accuracy_at_threshold(pair_cosines(a_te, b_te), y_te > 0, raw_thr).mean()),
        "cookbook_best_on_test_accuracy": best_threshold(cos_te, y_te > 0)[1],
    }


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="embedlens-quality-"))
    out: dict = {}
    if (SHARED / "beir" / "scifact").exists():
        out["scifact"] = run(SHARED / "beir" / "scifact", work, "scifact")
        out["scifact_symmetric"] = run(SHARED / "beir" / "scifact", work, "scifact_s", "--mode", "symmetric")
        for k in ("scifact", "scifact_symmetric"):
            r = out[k]
            print(
                f"{k}: nDCG@10 {r['raw']['ndcg@10']:.4f} -> {r['lens']['ndcg@10']:.4f}; unseen "
                f"{r['groups']['unseen']['raw']['ndcg@10']:.4f} -> {r['groups']['unseen']['lens']['ndcg@10']:.4f}; "
                f"train {r['train_s']:.1f} s"
            )
    if (SHARED / "pairs" / "stsb.csv").exists():
        out["stsb"] = run(SHARED / "pairs" / "stsb.csv", work, "stsb")
        out["stsb_symmetric"] = run(SHARED / "pairs" / "stsb.csv", work, "stsb_s", "--mode", "symmetric")
        for k in ("stsb", "stsb_symmetric"):
            print(f"{k}: Spearman {out[k]['raw']['spearman']:.4f} -> {out[k]['lens']['spearman']:.4f}")
    if (SHARED / "snli_1.0_train_2k.csv").exists():
        out["snli"] = run(SHARED / "snli_1.0_train_2k.csv", work, "snli")
        out["snli_cookbook"] = cookbook_snli()
        print(
            f"snli: accuracy {out['snli']['raw']['accuracy']:.4f} -> {out['snli']['lens']['accuracy']:.4f} "
            f"(train {out['snli']['train_s']:.1f} s); cookbook {out['snli_cookbook']['accuracy']:.4f} "
            f"(train {out['snli_cookbook']['train_s']:.1f} s)"
        )
    from embedlens.app.demo import demo_data_dir

    out["demo"] = run(demo_data_dir(), work, "demo")
    d = out["demo"]
    print(f"demo: nDCG@10 {d['raw']['ndcg@10']:.4f} -> {d['lens']['ndcg@10']:.4f}")
    out["peak_rss_mb"] = peak_rss_mb()
    save("quality", out)


if __name__ == "__main__":
    main()
