"""Closed-form Gaussian laws of the test flows (Ornstein–Uhlenbeck, heat) and the symmetric KL metric."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import expm

from icctrl.errors import InvalidValueError, ShapeError


def fit_gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (maximum likelihood) of the rows of x."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < x.shape[1] + 1:
        raise ShapeError(f"fitting a Gaussian needs an (n, d) array with n > d, got shape {x.shape}")
    m = x.mean(0)
    c = x - m
    return m, c.T @ c / x.shape[0]


def kl_gaussian(m0, c0, m1, c1) -> float:
    """KL(N(m0, c0) ‖ N(m1, c1))."""
    d = len(m0)
    l1 = np.linalg.cholesky(c1)
    ic1 = np.linalg.inv(c1)
    dm = np.asarray(m1) - np.asarray(m0)
    logdet0 = np.linalg.slogdet(c0)[1]
    logdet1 = 2 * np.log(np.diag(l1)).sum()
    return 0.5 * float(np.trace(ic1 @ c0) + dm @ ic1 @ dm - d + logdet1 - logdet0)


def symkl_gaussian(m0, c0, m1, c1) -> float:
    """KL(p‖q) + KL(q‖p) between two Gaussians."""
    return kl_gaussian(m0, c0, m1, c1) + kl_gaussian(m1, c1, m0, c0)


@dataclass(frozen=True)
class OUProblem:
    """Fokker–Planck flow of KL(· ‖ N(m, Σ)) from P_0 = N(0, I): the law stays Gaussian with known moments."""

    mean: np.ndarray
    cov: np.ndarray

    @property
    def dim(self) -> int:
        return len(self.mean)

    def potential(self, x):
        """V(x) = ½(x − m)ᵀΣ⁻¹(x − m) on a torch (n, d) tensor: the target is ∝ exp(−V)."""
        import torch

        prec = torch.as_tensor(np.linalg.inv(self.cov), dtype=x.dtype, device=x.device)
        c = x - torch.as_tensor(self.mean, dtype=x.dtype, device=x.device)
        return 0.5 * ((c @ prec) * c).sum(1)

    def exact(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """mean_t = (I − e^(−Σ⁻¹t))m, cov_t = Σ(I − e^(−2Σ⁻¹t)) + e^(−2Σ⁻¹t)."""
        if t < 0:
            raise InvalidValueError(f"time must be >= 0, got {t}")
        a = np.linalg.inv(self.cov)
        e1, e2 = expm(-a * t), expm(-2 * a * t)
        eye = np.eye(self.dim)
        cov = self.cov @ (eye - e2) + e2
        return (eye - e1) @ self.mean, 0.5 * (cov + cov.T)

    def jko_exact(self, step_size: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """The law after `steps` exact JKO steps of size a (the time-discretisation error alone).

        P_0 = N(0, I) commutes with Σ, and so does every iterate: in Σ's eigenbasis each coordinate solves
        min_s (s − s_k)²/2a − log s + s²/2σ² (scale) and the mean moves by (I + aΣ⁻¹)⁻¹.
        """
        lam, q = np.linalg.eigh(self.cov)
        a, mq = step_size, q.T @ self.mean
        mean, s = np.zeros(self.dim), np.ones(self.dim)
        for _ in range(steps):
            mean = (mean + a * mq / lam) / (1 + a / lam)
            b = 1 / a + 1 / lam
            s = (s / a + np.sqrt((s / a) ** 2 + 4 * b)) / (2 * b)
        return q @ mean, (q * s**2) @ q.T

    def symkl(self, x: np.ndarray, t: float) -> float:
        """Symmetric KL between a Gaussian fitted to the particles x and the exact law at time t."""
        return symkl_gaussian(*fit_gaussian(x), *self.exact(t))


def ou_problem(dim: int, seed: int = 0) -> OUProblem:
    """A seeded OU target: Σ = Q diag(λ) Qᵀ with Q a random rotation, λ uniform in [1, 2]; m uniform in [−1, 1]ᵈ."""
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise InvalidValueError(f"dimension must be >= 1, got {dim!r}")
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    q = q * np.sign(np.diag(r))
    lam = rng.uniform(1.0, 2.0, dim)
    cov = (q * lam) @ q.T
    return OUProblem(mean=rng.uniform(-1.0, 1.0, dim), cov=0.5 * (cov + cov.T))


@dataclass(frozen=True)
class HeatProblem:
    """Heat flow ∂ρ/∂t = Δρ (the gradient flow of ∫ρ log ρ) from N(m₀, C₀): the law at t is N(m₀, C₀ + 2tI)."""

    mean: np.ndarray
    cov: np.ndarray

    def exact(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        return self.mean.copy(), self.cov + 2.0 * t * np.eye(len(self.mean))

    def symkl(self, x: np.ndarray, t: float) -> float:
        return symkl_gaussian(*fit_gaussian(x), *self.exact(t))
