"""The map T of one JKO step: a residual MLP, or the gradient of an ICNN potential from `icctrl.nn`.

Both act on coordinates standardised by the step's particles (shift μ, one scalar scale s), which keeps the
ICNN map a gradient of a convex function: T(x) = ∇_x [s²φ((x − μ)/s) + μᵀx] = μ + s∇φ(u).
"""

from __future__ import annotations

import torch
from torch import nn

from icctrl.convexity import certify
from icctrl.errors import NotConvexError, UnknownNameError
from icctrl.nn import build

MAPS = ("mlp", "icnn")


class _Standardised(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(()))

    def standardise_on(self, x: torch.Tensor) -> None:
        """Set μ and s from the particles of the step (s: root mean square deviation per coordinate)."""
        m = x.mean(0)
        s = (x - m).pow(2).mean().sqrt().clamp_min(1e-8)
        self.shift.copy_(m)
        self.scale.copy_(s)


class ResidualMap(_Standardised):
    """T(x) = x + s·r((x − μ)/s), r an MLP whose last layer starts at zero, so T starts as the identity."""

    def __init__(self, dim: int, hidden: int = 64, layers: int = 3):
        super().__init__(dim)
        mods: list[nn.Module] = []
        width = dim
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        mods.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*mods)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.scale * self.net((x - self.shift) / self.scale)


class ICNNMap(_Standardised):
    """T = ∇ of a convex potential: φ = ICNN(u) + ½‖u‖² (`icctrl.nn` ICNN, softplus), checked by `certify`."""

    def __init__(self, dim: int, hidden: int = 64, layers: int = 3):
        super().__init__(dim)
        self.potential = build("icnn", n_in=dim, n_out=1, hidden=hidden, layers=layers, activation="softplus",
                               quadratic=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        train = torch.is_grad_enabled()  # keep the graph of ∇φ only when the caller differentiates
        with torch.enable_grad():
            u = (x - self.shift) / self.scale
            if not u.requires_grad:
                u = u.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.potential(u).sum(), u, create_graph=train)
        return self.shift + self.scale * g

    def certificate(self):
        """`icctrl.convexity.certify` of the potential; NotConvexError when it cannot be certified convex."""
        cert = certify(self.potential)
        if not cert.convex:
            raise NotConvexError(f"the ICNN potential of the JKO map is not certified convex: {cert.reasons}")
        return cert


def make_map(kind: str, dim: int, hidden: int, layers: int) -> nn.Module:
    """A fresh map of the named kind ("mlp" or "icnn")."""
    if kind == "mlp":
        return ResidualMap(dim, hidden, layers)
    if kind == "icnn":
        return ICNNMap(dim, hidden, layers)
    raise UnknownNameError(f"unknown map {kind!r}; choose one of {list(MAPS)}")
