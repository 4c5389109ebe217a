"""Infinite-width NNGP and NTK of fully connected ReLU networks, in the NTK parameterisation of neural-tangents'
`stax` (Jacot et al. 2018): Dense(W_std, b_std) and ReLU pairs, then a Dense(1) readout with the same stds."""

from __future__ import annotations

import math

import numpy as np

from icctrl.errors import InvalidValueError, ShapeError


def _points(x, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ShapeError(f"{what} must be (points, features), got shape {np.shape(x)}")
    if not np.isfinite(a).all():
        raise InvalidValueError(f"{what} contains non-finite values")
    return a


def _dot_over_features(a: np.ndarray, b: np.ndarray, block: int = 2**22) -> np.ndarray:
    """(a_i · b_j)/d, summed exactly as the diagonal is, so identical points give K(x, x) == q(x) to the bit."""
    n1, n2, d = a.shape[0], b.shape[0], a.shape[1]
    rows = max(1, block // max(1, n2 * d))
    out = np.empty((n1, n2))
    for i in range(0, n1, rows):
        out[i:i + rows] = (a[i:i + rows, None, :] * b[None, :, :]).sum(-1) / d
    return out


def relu_step(k: np.ndarray, q1: np.ndarray, q2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E[relu(u)relu(v)] and E[relu'(u)relu'(v)] for (u, v) ~ N(0, [[q1, k], [k, q2]]) (arc-cosine kernels)."""
    c = np.sqrt(np.maximum(q1 * q2 - k * k, 0.0))
    theta = np.arctan2(c, k)  # exactly 0 for identical points, where c == 0 and k > 0
    return (c + (math.pi - theta) * k) / (2 * math.pi), (math.pi - theta) / (2 * math.pi)


def analytic_ntk(x1, x2=None, depth: int = 1, w_std: float = math.sqrt(2.0), b_std: float = 0.0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(nngp, ntk), each (n1, n2), of `depth` hidden Dense+ReLU pairs and a Dense(1) readout (x2=None: x2 = x1).

    Dense: K ← W²K + b², Θ ← K_new + W²Θ; ReLU: K ← E[relu relu], Θ ← Θ·E[relu' relu']. Input kernel x·x'/d.
    """
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 0:
        raise InvalidValueError(f"depth (hidden Dense+ReLU pairs) must be an integer >= 0, got {depth!r}")
    for name, v in (("w_std", w_std), ("b_std", b_std)):
        if not np.isfinite(v) or v < 0:
            raise InvalidValueError(f"{name} must be finite and >= 0, got {v!r}")
    a = _points(x1, "x1")
    b = a if x2 is None else _points(x2, "x2")
    if a.shape[1] != b.shape[1]:
        raise ShapeError(f"x1 and x2 must have the same features, got {a.shape[1]} and {b.shape[1]}")
    w2, b2 = float(w_std) ** 2, float(b_std) ** 2
    k = _dot_over_features(a, b)
    q1 = (a * a).sum(-1)[:, None] / a.shape[1]
    q2 = (b * b).sum(-1)[None, :] / b.shape[1]
    ntk = np.zeros_like(k)
    for _ in range(int(depth)):
        k, q1, q2 = w2 * k + b2, w2 * q1 + b2, w2 * q2 + b2
        ntk = k + w2 * ntk
        (k, dk), (q1, _), (q2, _) = relu_step(k, q1, q2), relu_step(q1, q1, q1), relu_step(q2, q2, q2)
        ntk = ntk * dk
    k = w2 * k + b2
    return k, k + w2 * ntk
