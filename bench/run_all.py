"""Run every benchmark in one go and rewrite BENCHMARKS.md from bench/results.json.

Run: make bench   (or: python bench/run_all.py [--render-only | --dry-run])

Every ``bench_*.py`` next to this file is run (a script missing from :data:`SCRIPTS` is an error, so no
section of BENCHMARKS.md goes stale unnoticed). The LlamaIndex anchor needs ``.venv-bench``: it is
built with ``make bench-env`` when missing, and the run stops with an error if that fails. The shared
data sets must be present (``../shared/data``); a missing one stops the run before anything is measured.
``--dry-run`` prints the plan and the checks without running anything (exit 1 when a check fails).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared" / "data"  # as in bench/_util.py
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
SCRIPTS = [
    "bench_apply.py",
    "bench_train.py",
    "bench_quality.py",
    "bench_llamaindex.py",  # after bench_quality: its rows join the SciFact table
    "bench_snli_variants.py",
    "bench_dim.py",
    "bench_openai.py",
    "bench_eval_scale.py",
    "bench_train_scale.py",
    "bench_project.py",
    "bench_scale_out.py",
]
#: scripts run by hand elsewhere: their figures are merged into results.json where they were measured
MANUAL = {
    "bench_gpu.py": "needs a CUDA machine (data exported here with --export); results.json's 'gpu' holds its output",
}
#: data each script measures on; a script whose data is missing would print "skipped" and leave stale numbers
DATA = {
    "bench_train.py": ["beir/scifact"],
    "bench_quality.py": ["beir/scifact", "pairs/stsb.csv", "snli_1.0_train_2k.csv"],
    "bench_llamaindex.py": ["beir/scifact"],
    "bench_snli_variants.py": ["snli_1.0_train_2k.csv"],
    "bench_dim.py": ["beir/scifact"],
}


class BenchSetupError(SystemExit):
    """``make bench`` cannot run every benchmark: exits non-zero with a one-line reason."""

    def __init__(self, msg: str) -> None:
        super().__init__(f"run_all.py: {msg}")


def unlisted_scripts() -> list[str]:
    """``bench_*.py`` files next to this one that :data:`SCRIPTS` does not run."""
    return sorted(p.name for p in HERE.glob("bench_*.py") if p.name not in SCRIPTS and p.name not in MANUAL)


def missing_data() -> list[str]:
    """Shared data the scripts need that is not on disk."""
    need = sorted({d for script in SCRIPTS for d in DATA.get(script, [])})
    return [str(SHARED / d) for d in need if not (SHARED / d).exists()]


def ensure_bench_env(*, dry_run: bool = False) -> None:
    """Make sure ``.venv-bench`` (the LlamaIndex anchor's environment) exists: build it, or fail loudly.

    Raises:
        BenchSetupError: ``make bench-env`` failed or did not produce ``.venv-bench/bin/python``.
    """
    if BENCH_PYTHON.exists():
        print(f"LlamaIndex environment: {BENCH_PYTHON}", flush=True)
        return
    if dry_run:
        print(f"LlamaIndex environment: {BENCH_PYTHON} missing; would run `make bench-env`", flush=True)
        return
    print("== make bench-env (.venv-bench for the LlamaIndex anchor is missing)", flush=True)
    try:
        done = subprocess.run(["make", "bench-env"], cwd=ROOT, check=False)
    except OSError as e:
        raise BenchSetupError(f"cannot run `make bench-env` to build .venv-bench ({e})") from e
    if done.returncode != 0 or not BENCH_PYTHON.exists():
        raise BenchSetupError(
            f"`make bench-env` failed (exit {done.returncode}): the LlamaIndex benchmark needs {BENCH_PYTHON}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Check the set-up, run every benchmark script, then render BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render-only", action="store_true", help="only rewrite BENCHMARKS.md")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the checks; run nothing")
    args = parser.parse_args(argv)
    if args.render_only:
        render()
        return 0
    problems = []
    if unlisted_scripts():
        problems.append(f"bench scripts that run_all.py does not run: {', '.join(unlisted_scripts())}")
    if missing_data():
        problems.append(f"benchmark data not found: {', '.join(missing_data())}")
    for script in SCRIPTS:
        print(f"{'would run' if args.dry_run else 'will run'}: {script}", flush=True)
    if problems:
        if args.dry_run:
            for p in problems:
                print(f"run_all.py: {p}", file=sys.stderr)
            return 1
        raise BenchSetupError("; ".join(problems))
    ensure_bench_env(dry_run=args.dry_run)
    if args.dry_run:
        return 0
    for script in SCRIPTS:
        print(f"== {script}", flush=True)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(HERE / script)], check=True, cwd=ROOT)
        print(f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
    render()
    return 0


def _plots(r: dict) -> bool:
    """Bar chart of SciFact quality (measured, with the issue's quoted anchors as lines) and time ratios."""
    q = r.get("quality", {})
    if "scifact" not in q:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = HERE / "plots"
    out.mkdir(exist_ok=True)
    s = q["scifact"]
    bars = {"raw": s["raw"]["ndcg@10"], "embedlens\n(query, default)": s["lens"]["ndcg@10"]}
    unseen = {
        "raw": s["groups"]["unseen"]["raw"]["ndcg@10"],
        "embedlens\n(query, default)": s["groups"]["unseen"]["lens"]["ndcg@10"],
    }
    if "scifact_symmetric" in q:
        bars["embedlens\nsymmetric"] = q["scifact_symmetric"]["lens"]["ndcg@10"]
        unseen["embedlens\nsymmetric"] = q["scifact_symmetric"]["groups"]["unseen"]["lens"]["ndcg@10"]
    for name, li in r.get("llamaindex", {}).items():
        bars[f"LlamaIndex\n{name}"] = li["ndcg@10"]
        unseen[f"LlamaIndex\n{name}"] = li["ndcg@10_unseen"]
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    x = range(len(bars))
    ax.bar([i - 0.2 for i in x], list(bars.values()), width=0.4, label="all 300 test queries")
    ax.bar([i + 0.2 for i in x], list(unseen.values()), width=0.4, label="104 unseen queries")
    ax.set_xticks(list(x), list(bars), fontsize=7)
    for y, label in (
        (0.72, "Chroma adapter, query-only (quoted)"),
        (0.76, "Chroma adapter, query-first (quoted)"),
    ):
        ax.axhline(y, ls=":", lw=1, color="gray")
        ax.text(len(bars) - 0.5, y + 0.003, label, fontsize=7, ha="right", color="gray")
    ax.set_ylim(0.5, 0.9)
    ax.set_ylabel("SciFact test nDCG@10")
    ax.legend(fontsize=8, loc="upper left")
    fig.savefig(out / "quality.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    ratios = {}
    a = r.get("apply", {})
    if "100000x384->384" in a:
        ratios["lens / bare X@W"] = a["100000x384->384"]["ratio"]
    if "train_scifact" in r:
        ratios["SciFact train /\nembed corpus"] = r["train_scifact"]["ratio"]
    if "snli" in q and "snli_cookbook" in q:
        ratios["SNLI train /\ncookbook train"] = q["snli"]["train_s"] / q["snli_cookbook"]["train_s"]
    if "openai_batching" in r:
        ratios["batched / per-text\nOpenAI requests"] = 1 / r["openai_batching"]["speedup"]
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    ax.bar(list(ratios), list(ratios.values()), color="tab:orange")
    ax.axhline(1.0, color="gray", ls="--", lw=1)
    ax.set_ylabel("time ratio (lower is better)")
    ax.tick_params(axis="x", labelsize=7)
    fig.savefig(out / "ratios.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


def _f(x: float | None, nd: int = 4) -> str:
    return "–" if x is None else f"{x:.{nd}f}"


#: the same table measured with the trainer before cross-validation and pseudo-queries (commit 1141b9a:
#: one 15 % validation split, full matrix, epochs; the demo row from `embedlens demo --json` at that commit).
BEFORE = {
    "scifact": {"all": 0.8243, "seen": 0.9059, "unseen": 0.6706},
    "stsb": {"spearman": 0.8308},
    "snli": {"accuracy": 0.7979, "roc_auc": 0.8824},
    "demo": {"all": 0.9542, "seen": 0.9734, "unseen": 0.9255},
}


def _defaults_table(q: dict) -> list[str]:
    """One table over every shared dataset and the demo: raw, before this trainer, now (defaults)."""

    def cell(s: dict, metric: str, group: str | None = None) -> str:
        part = s if group is None else s["groups"][group]
        d = part["uplift"][metric]
        sig = "significant" if d["significant"] else "not significant"
        return f"{_f(part['lens'][metric])} (Δ {d['delta']:+.4f}, CI [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}], {sig})"

    rows = [
        "## Every shared dataset with the defaults: raw, before and after cross-validated training",
        "",
        "Held-out test splits, offline all-MiniLM-L6-v2, `embedlens train` then `embedlens evaluate` with no "
        "option (commands below). *Before* is the trainer at commit 1141b9a (one 15 % validation split, "
        "threshold chosen on the training pairs).",
        "",
        "| data, metric | raw | before | now (defaults) | goal |",
        "|---|---|---|---|---|",
    ]
    for key, label, goal in (
        ("scifact", "SciFact", "all ≥ 0.82; unseen ≥ raw + 0.02"),
        ("demo", "demo (help desk)", "significant gain"),
    ):
        if key not in q:
            continue
        s, b = q[key], BEFORE[key]
        rows.append(
            f"| {label} nDCG@10, all ({s['info'].get('queries', '')}) | {_f(s['raw']['ndcg@10'])} | {_f(b['all'])} | {cell(s, 'ndcg@10')} | {goal} |"
        )
        for group in ("seen", "unseen"):
            g = s["groups"][group]
            rows.append(
                f"| {label} nDCG@10, {group} ({g['n']}) | {_f(g['raw']['ndcg@10'])} | {_f(b[group])} | {cell(s, 'ndcg@10', group)} | |"
            )
    if "stsb" in q:
        s = q["stsb"]
        rows.append(
            f"| STS-B Spearman | {_f(s['raw']['spearman'])} | {_f(BEFORE['stsb']['spearman'])} | {cell(s, 'spearman')} | ≥ raw + 0.01 |"
        )
    if "snli" in q:
        s = q["snli"]
        rows.append(
            f"| SNLI entailment vs contradiction, accuracy | {_f(s['raw']['accuracy'])} | {_f(BEFORE['snli']['accuracy'])} | {cell(s, 'accuracy')} | ≥ raw + 0.02 |"
        )
        rows.append(
            f"| SNLI ROC AUC | {_f(s['raw']['roc_auc'])} | {_f(BEFORE['snli']['roc_auc'])} | {cell(s, 'roc_auc')} | not below raw |"
        )
    verdicts = []
    if "scifact" in q:
        s, u = q["scifact"], q["scifact"]["groups"]["unseen"]
        verdicts.append(f"SciFact all ≥ 0.82: {'met' if s['lens']['ndcg@10'] >= 0.82 else 'missed'}")
        ok = u["lens"]["ndcg@10"] >= u["raw"]["ndcg@10"] + 0.02
        verdicts.append(f"SciFact unseen ≥ raw + 0.02: {'met' if ok else 'missed'}")
    if "demo" in q:
        verdicts.append(
            f"demo significant: {'met' if q['demo']['uplift']['ndcg@10']['significant'] else 'missed'}"
        )
    if "stsb" in q:
        verdicts.append(
            f"STS-B ≥ raw + 0.01: {'met' if q['stsb']['uplift']['spearman']['delta'] >= 0.01 else 'missed'}"
        )
    if "snli" in q:
        verdicts.append(
            f"SNLI accuracy ≥ raw + 0.02: {'met' if q['snli']['uplift']['accuracy']['delta'] >= 0.02 else 'missed'}"
        )
    rows += ["", "Goals: " + "; ".join(verdicts) + ".", "", "What each run chose (cross-validation):", ""]
    for key in ("scifact", "demo", "stsb", "snli"):
        if key in q:
            rows.append(f"- {key}: {q[key]['reason']}")
    return rows + [""]


def render() -> None:
    r = json.loads((HERE / "results.json").read_text())
    m = r.get("machine", {})
    lines = [
        "# Benchmarks",
        "",
        "Rewritten by `make bench` (`python bench/run_all.py`) from `bench/results.json`. Offline model",
        "all-MiniLM-L6-v2 (384-d); every quality number is measured on a held-out test split never used in",
        "training or model selection. Ratios are measured in one run; the two absolute times stand beside them.",
        "",
        f"Machine: {m.get('cpus')} CPUs, Python {m.get('python')}, numpy {m.get('numpy')}, torch {m.get('torch')}, "
        f"{m.get('platform')}.",
        "",
    ]
    q = r.get("quality", {})
    if q:
        lines += _defaults_table(q)
        lines += ["## Quality (default settings unless stated)", ""]
        if "scifact" in q:
            lines += [
                "| SciFact test (300 queries) | nDCG@10 | recall@100 | MRR@10 | nDCG@10 seen (196) | nDCG@10 unseen (104) | train s |",
                "|---|---|---|---|---|---|---|",
            ]
            s = q["scifact"]
            g = s["groups"]
            lines.append(
                f"| raw | {_f(s['raw']['ndcg@10'])} | {_f(s['raw']['recall@100'])} | {_f(s['raw']['mrr@10'])} | "
                f"{_f(g['seen']['raw']['ndcg@10'])} | {_f(g['unseen']['raw']['ndcg@10'])} | – |"
            )
            for key, label in (
                ("scifact", "embedlens defaults (query lens)"),
                ("scifact_symmetric", "embedlens `--mode symmetric`"),
            ):
                if key in q:
                    s = q[key]
                    g = s["groups"]
                    d = s["uplift"]["ndcg@10"]
                    du = g["unseen"]["uplift"]["ndcg@10"]
                    lines.append(
                        f"| {label} | {_f(s['lens']['ndcg@10'])} (Δ {d['delta']:+.4f}, CI [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]) | "
                        f"{_f(s['lens']['recall@100'])} | {_f(s['lens']['mrr@10'])} | {_f(g['seen']['lens']['ndcg@10'])} | "
                        f"{_f(g['unseen']['lens']['ndcg@10'])} (Δ {du['delta']:+.4f}, CI [{du['ci95'][0]:+.3f}, {du['ci95'][1]:+.3f}]) | "
                        f"{s['train_s']:.1f} |"
                    )
            for name, li in r.get("llamaindex", {}).items():
                lines.append(
                    f"| LlamaIndex linear adapter, {name} {li['settings'] or ''} | {_f(li['ndcg@10'])} | "
                    f"{_f(li['recall@100'])} | {_f(li['mrr@10'])} | {_f(li['ndcg@10_seen'])} | "
                    f"{_f(li['ndcg@10_unseen'])} | {li['train_s']:.1f} |"
                )
            lines += [
                "",
                "Chroma's published linear adapter on the same model and data (quoted from the issue, not re-run "
                "here): ~0.72 (query-only) / ~0.76 (query-first).",
                "",
            ]
            ts = r.get("train_scifact", {})
            ours = ts.get("train_s", q["scifact"]["train_s"])
            for name, li in r.get("llamaindex", {}).items():
                ratio = ours / li["train_s"]
                lines.append(
                    f"- Training time embedlens (defaults, `train_lens` on cached embeddings) / LlamaIndex {name} "
                    f"(`finetune()`): {ratio:.3f} ({ours:.1f} s vs {li['train_s']:.1f} s on the same train qrels; goal ≤ 0.05 "
                    f"with a higher nDCG@10: {'met' if ratio <= 0.05 else 'not met'}); peak RSS embedlens "
                    f"{ts.get('peak_rss_mb', float('nan')):.0f} MiB, LlamaIndex {li['peak_rss_mb']:.0f} MiB. (The table's "
                    "`train s` for embedlens is the whole CLI command, model loading included.)"
                )
            lines.append("")
        for key, label in (
            ("stsb", "STS-B test Spearman, defaults (query lens)"),
            ("stsb_symmetric", "STS-B test Spearman, `--mode symmetric`"),
        ):
            if key in q:
                s = q[key]
                d = s["uplift"]["spearman"]
                lines.append(
                    f"- {label}: raw {_f(s['raw']['spearman'])} → lens {_f(s['lens']['spearman'])} "
                    f"(Δ {d['delta']:+.4f}, 95 % CI [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]); chosen "
                    f"{s['chosen_steps']} steps."
                )
        if "snli" in q:
            s, c = q["snli"], q.get("snli_cookbook", {})
            d = s["uplift"]["accuracy"]
            lines.append(
                f"- SNLI sample, entailment vs contradiction, 50/50 split by text, threshold chosen on training pairs: "
                f"raw accuracy {_f(s['raw']['accuracy'])} → embedlens {_f(s['lens']['accuracy'])} "
                f"(Δ {d['delta']:+.4f}, CI [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]; {s['reason']})."
            )
            if c:
                lines.append(
                    f"- SNLI, the cookbook's procedure (random-init 384×2048, plain SGD, MSE, dropout; lr {c['lr']} chosen on "
                    f"training accuracy): test accuracy {_f(c['accuracy'])} (its best-threshold-on-test figure: "
                    f"{_f(c['cookbook_best_on_test_accuracy'])}); training {c['train_s']:.1f} s vs embedlens "
                    f"{s['train_s']:.1f} s (ratio {s['train_s'] / c['train_s']:.2f})."
                )
        lines += ["", "Commands:", "", "```"]
        for s in q.values():
            if isinstance(s, dict) and "commands" in s:
                lines += s["commands"]
        lines += ["```", ""]
    t = r.get("train_scifact")
    if t:
        lines += [
            "## Training cost",
            "",
            f"SciFact training with cached embeddings: {t['train_s']:.1f} s vs embedding the corpus once "
            f"{t['embed_corpus_s']:.0f} s → ratio {t['ratio']:.3f} (goal: under 60 s; peak RSS {t['peak_rss_mb']:.0f} MiB).",
            "",
        ]
        if "cli_warm_s" in t:
            lines += [
                f"Whole warm `embedlens train` command (fresh process, every text cached, the model never loaded): "
                f"{t['cli_warm_s']:.1f} s → {t['cli_ratio']:.3f} of embedding the corpus once (goal ≤ 0.05: "
                f"{'met' if t['cli_ratio'] <= 0.05 else 'missed'}).",
                "",
            ]
    a = r.get("apply")
    if a:
        lines += [
            "## Apply cost",
            "",
            "| shape | lens / bare `X @ W` | with L2 normalisation | lens ms | bare ms |",
            "|---|---|---|---|---|",
        ]
        for k, v in a.items():
            if "->" in k:
                lines.append(
                    f"| {k} | {v['ratio']:.3f} | {v['ratio_normalized']:.3f} | {v['lens_s'] * 1e3:.2f} | {v['bare_matmul_s'] * 1e3:.2f} |"
                )
        ls = a["lens_share_of_embedding"]
        lines += [
            "",
            f"- Lens share of local embedding time ({ls['texts']} texts): {100 * ls['ratio']:.3f} % "
            f"({ls['lens_s'] * 1e3:.2f} ms vs {ls['embed_s']:.2f} s; goal < 1 %).",
        ]
        for k, label in (
            ("langchain_adapter_overhead", "LangChain `LensEmbeddings`"),
            ("chroma_adapter_overhead", "Chroma `LensEmbeddingFunction`"),
        ):
            v = a[k]
            lines.append(
                f"- {label} overhead: {100 * v['ratio']:.3f} % of base embedding time ({v['adapter_extra_s'] * 1e3:.2f} ms "
                f"added to {v['base_s']:.2f} s; goal < 1 %; measured over an instant base so the model's noise cannot hide it)."
            )
        lines.append("")
    o = r.get("openai_batching")
    if o:
        lines += [
            "## OpenAI client path",
            "",
            f"{o['texts']:,} texts through a loopback OpenAI-compatible server (its own process) with the real `openai` "
            f"client: batched + concurrent through the cache {o['batched_s']:.2f} s in {o['batched_requests']} requests vs "
            f"one request per text {o['per_text_s']:.2f} s in {o['per_text_requests']} requests → {o['speedup']:.1f}× "
            f"faster (goal ≥ 20×: {'met' if o['speedup'] >= 20 else 'missed'}).",
            "",
        ]
    e = r.get("eval_scale")
    if e:
        lines += [
            "## Evaluation and exact search at scale",
            "",
            f"{e['n_docs']:,} × 384 synthetic documents streamed from disk: evaluation (raw + lens indexes, search, metrics, "
            f"bootstrap) in {e['eval_s']:.0f} s; peak RSS above the start {e['peak_rss_above_start_mb']:,.0f} MiB "
            f"(vectors {e['vectors_mb']:,.0f} MiB on disk; goal ≤ 4,096 MiB above the vectors).",
            "",
        ]
        ex = e.get("exact_search")
        if ex:
            lines += [
                "Exact top-100 search over the same normalised rows, each a ratio to numpy brute force (one product "
                "with every row, one `argpartition`, 100 queries at a time) measured in the same run (goal: ≥ 1.0 "
                "with identical results):",
                "",
                "| queries | embedlens `FlatIndex` / numpy | FAISS `IndexFlatIP` / numpy | FlatIndex s | FAISS s | numpy s | "
                "identical top-100 vs numpy | vs FAISS |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for n_q, x in ex.items():
                lines.append(
                    f"| {int(n_q):,} | {x['ours_over_numpy']:.2f}× | {x['faiss_over_numpy']:.2f}× | {x['ours_s']:.2f} | "
                    f"{x['faiss_s']:.2f} | {x['numpy_s']:.2f} | {x['identical_vs_numpy']:.4f} | {x['identical_vs_faiss']:.4f} |"
                )
            lines += [
                "",
                f"BLAS kernels (threadpoolctl): {e.get('blas')}. FAISS's bundled OpenBLAS picks its kernel per CPU (a "
                "generic one on some machines, 0.31× numpy there) and its speed also depends on the batch shape; "
                "`FlatIndex` (blocked numpy products; after the first block only the chunks that can beat each "
                'query\'s current k-th best are looked into) is what `build_index(kind="flat")` returns; FAISS '
                "stays for HNSW and IVF.",
                "",
            ]
    ts = r.get("train_scale")
    if ts:
        lines += [
            "## Training cost against corpus size",
            "",
            "800 labelled queries, synthetic 384-d documents streamed from a file (`bench/bench_train_scale.py`). "
            "One pass over the corpus mines the hard negatives (and, above 100,000 documents, each query's raw top "
            "100 as validation candidates, with the judged documents and a fixed 20,000-document sample); training "
            "and checkpoint validation then touch only the rows held. A step is one epoch (every labelled item); "
            "the whole-corpus significance check is timed apart.",
            "",
            "| documents | one pass s | ms per step | steps | documents held | whole-corpus check s | peak RSS MiB |",
            "|---|---|---|---|---|---|---|",
        ]
        for x in ts["rows"]:
            lines.append(
                f"| {x['n_docs']:,} | {x['setup_s']:.1f} | {1000 * x['s_per_step']:.0f} | {x['steps']} | "
                f"{x['held_docs']:,} | {x['exact_check_s']:.1f} | {x['peak_rss_mb']:,.0f} |"
            )
        by_n = {x["n_docs"]: x for x in ts["rows"]}
        if 50_000 in by_n and 5_000_000 in by_n:
            ratio = by_n[5_000_000]["s_per_step"] / by_n[50_000]["s_per_step"]
            peak = by_n[5_000_000]["peak_rss_mb"]
            lines += [
                "",
                f"Per-step time 5M / 50k = {ratio:.2f} (goal ≤ 3: {'met' if ratio <= 3 else 'missed'}); 5M peak RSS "
                f"{peak:,.0f} MiB (goal < 8,192: {'met' if peak < 8192 else 'missed'}).",
            ]
        lines.append("")
    g = r.get("gpu")
    if g:
        tr, se = g["train"], g["search"]
        lines += [
            "## GPU (`--device cuda`), measured on the device machine",
            "",
            f"{g.get('gpu')}, {g.get('cpus')} CPU cores, torch {g.get('torch')} (`python bench/bench_gpu.py`, one run: "
            "the CPU figures are that machine's 16 cores, not this one's).",
            "",
            f"- SciFact training with the defaults on cached embeddings: CPU {tr['cpu']['seconds']:.1f} s, CUDA "
            f"{tr['cuda']['seconds']:.1f} s ({tr['cpu']['seconds'] / tr['cuda']['seconds']:.1f}× faster); test nDCG@10 "
            f"raw {tr['raw_test_ndcg10']:.4f} → CPU lens {tr['cpu']['test_ndcg10']:.4f}, CUDA lens {tr['cuda']['test_ndcg10']:.4f}.",
        ]
        for n_q, x in se.items():
            lines.append(
                f"- Exact top-100 search, {int(n_q):,} queries × 1,000,000 documents: CPU {x['cpu_s']:.2f} s, CUDA "
                f"{x['cuda_s']:.3f} s ({x['gpu_over_cpu']:.0f}×), identical top-100 sets {x['identical']:.4f}."
            )
        lines += [
            "- Embedding with the local model on the GPU was not measured (its files exceed what travels to that machine).",
            "",
        ]
    sv = r.get("snli_variants")
    if sv:
        lines += [
            "## SNLI: variants of the trainer (entailment vs contradiction, test accuracy, out-of-fold thresholds)",
            "",
            "Each fixed variant ships its best cross-validated setting here even when the gain is not significant (the",
            "default safeguard would ship the identity); the `--wide-grid` rows are what `embedlens train --wide-grid` ships",
            "(wider CV grid, safeguard on). `val AUC` is the mean 5-fold out-of-fold AUC.",
            "",
            "| variant | val AUC start → best | test accuracy raw → lens | Δ (95 % CI) | test AUC raw → lens |",
            "|---|---|---|---|---|",
        ]
        for x in sv["rows"]:
            lines.append(
                f"| {x['variant']} | {x['val_auc_start']:.4f} → {x['val_auc_best']:.4f} | {x['raw_accuracy']:.4f} → "
                f"{x['accuracy']:.4f} | {x['delta']:+.4f} [{x['ci95'][0]:+.4f}, {x['ci95'][1]:+.4f}] | "
                f"{x['raw_roc_auc']:.4f} → {x['roc_auc']:.4f} |"
            )
        best = max(sv["rows"], key=lambda x: x["accuracy"])
        lines += [
            "",
            f"Best reached: {best['variant']}, {best['accuracy']:.4f} vs raw {best['raw_accuracy']:.4f} "
            f"(Δ {best['delta']:+.4f}); the goal raw + 0.02 is {'met' if best['delta'] >= 0.02 else 'not met'}.",
            "",
        ]
    pj = r.get("project_scale")
    if pj:
        lines += [
            "## Projection at scale",
            "",
            f"{pj['n']:,} × 384 vectors ({pj['gib']:.1f} GiB) streamed from disk through a 384×384 lens "
            f"(`embedlens project`): {pj['project_s']:.0f} s = {pj['vectors_per_s']:,.0f} vectors/s; peak RSS "
            f"{pj['peak_rss_mb']:,.0f} MiB (bounded: a few 65,536-row batches).",
            "",
        ]
    so = r.get("scale_out")
    if so:
        lines += [
            "## Scale-out: local vs Ray (`project` on Parquet)",
            "",
            f"{so['n']:,} × 384 vectors in {so['files']} Parquet files (row groups of {so['row_group']:,}) through a "
            f"384×384 lens, every output row checked: local engine {so['local_s']:.1f} s = {so['local_vps']:,.0f} "
            f"vectors/s; Ray on a local instance with {so['cpus']} CPUs {so['ray_s']:.1f} s = {so['ray_vps']:,.0f} "
            f"vectors/s (plus {so['ray_start_s']:.1f} s to start Ray) → Ray/local **{so['ratio']:.2f}**. On one "
            f"{so['cpus']}-core machine Ray does not win: the local engine already streams at disk and Parquet "
            "codec speed, and Ray adds scheduling and object-store copies.",
            "",
            f"Projected from the measured {so['ray_vps_per_cpu']:,.0f} vectors/s per CPU (the job's own time, "
            "linear in CPUs, assuming storage keeps up; not measured on a cluster):",
            "",
            "| nodes × CPUs | vectors/s | 1e9 vectors |",
            "|---|---|---|",
        ]
        for nodes, cpus in ((1, 16), (10, 16), (100, 16)):
            rate = so["ray_vps_per_cpu"] * nodes * cpus
            lines.append(f"| {nodes} × {cpus} | {rate:,.0f} | {1e9 / rate / 60:,.1f} min |")
        lines += ["", "Command: `python bench/bench_scale_out.py` (needs the `embedlens[ray]` extra).", ""]
    dm = r.get("dim_reduction")
    if dm:
        lines += [
            "## Dimension reduction (symmetric `--dim K`, SciFact test)",
            "",
            "Measured with the trainer before cross-validation (commit 1141b9a); not re-run since (`python "
            "bench/bench_dim.py` re-measures it).",
            "",
            "| dim | flat index MiB | nDCG@10 |",
            "|---|---|---|",
        ]
        lines += [f"| {x['dim']} | {x['index_mb']:.2f} | {x['ndcg@10']:.4f} |" for x in dm["rows"]]
        lines += [
            f"| raw 384 | {dm['rows'][0]['index_mb']:.2f} | {dm['rows'][0]['raw_ndcg@10']:.4f} |",
            "",
            "![dimension trade-off](bench/plots/dim_tradeoff.png)",
            "",
        ]
    if _plots(r):
        lines += [
            "## Plots",
            "",
            "![quality](bench/plots/quality.png)",
            "",
            "![time ratios](bench/plots/ratios.png)",
            "",
        ]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines) + "\n")
    print("BENCHMARKS.md written")


if __name__ == "__main__":
    sys.exit(main())
