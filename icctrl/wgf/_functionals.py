"""Functionals of a law ρ = T#P_k written so that only samples are needed (Fan et al. 2022, §3).

Each term gives T's objective on a batch y = T(x) (differentiable in y); terms with a variational form also
own a critic h trained by ascent on the sup, with a reference law Γ refitted to the particles each step.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from icctrl.errors import InvalidValueError, ShapeError

Potential = Callable[[torch.Tensor], torch.Tensor]


def _critic_net(dim: int, hidden: int) -> nn.Module:
    """A smooth MLP d → 1 whose last layer starts at zero (h starts at its neutral value)."""
    net = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


def _call_potential(potential: Potential, y: torch.Tensor, name: str) -> torch.Tensor:
    v = potential(y)
    if not isinstance(v, torch.Tensor) or v.shape != (y.shape[0],):
        got = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
        raise ShapeError(f"{name} must map an (n, d) tensor to shape (n,), got {got} for input {tuple(y.shape)}")
    return v


class Functional:
    """A functional F(ρ); sums of functionals are functionals (`Entropy() + PotentialEnergy(V)`)."""

    #: whether the term has a variational form with a critic network
    has_critic: bool = False

    def terms(self) -> list[Functional]:
        return [self]

    def __add__(self, other: Functional) -> Functional:
        if not isinstance(other, Functional):
            return NotImplemented
        return Sum(self.terms() + other.terms())

    def make_critic(self, dim: int, hidden: int) -> nn.Module | None:
        return None

    def begin_step(self, y: torch.Tensor) -> None:
        """Refit the reference law on a large detached sample of the particles (called once per JKO step)."""

    def objective(self, y: torch.Tensor, critic: nn.Module | None) -> torch.Tensor:
        """The part of T's loss that depends on T (envelope theorem: the critic is held at its optimum)."""
        raise NotImplementedError

    def critic_loss(self, y: torch.Tensor, critic: nn.Module, gen: torch.Generator) -> torch.Tensor:
        """Loss minimised by the critic: minus the variational objective at fixed particles y."""
        raise NotImplementedError

    def value(self, y: torch.Tensor, critic: nn.Module | None, gen: torch.Generator) -> float:
        """Estimate of F(ρ) from particles y ~ ρ (up to the functional's additive constant)."""
        return float(self.objective(y, critic))


class Sum(Functional):
    """F = Σ F_i."""

    def __init__(self, terms: list[Functional]):
        self._terms = list(terms)

    def terms(self) -> list[Functional]:
        return list(self._terms)

    def __repr__(self) -> str:
        return " + ".join(repr(t) for t in self._terms)


class PotentialEnergy(Functional):
    """E_ρ[V(X)] for a torch callable V: (n, d) → (n,)."""

    def __init__(self, potential: Potential):
        if not callable(potential):
            raise InvalidValueError(f"potential must be callable (n, d) → (n,), got {type(potential).__name__}")
        self.potential = potential

    def objective(self, y, critic=None):
        return _call_potential(self.potential, y, "potential").mean()

    def __repr__(self) -> str:
        return f"PotentialEnergy({getattr(self.potential, '__name__', type(self.potential).__name__)})"


class InteractionEnergy(Functional):
    """½ E[W(X − X′)] over independent pairs, for a torch callable W: (n, d) → (n,); pairs are a batch and its shift."""

    def __init__(self, kernel: Potential):
        if not callable(kernel):
            raise InvalidValueError(f"kernel must be callable (n, d) → (n,), got {type(kernel).__name__}")
        self.kernel = kernel

    def objective(self, y, critic=None):
        if y.shape[0] < 2:
            raise ShapeError(f"interaction energy needs at least 2 particles per batch, got {y.shape[0]}")
        return 0.5 * _call_potential(self.kernel, y - y.roll(1, 0), "kernel").mean()

    def __repr__(self) -> str:
        return "InteractionEnergy(...)"


class Entropy(Functional):
    """∫ρ log ρ = E_ρ[log Γ] + sup_h {E_ρ[log h] − E_Γ[h] + 1}, Γ a Gaussian refitted to the particles each step.

    The critic is g = log h on whitened coordinates u = L⁻¹(y − μ), Γ = N(μ, LLᵀ); at the optimum h = ρ/Γ.
    """

    has_critic = True

    def __init__(self):
        self.mean: torch.Tensor | None = None
        self.chol: torch.Tensor | None = None

    def make_critic(self, dim, hidden):
        return _critic_net(dim, hidden)

    def begin_step(self, y):
        d = y.shape[1]
        self.mean = y.mean(0)
        c = y - self.mean
        cov = c.T @ c / y.shape[0]
        ridge = 1e-6 * float(cov.diagonal().mean()) + 1e-12
        self.chol = torch.linalg.cholesky(cov + ridge * torch.eye(d, device=y.device, dtype=y.dtype))

    def _whiten(self, y):
        if self.chol is None:
            raise InvalidValueError("Entropy has no reference law yet: begin_step(particles) was not called")
        return torch.linalg.solve_triangular(self.chol, (y - self.mean).T, upper=False).T

    def _log_gamma(self, u):
        d = u.shape[1]
        return -0.5 * (u * u).sum(1) - torch.log(self.chol.diagonal()).sum() - 0.5 * d * math.log(2 * math.pi)

    def objective(self, y, critic):
        u = self._whiten(y)
        return (self._log_gamma(u) + critic(u).squeeze(1)).mean()

    def _sup(self, y, critic, gen):
        u = self._whiten(y)
        z = torch.randn(u.shape, generator=gen).to(u)
        return critic(u).mean() - torch.exp(critic(z)).mean() + 1.0, u

    def critic_loss(self, y, critic, gen):
        return -self._sup(y, critic, gen)[0]

    def value(self, y, critic, gen):
        sup, u = self._sup(y, critic, gen)
        return float(self._log_gamma(u).mean() + sup)

    def log_density(self, y, critic):
        """log ρ̂(y) = log Γ(y) + g(y): the density estimate the critic carries."""
        u = self._whiten(y)
        return self._log_gamma(u) + critic(u).squeeze(1)

    def __repr__(self) -> str:
        return "Entropy()"


class KL(Sum):
    """KL(ρ ‖ q) with q ∝ exp(−potential), up to log Z: the entropy plus the potential energy."""

    def __init__(self, potential: Potential):
        super().__init__([Entropy(), PotentialEnergy(potential)])
        self.potential = potential

    def __repr__(self) -> str:
        return "KL(potential)"


class PorousMedium(Functional):
    """The generalised entropy (1/(m−1))∫ρ^m, whose flow is ∂ρ/∂t = Δρ^m (m = 2: the porous medium equation).

    Variational form sup_h {(m/(m−1)) E_ρ[h^(m−1)] − |B|·E_Γ[h^m]}, Γ uniform on a box B with sides 1.5× the
    particle range (refitted each step); the optimum is h = ρ on B, so the critic is a density estimate.
    """

    has_critic = True

    def __init__(self, m: float = 2.0):
        m = float(m)
        if not m > 1 or not math.isfinite(m):
            raise InvalidValueError(f"the porous medium exponent m must be > 1, got {m}")
        self.m = m
        self.center: torch.Tensor | None = None
        self.half: torch.Tensor | None = None
        self.log_volume = 0.0

    def make_critic(self, dim, hidden):
        return _critic_net(dim, hidden)

    def begin_step(self, y):
        lo, hi = y.min(0).values, y.max(0).values
        self.center = 0.5 * (lo + hi)
        self.half = (0.75 * (hi - lo)).clamp_min(1e-6)
        self.log_volume = float(torch.log(2 * self.half).sum())

    def density(self, y, critic):
        """ρ̂(y) = h(y) = exp(g(u) − log|B|) on box coordinates u (uniform 1/|B| where g = 0)."""
        if self.center is None:
            raise InvalidValueError("PorousMedium has no reference box yet: begin_step(particles) was not called")
        u = (y - self.center) / self.half
        return torch.exp(critic(u).squeeze(1) - self.log_volume)

    def objective(self, y, critic):
        return self.m / (self.m - 1) * self.density(y, critic).pow(self.m - 1).mean()

    def critic_loss(self, y, critic, gen):
        z = (torch.rand(y.shape, generator=gen).to(y) * 2 - 1) * self.half + self.center
        sup = self.objective(y, critic) - math.exp(self.log_volume) * self.density(z, critic).pow(self.m).mean()
        return -sup

    def value(self, y, critic, gen):
        return -float(self.critic_loss(y, critic, gen))

    def __repr__(self) -> str:
        return f"PorousMedium(m={self.m:g})"
