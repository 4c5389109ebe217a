"""Closed-form predictions of a network trained by gradient descent on the MSE in its NTK (linearised) regime.

Loss L = (1/2n) Σ_i ‖f(x_i) − y_i‖² over the n training points. Gradient flow at learning rate η for time t gives
f_train(t) = y + e^(−ηΘt/n)(f₀ − y) and f_test(t) = f₀* + Θ*ₓ Θ⁻¹ (I − e^(−ηΘt/n))(y − f₀); `steps=True` reads t
as a number of full-batch GD steps, with (I − ηΘ/n)^t in place of the exponential.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from icctrl.errors import InvalidValueError, ShapeError


@dataclass(frozen=True)
class GDPrediction:
    """Predicted outputs at each time: `train` (len(t), n, k), `test` (len(t), m, k) or None; `t` the times."""

    t: np.ndarray
    train: np.ndarray
    test: np.ndarray | None


def gd_predict(ntk_train, y_train, ntk_test_train=None, t=np.inf, learning_rate: float = 1.0, f0_train=None,
               f0_test=None, diag_reg: float = 0.0, steps: bool = False) -> GDPrediction:
    """Outputs after training for time(s) t (np.inf: the converged network) from outputs f0 at initialisation (0
    by default: the mean over initialisations). ntk_train (n, n), y_train (n,) or (n, k), ntk_test_train (m, n)."""
    K = np.asarray(ntk_train, dtype=np.float64)
    y = np.asarray(y_train, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    n = K.shape[0]
    if K.ndim != 2 or K.shape != (n, n) or y.ndim != 2 or y.shape[0] != n:
        raise ShapeError(f"ntk_train must be (n, n) and y_train (n,) or (n, k), got {K.shape} and {np.shape(y_train)}")
    if not (np.isfinite(K).all() and np.isfinite(y).all()):
        raise InvalidValueError("ntk_train or y_train contains non-finite values")
    if not np.isfinite(learning_rate) or learning_rate <= 0:
        raise InvalidValueError(f"learning_rate must be positive, got {learning_rate!r}")
    if diag_reg < 0:
        raise InvalidValueError(f"diag_reg must be >= 0, got {diag_reg!r}")
    ts = np.atleast_1d(np.asarray(t, dtype=np.float64))
    if np.isnan(ts).any() or (ts < 0).any():
        raise InvalidValueError(f"times must be >= 0, got {ts.tolist()}")
    f0 = np.zeros_like(y) if f0_train is None else np.asarray(f0_train, dtype=np.float64).reshape(y.shape)
    lam, V = np.linalg.eigh(0.5 * (K + K.T) + diag_reg * np.eye(n))
    tol = max(lam.max(), 0.0) * n * np.finfo(np.float64).eps
    rate = learning_rate / n
    r0 = V.T @ (y - f0)  # residual in the eigenbasis
    train, gains = [], []
    for s in ts:
        if steps:
            decay = np.ones_like(lam) if s == 0 else (1.0 - rate * lam) ** s
        else:
            decay = np.where(lam > tol, np.exp(-rate * lam * s), 1.0) if np.isfinite(s) else (lam <= tol) * 1.0
        # Θ⁻¹(I − decay), with its limit (η/n)·t on the null space (pseudo-inverse at t = ∞)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.where(lam > tol, (1.0 - decay) / lam, 0.0 if not np.isfinite(s) else rate * s)
        train.append(y - V @ (decay[:, None] * r0))
        gains.append(g)
    test = None
    if ntk_test_train is not None:
        Ks = np.asarray(ntk_test_train, dtype=np.float64)
        if Ks.ndim != 2 or Ks.shape[1] != n:
            raise ShapeError(f"ntk_test_train must be (m, {n}), got {Ks.shape}")
        g0 = np.zeros((Ks.shape[0], y.shape[1])) if f0_test is None else \
            np.asarray(f0_test, dtype=np.float64).reshape(Ks.shape[0], y.shape[1])
        test = np.stack([g0 + Ks @ V @ (g[:, None] * r0) for g in gains])
    return GDPrediction(t=ts, train=np.stack(train), test=test)
