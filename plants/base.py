"""The `Plant` interface: physics with names, units, bounds, a checked integrator and a CasADi twin."""

from __future__ import annotations

import abc
import threading
from typing import Any

import numpy as np

from icctrl.errors import IntegrationError, InvalidValueError, ShapeError

__all__ = ["Plant"]

# Relative slack (of the bound range) accepted on input bounds, so that a solver's 1e-12 overshoot passes.
U_BOUND_TOL = 1e-9
# LSODA steps allowed per sampling period: far above what any plant here needs (CSTR periods anywhere in its
# valid region take at most about 300), so only a runaway ends it, and then as an IntegrationError.
LSODA_MAX_STEPS = 100_000
# LSODA's failure codes, as scipy's `ode.get_return_code` documents them.
LSODA_FAILURES = {
    -1: "excess work done (more than LSODA_MAX_STEPS steps)",
    -2: "excess accuracy requested (tolerances too small)",
    -3: "illegal input detected (also what a state running away within the period gives)",
    -4: "repeated error test failures",
    -5: "repeated convergence failures (perhaps a bad Jacobian or tolerances)",
    -6: "error weight became zero",
    -7: "internal workspace insufficient",
}

_LSODA = threading.local()  # per thread: (rtol, atol, has_jac) -> one reusable scipy `ode` LSODA instance


def _lsoda_rhs(t: float, y: np.ndarray, plant: Plant, u: np.ndarray, d: np.ndarray) -> np.ndarray:
    return plant._rhs(y, u, d)


def _lsoda_jac(t: float, y: np.ndarray, plant: Plant, u: np.ndarray, d: np.ndarray) -> np.ndarray:
    return plant._jac(y, u, d)


def _lsoda(rtol: Any, atol: Any, has_jac: bool) -> Any:
    """A scipy `ode` LSODA instance for these settings (scalar or per-state tolerances), built once per thread.
    The plant comes in as a parameter of each call and every call starts afresh, so nothing of a plant (a
    drifted k0) is cached."""
    from scipy.integrate import ode

    cache = _LSODA.__dict__.setdefault("solvers", {})
    key = tuple(v if isinstance(v, float) else tuple(np.ravel(v).tolist()) for v in (rtol, atol)) + (has_jac,)
    if key not in cache:
        solver = ode(_lsoda_rhs, _lsoda_jac if has_jac else None)
        cache[key] = solver.set_integrator("lsoda", rtol=rtol, atol=atol, nsteps=LSODA_MAX_STEPS)
    return cache[key]


class Plant(abc.ABC):
    """A dynamical system in absolute physical units; subclasses fill the attributes and `_rhs`.

    Continuous-time plants implement `_rhs` (numpy) and `_casadi_rhs_expr` (CasADi, same equations);
    `step` integrates `_rhs` at `rtol`, `atol` with `ivp_method`: "LSODA" through one reused scipy `ode`
    LSODA instance (the LSODA code `solve_ivp` drives, without its per-call Python machinery), any other
    method through `solve_ivp`; `casadi_step` is a fixed-step RK4 of the CasADi twin for NMPC. Discrete-time
    plants override `_advance` and `casadi_step` and leave `rhs` raising NotImplementedError.
    """

    name: str
    state_names: tuple[str, ...]
    state_units: tuple[str, ...]
    input_names: tuple[str, ...]
    input_units: tuple[str, ...]
    disturbance_names: tuple[str, ...] = ()
    disturbance_units: tuple[str, ...] = ()
    dt: float
    time_unit: str
    x_ss: np.ndarray
    u_ss: np.ndarray
    u_lb: np.ndarray
    u_ub: np.ndarray
    x_lb: np.ndarray
    x_ub: np.ndarray
    d_nom: np.ndarray = np.zeros(0)  # disturbance used when d is None
    d_lb: np.ndarray = np.zeros(0)
    d_ub: np.ndarray = np.zeros(0)
    ivp_method: str = "LSODA"
    rtol: float = 1e-8
    atol: float = 1e-10
    rk4_substeps: int = 10

    # ------------------------------------------------------------------ sizes
    @property
    def nx(self) -> int:
        """Number of states."""
        return len(self.state_names)

    @property
    def nu(self) -> int:
        """Number of manipulated inputs."""
        return len(self.input_names)

    @property
    def nd(self) -> int:
        """Number of measured disturbances (0 when the plant has none)."""
        return len(self.disturbance_names)

    # ------------------------------------------------------------------ physics to implement
    def _rhs(self, x: np.ndarray, u: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Unchecked continuous-time dx/dt; the integrator calls this."""
        raise NotImplementedError(f"{type(self).__name__} is discrete-time: it has no continuous rhs")

    def _casadi_rhs_expr(self, x: Any, u: Any, d: Any) -> Any:
        """The same dx/dt as a CasADi expression of symbols x, u, d."""
        raise NotImplementedError(f"{type(self).__name__} is discrete-time: it has no continuous rhs")

    def _jac(self, x: np.ndarray, u: np.ndarray, d: np.ndarray) -> np.ndarray | None:
        """Analytic d(rhs)/dx for the stiff integrator; plants without one keep this None and it differences."""
        return None

    def _has_jac(self) -> bool:
        """Whether `_jac` is the plant's own (overridden on the class or set on the instance)."""
        return type(self)._jac is not Plant._jac or "_jac" in vars(self)

    # ------------------------------------------------------------------ validation
    def _vector(self, v: Any, n: int, what: str) -> np.ndarray:
        """Convert to a finite float vector of length n, else raise naming the value."""
        try:
            arr = np.asarray(v, dtype=float)
        except (TypeError, ValueError) as exc:
            raise InvalidValueError(f"{self.name}: {what} must be numeric, got {v!r}") from exc
        if arr.shape != (n,):
            raise ShapeError(f"{self.name}: {what} must have shape ({n},), got shape {arr.shape}: {v!r}")
        if not np.isfinite(arr).all():
            raise InvalidValueError(f"{self.name}: {what} must be finite, got {arr.tolist()}")
        return arr

    def check_state(self, x: Any) -> np.ndarray:
        """Validate one state: shape (nx,), finite, inside the region where the model is valid."""
        x = self._vector(x, self.nx, "state x")
        bad = (x < self.x_lb) | (x > self.x_ub)
        if bad.any():
            i = int(np.argmax(bad))
            raise InvalidValueError(
                f"{self.name}: state {self.state_names[i]} = {float(x[i])!r} {self.state_units[i]} "
                f"is outside the "
                f"valid region [{self.x_lb[i]}, {self.x_ub[i]}]"
            )
        return x

    def check_input(self, u: Any) -> np.ndarray:
        """Validate one input: shape (nu,), finite, within bounds up to a tiny tolerance (then clipped)."""
        u = self._vector(u, self.nu, "input u")
        slack = U_BOUND_TOL * (self.u_ub - self.u_lb)
        bad = (u < self.u_lb - slack) | (u > self.u_ub + slack)
        if bad.any():
            i = int(np.argmax(bad))
            raise InvalidValueError(
                f"{self.name}: input {self.input_names[i]} = {float(u[i])!r} {self.input_units[i]} "
                f"is outside its "
                f"bounds [{self.u_lb[i]}, {self.u_ub[i]}]"
            )
        return np.minimum(np.maximum(u, self.u_lb), self.u_ub)  # np.clip, at a third of its cost

    def check_disturbance(self, d: Any) -> np.ndarray:
        """Validate one disturbance vector; None means the nominal `d_nom`."""
        if d is None:
            return np.array(self.d_nom, dtype=float)
        d = self._vector(d, self.nd, "disturbance d")
        if self.nd:
            bad = (d < self.d_lb) | (d > self.d_ub)
            if np.any(bad):
                i = int(np.argmax(bad))
                raise InvalidValueError(
                    f"{self.name}: disturbance {self.disturbance_names[i]} = {float(d[i])!r} "
                    f"{self.disturbance_units[i]} is outside [{self.d_lb[i]}, {self.d_ub[i]}]"
                )
        return d

    def check_dt(self, dt: Any) -> float:
        """Validate a sampling time; None means the plant's default `dt`."""
        if dt is None:
            return float(self.dt)
        try:
            val = float(dt)
        except (TypeError, ValueError) as exc:
            raise InvalidValueError(f"{self.name}: dt must be a number, got {dt!r}") from exc
        if not np.isfinite(val) or val <= 0:
            raise InvalidValueError(f"{self.name}: dt must be positive and finite, got {dt!r}")
        return val

    # ------------------------------------------------------------------ public numerics
    def rhs(self, x: Any, u: Any, d: Any = None) -> np.ndarray:
        """Continuous-time dx/dt in `time_unit`, for one validated state and input."""
        return self._rhs(self.check_state(x), self.check_input(u), self.check_disturbance(d))

    def step(self, x: Any, u: Any, dt: Any = None, d: Any = None) -> np.ndarray:
        """State after one sampling period with u (and d) held constant; validates everything first."""
        x = self.check_state(x)
        u = self.check_input(u)
        d = self.check_disturbance(d)
        dt = self.check_dt(dt)
        x_next = self._advance(x, u, dt, d)
        if not np.isfinite(x_next).all():
            raise IntegrationError(
                f"{self.name}: integration from x={x.tolist()} with u={u.tolist()} over dt={dt} "
                f"gave a non-finite state {x_next.tolist()}"
            )
        return x_next

    def _advance(self, x: np.ndarray, u: np.ndarray, dt: float, d: np.ndarray) -> np.ndarray:
        """Integrate `_rhs` over [0, dt] at the stated tolerances with `ivp_method`."""
        if self.ivp_method == "LSODA":
            return self._advance_lsoda(x, u, dt, d)
        return self._advance_solve_ivp(x, u, dt, d)

    def _advance_lsoda(self, x: np.ndarray, u: np.ndarray, dt: float, d: np.ndarray) -> np.ndarray:
        """LSODA (stiff/non-stiff switching, the analytic Jacobian when the plant has one) from a fresh start."""
        has_jac = self._has_jac()
        solver = _lsoda(self.rtol, self.atol, has_jac)
        solver.set_f_params(self, u, d)
        if has_jac:
            solver.set_jac_params(self, u, d)
        solver.set_initial_value(x, 0.0)
        with np.errstate(over="ignore", invalid="ignore"):
            x_next = solver.integrate(dt)
        if not solver.successful():
            code = solver.get_return_code()
            raise IntegrationError(
                f"{self.name}: LSODA failed from x={x.tolist()} with u={u.tolist()} over dt={dt}: "
                f"{LSODA_FAILURES.get(code, 'unexpected failure')} (return code {code})"
            )
        return x_next.copy()

    def _advance_solve_ivp(self, x: np.ndarray, u: np.ndarray, dt: float, d: np.ndarray) -> np.ndarray:
        """Integrate `_rhs` over [0, dt] with scipy `solve_ivp(method=ivp_method)`."""
        from scipy.integrate import solve_ivp

        jac = self._jac(x, u, d)
        kwargs: dict[str, Any] = {}
        if jac is not None and self.ivp_method in ("LSODA", "Radau", "BDF"):
            kwargs["jac"] = lambda t, y: self._jac(y, u, d)
        with np.errstate(over="ignore", invalid="ignore"):
            sol = solve_ivp(
                lambda t, y: self._rhs(y, u, d),
                (0.0, dt),
                x,
                method=self.ivp_method,
                rtol=self.rtol,
                atol=self.atol,
                t_eval=None,
                **kwargs,
            )
        if not sol.success:
            raise IntegrationError(
                f"{self.name}: {self.ivp_method} failed from x={x.tolist()} with u={u.tolist()} over "
                f"dt={dt}: {sol.message}"
            )
        return sol.y[:, -1].copy()

    def simulate(self, x0: Any, U: Any, dt: Any = None, D: Any = None) -> np.ndarray:
        """Trajectory (T+1, nx) from x0 under inputs U (T, nu) and disturbances D (T, nd) or None."""
        U = np.asarray(U, dtype=float)
        if U.ndim != 2 or U.shape[1] != self.nu:
            raise ShapeError(f"{self.name}: U must have shape (T, {self.nu}), got {U.shape}")
        if D is not None:
            D = np.asarray(D, dtype=float)
            if D.shape != (U.shape[0], self.nd):
                raise ShapeError(f"{self.name}: D must have shape ({U.shape[0]}, {self.nd}), got {D.shape}")
        dt = self.check_dt(dt)
        X = np.empty((U.shape[0] + 1, self.nx))
        X[0] = self.check_state(x0)
        for t in range(U.shape[0]):
            try:
                X[t + 1] = self.step(X[t], U[t], dt, None if D is None else D[t])
            except (InvalidValueError, IntegrationError) as exc:
                raise type(exc)(f"at step {t}: {exc}") from exc
        return X

    def disturbance(self, t: float, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """Disturbance at time t (in `time_unit`) drawn from the plant's seedable model; zeros if none."""
        return np.zeros(self.nd)

    # ------------------------------------------------------------------ CasADi twin
    def casadi_rhs(self) -> Any:
        """casadi.Function (x, u, d) -> dx/dt with the same equations as `rhs` (d has size nd, maybe 0)."""
        import casadi as ca

        x = ca.SX.sym("x", self.nx)
        u = ca.SX.sym("u", self.nu)
        d = ca.SX.sym("d", self.nd)
        return ca.Function(
            f"{self.name}_rhs", [x, u, d], [self._casadi_rhs_expr(x, u, d)], ["x", "u", "d"], ["dxdt"]
        )

    def casadi_step(self, dt: Any = None, substeps: int | None = None) -> Any:
        """casadi.Function (x, u, d) -> x_next: fixed-step RK4 with `substeps` (default `rk4_substeps`)."""
        import casadi as ca

        dt = self.check_dt(dt)
        n = self.rk4_substeps if substeps is None else int(substeps)
        if n < 1:
            raise InvalidValueError(f"{self.name}: substeps must be >= 1, got {substeps!r}")
        f = self.casadi_rhs()
        x = ca.SX.sym("x", self.nx)
        u = ca.SX.sym("u", self.nu)
        d = ca.SX.sym("d", self.nd)
        h = dt / n
        xk = x
        for _ in range(n):
            k1 = f(xk, u, d)
            k2 = f(xk + h / 2 * k1, u, d)
            k3 = f(xk + h / 2 * k2, u, d)
            k4 = f(xk + h * k3, u, d)
            xk = xk + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return ca.Function(f"{self.name}_step", [x, u, d], [xk], ["x", "u", "d"], ["x_next"])

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(nx={self.nx}, nu={self.nu}, nd={self.nd}, dt={self.dt} {self.time_unit})"
        )
