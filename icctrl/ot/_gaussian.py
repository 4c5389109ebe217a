"""Gaussian pairs with closed-form W2-optimal maps (Bures–Wasserstein), the sanity benchmark of neural OT."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import ot
import torch

from icctrl.errors import InvalidValueError
from icctrl.ot._arrays import from_points, to_points


def _spd(rng: np.random.Generator, d: int, lo: float, hi: float) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * rng.uniform(lo, hi, size=d)) @ q.T


def _sqrtm(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


@dataclass
class GaussianPair:
    """P = N(mean_p, cov_p), Q = N(mean_q, cov_q); T*(x) = mean_q + A(x − mean_p) with A symmetric PD."""

    mean_p: np.ndarray
    cov_p: np.ndarray
    mean_q: np.ndarray
    cov_q: np.ndarray
    A: np.ndarray
    b: np.ndarray
    seed: int

    @property
    def dim(self) -> int:
        """Dimension d of the pair."""
        return self.mean_p.shape[0]

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """n samples of P (float32), reproducible by seed."""
        return self._draw(self.mean_p, self.cov_p, n, seed)

    def sample_q(self, n: int, seed: int = 0) -> np.ndarray:
        """n samples of Q (float32), independent of `sample` for the same seed."""
        return self._draw(self.mean_q, self.cov_q, n, seed + 1_000_003)

    def _draw(self, mean: np.ndarray, cov: np.ndarray, n: int, seed: int) -> np.ndarray:
        if int(n) < 1:
            raise InvalidValueError(f"sample size must be >= 1, got {n}")
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((int(n), self.dim))
        return (mean + z @ _sqrtm(cov)).astype(np.float32)

    def true_map(self, x):
        """T*(x) = x·A + b (A symmetric): the W2-optimal map P → Q; numpy or torch in, same out."""
        return self._affine(x, self.A, self.b)

    def true_inverse(self, y):
        """(T*)⁻¹(y): the W2-optimal map Q → P."""
        ainv = np.linalg.inv(self.A)
        return self._affine(y, ainv, -self.b @ ainv)

    def w2_squared(self) -> float:
        """Exact W2²(P, Q) = ‖m_p − m_q‖² + tr(Σ_p + Σ_q − 2(Σ_p^½ Σ_q Σ_p^½)^½)."""
        sp = _sqrtm(self.cov_p)
        cross = _sqrtm(sp @ self.cov_q @ sp)
        return float(((self.mean_p - self.mean_q) ** 2).sum() + np.trace(self.cov_p + self.cov_q - 2 * cross))

    def _affine(self, x, a: np.ndarray, b: np.ndarray):
        t, kind = to_points(x, "x", dim=self.dim, dtype=torch.float64)
        out = t @ torch.from_numpy(a) + torch.from_numpy(b)
        return from_points(out, kind)


def gaussian_pair(d: int, seed: int = 0, *, spread: tuple[float, float] = (0.5, 2.0)) -> GaussianPair:
    """A random Gaussian pair in R^d: covariance eigenvalues uniform in `spread`, means N(0, I).

    The map comes from POT's `ot.gaussian.bures_wasserstein_mapping` (checked against the closed form in tests).
    """
    if int(d) < 1:
        raise InvalidValueError(f"dimension must be >= 1, got {d}")
    lo, hi = spread
    if not 0 < lo <= hi:
        raise InvalidValueError(f"spread must satisfy 0 < lo <= hi, got {spread}")
    rng = np.random.default_rng(seed)
    mp, mq = rng.standard_normal(d), rng.standard_normal(d)
    cp, cq = _spd(rng, d, lo, hi), _spd(rng, d, lo, hi)
    a, b = ot.gaussian.bures_wasserstein_mapping(mp, mq, cp, cq)
    a = 0.5 * (a + a.T)
    return GaussianPair(mp, cp, mq, cq, np.asarray(a), np.asarray(b).reshape(d), int(seed))


def linear_map(x, y) -> tuple[np.ndarray, np.ndarray]:
    """(A, b) of the W2-optimal map between Gaussian fits of the samples x and y: T(x) = x·A + b, A sym. PD.

    The affine baseline of neural OT, and the starting map of the estimators (float64; POT's Bures map).
    """
    xx = np.asarray(x, dtype=np.float64)
    yy = np.asarray(y, dtype=np.float64)
    d = xx.shape[1]
    cx = np.cov(xx.T).reshape(d, d) + 1e-9 * np.eye(d)
    cy = np.cov(yy.T).reshape(d, d) + 1e-9 * np.eye(d)
    a, b = ot.gaussian.bures_wasserstein_mapping(xx.mean(0), yy.mean(0), cx, cy)
    return 0.5 * (np.asarray(a) + np.asarray(a).T), np.asarray(b).reshape(d)

