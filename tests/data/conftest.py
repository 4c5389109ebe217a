"""Fixtures for the data tests: a private cache folder and a tiny linear plant to generate from."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    """Every test caches datasets in its own temporary folder."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("ICCTRL_CACHE_DIR", str(folder))
    return folder


class LinearPlant:
    """dx/dt = A (x - x_ss) + B (u - u_ss), integrated exactly (matrix exponential); counts its steps."""

    name = "linear"
    state_names = ("x1", "x2")
    input_names = ("u",)
    dt = 0.1

    def __init__(self) -> None:
        self.A = np.array([[-1.0, 0.5], [0.0, -2.0]])
        self.B = np.array([[0.0], [1.0]])
        self.x_ss = np.array([1.0, 2.0])
        self.u_ss = np.array([0.0])
        self.u_lb = np.array([-1.0])
        self.u_ub = np.array([1.0])
        self.x_lb = np.array([-5.0, -5.0])
        self.x_ub = np.array([5.0, 5.0])
        self._calls = 0  # private: plain public attributes are part of the cache key
        self._expm: dict[float, np.ndarray] = {}

    @property
    def calls(self) -> int:
        """Number of `step` calls so far."""
        return self._calls

    @property
    def nx(self) -> int:
        return 2

    @property
    def nu(self) -> int:
        return 1

    def step(self, x, u, dt=None):
        self._calls += 1
        dt = float(self.dt if dt is None else dt)
        if dt not in self._expm:
            M = np.zeros((3, 3))
            M[:2, :2] = self.A
            M[:2, 2:] = self.B
            self._expm[dt] = expm(M * dt)
        E = self._expm[dt]
        dx = np.asarray(x, dtype=float) - self.x_ss
        du = np.asarray(u, dtype=float) - self.u_ss
        return self.x_ss + E[:2, :2] @ dx + E[:2, 2:] @ du

    def simulate(self, x0, U, dt=None):
        X = [np.asarray(x0, dtype=float)]
        for u in np.asarray(U, dtype=float):
            X.append(self.step(X[-1], u, dt))
        return np.array(X)


@pytest.fixture
def linear_plant():
    return LinearPlant()
