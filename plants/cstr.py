"""Wu–Christofides CSTR: second-order exothermic A → B, the reference plant of the IC-LSTM/ICLRNN papers."""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import numpy as np
from scipy.optimize import fsolve

from icctrl.errors import IntegrationError, InvalidValueError, ShapeError
from plants.base import Plant

__all__ = ["CSTR"]


class CSTR(Plant):
    """Wu–Christofides CSTR in absolute units: x = (C_A [kmol/m3], T [K]), u = (C_A0 [kmol/m3], Q [kJ/h]).

    dC_A/dt = F/V (C_A0 − C_A) − k0 exp(−E/RT) C_A²
    dT/dt   = F/V (T0 − T) − ΔH/(ρ Cp) k0 exp(−E/RT) C_A² + Q/(ρ Cp V)

    Time is in hours. `step` uses scipy LSODA with rtol=1e-8, atol=1e-10 and the analytic Jacobian (its
    cost per period: docs/reliability.md, "So the solvers are the cost").
    `casadi_step` is RK4 with 10 substeps per 0.005 h by default (matches `step` to ~1e-9 relative in the
    stability region). The deviation form of the papers (x − x_ss, u − u_ss) is available through
    `to_deviation` / `from_deviation`; bounds and the Lyapunov function are stated on it.

    The valid region is C_A ∈ [0, 10] kmol/m3, T ∈ [200, 1500] K: below 200 K the Arrhenius term is
    meaningless for a liquid reactor, and holding Q = −5e5 kJ/h long enough drives T there.
    """

    name = "cstr"
    state_names = ("C_A", "T")
    state_units = ("kmol/m3", "K")
    input_names = ("C_A0", "Q")
    input_units = ("kmol/m3", "kJ/h")
    time_unit = "h"
    dt = 0.005
    ivp_method = "LSODA"
    rtol = 1e-8
    atol = 1e-10
    rk4_substeps = 10
    batch_lambda_h = 0.1  # simulate_batch keeps h·|λ_max(J)| below this

    # Parameters of Wu et al. (2019), units in the comments.
    F = 5.0  # m3/h
    V = 1.0  # m3
    k0 = 8.46e6  # m3/(kmol h)
    E = 5.0e4  # kJ/kmol
    R = 8.314  # kJ/(kmol K)
    T0 = 300.0  # K
    dH = -1.15e4  # kJ/kmol
    rho = 1000.0  # kg/m3
    Cp = 0.231  # kJ/(kg K)

    P = np.array([[1060.0, 22.0], [22.0, 0.52]])
    rho_stability = 372.0

    def __init__(self) -> None:
        self.u_ss = np.array([4.0, 0.0])
        self.du_max = np.array([3.5, 5.0e5])
        self.u_lb = self.u_ss - self.du_max
        self.u_ub = self.u_ss + self.du_max
        self.x_lb = np.array([0.0, 200.0])
        self.x_ub = np.array([10.0, 1500.0])
        self.x_ss = self._solve_steady_state(np.array([1.95, 402.0]))

    # ------------------------------------------------------------------ equations
    def _rate(self, C: Any, T: Any, exp: Any = np.exp) -> Any:
        """Reaction rate k0 exp(−E/RT) C_A² in kmol/(m3 h)."""
        return self.k0 * exp(-self.E / (self.R * T)) * C**2

    def _rhs(self, x: np.ndarray, u: np.ndarray, d: np.ndarray) -> np.ndarray:
        C, T = x.tolist()  # Python floats: the integrator calls this hundreds of times a period
        if not T > 0:  # no Arrhenius rate at or below 0 K: let the integrator see it fail
            return np.array([np.nan, np.nan])
        c_in, q = u.tolist()
        r = self._rate(C, T, exp=math.exp)
        a = self.F / self.V
        return np.array(
            [
                a * (c_in - C) - r,
                a * (self.T0 - T) - self.dH / (self.rho * self.Cp) * r + q / (self.rho * self.Cp * self.V),
            ]
        )

    def _jac(self, x: np.ndarray, u: np.ndarray, d: np.ndarray) -> np.ndarray:
        return self._jac_batch(x[None, :])[0]

    def _jac_batch(self, X: np.ndarray) -> np.ndarray:
        """Analytic Jacobians d(rhs)/dx for states X (B, 2) → (B, 2, 2)."""
        C, T = X[:, 0], X[:, 1]
        k = self.k0 * np.exp(-self.E / (self.R * T))
        drdC = 2 * k * C
        drdT = k * C**2 * self.E / (self.R * T**2)
        a = self.F / self.V
        beta = -self.dH / (self.rho * self.Cp)
        J = np.empty((X.shape[0], 2, 2))
        J[:, 0, 0] = -a - drdC
        J[:, 0, 1] = -drdT
        J[:, 1, 0] = beta * drdC
        J[:, 1, 1] = -a + beta * drdT
        return J

    def _casadi_rhs_expr(self, x: Any, u: Any, d: Any) -> Any:
        import casadi as ca

        r = self._rate(x[0], x[1], exp=ca.exp)
        a = self.F / self.V
        return ca.vertcat(
            a * (u[0] - x[0]) - r,
            a * (self.T0 - x[1]) - self.dH / (self.rho * self.Cp) * r + u[1] / (self.rho * self.Cp * self.V),
        )

    # ------------------------------------------------------------------ steady states
    def _solve_steady_state(self, guess: np.ndarray, u: np.ndarray | None = None) -> np.ndarray:
        """Root of rhs(x, u) = 0 near `guess` (scipy fsolve with the analytic Jacobian)."""
        u = self.u_ss if u is None else u
        d = np.zeros(0)
        x, _, ier, msg = fsolve(
            lambda z: self._rhs(z, u, d),
            guess,
            fprime=lambda z: self._jac(z, u, d),
            xtol=1e-13,
            full_output=True,
        )
        if ier != 1 or np.max(np.abs(self._rhs(x, u, d))) > 1e-6:
            raise IntegrationError(f"{self.name}: steady-state solve from {guess.tolist()} failed: {msg}")
        return x

    @cached_property
    def second_steady_state(self) -> np.ndarray:
        """The stable low-temperature steady state at u_ss, near (3.936 kmol/m3, 303.17 K)."""
        return self._solve_steady_state(np.array([3.9, 303.0]))

    # ------------------------------------------------------------------ deviation form and Lyapunov
    def to_deviation(self, x: Any, u: Any = None) -> Any:
        """Deviation variables x − x_ss (and u − u_ss when u is given), broadcasting over leading dims."""
        dx = np.asarray(x, dtype=float) - self.x_ss
        if u is None:
            return dx
        return dx, np.asarray(u, dtype=float) - self.u_ss

    def from_deviation(self, dx: Any, du: Any = None) -> Any:
        """Absolute variables x_ss + dx (and u_ss + du when du is given)."""
        x = np.asarray(dx, dtype=float) + self.x_ss
        if du is None:
            return x
        return x, np.asarray(du, dtype=float) + self.u_ss

    def lyapunov(self, x: Any) -> np.ndarray:
        """V(x) = (x − x_ss)ᵀ P (x − x_ss) for absolute states x (..., 2)."""
        dx = self.to_deviation(x)
        if dx.shape[-1:] != (2,):
            raise ShapeError(f"{self.name}: lyapunov expects states with last dimension 2, got {dx.shape}")
        return np.einsum("...i,ij,...j->...", dx, self.P, dx)

    def in_stability_region(self, x: Any) -> np.ndarray:
        """True where V(x) < rho_stability (the closed-loop stability region of the papers)."""
        return self.lyapunov(x) < self.rho_stability

    def sample_stability_region(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """n absolute states drawn uniformly from {V < rho} by rejection on the ellipse's bounding box."""
        if int(n) != n or n < 0:
            raise InvalidValueError(f"{self.name}: n must be a non-negative integer, got {n!r}")
        rng = np.random.default_rng(rng)
        half = np.sqrt(self.rho_stability * np.diag(np.linalg.inv(self.P)))
        out = np.empty((0, 2))
        while len(out) < n:
            dx = rng.uniform(-half, half, size=(max(2 * (int(n) - len(out)), 16), 2))
            keep = np.einsum("bi,ij,bj->b", dx, self.P, dx) < self.rho_stability
            out = np.concatenate([out, dx[keep]])
        return self.x_ss + out[: int(n)]

    # ------------------------------------------------------------------ batched simulation
    def simulate_batch(self, X0: Any, U: Any, dt: Any = None) -> np.ndarray:
        """Trajectories (B, T+1, 2) from X0 (B, 2) under U (B, T, 2) or shared U (T, 2).

        Vectorised RK4 over the batch. Each row takes 10·2^k substeps per sampling period, the fewest that
        keep h·|λ_max(J)| ≤ `batch_lambda_h` at the start of the period, so hot, stiff states get finer
        steps and the rest stay cheap. Matches `step` to better than 1e-6 relative.
        """
        dt = self.check_dt(dt)
        X0 = np.asarray(X0, dtype=float)
        U = np.asarray(U, dtype=float)
        if X0.ndim != 2 or X0.shape[1] != 2:
            raise ShapeError(f"{self.name}: X0 must have shape (B, 2), got {X0.shape}")
        if U.ndim == 2:
            U = np.broadcast_to(U, (X0.shape[0],) + U.shape)
        if U.ndim != 3 or U.shape[0] != X0.shape[0] or U.shape[2] != 2:
            raise ShapeError(
                f"{self.name}: U must have shape (B={X0.shape[0]}, T, 2) or (T, 2), got {U.shape}"
            )
        for name, arr in (("X0", X0), ("U", U)):
            if not np.all(np.isfinite(arr)):
                raise InvalidValueError(f"{self.name}: {name} contains non-finite values")
        self._check_batch_states(X0, "initial state")
        slack = 1e-9 * (self.u_ub - self.u_lb)
        bad = np.any((U < self.u_lb - slack) | (U > self.u_ub + slack), axis=-1)
        if np.any(bad):
            b, t = np.argwhere(bad)[0]
            raise InvalidValueError(
                f"{self.name}: input U[{b}, {t}] = {U[b, t].tolist()} is outside bounds "
                f"[{self.u_lb.tolist()}, {self.u_ub.tolist()}]"
            )
        U = np.clip(U, self.u_lb, self.u_ub)
        B, T = U.shape[:2]
        X = np.empty((B, T + 1, 2))
        X[:, 0] = X0
        for t in range(T):
            with np.errstate(over="ignore", invalid="ignore"):
                X[:, t + 1] = self._rk4_batch(X[:, t], U[:, t], dt)
            self._check_batch_states(X[:, t + 1], f"state after step {t}")
        return X

    def _check_batch_states(self, X: np.ndarray, what: str) -> None:
        bad = ~np.all(np.isfinite(X) & (X >= self.x_lb) & (X <= self.x_ub), axis=-1)
        if np.any(bad):
            b = int(np.argmax(bad))
            raise InvalidValueError(
                f"{self.name}: {what} of trajectory {b} = {X[b].tolist()} is outside the valid region "
                f"[{self.x_lb.tolist()}, {self.x_ub.tolist()}]"
            )

    def _rhs_batch(self, X: np.ndarray, U: np.ndarray) -> np.ndarray:
        r = self._rate(X[:, 0], X[:, 1])
        a = self.F / self.V
        out = np.empty_like(X)
        out[:, 0] = a * (U[:, 0] - X[:, 0]) - r
        out[:, 1] = (
            a * (self.T0 - X[:, 1])
            - self.dH / (self.rho * self.Cp) * r
            + U[:, 1] / (self.rho * self.Cp * self.V)
        )
        return out

    def _rk4_batch(self, X: np.ndarray, U: np.ndarray, dt: float) -> np.ndarray:
        """One sampling period for every row; rows are grouped by the substeps their stiffness needs."""
        lam = np.max(np.abs(np.linalg.eigvals(self._jac_batch(X))), axis=-1) if len(X) else np.zeros(0)
        need = np.maximum(1.0, np.ceil(dt * lam / (self.batch_lambda_h * self.rk4_substeps)))
        factor = 2 ** np.ceil(np.log2(need)).astype(int)  # substeps = rk4_substeps * power of two
        out = np.empty_like(X)
        for f in np.unique(factor):
            rows = factor == f
            out[rows] = self._rk4(X[rows], U[rows], dt, self.rk4_substeps * int(f))
        return out

    def _rk4(self, X: np.ndarray, U: np.ndarray, dt: float, n: int) -> np.ndarray:
        h = dt / n
        for _ in range(n):
            k1 = self._rhs_batch(X, U)
            k2 = self._rhs_batch(X + h / 2 * k1, U)
            k3 = self._rhs_batch(X + h / 2 * k2, U)
            k4 = self._rhs_batch(X + h * k3, U)
            X = X + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return X
