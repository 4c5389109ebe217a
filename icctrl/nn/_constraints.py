"""Weight constraints as torch parametrizations, so they hold exactly after any optimizer step.

Non-negativity uses W = softplus(V): smooth, strictly positive and never "dead" (a ReLU or clamp
re-parametrization zeroes gradients of every entry it clips, and projection after each step is easy to
forget outside our trainer). The spectral bound divides by max(1, ‖W‖₂) computed exactly (SVD of a small
matrix), not by a power-iteration estimate, so ‖W‖₂ ≤ 1 really holds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

_FLOOR = 1e-6  # smallest positive weight the inverse map produces


class NonNegative(nn.Module):
    """W = softplus(V) ≥ 0 elementwise."""

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return F.softplus(v)

    def right_inverse(self, w: torch.Tensor) -> torch.Tensor:
        w = w.clamp_min(_FLOOR)
        return w + torch.log(-torch.expm1(-w))  # softplus⁻¹(w) = log(eᵂ − 1), written stably


class SpectralBound(nn.Module):
    """W = V / max(1, ‖V‖₂): spectral norm at most one, exactly (no power-iteration estimate)."""

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return v / torch.linalg.matrix_norm(v, ord=2).clamp_min(1.0)

    def right_inverse(self, w: torch.Tensor) -> torch.Tensor:
        return w


class NonNegSpectral(nn.Module):
    """W = softplus(V) / max(1, ‖softplus(V)‖₂): non-negative with spectral norm at most one."""

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        p = F.softplus(v)
        return p / torch.linalg.matrix_norm(p, ord=2).clamp_min(1.0)

    def right_inverse(self, w: torch.Tensor) -> torch.Tensor:
        return NonNegative().right_inverse(w)


CONSTRAINTS = {"nonneg": NonNegative, "spectral": SpectralBound, "nonneg_spectral": NonNegSpectral}


def constrain(module: nn.Module, name: str, kind: str) -> nn.Module:
    """Register the constraint `kind` on `module.<name>` (keeps the current value as the initial one)."""
    parametrize.register_parametrization(module, name, CONSTRAINTS[kind]())
    return module


def nonneg_init_(w: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Initial values for a non-negative matrix: uniform in (0, 2·gain/fan_in), mean gain/fan_in per entry,
    so that a non-negative layer starts near a contraction instead of blowing activations up."""
    fan_in = w.shape[-1]
    with torch.no_grad():
        return w.uniform_(_FLOOR, 2.0 * gain / fan_in)
