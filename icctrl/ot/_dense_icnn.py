"""The W2 benchmark's potential architecture (dense ICNN with quadratic skips), plus a full quadratic start.

ψ(u) = σ/2‖u‖² + ½‖L u‖² + F z_L,  z₁ = q₀(u),  z_(k+1) = CELU(C_k z_k + q_k(u)),
q_k(u)_j = Σ_r (Q_k[j, r]·u)² + (W_k u + b_k)_j,  C_k ≥ 0, F ≥ 0 (softplus parametrizations).
The layer layout (widths max(2d, 64), max(2d, 64), max(d, 32), rank 1, CELU, no bias on C_k and F) is the one
of Korotin et al. 2021. The full quadratic ½‖Lu‖² is ours: it lets the fit start at the Gaussian (Bures) map,
so the affine baseline is the starting point rather than a target. σ is the fixed strong convexity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from icctrl.errors import InvalidValueError
from icctrl.nn import constrain


def benchmark_widths(dim: int) -> tuple[int, int, int]:
    """Hidden widths of the benchmark's DenseICNN in R^dim."""
    return (max(2 * dim, 64), max(2 * dim, 64), max(dim, 32))


class _QuadSkip(nn.Module):
    """u ↦ Σ_r (Q[j, r]·u)² + W u + b: a convex quadratic-plus-affine skip from the input to a layer."""

    def __init__(self, dim: int, width: int, rank: int):
        super().__init__()
        self.rank = rank
        self.quad = nn.Linear(dim, width * rank, bias=False)
        self.lin = nn.Linear(dim, width)
        with torch.no_grad():
            self.quad.weight.mul_(1.0 / rank**0.5)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        sq = self.quad(u).pow(2).view(*u.shape[:-1], -1, self.rank).sum(-1)
        return sq + self.lin(u)


class DenseICNN(nn.Module):
    """Convex potential R^dim → R (see the module docstring); `quadratic` is σ, `rank` the rank of each skip."""

    def __init__(self, dim: int, widths: tuple[int, ...] | None = None, rank: int = 1, quadratic: float = 1e-4):
        super().__init__()
        self.n_in = int(dim)
        widths = tuple(widths or benchmark_widths(self.n_in))
        if not widths or min(widths) < 1 or rank < 1:
            raise InvalidValueError(f"DenseICNN needs positive widths and rank, got widths={widths}, rank={rank}")
        if not quadratic >= 0:
            raise InvalidValueError(f"quadratic (strong convexity) must be >= 0, got {quadratic}")
        self.quadratic = float(quadratic)
        self.widths = widths
        self.skips = nn.ModuleList([_QuadSkip(self.n_in, w, rank) for w in widths])
        self.convex = nn.ModuleList([constrain(nn.Linear(a, b, bias=False), "weight", "nonneg")
                                     for a, b in zip(widths[:-1], widths[1:])])
        self.final = constrain(nn.Linear(widths[-1], 1, bias=False), "weight", "nonneg")
        self.full = nn.Linear(self.n_in, self.n_in, bias=False)  # ½‖L u‖²
        with torch.no_grad():
            self.full.weight.zero_()
            for c in self.convex:
                c.weight = torch.full_like(c.weight, 1.0 / c.in_features)
            self.final.weight = torch.full_like(self.final.weight, 1.0 / widths[-1])

    def set_quadratic_form(self, a: torch.Tensor) -> None:
        """Make ½‖L u‖² = ½uᵀ(a − σI)u for a symmetric a ⪰ σI (the Gaussian start); a is clipped at σ."""
        w, v = torch.linalg.eigh(0.5 * (a + a.T).to(torch.float64))
        root = (v * (w - self.quadratic).clamp_min(0.0).sqrt()) @ v.T
        with torch.no_grad():
            self.full.weight.copy_(root.to(self.full.weight))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        z = self.skips[0](u)
        for c, skip in zip(self.convex, self.skips[1:]):
            z = F.celu(c(z) + skip(u))
        out = self.final(z) + 0.5 * self.full(u).pow(2).sum(-1, keepdim=True)
        if self.quadratic:
            out = out + 0.5 * self.quadratic * (u * u).sum(-1, keepdim=True)
        return out
