"""Displacement-sparsity penalties τ(Δ) (smoothed ℓ0, ℓ1, STVS) and the adaptive-λ controller."""

from __future__ import annotations

import math

import numpy as np
import torch

from icctrl.errors import InvalidValueError, UnknownNameError
from icctrl.ot._base import check_positive, check_positive_int

PENALTIES = ("l0", "l1", "stvs")


def _tau(delta: torch.Tensor, penalty: str, epsilon: float, gamma: float) -> torch.Tensor:
    if penalty == "l0":
        return (1.0 - torch.exp(-(delta**2) / (2.0 * epsilon**2))).sum(-1)
    if penalty == "l1":
        return delta.abs().sum(-1)
    if penalty == "stvs":
        s = torch.asinh(delta.abs() / (2.0 * gamma))
        return gamma**2 * (s + 0.5 - 0.5 * torch.exp(-2.0 * s)).sum(-1)
    raise UnknownNameError(f"unknown penalty {penalty!r}; choose one of {list(PENALTIES)}")


def displacement_penalty(delta, penalty: str = "l0", *, epsilon: float = 0.1, gamma: float = 1.0):
    """τ(Δ) per sample (sum over the last axis) for displacements Δ = T(x) − x; numpy or torch in, same out.

    l0: Σᵢ[1 − exp(−Δᵢ²/(2ε²))] (→ the count of non-zero Δᵢ as ε → 0); l1: Σᵢ|Δᵢ|;
    stvs: γ²Σᵢ[σᵢ + ½ − ½e^(−2σᵢ)] with σᵢ = asinh(|Δᵢ|/(2γ)).
    """
    if penalty not in PENALTIES:
        raise UnknownNameError(f"unknown penalty {penalty!r}; choose one of {list(PENALTIES)}")
    epsilon, gamma = check_positive("epsilon", epsilon), check_positive("gamma", gamma)
    if isinstance(delta, torch.Tensor):
        return _tau(delta, penalty, epsilon, gamma)
    arr = np.asarray(delta, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise InvalidValueError("delta has non-finite values")
    return _tau(torch.from_numpy(arr), penalty, epsilon, gamma).numpy()


class AdaptiveLambda:
    """λ control for a target displacement dimensionality (mean count of |Δᵢ| > threshold per sample).

    The first `warmup` updates leave λ alone (an untrained map has not moved yet, so its dimensionality says
    nothing). Then, every `check_every` updates, the running mean of the dimensionality (over the updates
    since λ last changed, at most `window`) is compared with `target`:
    phase "grow": above target → λ ← growth·λ; at or under target → keep λ as λ_best and go to "anneal".
    Phase "anneal" (simulated-annealing refinement): propose λ' = λ_best·exp(−T·U), U ~ U(0, 1); after
    `check_every` updates accept λ' (it becomes λ_best) only if the dimensionality stayed at or under target,
    else go back to λ_best and check it again; the temperature T decays by `cooling` at each proposal made
    while the dimensionality is within the budget's upper band (≥ `near`·target), so a λ that holds the map far
    under its budget keeps being lowered at full temperature: the dimensionality tracks the budget from below.
    If λ_best itself no longer keeps the dimensionality under target (the map keeps training), grow again.
    λ never grows past `lam_max`; a check over target with λ already there sets `capped` (the budget cannot be
    reached with this penalty: the caller stops and says so instead of growing λ without bound).
    """

    def __init__(self, lam: float, target: float, *, growth: float = 2.0, check_every: int = 25,
                 window: int = 25, temperature: float = 1.0, cooling: float = 0.9, warmup: int = 0,
                 near: float = 0.9, lam_max: float = 1e6, seed: int = 0):
        self.lam = check_positive("lam", lam)
        self.lam_max = check_positive("lam_max", lam_max)
        if self.lam > self.lam_max:
            raise InvalidValueError(f"lam={lam} exceeds lam_max={lam_max}")
        self.capped = False
        self.target = check_positive("target", target)
        self.growth = check_positive("growth", growth)
        if self.growth <= 1:
            raise InvalidValueError(f"growth must be > 1, got {growth}")
        self.check_every = check_positive_int("check_every", check_every)
        self.window = check_positive_int("window", window)
        self.temperature = check_positive("temperature", temperature)
        if not 0 < cooling <= 1:
            raise InvalidValueError(f"cooling must lie in (0, 1], got {cooling}")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise InvalidValueError(f"warmup must be a non-negative integer, got {warmup!r}")
        self.cooling = float(cooling)
        if not 0 < near <= 1:
            raise InvalidValueError(f"near must lie in (0, 1], got {near}")
        self.near = float(near)
        self.warmup = warmup
        self.phase = "grow"
        self.best = self.lam
        self.accepted = 0
        self.rejected = 0
        self.history: list[tuple[str, float, float]] = []  # (event, λ after it, running dimensionality)
        self._dims: list[float] = []
        self._seen = 0
        self._proposal = False
        self._rng = np.random.default_rng(seed)

    @property
    def running_dim(self) -> float:
        """Mean dimensionality over the updates since λ last changed (at most `window` of them)."""
        recent = self._dims[-self.window:]
        return float(np.mean(recent)) if recent else math.nan

    def update(self, dim: float) -> float:
        """Record one batch's mean dimensionality; return the λ to use next."""
        if not math.isfinite(dim):
            raise InvalidValueError(f"dimensionality must be finite, got {dim}")
        self._seen += 1
        if self._seen <= self.warmup:
            return self.lam
        self._dims.append(float(dim))
        if len(self._dims) < self.check_every:
            return self.lam
        run = self.running_dim
        under = run <= self.target
        if self.phase == "grow":
            if under:
                self.phase, self.best = "anneal", self.lam
                self._propose(run)
            else:
                self._grow(self.lam, run)
        elif self._proposal:
            if under:
                self.best, self.accepted = self.lam, self.accepted + 1
                self.history.append(("accept", self.lam, run))
                self._propose(run)
            else:
                self.rejected += 1
                self._proposal = False
                self._set(self.best, "reject", run)
        elif under:
            self._propose(run)
        else:  # λ_best no longer keeps the map under target
            self.phase = "grow"
            self._grow(self.best, run)
        return self.lam

    def _grow(self, lam: float, run: float) -> None:
        if lam >= self.lam_max:  # already at the cap and still over target
            self.capped = True
            self._set(self.lam_max, "capped", run)
        else:
            self._set(min(lam * self.growth, self.lam_max), "grow", run)

    def _propose(self, run: float) -> None:
        self._proposal = True
        self._set(self.best * math.exp(-self.temperature * self._rng.uniform()), "propose", run)
        if run >= self.near * self.target:
            self.temperature *= self.cooling

    def _set(self, lam: float, event: str, run: float) -> None:
        self.lam = lam
        self._dims = []
        self.history.append((event, lam, run))
