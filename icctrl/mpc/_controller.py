"""`Controller`: an MPC problem compiled once for one solver, solved every step with a warm start, and a safe
action whenever a solve fails."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np

from icctrl.errors import InvalidValueError, ShapeError
from icctrl.mpc._deadline import LateSolve, SolveThread
from icctrl.mpc._problem import MPCProblem
from icctrl.mpc._solvers import SolveResult, make_solver

SUCCESS = "success"
#: Seconds of a step's deadline kept for the work after the solve.
DEADLINE_MARGIN = 5e-4
#: Share of `time_limit` given to the solver's native limit (Ipopt max_wall_time, Clarabel/OSQP/SCS time limits).
NATIVE_SHARE = 0.8


class Controller:
    """`step(x) -> (u, info)` on the current state in physical units.

    Failure behaviour: when the solver fails, hits its iteration or time limit, or returns a non-finite or
    out-of-bounds iterate, the controller never applies that iterate. It applies the previous plan shifted by
    one step (status "fallback_shifted"); with no previous plan left it holds the last applied input clipped
    to the bounds, or the reference input on the first step (status "fallback_hold"). Counters in `stats`.

    `offset_free` (0 < β ≤ 1) adds an output-disturbance estimate d ← (1−β)d + β(x − f(x_prev, u_prev)) to the
    predictions of a one-period state model, the classic way to remove steady-state offset from model error.
    """

    def __init__(self, problem: MPCProblem, solver: str = "ipopt", *, warm_start: bool = True,
                 state_bounds: tuple | None = None, offset_free: float | None = None, **solver_options):
        self.problem, self.solver_name, self.warm_start = problem, str(solver).lower(), warm_start
        if offset_free is not None and not (0 < offset_free <= 1 and problem.period_fn is not None):
            raise InvalidValueError(f"offset_free must be in (0, 1] and needs a one-period state model, got "
                                    f"{offset_free!r} for {problem.predictor.label}")
        self.offset_free = offset_free
        self.time_limit = solver_options.get("time_limit")
        if self.time_limit:  # the solver's own limit stops it first; the step deadline is the backstop
            solver_options = {**solver_options, "time_limit": NATIVE_SHARE * self.time_limit}
        self.backend = make_solver(problem, solver, **solver_options)
        self._thread = SolveThread() if self.time_limit else None
        problem.certificate()  # composed once here, not inside the first step's time budget
        self.state_bounds = state_bounds
        self.stats: Counter = Counter()
        self.reset()

    @property
    def certificate(self):
        return self.problem.certificate()

    def reset(self) -> None:
        """Forget the previous plan and multipliers (start of an episode)."""
        self._plan: np.ndarray | None = None  # remaining planned inputs, physical units
        self._v: np.ndarray | None = None
        self._u_last: np.ndarray | None = None
        self._x_last: np.ndarray | None = None
        self._d = np.zeros(self.problem.nx)
        self.backend.reset()

    def _check_state(self, x, what: str = "state x") -> np.ndarray:
        arr = np.asarray(x, dtype=float)
        if arr.shape != (self.problem.nx,):
            raise ShapeError(f"{what} must have shape ({self.problem.nx},), got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise InvalidValueError(f"{what} contains non-finite values: {arr.tolist()}")
        if self.state_bounds is not None:
            lb, ub = self.state_bounds
            if np.any(arr < lb) or np.any(arr > ub):
                raise InvalidValueError(f"{what}={arr.tolist()} is outside the model's valid region "
                                        f"[{np.asarray(lb).tolist()}, {np.asarray(ub).tolist()}]")
        return arr

    def _check_input(self, u) -> np.ndarray:
        """A previous input may lie outside the bounds (manual operation), but not by more than their width."""
        pb = self.problem
        arr = np.asarray(u, dtype=float)
        if arr.shape != (pb.nu,) or not np.all(np.isfinite(arr)):
            raise InvalidValueError(f"previous input u_prev must be {pb.nu} finite numbers, got {u!r}")
        width = pb.u_ub - pb.u_lb
        if np.any(arr < pb.u_lb - width) or np.any(arr > pb.u_ub + width):
            raise InvalidValueError(f"previous input u_prev={arr.tolist()} is implausibly far outside the bounds "
                                    f"[{pb.u_lb.tolist()}, {pb.u_ub.tolist()}]")
        return arr

    def _initial_guess(self, p: np.ndarray) -> np.ndarray:
        if self.warm_start and self._v is not None:
            return self.problem.shift(self._v)
        return self.problem.cold_start(p)

    def step(self, x, *, u_prev=None, x_ref=None) -> tuple[np.ndarray, dict]:
        """Solve for the current state; returns the input to apply and what happened. With a `time_limit`, the
        call returns by that deadline (measured from its start), with the fallback action when the solve is late."""
        t_step = time.perf_counter()
        pb = self.problem
        x = self._check_state(x)
        u_prev = self._u_last if u_prev is None else self._check_input(u_prev)
        if x_ref is not None and self.state_bounds is not None:
            self._check_state(x_ref, "reference x_ref")
        if self.offset_free and self._x_last is not None and self._u_last is not None:
            miss = x - np.asarray(pb.period_fn(self._x_last, self._u_last)).reshape(-1)
            if np.all(np.isfinite(miss)):
                self._d = (1 - self.offset_free) * self._d + self.offset_free * miss
        p = pb.parameters(x, u_prev, x_ref, self._d)
        res = self._solve(p, self._initial_guess(p), t_step)
        self.stats["steps"] += 1
        info = {"status": SUCCESS, "success": True, "solver_status": res.status, "solve_time": res.solve_time,
                "iterations": res.iterations, "objective": res.objective, "solver": self.solver_name,
                "certified_convex": self.certificate.convex}
        usable = res.ok and res.v is not None and np.all(np.isfinite(res.v))
        if usable:
            U = pb.inputs(res.v[: pb.N * pb.nu])
            usable = bool(np.all(U >= pb.u_lb - 1e-6 * pb.u_half) and np.all(U <= pb.u_ub + 1e-6 * pb.u_half))
        if usable:
            U = np.clip(U, pb.u_lb, pb.u_ub)
            self._v, self._plan = res.v, U[1:]
            u = U[0]
            info["plan"] = U
            info["prediction"] = np.array(pb.predict_fn(res.v, p)[0])
        else:
            self.stats["failures"] += 1
            u = self._fallback(info, u_prev)
        self._u_last, self._x_last = u, x
        info["disturbance"] = self._d.copy()
        return u.copy(), info

    def _solve(self, p: np.ndarray, v0: np.ndarray, t_step: float) -> SolveResult:
        """The back-end's answer; an exception or a solve past the step deadline becomes a failed result."""
        t0 = time.perf_counter()
        try:
            if self._thread is None:
                return self.backend.solve(p, v0)
            # a margin for the work of `step` after the solve (checks, prediction, bookkeeping)
            remaining = self.time_limit - (t0 - t_step) - DEADLINE_MARGIN
            return self._thread.run(lambda: self.backend.solve(p, v0), remaining)
        except LateSolve as exc:
            return SolveResult(None, False, f"time_limit (step deadline: {exc})", 0, np.nan, time.perf_counter() - t0)
        except Exception as exc:  # a solver back-end must never take the control loop down with it
            return SolveResult(None, False, f"solver_error: {type(exc).__name__}: {exc}".splitlines()[0], 0, np.nan,
                               time.perf_counter() - t0)

    def fallback(self, reason: str, *, u_prev=None) -> tuple[np.ndarray, dict]:
        """The safe action of the failure path, for a loop that cannot call `step` (a missing or non-finite
        measurement): the previous plan shifted by one, else a hold; `info["solver_status"]` is `reason`."""
        u_prev = self._u_last if u_prev is None else self._check_input(u_prev)
        self.stats["steps"] += 1
        self.stats["failures"] += 1
        info = {"status": SUCCESS, "solver_status": str(reason), "solve_time": 0.0, "iterations": 0,
                "objective": float("nan"), "solver": self.solver_name, "certified_convex": self.certificate.convex}
        u = self._fallback(info, u_prev)
        self._u_last, self._x_last = u, None  # no model-error update across a step without a measurement
        info["disturbance"] = self._d.copy()
        return u.copy(), info

    def _fallback(self, info: dict, u_prev) -> np.ndarray:
        pb = self.problem
        info["success"] = False
        self._v = None
        self.backend.reset()
        if self._plan is not None and len(self._plan):
            u, self._plan = self._plan[0], self._plan[1:]
            info["status"] = "fallback_shifted"
        else:
            base = u_prev if u_prev is not None else pb.u_ref
            u = np.clip(base, pb.u_lb, pb.u_ub)
            info["status"] = "fallback_hold"
        self.stats[info["status"]] += 1
        info["plan"] = None
        return np.asarray(u, dtype=float)
