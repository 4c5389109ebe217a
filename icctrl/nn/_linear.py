"""The affine (ARX) baseline: a causal FIR map over the window, fitted in closed form by least squares.

y_t = Σ_(k<lags) A_k x_(t−k) + Σ_(k≤min(t, lags−1)) b_k, with x_(t−k) = 0 before the window starts (the zero
initial state every recurrent model of the zoo has). With inputs held over a window (the one_step layout) this
is the best affine map of the whole window; with [x_0, u_j] inputs it is the impulse response of a linear plant.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from icctrl.errors import InvalidValueError, ShapeError
from icctrl.nn._base import SequenceModel


class Linear(SequenceModel):
    """Causal affine map with `lags` taps; `fit(x, y)` sets it to the least-squares solution."""

    name = "linear"
    recurrent = True

    def __init__(self, n_in: int, n_out: int, lags: int = 10):
        super().__init__(n_in, n_out, lags=lags)
        if not isinstance(lags, int) or isinstance(lags, bool) or lags < 1:
            raise InvalidValueError(f"lags must be a positive integer, got {lags!r}")
        self.lags = lags
        self.weight = nn.Parameter(torch.zeros(lags, n_out, n_in))
        self.bias = nn.Parameter(torch.zeros(lags, n_out))
        self.convex_inputs = tuple(range(n_in))

    def forward_window(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        padded = F.pad(x, (0, 0, self.lags - 1, 0))
        y = torch.cumsum(self.bias, 0)[torch.arange(T, device=x.device).clamp(max=self.lags - 1)]
        for k in range(self.lags):
            y = y + padded[:, self.lags - 1 - k : self.lags - 1 - k + T] @ self.weight[k].T
        return y

    @torch.no_grad()
    def fit(self, x, y, ridge: float = 1e-8) -> Linear:
        """Least squares on windows x (n, T, n_in), y (n, T, n_out) in float64; a tiny ridge (relative to the
        regressors' scale) keeps held inputs, which make the taps collinear, well posed."""
        x, y = _array(x, self.n_in, "x"), _array(y, self.n_out, "y")
        if x.shape[:2] != y.shape[:2]:
            raise ShapeError(f"x {x.shape} and y {y.shape} disagree on (n, T)")
        phi = regressors(x, self.lags)
        gram = phi.T @ phi
        gram[np.diag_indices_from(gram)] += ridge * max(float(np.trace(gram)) / len(gram), 1e-12)
        theta = np.linalg.solve(gram, phi.T @ y.reshape(-1, self.n_out))
        nw = self.lags * self.n_in
        w = theta[:nw].reshape(self.lags, self.n_in, self.n_out).transpose(0, 2, 1)
        dtype = self.weight.dtype
        self.weight.copy_(torch.as_tensor(w, dtype=dtype))
        self.bias.copy_(torch.as_tensor(theta[nw:], dtype=dtype))
        return self


def regressors(x: np.ndarray, lags: int) -> np.ndarray:
    """Rows [x_t, x_(t−1), …, 1_(t≥0), 1_(t≥1), …] for every (window, t), zeros before the window starts."""
    n, T, m = x.shape
    padded = np.concatenate([np.zeros((n, lags - 1, m)), x], axis=1)
    cols = [padded[:, lags - 1 - k : lags - 1 - k + T] for k in range(lags)]
    steps = np.arange(T)
    ones = [np.broadcast_to((steps >= k).astype(float)[None, :, None], (n, T, 1)) for k in range(lags)]
    return np.concatenate(cols + ones, axis=-1).reshape(n * T, -1)


def _array(v, n_feat: int, what: str) -> np.ndarray:
    a = v.detach().cpu().double().numpy() if isinstance(v, torch.Tensor) else np.asarray(v, dtype=np.float64)
    if a.ndim != 3 or a.shape[-1] != n_feat:
        raise ShapeError(f"{what} must be (n, T, {n_feat}), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise InvalidValueError(f"{what} contains non-finite values")
    return a
