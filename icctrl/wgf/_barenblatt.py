"""The Barenblatt profile: the exact self-similar solution of the porous medium equation ∂ρ/∂t = Δρ^m."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import betaln, gammaln

from icctrl.errors import InvalidValueError


class Barenblatt:
    """ρ(x, t) = t^(−α)(C − k|x|²t^(−2β))₊^(1/(m−1)), α = d/(d(m−1)+2), β = α/d, k = α(m−1)/(2md), mass one.

    With y = x/t^β the mass is ∫(C − k|y|²)₊^p dy = π^(d/2)/Γ(d/2)·B(d/2, p+1)·k^(−d/2)·C^(p+d/2), p = 1/(m−1),
    which fixes C; |y|²k/C is then Beta(d/2, p+1)-distributed, which gives exact samples.
    """

    def __init__(self, dim: int, m: float = 2.0):
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise InvalidValueError(f"dimension must be >= 1, got {dim!r}")
        if not m > 1:
            raise InvalidValueError(f"the porous medium exponent m must be > 1, got {m}")
        self.dim, self.m = dim, float(m)
        d, p = dim, 1.0 / (self.m - 1)
        self.alpha = d / (d * (self.m - 1) + 2)
        self.beta = self.alpha / d
        self.k = self.alpha * (self.m - 1) / (2 * self.m * d)
        self._p = p
        log_c = (-self._log_ball_integral(p) + 0.5 * d * math.log(self.k)) / (p + 0.5 * d)
        self.C = math.exp(log_c)

    def _log_ball_integral(self, q: float) -> float:
        """log of π^(d/2)/Γ(d/2)·B(d/2, q+1) (∫(1 − |y|²)₊^q dy over the unit ball)."""
        d = self.dim
        return 0.5 * d * math.log(math.pi) - gammaln(0.5 * d) + betaln(0.5 * d, q + 1)

    def _check_t(self, t: float) -> float:
        if not t > 0:
            raise InvalidValueError(f"Barenblatt time must be > 0, got {t}")
        return float(t)

    def support_radius(self, t: float) -> float:
        return math.sqrt(self.C / self.k) * self._check_t(t) ** self.beta

    def density(self, x: np.ndarray, t: float) -> np.ndarray:
        t = self._check_t(t)
        r2 = (np.asarray(x, dtype=np.float64) ** 2).sum(-1)
        return t ** (-self.alpha) * np.clip(self.C - self.k * r2 * t ** (-2 * self.beta), 0, None) ** self._p

    def sample(self, n: int, t: float, seed: int = 0) -> np.ndarray:
        """n exact draws of ρ(·, t)."""
        rng = np.random.default_rng(seed)
        direction = rng.standard_normal((n, self.dim))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        s = np.sqrt(rng.beta(0.5 * self.dim, self._p + 1, n))
        return direction * (s * self.support_radius(t))[:, None]

    def entropy(self, t: float) -> float:
        """(1/(m−1))∫ρ^m = t^(−α(m−1))/(m−1)·π^(d/2)/Γ(d/2)·B(d/2, pm+1)·k^(−d/2)·C^(pm+d/2)."""
        t = self._check_t(t)
        d, pm = self.dim, self._p * self.m
        log_int = self._log_ball_integral(pm) - 0.5 * d * math.log(self.k) + (pm + 0.5 * d) * math.log(self.C)
        return t ** (-self.alpha * (self.m - 1)) * math.exp(log_int) / (self.m - 1)

    def radial_l1(self, x: np.ndarray, t: float, bins: int = 50) -> float:
        """L1 distance between the law of |X| for the particles x and the exact one (a lower bound of the L1 error)."""
        t = self._check_t(t)
        r = np.linalg.norm(np.asarray(x, dtype=np.float64), axis=1)
        rmax = max(float(r.max()), self.support_radius(t)) * 1.0001
        edges = np.linspace(0, rmax, bins + 1)
        emp = np.histogram(r, edges)[0] / len(r)
        w = lambda e: np.clip(e / self.support_radius(t), 0, 1) ** 2  # noqa: E731 - |Y|²/R² is Beta(d/2, p+1)
        from scipy.stats import beta as beta_dist

        exact = np.diff(beta_dist.cdf(w(edges), 0.5 * self.dim, self._p + 1))
        return float(np.abs(emp - exact).sum())
