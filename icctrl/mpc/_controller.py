"""`Controller`: an MPC problem compiled once for one solver, solved every step with a warm start, a safe
action whenever a solve fails, and a flag when the model is asked about states it was not trained on."""

from __future__ import annotations

import time
import warnings
from collections import Counter

import numpy as np

from icctrl.errors import InvalidValueError, ShapeError
from icctrl.mpc._deadline import LateSolve, SolveThread
from icctrl.mpc._predictors import call_period
from icctrl.mpc._problem import MPCProblem
from icctrl.mpc._solvers import BOUNDED_SOLVERS, SolveResult, make_solver

SUCCESS = "success"
#: Seconds of a step's deadline kept for the work after the solve.
DEADLINE_MARGIN = 5e-4
#: Share of `time_limit` given to the solver's native limit (Ipopt max_wall_time, Clarabel/OSQP/SCS time limits).
NATIVE_SHARE = 0.8
EXTRAPOLATION_POLICIES = ("warn", "fallback", "ignore")
#: DAQP exit flags (daqp's api), the QP plugin of the condensed real-time iteration, which reports only the number.
DAQP_EXITS = {"2": "soft_optimal", "1": "optimal", "-1": "infeasible", "-2": "cycling", "-3": "unbounded",
              "-4": "iteration_limit", "-5": "nonconvex", "-6": "overdetermined_initial"}


def readable_status(backend, status: str) -> str:
    """A failed solve's status with a bare QP exit code spelt out ("1" → "daqp exit 1: setup failed …")."""
    qp = getattr(backend, "qp", None)
    if getattr(qp, "plugin", None) != "daqp" or str(status).strip() not in DAQP_EXITS:
        return status
    code = str(status).strip()
    stats = qp.call.stats()
    if code == "1" and int(stats.get("iter_count", 0) or 0) < 0:  # CasADi returns before solving, status left over
        return (f"daqp exit {code}: QP setup failed before solving (typically a Hessian that is not positive "
                f"definite); {stats.get('unified_return_status', 'unknown')}")
    return f"daqp exit {code}: {DAQP_EXITS[code]}"


class ExtrapolationWarning(UserWarning):
    """The current state or the planned trajectory left the region the model was trained in."""


class Controller:
    """`step(x) -> (u, info)` on the current state in physical units.

    Failure behaviour: when the solver fails, hits its iteration or time limit, or returns a non-finite or
    out-of-bounds iterate, the controller never applies that iterate. It applies the previous plan shifted by
    one step (status "fallback_shifted"); with no previous plan left it holds the last applied input clipped
    to the bounds, or the reference input on the first step (status "fallback_hold"). Counters in `stats`.

    `offset_free` (0 < β ≤ 1) adds an output-disturbance estimate b ← (1−β)b + β(x − f(x_prev, u_prev)) to the
    predictions of a one-period state model, the classic way to remove steady-state offset from model error.

    `region` (a `TrainingRegion`) is where the model was trained: `info["extrapolating"]` is True when the
    current state, a predicted state or a planned input leaves it; `on_extrapolation` then "warn"s (once per
    episode, `ExtrapolationWarning`), applies the "fallback" action of a failed solve, or "ignore"s it.

    With a `time_limit`, `step` returns by its deadline. The CasADi and real-time-iteration back-ends stop
    themselves before an iteration or phase that would end past it and run in the caller's thread; the cvxpy
    back-ends run in a solve thread that the step stops waiting for at the deadline. `solve_thread=True` uses
    that thread for any back-end (a backstop against one long iteration, at the price of a second thread
    competing for a core), False never.
    """

    def __init__(self, problem: MPCProblem, solver: str = "ipopt", *, warm_start: bool = True,
                 state_bounds: tuple | None = None, offset_free: float | None = None, region=None,
                 on_extrapolation: str = "warn", solve_thread: bool | None = None, **solver_options):
        self.problem, self.solver_name, self.warm_start = problem, str(solver).lower(), warm_start
        if offset_free is not None and not (0 < offset_free <= 1 and problem.period_fn is not None):
            raise InvalidValueError(f"offset_free must be in (0, 1] and needs a one-period state model, got "
                                    f"{offset_free!r} for {problem.predictor.label}")
        if on_extrapolation not in EXTRAPOLATION_POLICIES:
            raise InvalidValueError(f"on_extrapolation must be one of {EXTRAPOLATION_POLICIES}, got "
                                    f"{on_extrapolation!r}")
        self.offset_free, self.region, self.on_extrapolation = offset_free, region, on_extrapolation
        if solve_thread not in (None, True, False):
            raise InvalidValueError(f"solve_thread must be None, True or False, got {solve_thread!r}")
        self.time_limit = solver_options.get("time_limit")
        threaded = bool(self.time_limit) and (solve_thread if solve_thread is not None else
                                              self.solver_name not in BOUNDED_SOLVERS)
        if threaded:  # the solver's own limit stops it first; the step deadline is the backstop
            solver_options = {**solver_options, "time_limit": NATIVE_SHARE * self.time_limit}
        self.backend = make_solver(problem, solver, **solver_options)
        self._thread = SolveThread() if threaded else None
        problem.certificate()  # composed once here, not inside the first step's time budget
        if self.time_limit and not threaded:
            self._warm_up()
        self.state_bounds = state_bounds
        if problem.period_fn is not None:  # the offset-free model call, through buffers (no DM conversions)
            from icctrl.mpc._derivatives import Buffered

            self._period = Buffered(problem.period_fn)
        self._target = None  # steady-state target solver, compiled on the first reference change
        self.stats: Counter = Counter()
        self.reset()

    @property
    def certificate(self):
        return self.problem.certificate()

    @property
    def takes_reference(self) -> bool:
        """Whether `step(x_ref=...)` changes the problem: a state predictor tracks it, a cost model does not."""
        return self.problem.predictor.kind == "state"

    def reset(self) -> None:
        """Forget the previous plan and multipliers (start of an episode)."""
        self._plan: np.ndarray | None = None  # remaining planned inputs, physical units
        self._v: np.ndarray | None = None
        self._u_last: np.ndarray | None = None
        self._x_last: np.ndarray | None = None
        self._d_last: np.ndarray | None = None
        self._bias = np.zeros(self.problem.nx)
        self._warned = False
        self._pred: np.ndarray | None = None  # the state the plan predicts for the next step
        self._step_args: tuple = (None, None, None)  # (x_ref, d, u_ref) of the last step, for the next preparation
        self._reset_backend()

    def _warm_up(self) -> None:
        """One solve at the reference, so that a back-end that stops itself before its deadline knows how long its
        iterations take before the first step (and the first call's one-time costs are paid here)."""
        pb = self.problem
        p = pb.parameters(pb.x_ref)
        self.backend.solve(p, pb.cold_start(p))
        self.backend.reset()

    def _reset_backend(self) -> None:
        """Forget the back-end's warm start, after any late solve still running on it has finished."""
        if self._thread is None:
            self.backend.reset()
        else:
            self._thread.when_idle(self.backend.reset)

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
        if self._thread is not None and self._thread.busy:  # a late solve still owns the back-end
            return
        pb = self.problem
        x_ref, d, u_ref = self._step_args
        p = pb.parameters(self._pred, self._u_last, x_ref, d, u_ref=u_ref, bias=self._bias)
        self.backend.prepare(pb.shift(self._v), p)

    def _check_reference(self, x_ref):
        if x_ref is None:
            return None
        if not self.takes_reference:
            raise InvalidValueError(f"x_ref={np.asarray(x_ref).tolist()} given to a controller on "
                                    f"{self.problem.predictor.label}: its learned cost has no reference input, so "
                                    f"the reference would be ignored; use a state model to track setpoints")
        arr = np.asarray(x_ref, dtype=float)
        rows = arr.reshape(-1, self.problem.nx) if arr.ndim == 2 else arr[None, :]
        for row in rows:
            self._check_state(row, "reference x_ref")
        return arr

    def _check_disturbance(self, d):
        pb = self.problem
        if d is None:
            return None
        if pb.nd == 0:
            raise InvalidValueError(f"d={np.asarray(d).tolist()} given, but {pb.predictor.label} takes no measured "
                                    f"disturbances; it would be ignored")
        return np.asarray(d, dtype=float)

    def _initial_guess(self, p: np.ndarray) -> np.ndarray:
        if self.warm_start and self._v is not None:
            return self.problem.shift(self._v)
        return self.problem.cold_start(p)

    def extrapolating(self, x, prediction=None, plan=None) -> bool:
        """Whether the state, the predicted states or the planned inputs leave the model's training region."""
        if self.region is None:
            return False
        states = np.asarray(x, float)[None, :]
        if prediction is not None and self.problem.predictor.kind == "state":  # one neighbour query for all
            states = np.vstack([states, np.asarray(prediction, float).reshape(-1, self.problem.nx)])
        return not self.region.covers(states, plan)

    def step(self, x, *, x_ref=None, d=None, u_prev=None) -> tuple[np.ndarray, dict]:
        """Solve for the current state; returns the input to apply and what happened.

        x_ref (nx,) or (N, nx) and d (nd,) or (N, nd) are held over the horizon or given per step. With a
        `time_limit`, the call returns by that deadline (measured from its start), with the fallback action when
        the solve is late."""
        t_step = time.perf_counter()
        pb = self.problem
        x = self._check_state(x)
        u_prev = self._u_last if u_prev is None else self._check_input(u_prev)
        x_ref = self._check_reference(x_ref)
        d = self._check_disturbance(d)
        if self.offset_free and self._x_last is not None and self._u_last is not None:
            miss = x - self._model_step(self._x_last, self._u_last, self._d_last)
            if np.all(np.isfinite(miss)):
                self._bias = (1 - self.offset_free) * self._bias + self.offset_free * miss
        u_ref = None if x_ref is None else self.target_input(x_ref, d)
        p = pb.parameters(x, u_prev, x_ref, d, u_ref=u_ref, bias=self._bias)
        res = self._solve(p, t_step)
        self.stats["steps"] += 1
        info = {"status": SUCCESS, "success": True, "solver_status": res.status, "solve_time": res.solve_time,
                "iterations": res.iterations, "objective": res.objective, "solver": self.solver_name,
                "certified_convex": self.certificate.convex, "extrapolating": False,
                "constraint_violation": 0.0}
        if res.prepare_time is not None:  # real-time iterations: both phases, solve_time is their sum
            info.update(prepare_time=res.prepare_time, feedback_time=res.feedback_time, model_gap=res.model_gap)
        usable = res.ok and res.v is not None and np.all(np.isfinite(res.v))
        if usable:
            U = pb.inputs(res.v[: pb.N * pb.nu])
            usable = bool(np.all(U >= pb.u_lb - 1e-6 * pb.u_half) and np.all(U <= pb.u_ub + 1e-6 * pb.u_half))
        if usable:
            U = np.clip(U, pb.u_lb, pb.u_ub)
            prediction = pb.predictions(res.v, p)
            slacks = pb.slacks(res.v)
            info["slacks"] = slacks
            info["constraint_violation"] = max([float(s.max()) for n, s in slacks.items() if n != "lyapunov"]
                                               + [0.0])
            info["plan"], info["prediction"] = U, prediction
            info["extrapolating"] = self.extrapolating(x, prediction, U)
            if info["extrapolating"] and self.on_extrapolation == "fallback":
                info["fallback_reason"] = "extrapolating"
                u = self._fallback(info, u_prev)
            else:
                self._v, self._plan = res.v, U[1:]
                u = U[0]
                self._pred = prediction[0] if pb.predictor.kind == "state" else x
        else:
            self.stats["failures"] += 1
            info["solver_status"] = readable_status(self.backend, res.status)
            info["extrapolating"] = self.extrapolating(x)
            info["constraint_violation"] = float("nan")  # no plan: nothing to report
            u = self._fallback(info, u_prev)
        if info["extrapolating"]:
            self.stats["extrapolating"] += 1
            if self.on_extrapolation == "warn" and not self._warned:
                self._warned = True
                warnings.warn(f"{pb.predictor.label}: state {x.tolist()} or its plan leaves the region the model "
                              f"was trained in; predictions there are extrapolations", ExtrapolationWarning,
                              stacklevel=2)
        self._u_last, self._x_last, self._d_last = u, x, d
        info["disturbance"] = self._bias.copy()
        self._step_args = (x_ref, d, u_ref)
        return u.copy(), info

    def _model_step(self, x, u, d) -> np.ndarray:
        """f(x, u, d) of the one-period model (without the bias), reusing the back-end's consistency check
        when it evaluated the same point."""
        pb = self.problem
        d0 = pb.block(pb.parameters(x, d=d), "d")[0] if pb.nd else np.zeros(0)
        seen = getattr(self.backend, "model_step", None)
        if seen is not None and np.array_equal(seen[0], x) and np.array_equal(seen[1], u) and \
                np.array_equal(seen[2], d0):
            return seen[3]
        args = {"i0": x, "i1": u, **({"i2": d0} if "i2" in self._period.args else {})}
        return self._period(**args)["o0"].copy()

    def _solve(self, p: np.ndarray, t_step: float) -> SolveResult:
        """The back-end's answer from the warm start; an exception or a solve past the step deadline becomes a failed
        result (the warm start is not built for a solve that cannot start)."""
        t0 = time.perf_counter()
        try:
            if not self.time_limit:
                return self.backend.solve(p, self._initial_guess(p))
            deadline = t_step + self.time_limit - DEADLINE_MARGIN  # a margin for the work of `step` after the solve
            if self._thread is not None:
                v0 = self._initial_guess(p)
                return self._thread.run(lambda: self.backend.solve(p, v0), deadline - t0)
            if t0 >= deadline:
                raise LateSolve("no time left for a solve before the step deadline")
            return self.backend.solve(p, self._initial_guess(p), deadline=deadline)  # it stops itself by then
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
        info.update(extrapolating=False, constraint_violation=float("nan"))
        self._u_last, self._x_last, self._d_last = u, None, None  # no model-error update without a measurement
        info["disturbance"] = self._bias.copy()
        return u.copy(), info

    def target_input(self, x_ref, d=None) -> np.ndarray | None:
        """Steady-state input of a new reference: u with f(x_ref, u) + bias = x_ref in the model (least squares
        within the input bounds), so the input cost does not pull the plant off the setpoint."""
        pb = self.problem
        if pb.period_fn is None or pb.predictor.kind != "state":
            return None
        if self._target is None:
            self._target = _target_solver(pb)
        X_ref = np.atleast_2d(np.asarray(x_ref, dtype=float))
        D = pb.block(pb.parameters(X_ref[0], d=d), "d")
        rows, cache = [], {}
        for k in range(pb.N):
            xr, dk = X_ref[min(k, len(X_ref) - 1)], D[k]
            key = (*xr.round(12), *dk.round(12), *self._bias.round(12))
            if key not in cache:
                sol = self._target(x0=pb.normalised(pb.u_ref[None, :]), p=np.concatenate([xr, self._bias, dk]),
                                   lbx=-1.0, ubx=1.0)
                cache[key] = np.clip(pb.u_mid + pb.u_half * np.array(sol["x"]).reshape(-1), pb.u_lb, pb.u_ub)
            rows.append(cache[key])
        return np.array(rows)

    def _fallback(self, info: dict, u_prev) -> np.ndarray:
        pb = self.problem
        info["success"] = False
        self._v = self._pred = None
        self._reset_backend()
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


def _target_solver(problem: MPCProblem):
    """min ‖(f(x_r, u, d) + bias − x_r)/x_scale‖² + 1e-6‖v‖² over normalised inputs v ∈ [−1, 1], compiled once."""
    import casadi as ca

    pb = problem
    v = ca.MX.sym("v", pb.nu)
    xr, bias, d = ca.MX.sym("xr", pb.nx), ca.MX.sym("bias", pb.nx), ca.MX.sym("d", pb.nd)
    u = ca.DM(pb.u_mid) + v * ca.DM(pb.u_half)
    miss = (call_period(pb.period_fn, xr, u, d) + bias - xr) / ca.DM(pb.x_scale)
    nlp = {"x": v, "p": ca.vertcat(xr, bias, d), "f": ca.sumsqr(miss) + 1e-6 * ca.sumsqr(v)}
    return ca.nlpsol("target", "ipopt", nlp, {"ipopt.print_level": 0, "ipopt.sb": "yes", "print_time": False,
                                              "ipopt.tol": 1e-10, "ipopt.hessian_approximation": "limited-memory"})
