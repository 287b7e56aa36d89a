"""Terminal rendering of evaluation reports (raw vs lens, delta with CI, significance, groups)."""

from __future__ import annotations

from typing import Any

__all__ = ["format_report", "format_lens_info"]

_MAIN = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "precision@10", "hit@1", "hit@10")
_PAIR = ("accuracy", "roc_auc", "spearman", "cookbook_accuracy")


def format_report(report: dict[str, Any], *, metrics: tuple[str, ...] | None = None) -> str:
    """A fixed-width table of a report's JSON form (see ``RetrievalReport.to_json``)."""
    raw, lens, uplift = report["raw"], report["lens"], report["uplift"]
    names = metrics or tuple(m for m in (_MAIN if report["task"] == "retrieval" else _PAIR) if m in raw)
    lines = [f"{'metric':<20}{'raw':>9}{'lens':>9}{'delta':>9}   {'95% CI':<20}{'p':>7}  verdict"]
    for m in names:
        lines.append(_row(m, raw.get(m), lens.get(m), uplift.get(m)))
    if report["task"] == "pairs" and "cookbook_accuracy" in raw:
        lines.append(
            "  (cookbook_accuracy: threshold chosen on the TEST pairs, optimistic; ±SE raw "
            f"{raw['cookbook_accuracy_se']:.3f}, lens {lens['cookbook_accuracy_se']:.3f})"
        )
    for group, g in report.get("groups", {}).items():
        if not g.get("n"):
            continue
        lines.append(f"-- {group} queries (n={g['n']}) --")
        for m in ("ndcg@10", "recall@100", "mrr@10"):
            lines.append(_row(m, g["raw"][m], g["lens"][m], g["uplift"][m]))
    if report.get("groups"):
        lines.append(
            "  seen = a relevant document of the query is relevant to some training query "
            "(gains there can be memorisation); unseen = none is."
        )
    return "\n".join(lines)


def _row(name: str, raw: float | None, lens: float | None, d: dict[str, Any] | None) -> str:
    if raw is None or lens is None:
        return f"{name:<20}{'-':>9}{'-':>9}"
    if d is None:
        return f"{name:<20}{raw:>9.4f}{lens:>9.4f}{lens - raw:>+9.4f}"
    lo, hi = d["ci95"]
    verdict = ("better" if d["delta"] > 0 else "worse") if d["significant"] else "not significant"
    return (
        f"{name:<20}{raw:>9.4f}{lens:>9.4f}{d['delta']:>+9.4f}   "
        f"[{lo:+.4f}, {hi:+.4f}]   {d['p_value']:>7.4f}  {verdict}"
    )


def format_lens_info(config: dict[str, Any]) -> str:
    """Readable summary of a lens's ``lens.json``."""
    meta = config.get("metadata", {})
    tr = meta.get("training", {})
    # a lens saved through the API records no base model: its input dimension is still known
    base = meta.get("base_model") or "not recorded"
    dim = meta.get("base_dim") or config.get("d_in")
    lines = [
        f"lens:          {config.get('d_in')} -> {config.get('d_out')}, mode={config.get('mode')}, "
        f"normalize={config.get('normalize')}",
        f"base model:    {base} ({dim}-d)",
        f"created:       {meta.get('created_at')} with embedlens {meta.get('library_version')}",
        f"weights:       {config.get('weights_file')} sha256 {str(config.get('weights_sha256'))[:16]}…",
    ]
    if tr:
        lines += [
            f"objective:     {tr.get('objective')}" + (f" (loss {tr['loss']})" if tr.get("loss") else ""),
            f"validation:    {tr.get('cv_metric')} start {tr.get('cv_start', float('nan')):.4f} -> "
            f"chosen {tr.get('cv_best', float('nan')):.4f} "
            + (
                f"after {tr['chosen_steps']} steps ({tr.get('cv_folds')}-fold cross-validation)"
                if "chosen_steps" in tr
                else f"at epoch {tr.get('chosen_epoch')}"
            ),
            f"reason:        {tr.get('reason')}",
        ]
    data = meta.get("data")
    if data:
        lines.append(f"data:          {data}")
    return "\n".join(lines)
