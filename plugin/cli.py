"""The ``embedlens`` command line: train, evaluate, info, demo, reproject.

Exit codes: 0 success, 2 bad usage or bad input, 1 any other failure. Errors print as one line
(``embedlens: error: ...``); ``--debug`` prints the full traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from embedlens.errors import EmbedlensInputError

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", metavar="DIR", help="embedding cache directory (default: user cache dir)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    p.add_argument("--debug", action="store_true", help="print full tracebacks")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (kept separate so tests and docs can inspect it)."""
    parser = argparse.ArgumentParser(
        prog="embedlens", description="Customize frozen embeddings with a trained lens."
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a lens on a BEIR directory or a pairs file")
    t.add_argument("--data", required=True, help="BEIR directory (qrels/train.tsv) or pairs CSV/JSONL")
    t.add_argument("--out", required=True, metavar="LENS_DIR", help="where to write the lens directory")
    t.add_argument("--objective", choices=["pairs", "retrieval"], help="default: by data kind")
    t.add_argument(
        "--mode",
        choices=["symmetric", "query"],
        default=None,
        help="default: query (only queries projected, no re-indexing); symmetric with --dim",
    )
    t.add_argument("--dim", type=int, metavar="K", help="output dimension (symmetric mode only)")
    t.add_argument(
        "--model", metavar="NAME_OR_PATH", help="base model (default all-MiniLM-L6-v2; openai:MODEL)"
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--loss", choices=["cosent", "mse"], default="cosent", help="pair objective loss")
    t.add_argument("--epochs", type=int, default=None, help="maximum epochs (default 40, early stopping)")
    t.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 3e-4)")
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--temperature", type=float, default=None, help="retrieval softmax temperature")
    t.add_argument("--search", action="store_true", help="small grid search chosen on validation")
    t.add_argument(
        "--no-refit",
        dest="refit",
        action="store_false",
        help="ship the lens of the selection run (default: retrain on train+validation for the chosen epochs)",
    )
    t.add_argument(
        "--no-significance-check",
        dest="require_significant",
        action="store_false",
        help="ship the best validation epoch even when its gain over the start is not significant",
    )
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.add_argument(
        "--dry-run",
        action="store_true",
        help="only count the texts not yet cached and estimate the embedding cost",
    )
    _common(t)

    e = sub.add_parser("evaluate", help="raw vs lens on a split, side by side")
    e.add_argument("--data", required=True)
    e.add_argument("--lens", required=True, metavar="LENS_DIR")
    e.add_argument("--split", default="test")
    e.add_argument("--json", metavar="OUT", help="write the report as JSON")
    e.add_argument("--plots", metavar="DIR", help="write PNG plots here")
    e.add_argument("--index", choices=["flat", "hnsw", "ivf"], default="flat")
    e.add_argument("--model", metavar="NAME_OR_PATH", help="base model (default: the lens's)")
    e.add_argument(
        "--no-fingerprint-check",
        action="store_true",
        help="apply the lens even if the base model's fingerprint differs",
    )
    _common(e)

    i = sub.add_parser("info", help="print a lens's metadata")
    i.add_argument("lens", metavar="LENS_DIR")
    i.add_argument("--json", action="store_true", help="print lens.json as is")
    i.add_argument("--debug", action="store_true")

    d = sub.add_parser("demo", help="train, evaluate, index into Chroma, answer through LangChain (offline)")
    d.add_argument("--data", help="a BEIR directory (default: the small dataset shipped with embedlens)")
    d.add_argument("--workdir", default=None, help="where to write the lens and the Chroma DB")
    _common(d)

    pj = sub.add_parser("project", help="apply a lens to a large .npy file of vectors, streamed from disk")
    pj.add_argument("--lens", required=True, metavar="LENS_DIR")
    pj.add_argument("--input", required=True, help=".npy file, shape (n, d_in) float32")
    pj.add_argument("--output", required=True, help=".npy file to write (atomically)")
    pj.add_argument("--side", choices=["documents", "queries"], default="documents")
    pj.add_argument("--batch-size", type=int, default=65536)
    pj.add_argument("--debug", action="store_true")

    r = sub.add_parser("reproject", help="copy a Chroma collection's vectors through a symmetric lens")
    r.add_argument("--path", required=True, help="Chroma PersistentClient directory")
    r.add_argument("--source", required=True, help="source collection name")
    r.add_argument("--target", required=True, help="target collection name")
    r.add_argument("--lens", required=True, metavar="LENS_DIR")
    r.add_argument("--batch-size", type=int, default=1000)
    r.add_argument("--debug", action="store_true")
    return parser


def _version() -> str:
    from embedlens._version import __version__

    return f"embedlens {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (also used as the console-script entry point)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: 2 on bad usage, 0 on --help
        return int(e.code or 0)
    try:
        return int(_COMMANDS[args.command](args) or 0)
    except KeyboardInterrupt:
        sys.stderr.write("embedlens: interrupted\n")
        return EXIT_FAIL
    except Exception as e:  # noqa: BLE001 - the CLI turns every failure into one line
        if getattr(args, "debug", False):
            import traceback

            traceback.print_exc()
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        sys.stderr.write(f"embedlens: error: {msg}\n")
        return EXIT_USAGE if isinstance(e, EmbedlensInputError | FileNotFoundError) else EXIT_FAIL


def _embedder(args: argparse.Namespace, model: str | None) -> Any:
    from embedlens.pipeline import open_embedder

    return open_embedder(model, cache_dir=args.cache, no_cache=args.no_cache)


def _train_config(args: argparse.Namespace) -> Any:
    from embedlens.training import TrainConfig

    cfg = TrainConfig(
        mode=args.mode,
        dim=args.dim,
        seed=args.seed,
        loss=args.loss,
        refit=args.refit,
        require_significant=args.require_significant,
        progress=not args.quiet,
    )
    for opt, attr in (
        ("epochs", "max_epochs"),
        ("lr", "lr"),
        ("batch_size", "batch_size"),
        ("temperature", "temperature"),
    ):
        value = getattr(args, opt)
        if value is not None:
            setattr(cfg, attr, value)
    return cfg


def cmd_train(args: argparse.Namespace) -> int:
    """``embedlens train``."""
    from embedlens.pipeline import search_train, train_lens
    from embedlens.plots import plot_validation_curve

    data = Path(args.data)
    if not data.exists():
        raise EmbedlensInputError(f"{data}: no such file or directory")
    embedder = _embedder(args, args.model)
    cfg = _train_config(args)
    if args.dry_run or embedder.name.startswith("openai:"):
        from embedlens.embedders.openai import estimate_cost
        from embedlens.pipeline import training_texts

        todo = embedder.missing(training_texts(data))
        model = getattr(embedder.base, "model", embedder.name)
        cost = estimate_cost(todo, model)
        usd = "unknown price" if cost["usd"] is None else f"about US${cost['usd']:.4f}"
        _out(
            f"to embed: {cost['texts']} texts not in the cache, ~{cost['tokens']} tokens, {usd} with {embedder.name}"
        )
        if args.dry_run:
            return EXIT_OK
    _out(f"training a {cfg.mode} lens on {data} with {embedder.name} ({embedder.dim}-d)")
    outcome = (
        search_train(data, embedder, cfg, args.objective)
        if args.search
        else train_lens(data, embedder, cfg, objective=args.objective)
    )
    out = outcome.lens.save(args.out)
    tr = outcome.lens.metadata["training"]
    png = plot_validation_curve(
        outcome.curve, out / "validation_curve.png", metric=tr["val_metric"], chosen=tr["chosen_epoch"]
    )
    _out(
        f"validation {tr['val_metric']}: start {tr['val_start']:.4f} -> chosen {tr['val_best']:.4f} "
        f"(epoch {tr['chosen_epoch']})"
    )
    _out(f"reason: {tr['reason']}")
    _out(f"lens written to {out} ({outcome.lens.d_in} -> {outcome.lens.d_out}); curve: {png}")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``embedlens evaluate``."""
    from embedlens._atomic import atomic_write_json
    from embedlens.lens import load_lens
    from embedlens.pipeline import evaluate_lens
    from embedlens.report import format_report

    lens = load_lens(args.lens)
    data = Path(args.data)
    if not data.exists():
        raise EmbedlensInputError(f"{data}: no such file or directory")
    embedder = _embedder(args, args.model or lens.base_model)
    report = evaluate_lens(
        data,
        lens,
        embedder,
        split=args.split,
        index=args.index,
        check_fingerprint=not args.no_fingerprint_check,
    )
    js = report.to_json()
    js["info"]["lens"] = str(Path(args.lens))
    _out(f"{data} [{args.split}] with {embedder.name}; lens {lens.mode} {lens.d_in}->{lens.d_out}")
    _out(format_report(js))
    if args.plots:
        _write_plots(report, Path(args.plots))
        _out(f"plots written to {args.plots}")
    if args.json:
        atomic_write_json(args.json, js)
        _out(f"report written to {args.json}")
    return EXIT_OK


def _write_plots(report: Any, folder: Path) -> None:
    from embedlens.evaluation.pairs import PairReport
    from embedlens.plots import plot_cosine_histograms, plot_metric_at_k

    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(report, PairReport):
        plot_cosine_histograms(
            report.cos_raw, report.cos_lens, report.labels, folder / "cosine_histograms.png"
        )
    else:
        plot_metric_at_k(report.raw, report.lens, folder / "metric_at_k.png")


def cmd_info(args: argparse.Namespace) -> int:
    """``embedlens info``: verifies the lens, then prints its metadata."""
    from embedlens.lens import CONFIG_FILE, load_lens
    from embedlens.report import format_lens_info

    load_lens(args.lens)  # verify checksum/format before printing anything
    cfg = json.loads((Path(args.lens) / CONFIG_FILE).read_text())
    _out(json.dumps(cfg, indent=2) if args.json else format_lens_info(cfg))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """``embedlens demo``."""
    from embedlens.demo import run_demo

    run_demo(data=args.data, workdir=args.workdir, cache_dir=args.cache, no_cache=args.no_cache, echo=_out)
    return EXIT_OK


def cmd_reproject(args: argparse.Namespace) -> int:
    """``embedlens reproject``."""
    import chromadb

    from embedlens.adapters.chroma import reproject_collection
    from embedlens.lens import load_lens

    client = chromadb.PersistentClient(path=args.path)
    n = reproject_collection(
        client, args.source, args.target, load_lens(args.lens), batch_size=args.batch_size
    )
    _out(f"re-projected {n} vectors from {args.source!r} into {args.target!r}")
    return EXIT_OK


def cmd_project(args: argparse.Namespace) -> int:
    """``embedlens project``."""
    from embedlens.lens import load_lens
    from embedlens.project import project_npy

    out = project_npy(
        args.input, args.output, load_lens(args.lens), side=args.side, batch_size=args.batch_size
    )
    _out(f"projected {args.input} -> {out}")
    return EXIT_OK


_COMMANDS = {
    "project": cmd_project,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "info": cmd_info,
    "demo": cmd_demo,
    "reproject": cmd_reproject,
}

if __name__ == "__main__":
    sys.exit(main())
