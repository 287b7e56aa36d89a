"""The trainable matrix: a residual ``W = I + A·Bᵀ`` that starts exactly at the identity.

A low rank ``r`` is the inductive bias for small data: ``2·d·r`` parameters instead of ``d²``, and
every score the objectives need is computed in the ``r``-dimensional space from raw dot products
that never change (see :meth:`ResidualLens.scores`). ``rank=None`` (or ``rank >= d``) is the full
residual ``W = I + M``.
"""

from __future__ import annotations

import numpy as np
import torch


class ResidualLens(torch.nn.Module):
    """``W = I + A·Bᵀ`` (rank ``r``) or ``W = I + M`` (full), exactly the identity at the start.

    ``A`` starts at zero and ``B`` at small random values (the LoRA start), so that ``A`` gets a
    gradient from the first step while ``W`` is the identity.
    """

    def __init__(self, dim: int, rank: int | None, *, seed: int = 0) -> None:
        super().__init__()
        self.dim = int(dim)
        self.rank = None if rank is None or rank >= dim else int(rank)
        gen = torch.Generator().manual_seed(int(seed))
        if self.rank is None:
            self.a = torch.nn.Parameter(torch.zeros(dim, dim))
            self.b: torch.nn.Parameter | None = None
        else:
            self.a = torch.nn.Parameter(torch.zeros(dim, self.rank))
            self.b = torch.nn.Parameter(torch.randn(dim, self.rank, generator=gen) / np.sqrt(dim))

    def left(self, x: torch.Tensor) -> torch.Tensor:
        """``x·A`` ``(n, r)``."""
        return x @ self.a

    def right(self, x: torch.Tensor) -> torch.Tensor:
        """``x·B`` ``(n, r)`` (``x`` itself for the full form, where ``B = I``)."""
        return x if self.b is None else x @ self.b

    def gram(self) -> torch.Tensor | None:
        """``Bᵀ·B`` ``(r, r)``, or None for the full form (where it is the identity)."""
        return None if self.b is None else self.b.T @ self.b

    def sq_norm(self, x: torch.Tensor, u: torch.Tensor, v: torch.Tensor, x_sq: torch.Tensor) -> torch.Tensor:
        """``||x·W||²`` ``(n,)`` from ``u = x·A``, ``v = x·B`` and ``x_sq = ||x||²`` (``x·W`` never formed)."""
        g = self.gram()
        quad = (u * u).sum(1) if g is None else ((u @ g) * u).sum(1)
        return x_sq + 2 * (u * v).sum(1) + quad

    def cross(
        self, u_x: torch.Tensor, v_x: torch.Tensor, u_y: torch.Tensor, v_y: torch.Tensor
    ) -> torch.Tensor:
        """``(x·W)·(y·W) - x·y`` for row-aligned ``x``, ``y`` ``(n,)``, from their ``u`` and ``v``."""
        g = self.gram()
        quad = (u_x * u_y).sum(1) if g is None else ((u_x @ g) * u_y).sum(1)
        return (u_x * v_y).sum(1) + (v_x * u_y).sum(1) + quad

    def penalty(self) -> torch.Tensor:
        """``||W - I||²_F`` (the pull toward the start)."""
        g = self.gram()
        return (self.a * self.a).sum() if g is None else ((self.a.T @ self.a) * g).sum()

    def matrix(self) -> np.ndarray:
        """``W`` as a ``(d, d)`` float32 array."""
        with torch.no_grad():
            delta = self.a if self.b is None else self.a @ self.b.T
            w = torch.eye(self.dim, device=delta.device) + delta
        return np.ascontiguousarray(w.cpu().numpy(), dtype=np.float32)
