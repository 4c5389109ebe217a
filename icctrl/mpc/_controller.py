"""`Controller`: an MPC problem compiled once for one solver, solved every step with a warm start, and a safe
action whenever a solve fails."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np

from icctrl.errors import InvalidValueError, ShapeError
from icctrl.mpc._problem import MPCProblem
from icctrl.mpc._solvers import SolveResult, make_solver

SUCCESS = "success"


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
        self.backend = make_solver(problem, solver, **solver_options)
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
        self._pred: np.ndarray | None = None  # the state the plan predicts for the next step
        self._x_ref = None
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

    def prepare(self) -> None:
        """Preparation phase of a real-time iteration, run between steps before the next state is known:
        linearise around the shifted plan and the state it predicts. No-op for other solvers or without a plan."""
        if not hasattr(self.backend, "prepare") or self._v is None or self._pred is None:
            return
        pb = self.problem
        self.backend.prepare(pb.shift(self._v), pb.parameters(self._pred, self._u_last, self._x_ref, self._d))

    def _initial_guess(self, p: np.ndarray) -> np.ndarray:
        if self.warm_start and self._v is not None:
            return self.problem.shift(self._v)
        return self.problem.cold_start(p)

    def step(self, x, *, u_prev=None, x_ref=None) -> tuple[np.ndarray, dict]:
        """Solve for the current state; returns the input to apply and what happened."""
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
        t0 = time.perf_counter()
        try:
            res = self.backend.solve(p, self._initial_guess(p))
        except Exception as exc:  # a solver back-end must never take the control loop down with it
            res = SolveResult(None, False, f"solver_error: {type(exc).__name__}: {exc}".splitlines()[0], 0, np.nan,
                              time.perf_counter() - t0)
        self.stats["steps"] += 1
        info = {"status": SUCCESS, "success": True, "solver_status": res.status, "solve_time": res.solve_time,
                "iterations": res.iterations, "objective": res.objective, "solver": self.solver_name,
                "certified_convex": self.certificate.convex}
        if res.prepare_time is not None:  # real-time iterations: both phases, solve_time is their sum
            info.update(prepare_time=res.prepare_time, feedback_time=res.feedback_time, model_gap=res.model_gap)
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
            self._pred = info["prediction"][0] if pb.predictor.kind == "state" else x
        else:
            self.stats["failures"] += 1
            u = self._fallback(info, u_prev)
        self._u_last, self._x_last, self._x_ref = u, x, x_ref
        info["disturbance"] = self._d.copy()
        return u.copy(), info

    def _fallback(self, info: dict, u_prev) -> np.ndarray:
        pb = self.problem
        info["success"] = False
        self._v = self._pred = None
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
