"""Weight constraints: torch parametrizations, or a projection the trainer applies after every optimiser step.

Non-negative weights come in three parametrisations (`WEIGHTS`): W = softplus(V) (smooth, never "dead"), W = exp(V),
and "projected": W is a plain parameter clamped to W ≥ 0 after each step (`project_`; a step moves W by the same
amount at any size, where softplus and exp move small weights by a fraction of their value). A clamp or ReLU
*re-parametrization* would zero the gradient of every clipped entry; the projection does not. Outside the trainer
nothing enforces a projected constraint, so the certifier, which reads the values, is what guarantees convexity.
The spectral bound divides by max(1, ‖W‖₂) computed exactly (SVD of a small matrix), not by a power-iteration
estimate, so ‖W‖₂ ≤ 1 really holds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from icctrl.errors import UnknownNameError

_FLOOR = 1e-6  # smallest positive weight the inverse map produces
#: Parametrisations of the non-negative weights of the input-convex models.
WEIGHTS = ("softplus", "exp", "projected")


class NonNegative(nn.Module):
    """W = softplus(V) ≥ 0 elementwise."""

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return F.softplus(v)

    def right_inverse(self, w: torch.Tensor) -> torch.Tensor:
        w = w.clamp_min(_FLOOR)
        return w + torch.log(-torch.expm1(-w))  # softplus⁻¹(w) = log(eᵂ − 1), written stably


class ExpNonNegative(nn.Module):
    """W = exp(V) > 0 elementwise."""

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return torch.exp(v)

    def right_inverse(self, w: torch.Tensor) -> torch.Tensor:
        return torch.log(w.clamp_min(_FLOOR))


class SpectralBound(nn.Module):
    """W = V / max(1, ‖V‖₂): spectral norm at most one, exactly (no power-iteration estimate)."""

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return v / torch.linalg.matrix_norm(v, ord=2).clamp_min(1.0)

    def right_inverse(self, w: torch.Tensor) -> torch.Tensor:
        return w


class NonNegSpectral(nn.Module):
    """W = P / max(1, ‖P‖₂), P = softplus(V) (or exp(V)): non-negative with spectral norm at most one."""

    def __init__(self, base: nn.Module | None = None):
        super().__init__()
        self.base = base if base is not None else NonNegative()

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        p = self.base(v)
        return p / torch.linalg.matrix_norm(p, ord=2).clamp_min(1.0)

    def right_inverse(self, w: torch.Tensor) -> torch.Tensor:
        return self.base.right_inverse(w)


CONSTRAINTS = {"nonneg": NonNegative, "spectral": SpectralBound, "nonneg_spectral": NonNegSpectral}


def constrain(module: nn.Module, name: str, kind: str, weights: str = "softplus") -> nn.Module:
    """Constrain `module.<name>` to `kind`, its non-negativity by the parametrisation `weights` (one of
    WEIGHTS); keeps the current value (clamped to the constraint) as the initial one."""
    if weights not in WEIGHTS:
        raise UnknownNameError(f"unknown weight parametrisation {weights!r}; choose one of {list(WEIGHTS)}")
    if kind == "spectral" or weights == "softplus":
        parametrize.register_parametrization(module, name, CONSTRAINTS[kind]())
    elif weights == "exp":
        base = ExpNonNegative()
        parametrize.register_parametrization(module, name, base if kind == "nonneg" else NonNegSpectral(base))
    else:
        module._projected = {**getattr(module, "_projected", {}), name: kind}
        _project(getattr(module, name), kind)
    return module


@torch.no_grad()
def _project(w: torch.Tensor, kind: str) -> None:
    w.clamp_(min=0.0)
    if kind == "nonneg_spectral":
        w.div_(torch.linalg.matrix_norm(w, ord=2).clamp_min(1.0))


@torch.no_grad()
def project_(model: nn.Module) -> nn.Module:
    """Put every projected weight of `model` back on its constraint (W ≥ 0, and ‖W‖₂ ≤ 1 where asked); the
    trainer calls it after every optimiser step. Weights under a parametrization need nothing."""
    for module in model.modules():
        for name, kind in getattr(module, "_projected", {}).items():
            _project(getattr(module, name), kind)
    return model


def nonneg_init_(w: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Initial values for a non-negative matrix: uniform in (0, 2·gain/fan_in), mean gain/fan_in per entry,
    so that a non-negative layer starts near a contraction instead of blowing activations up."""
    fan_in = w.shape[-1]
    with torch.no_grad():
        return w.uniform_(_FLOOR, 2.0 * gain / fan_in)
