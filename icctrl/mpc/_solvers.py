"""Solver back-ends for an assembled MPCProblem, each compiled once and re-solved with new parameters.

- "ipopt": CasADi nlpsol, interior point with the exact Hessian from CasADi AD (any problem), warm-started from
  the shifted plan and the previous multipliers (`warm_start_init_point`).
- "sqp": CasADi sqpmethod with the qrqp QP solver on the exact Hessian, convexified by eigenvalue reflection.
  On a certified convex problem a stalled line search is declared once its steps fall below SQP_CONVEX_MIN_STEP
  (CasADi's default waits for 1e-10, about 14 more iterations of shrinking steps that end in the same failure).
  sqpmethod has no wall-time option: with a `time_limit`, an iteration callback (`WallClock`) stops it before an
  iteration that would end past the deadline ("User_Requested_Stop"); Ipopt gets the same callback besides its own
  `max_wall_time`.
- "rti" / "sqp-gn": real-time iterations on Gauss–Newton QPs, one per step or iterated to a tolerance
  (`icctrl.mpc._rti`); the step is split into a preparation and a feedback phase.
- "clarabel" / "osqp" / "ecos" / "scs": cvxpy epigraph form, only for problems the core certifies convex and
  whose model has an epigraph form; DPP-compiled once, each solve fills parameter values.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import casadi as ca
import numpy as np

from icctrl.errors import NotConvexError, UnknownNameError
from icctrl.mpc._deadline import Duration, keep_keys
from icctrl.mpc._hessian import structured_hessian
from icctrl.mpc._predictors import FirstPrinciples, HorizonModel

CASADI_SOLVERS = ("ipopt", "sqp")
RTI_SOLVERS = ("rti", "sqp-gn")
CVXPY_SOLVERS = ("clarabel", "osqp", "ecos", "scs")
SOLVERS = RTI_SOLVERS + CASADI_SOLVERS + CVXPY_SOLVERS
#: Back-ends that stop themselves before a deadline passed to `solve`: with a `time_limit`, a controller runs them in
#: its own thread (no second thread competing for a core); the others run in a solve thread the step stops waiting for.
BOUNDED_SOLVERS = RTI_SOLVERS + CASADI_SOLVERS
#: SQP on a certified convex problem: the step (inf-norm, normalised inputs in [−1, 1]) below which the line search
#: has stalled, 0.005 % of an input's range; chosen because it leaves the closed loop unchanged (docs/reliability.md).
SQP_CONVEX_MIN_STEP = 1e-4
#: SQP on a certified convex problem: active-set iterations allowed to each qrqp subproblem (qrqp's default is
#: 1000). Near a stall the subproblems take hundreds of iterations, ~23 ms each against ~1 ms, for steps that end
#: in the same stall; the cap cuts the worst step from 180–380 ms to 70 ms at a closed-loop cost within 0.05 %
#: (docs/reliability.md).
SQP_CONVEX_QP_MAX_ITER = 50


#: nlpsol options of every CasADi back-end. The multipliers of the parameters (the measured state, references) are
#: never used, and nlpsol computes them after each solve by default: a reverse pass through the model, 0.2-0.35 ms per
#: solve of the convex controller, after the deadline's last check (`examples/after_stop.py`).
NLPSOL_COMMON = {"calc_lam_p": False}
#: Ipopt's warm-start settings: start the barrier small and keep the shifted plan and multipliers where they are
#: (Ipopt's defaults push them 1e-3 into the interior): fewer iterations per step at the same closed-loop cost on the
#: CSTR first-principles NMPC (docs/reliability.md).
IPOPT_WARM = {"ipopt.mu_init": 1e-5, "ipopt.warm_start_bound_push": 1e-8, "ipopt.warm_start_mult_bound_push": 1e-8,
              "ipopt.warm_start_slack_bound_push": 1e-8, "ipopt.warm_start_bound_frac": 1e-8,
              "ipopt.warm_start_slack_bound_frac": 1e-8}


class WallClock(ca.Callback):
    """An nlpsol iteration callback that stops the solver before an iteration that would end past `deadline`
    (time.perf_counter): the native time limit of sqpmethod, which has none, and Ipopt's predictive one (its
    `max_wall_time` only stops after the deadline). `first` is the expected time from a solve's start to its first
    callback (set-up and first evaluations), `iteration` that between two callbacks (`Duration`s). Call
    `start(deadline)` before each solve."""

    def __init__(self, nx: int, ng: int, npar: int):
        ca.Callback.__init__(self)
        self._sizes = {"x": nx, "lam_x": nx, "g": ng, "lam_g": ng, "p": npar, "lam_p": npar}
        self.deadline = float("inf")
        self.first, self.iteration = Duration(), Duration()
        self._mark = self._start = None
        self.construct("wall_clock", {})

    def start(self, deadline: float) -> None:
        self.deadline, self._mark, self._start = deadline, None, time.perf_counter()
        self.first.decay()
        self.iteration.decay()

    def get_n_in(self):
        return ca.nlpsol_n_out()

    def get_n_out(self):
        return 1

    def get_name_in(self, i):
        return ca.nlpsol_out(i)

    def get_name_out(self, i):
        return "stop"

    def get_sparsity_in(self, i):
        return ca.Sparsity.dense(self._sizes.get(ca.nlpsol_out(i), 1), 1)

    def eval(self, arg):
        now = time.perf_counter()
        if self._mark is not None:
            self.iteration.add(now - self._mark)
        elif self._start is not None:
            self.first.add(now - self._start)
        self._mark = now
        expected = self.iteration.expected or self.first.expected  # until an iteration is seen: the set-up's
        return [1.0 if now + expected > self.deadline else 0.0]


@dataclass
class SolveResult:
    v: np.ndarray | None  # normalised decision vector (inputs then slacks), None when nothing usable came back
    ok: bool
    status: str
    iterations: int
    objective: float
    solve_time: float
    prepare_time: float | None = None  # real-time iterations: linearisation and condensing [s]
    feedback_time: float | None = None  # real-time iterations: QP for the measured state and checks [s]
    model_gap: float | None = None  # real-time iterations: QP's first predicted state vs the model (scaled)


class CasadiSolver:
    """nlpsol with warm starts (primal and, for Ipopt, dual) from the previous solution."""

    OK = {"Solve_Succeeded", "Solved_To_Acceptable_Level", "SUCCESS", "Solve_Succeeded_To_Acceptable_Level"}

    def __init__(self, problem, method: str = "ipopt", *, tol: float = 1e-6, max_iter: int = 200,
                 time_limit: float | None = None, expand: bool | None = None, options: dict | None = None):
        nlp = {"x": problem.w, "p": problem.p, "f": problem.J, "g": problem.g}
        if expand is None:  # scalar SX graphs pay off for the plant's few equations, not for dense network layers
            expand = isinstance(problem.predictor, FirstPrinciples)
        self.problem, self.method, self.time_limit = problem, method, time_limit
        self._clock: WallClock | None = None  # the predictive time limit, when a time_limit is given
        if method == "ipopt":
            opts = {"ipopt.print_level": 0, "ipopt.sb": "yes", "print_time": False, "ipopt.tol": tol,
                    "ipopt.acceptable_tol": max(tol * 100, 1e-4), "ipopt.max_iter": max_iter,
                    "ipopt.mu_strategy": "adaptive", "expand": expand,
                    "ipopt.warm_start_init_point": "yes", **IPOPT_WARM}  # else Ipopt ignores the multipliers
            if time_limit:
                opts["ipopt.max_wall_time"] = float(time_limit)
                self._clock = WallClock(problem.w.numel(), problem.g.numel(), problem.p.numel())
                opts["iteration_callback"] = self._clock
            self.solver = ca.nlpsol("mpc", "ipopt", nlp, {**NLPSOL_COMMON, **opts, **(options or {})})
        elif method == "sqp":
            opts = {"qpsol": "qrqp", "qpsol_options": {"print_iter": False, "print_header": False,
                                                       "error_on_fail": False},
                    "print_header": False, "print_iteration": False, "print_status": False, "print_time": False,
                    "max_iter": max_iter, "tol_pr": tol, "tol_du": tol, "convexify_strategy": "eigen-reflect",
                    "expand": expand, "error_on_fail": False}
            if problem.certificate().convex:
                opts["min_step_size"] = SQP_CONVEX_MIN_STEP
                opts["qpsol_options"] = {**opts["qpsol_options"], "max_iter": SQP_CONVEX_QP_MAX_ITER}
            hess = structured_hessian(problem)
            if hess is not None:  # the same matrix as CasADi's, ~5x cheaper per solve on the convex controller
                opts["hess_lag"] = hess
            if time_limit:
                self._clock = WallClock(problem.w.numel(), problem.g.numel(), problem.p.numel())
                opts["iteration_callback"] = self._clock
            self.solver = ca.nlpsol("mpc", "sqpmethod", nlp, {**NLPSOL_COMMON, **opts, **(options or {})})
        else:
            raise UnknownNameError(f"unknown CasADi method {method!r}; choose one of {CASADI_SOLVERS}")
        self._lam_x = self._lam_g = None
        self.tol = tol
        # the solvers' convergence test, redone here for the iterates they return without declaring it: a stop by
        # the wall clock (the test comes after the callback) and SQP's too-small step at an optimum whose bound
        # multipliers its failed line search left behind
        lam_g = ca.MX.sym("lam_g", problem.g.numel())
        du = ca.gradient(problem.J, problem.w) + ca.jtimes(problem.g, problem.w, lam_g, True)
        self._kkt = ca.Function("kkt", [problem.w, problem.p, lam_g], [du, problem.g])
        self._recheck = Duration()  # how long `_converged` takes: not started when it would end past the deadline
        if time_limit:  # measured once now, so that the first step's estimate exists
            w0, g0 = np.zeros(problem.w.numel()), np.zeros(problem.g.numel())
            self._timed_converged({"x": w0, "lam_x": w0, "lam_g": g0}, np.zeros(problem.p.numel()))

    #: Statuses whose iterate is accepted when it meets the KKT conditions (`_converged`).
    RECHECKED = ("User_Requested_Stop", "Search_Direction_Becomes_Too_Small")

    def _converged(self, sol, p) -> bool:
        """Whether an iterate meets the KKT conditions to `tol`, unscaled: feasible, the constraint multipliers
        complementary, and the gradient of the Lagrangian zero on free variables and pointing out of the box on
        variables at a bound (their multipliers recomputed from it: the solver's may be stale)."""
        pb = self.problem
        x, lam_x, lam_g = (np.asarray(sol[k], float).reshape(-1) for k in ("x", "lam_x", "lam_g"))
        du, g = (np.asarray(v, float).reshape(-1) for v in self._kkt(x, p, lam_g))
        if not (np.all(np.isfinite(du)) and np.all(np.isfinite(g))):
            return False
        tol = self.tol
        lbw, ubw = np.broadcast_to(pb.lbw, x.shape), np.broadcast_to(pb.ubw, x.shape)
        lbg, ubg = np.broadcast_to(pb.lbg, g.shape), np.broadcast_to(pb.ubg, g.shape)
        if np.any(x < lbw - tol) or np.any(x > ubw + tol) or np.any(g < lbg - tol) or np.any(g > ubg + tol):
            return False
        gap = np.where(lam_g > 0, ubg - g, g - lbg)  # a multiplier pushes on one bound: it must be active there
        if np.any(np.abs(lam_g) * np.where(np.isfinite(gap), gap, 1.0) > tol):  # (and none on an infinite bound)
            return False
        # at a bound: within tol of it, or held there by a complementary multiplier (an interior-point iterate)
        with np.errstate(invalid="ignore"):  # 0 × an infinite bound's distance: nan, compared as False
            at_lo = (x <= lbw + tol) | ((lam_x < 0) & (-lam_x * (x - lbw) <= tol))
            at_hi = (x >= ubw - tol) | ((lam_x > 0) & (lam_x * (ubw - x) <= tol))
        bad = np.where(at_lo & at_hi, False, np.where(at_lo, du < -tol, np.where(at_hi, du > tol, np.abs(du) > tol)))
        return not bool(np.any(bad))

    def _timed_converged(self, sol, p) -> bool:
        """`_converged`, its duration added to the recheck's expected length."""
        t0 = time.perf_counter()
        ok = self._converged(sol, p)
        self._recheck.add(time.perf_counter() - t0)
        return ok

    def solve(self, p: np.ndarray, v0: np.ndarray, deadline: float | None = None) -> SolveResult:
        """Solve from v0; with a time limit, stop by `deadline` (time.perf_counter; default: the limit from now)."""
        pb = self.problem
        args = {"x0": v0, "p": p, "lbx": pb.lbw, "ubx": pb.ubw, "lbg": pb.lbg, "ubg": pb.ubg}
        if self._lam_x is not None:
            args.update(lam_x0=self._lam_x, lam_g0=self._lam_g)
        t0 = time.perf_counter()
        if self.time_limit and deadline is None:
            deadline = t0 + self.time_limit
        if self._clock is not None:
            if deadline is not None and t0 + self._clock.first.expected > deadline:
                self._clock.first.decay()  # as if a solve had run
                return SolveResult(None, False, "time_limit (no time for the solver's first evaluations before the "
                                   "deadline)", 0, np.nan, time.perf_counter() - t0)
            self._clock.start(deadline)
        try:
            sol = keep_keys(self.solver(**args))
        except RuntimeError as exc:  # evaluation errors inside the solver
            return SolveResult(None, False, f"solver_error: {exc}".splitlines()[0], 0, np.nan,
                               time.perf_counter() - t0)
        elapsed = time.perf_counter() - t0
        stats = keep_keys(self.solver.stats())
        status = str(stats.get("return_status", "unknown"))
        ok = bool(stats.get("success", False)) or status in self.OK
        if not ok and status in self.RECHECKED:
            if deadline is None or time.perf_counter() + self._recheck.expected < deadline:
                ok = self._timed_converged(sol, p)
            self._recheck.decay()
            if ok:
                status = f"Solve_Succeeded (KKT conditions met at its {status})"
        if deadline is not None and time.perf_counter() > deadline:  # the solve, or the solve and its recheck
            ok, status = False, f"time_limit ({status})"
        v = np.array(sol["x"]).reshape(-1)
        if ok:
            self._lam_x, self._lam_g = sol["lam_x"], sol["lam_g"]
        return SolveResult(v, ok, status, int(stats.get("iter_count", 0)), float(sol["f"]), elapsed)

    def reset(self) -> None:
        self._lam_x = self._lam_g = None


class CvxpySolver:
    """The certified convex path: the epigraph LP/QP/SOCP of a horizon cost model, DPP-compiled once."""

    def __init__(self, problem, solver: str = "clarabel", *, tol: float = 1e-7, max_iter: int = 200,
                 time_limit: float | None = None, options: dict | None = None):
        import cvxpy as cp

        from icctrl.export import to_cvxpy

        cert = problem.certificate()
        if not cert.convex:
            raise NotConvexError("the cvxpy path needs a certified convex problem; the core says: "
                                 + "; ".join(cert.reasons[:3]))
        pred = problem.predictor
        if not isinstance(pred, HorizonModel) or pred.kind != "cost":
            raise NotConvexError(f"the cvxpy path needs a horizon cost model, got {pred.label}")
        N, nu, nx = problem.N, problem.nu, problem.nx
        self.problem, self.name, self.time_limit = problem, solver.upper(), time_limit
        self.x0, self.u_prev = cp.Parameter(nx), cp.Parameter(nu)
        self.u_ref = cp.Parameter((N, nu))
        self.lyap = cp.Parameter(nonneg=True)
        self.V = cp.Variable((N, nu))
        U = [problem.u_mid + cp.multiply(problem.u_half, self.V[k, :]) for k in range(N)]
        ep = to_cvxpy(pred.model, [cp.hstack([self.x0, U[k]]) for k in range(N)], wrt=list(range(nx, nx + nu)))
        dv = [cp.multiply(1 / problem.u_half, U[k] - self.u_ref[k, :]) for k in range(N)]
        J = cp.sum(ep.outputs) + sum(cp.sum(cp.multiply(problem.R, cp.square(d))) for d in dv)
        if problem.linear_cost is not None:
            J = J + cp.sum(cp.multiply(problem.linear_cost, self.V))
        cons = [cp.abs(self.V) <= 1]
        if problem.du_max is not None:
            cons.append(cp.abs(U[0] - self.u_prev) <= problem.du_max)
            cons += [cp.abs(U[k] - U[k - 1]) <= problem.du_max for k in range(1, N)]
        self.slack = None
        if problem.lyapunov is not None:
            self.slack = cp.Variable(nonneg=True)
            cons.append(ep.outputs[0, 0] <= self.lyap + self.slack)
            J = J + problem.lyapunov.penalty * self.slack
        self.prob = ep.problem(cp.Minimize(J / problem.cost_scale), cons)  # refuses what the epigraph cannot
        # solve exactly (an objective or a bound not nondecreasing in the outputs)
        if not self.prob.is_dcp(dpp=True):
            raise NotConvexError("the epigraph problem is not DPP-compliant")
        self.epigraph = ep
        self.opts = self._options(solver, tol, max_iter, time_limit, options)
        if solver.upper() not in __import__("cvxpy").installed_solvers():
            raise UnknownNameError(f"cvxpy solver {solver!r} is not installed")

    @staticmethod
    def _options(solver, tol, max_iter, time_limit, options) -> dict:
        s = solver.lower()
        opts: dict = {}
        if s == "clarabel":
            opts = {"tol_gap_abs": tol, "tol_gap_rel": tol, "tol_feas": tol, "max_iter": max_iter}
            if time_limit:
                opts["time_limit"] = float(time_limit)
        elif s == "osqp":
            opts = {"eps_abs": tol, "eps_rel": tol, "max_iter": 20 * max_iter, "polishing": True}
            if time_limit:
                opts["time_limit"] = float(time_limit)
        elif s == "ecos":
            opts = {"abstol": tol, "reltol": tol, "max_iters": max_iter}
        elif s == "scs":
            opts = {"eps_abs": tol, "eps_rel": tol, "max_iters": 50 * max_iter}
            if time_limit:
                opts["time_limit_secs"] = float(time_limit)
        return {**opts, **(options or {})}

    def solve(self, p: np.ndarray, v0: np.ndarray) -> SolveResult:
        pb = self.problem
        nu = pb.nu
        self.x0.value, self.u_prev.value = pb.block(p, "x0"), pb.block(p, "u_prev")
        self.u_ref.value = pb.block(p, "u_ref")
        self.lyap.value = max(float(pb.block(p, "lyap_bound")[0]), 0.0)
        self.V.value = v0[: pb.N * nu].reshape(nu, pb.N).T
        t0 = time.perf_counter()
        try:
            self.prob.solve(solver=self.name, warm_start=True, **self.opts)
        except Exception as exc:  # cvxpy raises SolverError and others on failure
            return SolveResult(None, False, f"solver_error: {exc}".splitlines()[0], 0, np.nan,
                               time.perf_counter() - t0)
        elapsed = time.perf_counter() - t0
        status = str(self.prob.status)
        ok = status in ("optimal", "optimal_inaccurate") and self.V.value is not None
        if self.time_limit and elapsed > self.time_limit:
            ok, status = False, f"time_limit ({status})"
        st = self.prob.solver_stats
        iters = int(st.num_iters or 0) if st is not None else 0
        if self.V.value is None:
            return SolveResult(None, False, status, iters, np.nan, elapsed)
        v = np.concatenate([self.V.value.T.reshape(-1), [] if self.slack is None else [float(self.slack.value)]])
        solver_time = float(st.solve_time) if (st is not None and st.solve_time) else elapsed
        self.last_solver_time = solver_time
        return SolveResult(v, ok, status, iters, float(self.prob.value), elapsed)

    def reset(self) -> None:
        pass


def make_solver(problem, solver: str, **options):
    """Compile `problem` for the named solver."""
    name = str(solver).lower()
    if name in RTI_SOLVERS:
        from icctrl.mpc._rti import RTISolver

        expand = options.pop("expand", None)  # the CasADi solvers' switch, read as SX derivatives here
        if expand is not None:
            options.setdefault("derivatives", "sx" if expand else "mx")
        return RTISolver(problem, name, **options)
    if name in CASADI_SOLVERS:
        return CasadiSolver(problem, name, **options)
    if name in CVXPY_SOLVERS:
        options.pop("expand", None)
        return CvxpySolver(problem, name, **options)
    raise UnknownNameError(f"unknown solver {solver!r}; choose one of {SOLVERS}")
