"""Batch simulation that stops each trajectory where it leaves the valid (or stability) region."""

from __future__ import annotations

from typing import Any

import numpy as np

from icctrl.errors import IntegrationError, InvalidValueError

OK, LEFT_VALID, LEFT_REGION = 0, 1, 2


def region_level(plant: Any, margin: float | None) -> float | None:
    """margin × the plant's stability level (V < rho_stability), or None when either is absent."""
    rho = getattr(plant, "rho_stability", None)
    if margin is None or rho is None or not hasattr(plant, "lyapunov"):
        return None
    return float(margin) * float(rho)


def classify(plant: Any, X: np.ndarray, level: float | None) -> np.ndarray:
    """Status per state (..., nx) -> (...): OK, LEFT_VALID (non-finite/out of box), LEFT_REGION."""
    finite = np.all(np.isfinite(X), axis=-1)
    inside = finite & np.all((X >= plant.x_lb) & (X <= plant.x_ub), axis=-1)
    status = np.where(inside, OK, LEFT_VALID).astype(np.int8)
    if level is not None and np.any(inside):
        V = np.full(X.shape[:-1], np.inf)
        V[inside] = np.asarray(plant.lyapunov(X[inside]), dtype=float).reshape(-1)
        status[inside & ~(V <= level)] = LEFT_REGION
    return status


def simulate(plant: Any, X0: np.ndarray, U: np.ndarray, dt: float, level: float | None):
    """States (B, T+1, nx) and status (B, T+1); a trajectory is NaN after its first non-OK state.

    Uses the plant's `simulate_batch` one period at a time over the trajectories still inside (so stiff
    run-aways do not slow the rest); a period that fails for the batch is bisected down to the failing
    rows; plants without `simulate_batch` are stepped with `step`.
    """
    B, T, _ = U.shape
    X = np.full((B, T + 1, X0.shape[1]), np.nan)
    X[:, 0] = X0
    status = np.zeros((B, T + 1), dtype=np.int8)
    status[:, 0] = classify(plant, X0, level)
    batch = getattr(plant, "simulate_batch", None)
    for t in range(T):
        alive = np.flatnonzero(status[:, t] == OK)
        status[status[:, t] != OK, t + 1] = status[status[:, t] != OK, t]
        if len(alive) == 0:
            break
        X[alive, t + 1] = _advance(plant, batch, X[alive, t], U[alive, t], dt)
        status[alive, t + 1] = classify(plant, X[alive, t + 1], level)
        gone = alive[status[alive, t + 1] == LEFT_VALID]
        X[gone, t + 1] = np.nan
    return X, status


def _advance(plant: Any, batch: Any, X: np.ndarray, U: np.ndarray, dt: float) -> np.ndarray:
    """One period for a batch; rows whose integration fails or leaves the valid box come back NaN."""
    if batch is not None:
        try:
            return np.asarray(batch(X, U[:, None, :], dt), dtype=float)[:, 1]
        except (IntegrationError, InvalidValueError):
            if len(X) == 1:
                return np.full_like(X, np.nan)
            half = len(X) // 2  # bisect: a few failing rows cost O(log B) extra batch calls
            first = _advance(plant, batch, X[:half], U[:half], dt)
            return np.concatenate([first, _advance(plant, batch, X[half:], U[half:], dt)])
    out = np.empty_like(X)
    for i in range(len(X)):
        try:
            out[i] = plant.step(X[i], U[i], dt)
        except (IntegrationError, InvalidValueError):
            out[i] = np.nan
    return out
