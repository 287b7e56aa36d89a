"""The ``embedlens`` command line: train, evaluate, info, demo, reproject.

Exit codes: 0 success, 2 bad usage or bad input, 1 any other failure. Errors print as one line
(``embedlens: error: ...``); ``--debug`` prints the full traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from embedlens.errors import EmbedlensInputError
from embedlens.index import INDEX_KINDS

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the option (no usage block), exit 2."""

    def error(self, message: str) -> NoReturn:
        one_line = " ".join(message.split())
        self.exit(EXIT_USAGE, f"embedlens: error: {one_line} (see '{self.prog} --help')\n")


def _int_at_least(low: int, high: int = 2**62) -> Callable[[str], int]:
    """An argparse ``type=``: an integer within ``[low, high]`` (argparse names the option in its one-line error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            bound = f">= {low}" if high == 2**62 else f"between {low} and {high}"
            raise argparse.ArgumentTypeError(f"must be an integer {bound}, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1)
#: rows per batch when streaming vectors (a batch is held in memory, so it is bounded).
_batch_rows = _int_at_least(1, 10_000_000)


def _seed(text: str) -> int:
    """An argparse ``type=``: a seed within ``0..2**32-1`` (what numpy and torch accept)."""
    from embedlens.training.config import MAX_SEED

    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be an integer within 0..{MAX_SEED}, got {text!r}")
    return value


def _float_in(low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type=``: a finite number within ``low..high`` (``low`` excluded with ``low_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        above = value > low if low_open else value >= low
        if not (math.isfinite(value) and above and value <= high):
            want = f"> {low:g} and <= {high:g}" if low_open else f"within {low:g}..{high:g}"
            raise argparse.ArgumentTypeError(f"must be a number {want}, got {text!r}")
        return value

    return parse


def _lr(text: str) -> float:
    from embedlens.training.config import MAX_LR

    return _float_in(0.0, MAX_LR, low_open=True)(text)


def _temperature(text: str) -> float:
    from embedlens.training.config import TEMPERATURE_RANGE

    return _float_in(*TEMPERATURE_RANGE)(text)


def _model_spec(text: str) -> str:
    if text.startswith("openai:"):
        from embedlens.embedders import parse_openai_spec

        try:
            parse_openai_spec(text)
        except EmbedlensInputError as e:
            raise argparse.ArgumentTypeError(str(e).removeprefix("--model ")) from None
    elif not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


class _Renamed(argparse.Action):
    """An option's old name: still accepted for one release, with a warning that names the new one."""

    def __init__(self, option_strings: list[str], dest: str, new: str, const: Any = None, **kw: Any) -> None:
        self.new = new
        nargs = 0 if const is not None else None
        super().__init__(option_strings, dest, nargs=nargs, const=const, help=argparse.SUPPRESS, **kw)

    def __call__(
        self, parser: argparse.ArgumentParser, ns: argparse.Namespace, values: Any, opt: Any = None
    ) -> None:
        sys.stderr.write(f"embedlens: warning: {opt} is now {self.new}; the old name will be removed\n")
        setattr(ns, self.dest, self.const if self.const is not None else values)  # argparse checked choices


def _one_line_warnings() -> None:
    """Show embedlens's own warnings as one ``embedlens: warning:`` line each (no file:line prefix)."""
    import warnings

    from embedlens.errors import EmbedlensWarning

    previous = warnings.showwarning

    def show(
        message: Any, category: type[Warning], filename: str, lineno: int, *rest: Any, **kw: Any
    ) -> None:
        if issubclass(category, EmbedlensWarning):
            sys.stderr.write(f"embedlens: warning: {message}\n")
        else:
            previous(message, category, filename, lineno, *rest, **kw)

    warnings.showwarning = show


def _quiet() -> None:
    """``--quiet``: nothing but the result and errors, so silence progress bars, library logs and warnings.

    Set before the model libraries are imported (they read the environment then), and applied to
    them as well when they already are.
    """
    import logging
    import warnings

    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["TQDM_DISABLE"] = "1"
    os.environ["TRANSFORMERS_VERBOSITY"] = "error"
    os.environ["TRANSFORMERS_NO_ADVISORY_WARNINGS"] = "1"
    warnings.filterwarnings("ignore")
    for name in ("sentence_transformers", "transformers", "huggingface_hub", "chromadb", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if "transformers" in sys.modules:
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            hf_logging.set_verbosity_error()
        except Exception:  # noqa: BLE001 - best effort: an old transformers lacks these
            pass
    if "huggingface_hub" in sys.modules:
        try:
            from huggingface_hub.utils import disable_progress_bars

            disable_progress_bars()
        except Exception:  # noqa: BLE001 - best effort
            pass


def _device_spec(text: str) -> str:
    """``--device``: checked here without importing torch; a GPU asked for is looked for before any work."""
    from embedlens._device import check_device_spec

    try:
        return check_device_spec(text)
    except EmbedlensInputError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--device must be ")) from None


def _check_device(args: argparse.Namespace) -> None:
    """Refuse ``--device cuda`` on a machine without that GPU before any work (``auto`` never fails)."""
    if args.device.startswith("cuda"):
        from embedlens._device import resolve_device

        resolve_device(args.device)


def _scale_out_options(p: argparse.ArgumentParser, *, vectors: bool) -> None:
    p.add_argument(
        "--engine", choices=["local", "ray"], default="local", help="local (default) or a Ray cluster"
    )
    p.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="with --engine ray: the cluster (host:port, ray://host:port or auto); default: start a local one",
    )
    if vectors:
        p.add_argument("--id-column", default="id", metavar="NAME", help="Parquet id column (default id)")
    p.add_argument(
        "--vector-column", default="vector", metavar="NAME", help="Parquet vector column (default vector)"
    )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", metavar="DIR", help="embedding cache directory (default: user cache dir)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    p.add_argument("--debug", action="store_true", help="print full tracebacks")
    p.add_argument("--quiet", action="store_true", help="print only the result and errors (no progress bars)")
    p.add_argument(
        "--device",
        type=_device_spec,
        default="auto",
        help="where a local model embeds and the lens trains: auto (default: a CUDA GPU when torch sees one), "
        "cpu, cuda or cuda:N",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (kept separate so tests and docs can inspect it)."""
    parser = _Parser(prog="embedlens", description="Customize frozen embeddings with a trained lens.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a lens on a BEIR directory or a pairs file")
    t.add_argument("--data", required=True, help="BEIR directory (qrels/train.tsv) or pairs CSV/JSONL")
    t.add_argument("--out", required=True, metavar="LENS_DIR", help="where to write the lens directory")
    t.add_argument(
        "--force", action="store_true", help="replace an existing lens directory at --out (and nothing else)"
    )
    t.add_argument("--objective", choices=["pairs", "retrieval"], help="default: by data kind")
    t.add_argument(
        "--mode",
        choices=["symmetric", "query"],
        default=None,
        help="default: query (only queries projected, no re-indexing); symmetric with --dim",
    )
    t.add_argument("--dim", type=_positive_int, metavar="K", help="output dimension (symmetric mode only)")
    t.add_argument(
        "--model",
        type=_model_spec,
        metavar="NAME_OR_PATH",
        help="base model (default all-MiniLM-L6-v2; openai:MODEL[@DIMS])",
    )
    t.add_argument("--seed", type=_seed, default=0, help="random seed, 0..2**32-1")
    t.add_argument("--loss", choices=["cosent", "mse"], default="cosent", help="pair objective loss")
    t.add_argument(
        "--max-steps",
        type=_int_at_least(1, 100_000),
        default=None,
        help="maximum optimisation steps per fold (default 300; early stopping, the count is chosen by CV)",
    )
    t.add_argument(
        "--lr",
        type=_lr,
        default=None,
        help="Adam learning rate, > 0 and <= 10 (default: chosen by cross-validation among a few)",
    )
    t.add_argument(
        "--rank",
        type=_int_at_least(1, 100_000),
        default=None,
        help="rank r of the residual lens W = I + A·Bᵀ (>= the dimension: the full matrix; default: rank 32 "
        "or the full matrix, chosen by cross-validation)",
    )
    t.add_argument(
        "--folds",
        type=_int_at_least(2, 20),
        default=None,
        help="k of the k-fold cross-validation (default 5)",
    )
    t.add_argument(
        "--pseudo-queries",
        choices=["auto", "titles", "leads", "off"],
        default=None,
        help="retrieval: titles (else leading sentences) of every document as extra training queries, "
        "weight chosen by CV (default auto)",
    )
    t.add_argument(
        "--batch-size",
        type=_int_at_least(2, 1_000_000),
        default=None,
        help="items per step (default: every training item in each step)",
    )
    t.add_argument(
        "--temperature", type=_temperature, default=None, help="retrieval softmax temperature, 0.001..10"
    )
    t.add_argument(
        "--wide-grid",
        action="store_true",
        help="cross-validate a wider grid of settings (learning rates, temperatures)",
    )
    t.add_argument("--search", action=_Renamed, dest="wide_grid", new="--wide-grid", const=True)
    t.add_argument(
        "--no-significance-check",
        dest="require_significant",
        action="store_false",
        help="ship the best cross-validated setting even when its gain over the start is not significant",
    )
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
    e.add_argument(
        "--force",
        action="store_true",
        help="replace an existing --json report and our own PNG files in --plots (and nothing else)",
    )
    e.add_argument(
        "--index-kind", choices=list(INDEX_KINDS), default="flat", help="FAISS index: exact, HNSW or IVF"
    )
    e.add_argument(
        "--index", action=_Renamed, dest="index_kind", new="--index-kind", choices=list(INDEX_KINDS)
    )
    e.add_argument(
        "--model", type=_model_spec, metavar="NAME_OR_PATH", help="base model (default: the lens's)"
    )
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
    i.add_argument("--quiet", action="store_true", help="print only the result and errors")

    d = sub.add_parser("demo", help="train, evaluate, index into Chroma, answer through LangChain (offline)")
    d.add_argument("--data", help="a BEIR directory (default: the small dataset shipped with embedlens)")
    d.add_argument("--workdir", default=None, help="where to write the lens and the Chroma DB")
    d.add_argument("--json", metavar="OUT", help="also write the evaluation report (as evaluate --json)")
    d.add_argument("--force", action="store_true", help="replace an existing --json report, nothing else")
    _common(d)

    pj = sub.add_parser(
        "project", help="apply a lens to stored vectors (.npy or Parquet), streamed, locally or on Ray"
    )
    pj.add_argument("--lens", required=True, metavar="LENS_DIR")
    pj.add_argument(
        "--input", required=True, help=".npy file (n, d_in), .parquet file, or a directory of .parquet files"
    )
    pj.add_argument(
        "--output",
        required=True,
        help="where to write (atomically): a .npy file, a .parquet file, or a directory (one Parquet file per "
        "block with --engine ray)",
    )
    pj.add_argument("--force", action="store_true", help="replace an earlier --output written by project")
    pj.add_argument("--side", choices=["documents", "queries"], default="documents")
    _scale_out_options(pj, vectors=True)
    pj.add_argument("--batch-size", type=_batch_rows, default=65536)
    pj.add_argument("--debug", action="store_true")
    pj.add_argument("--quiet", action="store_true", help="print only the result and errors")

    em = sub.add_parser(
        "embed", help="embed a Parquet text column with the base model (and a lens), locally or on Ray"
    )
    em.add_argument("--input", required=True, help=".parquet file or a directory of .parquet files")
    em.add_argument("--text-column", required=True, metavar="NAME", help="the column of texts to embed")
    em.add_argument("--output", required=True, help="a .parquet file, or a directory (atomically written)")
    em.add_argument("--lens", metavar="LENS_DIR", help="apply this lens to the vectors (as documents)")
    em.add_argument(
        "--model", type=_model_spec, metavar="NAME_OR_PATH", help="base model (default: the lens's, else "
        "all-MiniLM-L6-v2)",
    )  # fmt: skip
    em.add_argument("--force", action="store_true", help="replace an earlier --output written by embed")
    _scale_out_options(em, vectors=False)
    em.add_argument("--batch-size", type=_int_at_least(1, 1_000_000), default=256, help="texts per batch")
    _common(em)

    x = sub.add_parser(
        "export",
        help="write a sentence-transformers model folder: the local base model with the lens appended",
    )
    x.add_argument("--lens", required=True, metavar="LENS_DIR")
    x.add_argument("--out", required=True, metavar="DIR", help="the model folder to write (atomically)")
    x.add_argument(
        "--model", type=_model_spec, metavar="NAME_OR_PATH", help="local base model (default: the lens's)"
    )
    x.add_argument("--no-fingerprint-check", dest="check_fingerprint", action="store_false")
    x.add_argument("--force", action="store_true", help="replace an earlier export at --out, nothing else")
    x.add_argument("--debug", action="store_true")
    x.add_argument("--quiet", action="store_true", help="print only the result and errors")

    r = sub.add_parser("reproject", help="copy a Chroma collection's vectors through a symmetric lens")
    where = r.add_mutually_exclusive_group(required=True)
    where.add_argument("--path", help="Chroma PersistentClient directory")
    where.add_argument("--host", help="a Chroma server (chroma run): its host (with --port)")
    r.add_argument("--port", type=_int_at_least(1, 65535), help="the Chroma server's port (default 8000)")
    r.add_argument(
        "--workers",
        type=_int_at_least(1, 64),
        help="pages copied at once (default 4 with --host, 1 with --path); a killed run resumes when rerun",
    )
    r.add_argument("--source", required=True, help="source collection name")
    r.add_argument("--target", required=True, help="target collection name")
    r.add_argument("--lens", required=True, metavar="LENS_DIR")
    r.add_argument("--batch-size", type=_int_at_least(1, 100_000), default=1000)
    r.add_argument(
        "--no-embedding-function",
        action="store_true",
        help="when the source's embedding function cannot be rebuilt, create the target without one "
        "(default: refuse)",
    )
    r.add_argument("--debug", action="store_true")
    r.add_argument("--quiet", action="store_true", help="print only the result and errors")
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
    if getattr(args, "quiet", False):
        _quiet()
    else:
        _one_line_warnings()
    try:
        return int(_COMMANDS[args.command](args) or 0)
    except KeyboardInterrupt:
        sys.stderr.write("embedlens: interrupted\n")
        return EXIT_FAIL
    except Exception as e:  # noqa: BLE001 - the CLI turns every failure into one line
        from embedlens._secrets import redact  # last line of defence: no key in any message

        if getattr(args, "debug", False):
            import traceback

            sys.stderr.write(redact(traceback.format_exc()))
        text = redact(str(e))
        msg = next((line.strip() for line in text.splitlines() if line.strip()), type(e).__name__)
        sys.stderr.write(f"embedlens: error: {msg}\n")
        return EXIT_USAGE if isinstance(e, EmbedlensInputError | FileNotFoundError) else EXIT_FAIL


def _embedder(args: argparse.Namespace, model: str | None) -> Any:
    """The base model behind the cache (a local model loads only when a text is not cached)."""
    from embedlens.cache import open_embedder

    return open_embedder(model, cache_dir=args.cache, no_cache=args.no_cache, device=args.device)


def _data_path(text: str, option: str = "--data") -> Path:
    """``--data`` checked to be something we can read: an existing regular file or a directory.

    Raises:
        EmbedlensInputError: missing, a symlink loop, or not a regular file (a FIFO, a device), naming
            the option.
    """
    import stat

    path = Path(text)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise EmbedlensInputError(f"{option} {text}: no such file or directory") from None
    except OSError as e:  # ELOOP (a symlink loop), EACCES, ...
        raise EmbedlensInputError(f"{option} {text}: cannot be read ({e.strerror or e})") from None
    except RuntimeError as e:  # pathlib's "Symlink loop from ..."
        raise EmbedlensInputError(f"{option} {text}: cannot be read ({e})") from None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        msg = f"{option} {text}: not a regular file (a FIFO, device or socket): give a pairs file or a BEIR directory"
        raise EmbedlensInputError(msg)
    return path


def _check_model_option(model: str | None) -> None:
    """Refuse a ``--model`` that is a path to nothing, before any model loads.

    Raises:
        EmbedlensInputError: naming ``--model``.
    """
    if not model or model.startswith("openai:"):
        return
    from embedlens.embedders.local import looks_like_path

    spec = model.removeprefix("st:")
    if looks_like_path(spec) and not Path(spec).expanduser().exists():
        raise EmbedlensInputError(f"--model {model}: no such model directory")


def _check_dim_option(dim: int | None, model: str | None) -> None:
    """Refuse ``--dim`` above the base model's dimension when that is known without loading it.

    Raises:
        EmbedlensInputError: naming ``--dim``.
    """
    if dim is None:
        return
    if (model or "").startswith("openai:"):
        from embedlens.embedders import parse_openai_spec
        from embedlens.embedders.openai import KNOWN_DIMS

        name, dims = parse_openai_spec(str(model))
        known = dims or KNOWN_DIMS.get(name)
    else:
        from embedlens.embedders.local import DEFAULT_MODEL, known_dim

        known = known_dim((model or DEFAULT_MODEL).removeprefix("st:"))
    if known is not None and dim > known:
        label = model or "all-MiniLM-L6-v2"
        raise EmbedlensInputError(f"--dim {dim} is above the base model's dimension ({known} for {label})")


def _train_config(args: argparse.Namespace) -> Any:
    from embedlens.training import TrainConfig

    given = {
        attr: getattr(args, opt)
        for opt, attr in (
            ("max_steps", "max_steps"),
            ("lr", "lr"),
            ("rank", "rank"),
            ("folds", "folds"),
            ("pseudo_queries", "pseudo_queries"),
            ("batch_size", "batch_size"),
            ("temperature", "temperature"),
        )
        if getattr(args, opt) is not None
    }
    # everything through the constructor, so that TrainConfig validates every value
    return TrainConfig(
        mode=args.mode,
        dim=args.dim,
        seed=args.seed,
        loss=args.loss,
        wide_grid=args.wide_grid,
        device=args.device,
        require_significant=args.require_significant,
        progress=not args.quiet,
        **given,
    )


def _check_data(data: Path, split: str, objective: str | None = None, cfg: Any = None) -> None:
    """Read and check the data (and the split) a command will use, before any model loads.

    Args:
        data: the BEIR directory or pairs file.
        split: the split to evaluate (``train`` passes ``"test"``: training reads both halves of a pairs
            file).
        objective: ``--objective`` of ``train``.
        cfg: the training options (``train``): the data must divide into ``cfg.folds`` folds.

    Raises:
        EmbedlensInputError: the data is malformed, lacks the split, is too small, or does not fit
            ``objective``.
    """
    from embedlens.datasets import BeirDataset, load_data, pair_folds, pairs_train_test, pairs_training_part

    if not data.exists():
        raise EmbedlensInputError(f"{data}: no such file or directory")
    ds = load_data(data)
    if isinstance(ds, BeirDataset):
        if objective not in (None, "retrieval"):
            raise EmbedlensInputError(f"{data}: a BEIR directory trains with --objective retrieval")
        ids, _ = ds.split_queries("train" if cfg is not None else split)
        usable = sum(any(g > 0 for g in ds.qrels["train"][q].values()) for q in ids) if cfg is not None else 0
        if cfg is not None and usable < cfg.folds:
            msg = (
                f"{data}: qrels/train.tsv judges {usable} queries relevant to some document, too few for "
                f"{cfg.folds}-fold cross-validation (lower --folds, at least 2)"
            )
            raise EmbedlensInputError(msg)
        return
    if objective not in (None, "pairs"):
        raise EmbedlensInputError(f"{data}: a pairs file trains with --objective pairs")
    import warnings

    with warnings.catch_warnings():  # the split and the folds warn again where training uses them
        warnings.simplefilter("ignore")
        if cfg is None:
            pairs_train_test(ds, split)
            return
        train, _ = pairs_training_part(ds)  # training needs only the train split (evaluation the test one)
        pair_folds(train, cfg.folds, cfg.seed)  # the folds training will use: fail before the model loads


def cmd_train(args: argparse.Namespace) -> int:
    """``embedlens train``."""
    from embedlens._outputs import guard_lens_dir
    from embedlens.app.plots import plot_validation_curve, prewarm
    from embedlens.training.workflow import train_lens

    data = _data_path(args.data)  # a readable file or directory (no symlink loop, no FIFO)
    _check_model_option(args.model)
    guard_lens_dir(args.out, option="--out", inputs=_input_paths(args), force=args.force)  # before any work
    _check_device(args)
    cfg = _train_config(args)  # options, then data, then the model (slow to load)
    _check_dim_option(cfg.dim, args.model)
    _check_data(data, "test", args.objective, cfg)
    embedder = _embedder(args, args.model)
    if cfg.dim is not None and not (args.dry_run and embedder.name.startswith("openai:")):
        if cfg.dim > embedder.dim:
            msg = f"--dim {cfg.dim} is above the base model's dimension ({embedder.dim} for {embedder.name})"
            raise EmbedlensInputError(msg)
    if args.dry_run or embedder.name.startswith("openai:"):
        from embedlens.embedders.openai import estimate_cost
        from embedlens.training.workflow import training_texts

        todo = embedder.missing(training_texts(data, cfg))
        model = getattr(embedder.base, "model", embedder.name)
        cost = estimate_cost(todo, model)
        usd = "unknown price" if cost["usd"] is None else f"about US${cost['usd']:.4f}"
        if args.dry_run or not args.quiet:
            _out(
                f"to embed: {cost['texts']} texts not in the cache, ~{cost['tokens']} tokens, "
                f"{usd} with {embedder.name}"
            )
        if args.dry_run:
            return EXIT_OK
    if not args.quiet:
        _out(f"training a {cfg.mode} lens on {data} with {embedder.name} ({embedder.dim}-d)")
    prewarm()  # the curve's plotting library loads while the lens trains
    outcome = train_lens(data, embedder, cfg, objective=args.objective)
    out = outcome.lens.save(args.out, overwrite=args.force)
    tr = outcome.lens.metadata["training"]
    png = plot_validation_curve(
        outcome.curve, out / "validation_curve.png", metric=tr["cv_metric"], chosen=tr["chosen_steps"]
    )
    _out(
        f"{tr['cv_folds']}-fold validation {tr['cv_metric']}: start {tr['cv_start']:.4f} -> chosen "
        f"{tr['cv_best']:.4f} ({tr['chosen_steps']} steps)"
    )
    _out(f"reason: {tr['reason']}")
    _out(f"lens written to {out} ({outcome.lens.d_in} -> {outcome.lens.d_out}); curve: {png}")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``embedlens evaluate``."""
    from embedlens._atomic import atomic_write_json
    from embedlens.app.report import format_report
    from embedlens.evaluation.workflow import evaluate_lens
    from embedlens.lens import load_lens

    data = _data_path(args.data)  # a readable file or directory (no symlink loop, no FIFO)
    _check_model_option(args.model)
    _guard_evaluate_outputs(args)  # before any work
    _check_device(args)
    lens = load_lens(args.lens)
    _check_data(data, args.split)  # the lens and the data, then the model (slow to load)
    embedder = _embedder(args, args.model or lens.base_model)
    report = evaluate_lens(
        data,
        lens,
        embedder,
        split=args.split,
        index_kind=args.index_kind,
        check_fingerprint=not args.no_fingerprint_check,
    )
    js = report.to_json()
    js["info"]["lens"] = str(Path(args.lens))
    _out(f"{data} [{args.split}] with {embedder.name}; lens {lens.mode} {lens.d_in}->{lens.d_out}")
    _out(format_report(js))
    _guard_evaluate_outputs(args)  # again: nothing foreign may have appeared meanwhile
    if args.plots:
        _write_plots(report, Path(args.plots), data=args.data, lens=args.lens)
        _out(f"plots written to {args.plots}")
    if args.json:
        from embedlens._outputs import REPORT_FORMAT

        atomic_write_json(args.json, {"format": REPORT_FORMAT, **js})  # the marker --force looks for
        _out(f"report written to {args.json}")
    return EXIT_OK


def _cache_input(args: argparse.Namespace) -> dict[str, str | None]:
    """The embedding cache a command will use (explicit ``--cache``, ``$EMBEDLENS_CACHE_DIR`` or the
    default user cache dir), named as the user gave it; empty with ``--no-cache``."""
    if getattr(args, "no_cache", False):
        return {}
    if getattr(args, "cache", None):
        return {"--cache": args.cache}
    from embedlens.cache import default_cache_dir

    env = os.environ.get("EMBEDLENS_CACHE_DIR")
    name = "embedding cache $EMBEDLENS_CACHE_DIR" if env else "default embedding cache"
    return {name: str(default_cache_dir())}


def _input_paths(args: argparse.Namespace) -> dict[str, str | None]:
    """The paths a command reads (its outputs may not be, lie inside, or contain any of them)."""
    model = getattr(args, "model", None)
    return {
        "--data": getattr(args, "data", None),
        "--lens": getattr(args, "lens", None),
        **_cache_input(args),
        "--model": model if model and Path(model).exists() else None,  # a local model directory
    }


def _plot_names(data: str) -> list[str]:
    """The PNGs ``evaluate --plots`` writes: cosine histograms (pairs) or metric@k (BEIR), and ``report.png``."""
    return ["metric_at_k.png" if Path(data).is_dir() else "cosine_histograms.png", "report.png"]


def _guard_evaluate_outputs(args: argparse.Namespace) -> None:
    """Refuse ``--json``/``--plots`` targets that overlap an input or are not ours (``--force`` to replace ours)."""
    from embedlens._outputs import OutputRefusedError, guard_file, guard_plots_dir, report_problem

    inputs = _input_paths(args)
    if args.json:
        guard_file(args.json, option="--json", ours=report_problem, inputs=inputs, force=args.force)
    if args.plots:
        names = _plot_names(args.data)
        guard_plots_dir(args.plots, names, inputs=inputs, force=args.force)
        for png in names:
            if args.json and Path(args.json).resolve() == (Path(args.plots) / png).resolve():
                raise OutputRefusedError(f"--json {args.json}: is the --plots file {png}; give another path")


def _write_plots(report: Any, folder: Path, *, data: str, lens: str) -> None:
    from embedlens.app.plots import plot_cosine_histograms, plot_metric_at_k, plot_report
    from embedlens.evaluation.pairs import PairReport

    folder.mkdir(parents=True, exist_ok=True)  # checked by _guard_evaluate_outputs; files written atomically
    split = report.info.get("split")
    split_name = split.get("test") if isinstance(split, dict) else split
    title = f"{Path(data).name} ({split_name or 'test'}), lens {Path(lens).name}"
    if isinstance(report, PairReport):
        plot_cosine_histograms(
            report.cos_raw, report.cos_lens, report.labels, folder / "cosine_histograms.png", title=title
        )
    else:
        plot_metric_at_k(report, folder / "metric_at_k.png", title=title)
    plot_report(report, folder / "report.png", title=title)


def cmd_info(args: argparse.Namespace) -> int:
    """``embedlens info``: verifies the lens, then prints its metadata."""
    from embedlens._atomic import strict_json_dumps
    from embedlens.app.report import format_lens_info
    from embedlens.lens import CONFIG_FILE, load_lens

    lens = load_lens(args.lens)  # verify checksum/format (and the file size) before printing anything
    cfg = json.loads((Path(args.lens) / CONFIG_FILE).read_text())
    cfg["metadata"] = lens.metadata  # with today's key names, whatever version wrote the file
    _out(strict_json_dumps(cfg).rstrip("\n") if args.json else format_lens_info(cfg))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """``embedlens demo``."""
    from embedlens.app.demo import run_demo

    _check_device(args)

    run_demo(
        data=args.data,
        workdir=args.workdir,
        cache_dir=args.cache,
        no_cache=args.no_cache,
        echo=_out,
        json_out=args.json,
        force=args.force,
        progress=not args.quiet,
        device=args.device,
    )
    return EXIT_OK


def _require_chroma_db(db: Path) -> None:
    """Refuse a ``chroma.sqlite3`` that is not Chroma's, read-only, before Chroma opens (and migrates) it."""
    import sqlite3

    try:
        with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as con:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error as e:
        raise EmbedlensInputError(
            f"--path {db.parent}: {db.name} is not a readable SQLite database ({e})"
        ) from None
    if not {"collections", "segments"} <= tables:
        raise EmbedlensInputError(
            f"--path {db.parent}: {db.name} is not a Chroma database (no collections table)"
        )


def cmd_reproject(args: argparse.Namespace) -> int:
    """``embedlens reproject``."""
    from embedlens.adapters.chroma import check_collection_name, reproject_collection
    from embedlens.lens import load_lens

    # every check before the client opens: opening creates a database wherever --path points
    lens = load_lens(args.lens)
    if lens.mode != "symmetric":
        raise EmbedlensInputError(
            f"--lens {args.lens}: re-projection needs a symmetric lens; a query lens keeps documents raw"
        )
    check_collection_name(args.source, "--source")
    check_collection_name(args.target, "--target")
    if args.source == args.target:
        raise EmbedlensInputError(f"--target {args.target!r} is the --source collection; give another name")
    import chromadb

    if args.port is not None and args.host is None:
        raise EmbedlensInputError("--port goes with --host (a Chroma server); --path needs none")
    args.port = 8000 if args.port is None else args.port
    if args.host is not None:
        if not args.host.strip() or any(c in args.host for c in "/ "):
            raise EmbedlensInputError(
                f"--host {args.host!r}: give a host name or address (the port goes in --port)"
            )
        from chromadb.config import Settings

        try:
            client = chromadb.HttpClient(
                host=args.host, port=args.port, settings=Settings(anonymized_telemetry=False)
            )
            client.heartbeat()
        except Exception as e:  # noqa: BLE001 - any failure to reach the server is the user's address
            raise EmbedlensInputError(
                f"--host {args.host} --port {args.port}: no Chroma server answers there ({type(e).__name__})"
            ) from None
    else:
        path = Path(args.path)
        if not path.is_dir():
            why = "no such directory" if not os.path.lexists(path) else "is not a directory"
            raise EmbedlensInputError(f"--path {path}: {why} (give an existing Chroma database directory)")
        if not (path / "chroma.sqlite3").is_file():
            raise EmbedlensInputError(
                f"--path {path}: is not a Chroma database directory (no chroma.sqlite3)"
            )
        _require_chroma_db(path / "chroma.sqlite3")
        client = chromadb.PersistentClient(path=str(path))
    n = reproject_collection(
        client,
        args.source,
        args.target,
        lens,
        batch_size=args.batch_size,
        progress=not args.quiet,
        allow_no_function=args.no_embedding_function,
        workers=args.workers or (4 if args.host is not None else 1),
    )
    _out(f"re-projected {n} vectors from {args.source!r} into {args.target!r}")
    return EXIT_OK


def _check_engine(args: argparse.Namespace) -> None:
    """``--engine``/``--ray-address`` checked before any work (Ray itself only when it will be used)."""
    from embedlens.vector_files import output_kind

    if args.engine == "local":
        if args.ray_address is not None:
            raise EmbedlensInputError("--ray-address is only used with --engine ray")
        return
    from embedlens.distributed import check_ray_address, require_ray

    check_ray_address(args.ray_address)
    if output_kind(args.output) != "parquet-dir":
        raise EmbedlensInputError(
            f"--output {args.output}: --engine ray writes a directory of Parquet files (one per block); "
            "give a path without .npy or .parquet"
        )
    require_ray(args.ray_address)  # names the extra when Ray is missing


def cmd_project(args: argparse.Namespace) -> int:
    """``embedlens project``."""
    from embedlens.lens import load_lens
    from embedlens.project import project_vectors
    from embedlens.vector_files import guard_output

    if args.batch_size < 1:  # every option before any work
        raise EmbedlensInputError(f"--batch-size must be an integer >= 1, got {args.batch_size}")
    _check_engine(args)
    inputs = {"--input": args.input, "--lens": args.lens}
    guard_output(args.output, option="--output", inputs=inputs, force=args.force)
    out = project_vectors(
        args.input,
        args.output,
        load_lens(args.lens),
        side=args.side,
        engine=args.engine,
        ray_address=args.ray_address,
        id_column=args.id_column,
        vector_column=args.vector_column,
        batch_size=args.batch_size,
        progress=not args.quiet,
        overwrite=args.force,
    )
    _out(f"projected {args.input} -> {out}")
    return EXIT_OK


def cmd_embed(args: argparse.Namespace) -> int:
    """``embedlens embed``."""
    from embedlens.embed_table import embed_table
    from embedlens.lens import load_lens
    from embedlens.vector_files import guard_output

    _check_engine(args)
    _check_device(args)
    inputs = {"--input": args.input, "--lens": args.lens}
    guard_output(args.output, option="--output", inputs=inputs, force=args.force)
    lens = None if args.lens is None else load_lens(args.lens)
    model = args.model or (lens.base_model if lens is not None else None)
    _check_model_option(model)
    out = embed_table(
        args.input,
        args.output,
        model=model,
        lens=lens,
        text_column=args.text_column,
        vector_column=args.vector_column,
        engine=args.engine,
        ray_address=args.ray_address,
        embedder=_embedder(args, model),  # embeds locally; on Ray only the lens check's probes (cached)
        batch_size=args.batch_size,
        progress=not args.quiet,
        overwrite=args.force,
    )
    _out(f"embedded {args.input} [{args.text_column}] -> {out}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """``embedlens export``."""
    from embedlens.export import export_sentence_transformer, local_model_dir
    from embedlens.lens import load_lens

    lens = load_lens(args.lens)
    local_model_dir(args.model or lens.base_model)  # a remote base model is refused before anything loads
    out = export_sentence_transformer(
        lens, args.out, model=args.model, check_fingerprint=args.check_fingerprint, overwrite=args.force
    )
    _out(f"exported a {lens.mode} lens with its base model to {out}: SentenceTransformer({str(out)!r})")
    return EXIT_OK


_COMMANDS = {
    "embed": cmd_embed,
    "export": cmd_export,
    "project": cmd_project,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "info": cmd_info,
    "demo": cmd_demo,
    "reproject": cmd_reproject,
}

if __name__ == "__main__":
    sys.exit(main())
