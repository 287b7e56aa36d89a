"""The shared optimisation loop: Adam on a float32 matrix, validation each epoch, early stopping.

The starting matrix (the identity, or an orthogonal PCA projection when reducing the dimension) is
always candidate "epoch 0", so the selected matrix is never worse than the start on validation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from embedlens.training.config import TrainConfig

LossFn = Callable[[Any, Any], Any]  # (W: torch.Tensor, batch indices: torch.Tensor) -> scalar loss


@dataclass
class FitResult:
    """What :func:`fit` found.

    Attributes:
        weights: the selected matrix ``(d_in, d_out)`` float32.
        best_epoch: its epoch (0 = the starting matrix).
        best_val: its validation metric.
        curve: one dict per epoch: ``epoch``, ``train_loss``, ``val``.
        reason: why this matrix was chosen, in words.
        epochs_run: how many epochs ran.
    """

    weights: np.ndarray
    best_epoch: int
    best_val: float
    curve: list[dict[str, float]] = field(default_factory=list)
    reason: str = ""
    epochs_run: int = 0

    def refitted(self, weights: np.ndarray) -> FitResult:
        """This selection with the weights of a refit on train + validation for ``best_epoch`` epochs."""
        from dataclasses import replace

        note = f"; refit on train+val for {self.best_epoch} epochs"
        return replace(self, weights=weights, reason=self.reason + note)


def initial_matrix(x: np.ndarray, dim: int | None) -> np.ndarray:
    """The starting matrix: identity ``(d, d)``, or the top-``dim`` principal axes ``(d, dim)`` of ``x``.

    The PCA axes are orthonormal columns, so the start is an orthogonal projection.
    """
    d = x.shape[1]
    if dim is None or dim == d:
        return np.eye(d, dtype=np.float32)
    if not 0 < dim < d:
        msg = f"--dim must be between 1 and the input dimension {d}, got {dim}"
        raise ValueError(msg)
    centered = x - x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centered.astype(np.float64), full_matrices=False)  # vt: (d, d)
    return np.ascontiguousarray(vt[:dim].T.astype(np.float32))  # (d, dim)


def fit(
    init: np.ndarray,
    n_items: int,
    loss_fn: LossFn,
    val_fn: Callable[[np.ndarray], float],
    config: TrainConfig,
    *,
    epochs: int | None = None,
    on_epoch_start: Callable[[np.ndarray, int], None] | None = None,
    accept: Callable[[np.ndarray, np.ndarray], tuple[bool, str]] | None = None,
    desc: str = "training",
) -> FitResult:
    """Minimise ``loss_fn`` over mini-batches of ``n_items`` examples, choosing the epoch on validation.

    Args:
        init: starting matrix ``(d_in, d_out)``.
        n_items: number of training examples (batches are index tensors into them).
        loss_fn: ``loss_fn(W, idx)`` returns the mean loss of the examples ``idx``.
        val_fn: validation metric of a matrix (higher is better).
        config: options (lr, epochs, patience, batch size, reg, seed, progress).
        epochs: run exactly this many epochs and keep the last (refit); no validation.
        on_epoch_start: hook ``(current W, epoch)`` (e.g. to re-mine hard negatives).
        accept: ``accept(best W, start W) -> (ok, why)``: a last check that the validation gain is
            real (a paired bootstrap); when it fails the start matrix is shipped.
        desc: progress-bar label.
    """
    import torch
    from tqdm.auto import tqdm

    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    w0 = torch.from_numpy(init.copy())
    w = torch.nn.Parameter(w0.clone())
    opt = torch.optim.Adam([w], lr=config.lr)
    fixed = epochs is not None
    total = int(epochs) if epochs is not None else config.max_epochs
    curve: list[dict[str, float]] = []
    best_w, best_epoch = init.copy(), 0
    best_val = float("nan") if fixed else float(val_fn(init))
    if not fixed:
        curve.append({"epoch": 0, "train_loss": float("nan"), "val": best_val})
    bar = tqdm(range(1, total + 1), desc=desc, disable=not config.progress, leave=False)
    since_best = 0
    epoch = 0
    for epoch in bar:
        if on_epoch_start is not None:
            on_epoch_start(w.detach().numpy(), epoch)
        perm = torch.randperm(n_items, generator=gen)
        losses = []
        for start in range(0, n_items, config.batch_size):
            idx = perm[start : start + config.batch_size]
            loss = loss_fn(w, idx)
            if config.reg > 0:
                loss = loss + config.reg * ((w - w0) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        train_loss = float(np.mean(losses)) if losses else float("nan")
        if fixed:
            curve.append({"epoch": epoch, "train_loss": train_loss, "val": float("nan")})
            bar.set_postfix(loss=f"{train_loss:.4f}")
            continue
        current = w.detach().numpy().copy()
        val = float(val_fn(current))
        curve.append({"epoch": epoch, "train_loss": train_loss, "val": val})
        if val > best_val + 1e-6:
            best_w, best_val, best_epoch, since_best = current, val, epoch, 0
        else:
            since_best += 1
        bar.set_postfix(loss=f"{train_loss:.4f}", val=f"{val:.4f}", best=f"{best_val:.4f}@{best_epoch}")
        if since_best >= config.patience:
            break
    bar.close()
    if fixed:
        final = w.detach().numpy().copy()
        return FitResult(final, epoch, float("nan"), curve, f"refit for {epoch} epochs", epoch)
    if best_epoch > 0 and accept is not None:
        ok, why = accept(best_w, init)
        if not ok:
            reason = (
                f"epoch {best_epoch} reached {best_val:.4f} on validation (start {curve[0]['val']:.4f}) "
                f"but {why}; shipping the start (identity/PCA), never worse than raw"
            )
            return FitResult(init.copy(), 0, curve[0]["val"], curve, reason, epoch)
    if best_epoch == 0:
        reason = (
            f"no epoch beat the starting matrix on validation ({best_val:.4f}); "
            "shipping the start (identity/PCA), never worse than raw"
        )
    else:
        stop = "early stop" if since_best >= config.patience else "epoch limit"
        reason = (
            f"epoch {best_epoch} had the best validation metric {best_val:.4f} "
            f"(start {curve[0]['val']:.4f}); {stop} after {epoch} epochs"
        )
    return FitResult(best_w, best_epoch, best_val, curve, reason, epoch)
