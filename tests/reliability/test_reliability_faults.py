"""Solver faults: failures, iteration and time limits, NaN or out-of-bounds iterates and raising back-ends
give a safe action (shifted previous plan, else hold) with a non-success status and counters; the controller
keeps working on the next step. `time_limit` is honoured by each solver path: the CasADi and real-time back-ends
stop themselves before an iteration or phase that would end past the deadline, in the caller's thread; the others
run in a solve thread the step stops waiting for; a late result is refused."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

from icctrl.errors import InvalidValueError
from icctrl.mpc import SUCCESS, Controller, FirstPrinciples, MPCProblem
from icctrl.mpc._defaults import cstr_problem, default_controller
from icctrl.mpc._solvers import SolveResult
from plants import CSTR

PLANT = CSTR()
X0 = PLANT.from_deviation(np.array([0.75, -40.0]))


def _in_bounds(u) -> bool:
    return bool(np.all(np.isfinite(u)) and np.all(u >= PLANT.u_lb) and np.all(u <= PLANT.u_ub))


@pytest.fixture(scope="module")
def problem():
    return cstr_problem(FirstPrinciples(PLANT), horizon=4)


class Faulty:
    """Wraps a real back-end; while `fault` is set, every solve fails in that way."""

    def __init__(self, real):
        self.real, self.fault = real, None

    def solve(self, p, v0):
        if self.fault is None:
            return self.real.solve(p, v0)
        if self.fault == "raises":
            raise ValueError("backend exploded")
        if self.fault == "nan":
            return SolveResult(np.full_like(v0, np.nan), True, "Solve_Succeeded", 5, np.nan, 1e-3)
        if self.fault == "none":
            return SolveResult(None, True, "Solve_Succeeded", 5, 0.0, 1e-3)
        if self.fault == "bounds":
            return SolveResult(np.full_like(v0, -3.0), True, "Solve_Succeeded", 5, 0.0, 1e-3)
        return SolveResult(v0, False, "Infeasible_Problem_Detected", 5, 1.0, 1e-3)

    def reset(self):
        self.real.reset()


@pytest.mark.parametrize("fault", ["nan", "none", "bounds", "infeasible"])
def test_a_faulty_solve_applies_the_shifted_plan_then_holds_then_recovers(problem, fault):
    ctrl = Controller(problem, "ipopt")
    ctrl.backend = Faulty(ctrl.backend)
    u0, info0 = ctrl.step(X0)
    assert info0["status"] == SUCCESS
    plan = info0["plan"]
    ctrl.backend.fault = fault
    applied, statuses = [], []
    for _ in range(problem.N + 1):
        u, info = ctrl.step(X0)
        applied.append(u)
        statuses.append(info["status"])
        assert not info["success"] and info["plan"] is None and _in_bounds(u)
    assert statuses == ["fallback_shifted"] * (problem.N - 1) + ["fallback_hold"] * 2
    np.testing.assert_allclose(applied[: problem.N - 1], plan[1:])
    np.testing.assert_allclose(applied[-1], plan[-1])  # hold the last applied input
    assert ctrl.stats["failures"] == problem.N + 1
    assert ctrl.stats["fallback_shifted"] == problem.N - 1 and ctrl.stats["fallback_hold"] == 2
    ctrl.backend.fault = None
    assert ctrl.step(X0)[1]["status"] == SUCCESS


def test_a_raising_backend_gives_a_fallback_not_an_exception(problem):
    ctrl = Controller(problem, "ipopt")
    ctrl.backend = Faulty(ctrl.backend)
    plan = ctrl.step(X0)[1]["plan"]
    ctrl.backend.fault = "raises"
    u, info = ctrl.step(X0)
    assert info["status"] == "fallback_shifted" and "backend exploded" in info["solver_status"]
    np.testing.assert_allclose(u, plan[1])


def test_a_runtime_infeasible_rate_limit_falls_back_within_bounds():
    pb = MPCProblem(FirstPrinciples(PLANT), 3, u_lb=PLANT.u_lb, u_ub=PLANT.u_ub, u_ref=PLANT.u_ss,
                    x_ref=PLANT.x_ss, Q=PLANT.P, du_max=[0.01, 100.0])
    ctrl = Controller(pb, "ipopt", max_iter=50)
    far = PLANT.u_lb - [1.0, 0.0]  # no input in the box is within du_max of this previous input
    u, info = ctrl.step(X0, u_prev=far)
    assert not info["success"] and info["status"] == "fallback_hold" and _in_bounds(u)
    u, info = ctrl.step(X0, u_prev=PLANT.u_ss)  # a feasible step works again
    assert info["status"] == SUCCESS and _in_bounds(u)


def test_a_first_step_hold_respects_the_given_previous_input_and_rate_limit():
    pb = MPCProblem(FirstPrinciples(PLANT), 3, u_lb=PLANT.u_lb, u_ub=PLANT.u_ub, u_ref=PLANT.u_ss,
                    x_ref=PLANT.x_ss, Q=PLANT.P, du_max=[0.01, 100.0])
    ctrl = Controller(pb, "ipopt")
    ctrl.backend = Faulty(ctrl.backend)
    ctrl.backend.fault = "infeasible"
    u_prev = PLANT.u_lb + [0.2, 1e5]
    u, info = ctrl.step(X0, u_prev=u_prev)
    assert info["status"] == "fallback_hold"
    assert np.all(np.abs(u - u_prev) <= pb.du_max)


@pytest.mark.parametrize("solver", ["ipopt", "sqp"])
def test_an_iteration_limit_of_one_is_a_counted_fallback_every_step(problem, solver):
    ctrl = Controller(problem, solver, max_iter=1)
    for _ in range(3):
        u, info = ctrl.step(X0)
        assert not info["success"] and info["status"] == "fallback_hold" and _in_bounds(u)
        np.testing.assert_allclose(u, PLANT.u_ss)
    assert ctrl.stats["failures"] == 3 and ctrl.stats["steps"] == 3


@pytest.mark.parametrize("name, solver, native", [
    # the WallClock iteration callback stops it, or the back-end does not start what cannot end in time
    ("first_principles", "ipopt", ("User_Requested_Stop", "no time for the solver's first evaluations")),
    ("first_principles", "sqp", ("User_Requested_Stop", "no time for the solver's first evaluations")),
    ("icrnn_cost", "clarabel", ("user_limit",)),
])
def test_an_absurd_time_limit_is_honoured_by_each_solver_path(name, solver, native):
    ctrl = default_controller("cstr", name, solver=solver, horizon=3, time_limit=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cvxpy warns that a stopped solve may be inaccurate
        for _ in range(2):
            u, info = ctrl.step(X0)
            assert not info["success"] and info["status"] == "fallback_hold" and _in_bounds(u)
            assert info["solver_status"].startswith("time_limit")
    assert ctrl.stats["failures"] == 2
    if native:  # the back-end stops by itself too, not only the step's deadline
        p = ctrl.problem.parameters(X0)
        v0 = ctrl.problem.cold_start(p)  # through the controller's solve thread, if any: never two solves at once
        res = ctrl.backend.solve(p, v0) if ctrl._thread is None else \
            ctrl._thread.run(lambda: ctrl.backend.solve(p, v0), 60.0)
        assert not res.ok and any(n in res.status for n in native), res.status


@pytest.mark.parametrize("name, solver", [("first_principles", "sqp"), ("first_principles", "ipopt"),
                                          ("icrnn_cost", "clarabel")])
def test_a_late_result_is_refused_and_the_shifted_plan_applied(name, solver):
    """Paths without a native limit (sqp) rely on this: a result later than time_limit is never applied."""
    ctrl = default_controller("cstr", name, solver=solver, horizon=3)
    u0, info0 = ctrl.step(X0)
    assert info0["status"] == SUCCESS
    ctrl.backend.time_limit = 1e-9  # every later result is now late
    u1, info1 = ctrl.step(X0)
    assert info1["status"] == "fallback_shifted" and info1["solver_status"].startswith("time_limit")
    np.testing.assert_allclose(u1, info0["plan"][1])
    ctrl.backend.time_limit = None
    assert ctrl.step(X0)[1]["status"] == SUCCESS


class Slow:
    """A back-end whose solve blocks until released: a solver that will not stop by itself."""

    def __init__(self, real):
        import threading

        self.real, self.release, self.running = real, threading.Event(), threading.Event()

    def solve(self, p, v0):
        self.running.set()
        self.release.wait(30)
        return self.real.solve(p, v0)

    def reset(self):
        self.real.reset()


def test_a_time_limit_returns_the_fallback_while_the_solve_is_still_running(problem):
    ctrl = Controller(problem, "ipopt", time_limit=0.25, solve_thread=True)  # room to start the solve
    ctrl.backend = slow = Slow(ctrl.backend)
    u, info = ctrl.step(X0)
    assert slow.running.is_set() and not slow.release.is_set()  # step came back; the solve has not
    assert info["status"] == "fallback_hold" and "step deadline" in info["solver_status"] and _in_bounds(u)
    u2, info2 = ctrl.step(X0)  # the late solve is still busy: the next step falls back on time too
    assert "still running" in info2["solver_status"] and _in_bounds(u2)
    slow.release.set()
    ctrl.backend = slow.real
    for _ in range(3):
        u3, info3 = ctrl.step(X0)
    assert info3["status"] == SUCCESS


class Recording:
    """A back-end that logs each call's start and end and the most calls it ever ran at once."""

    def __init__(self, real, slow_solves=1, delay=1.0):
        import threading

        self.real, self.slow, self.delay = real, slow_solves, delay
        self.lock, self.active, self.most, self.log = threading.Lock(), 0, 0, []

    def _enter(self, what):
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
            self.log.append(f"{what}+")

    def _leave(self, what):
        with self.lock:
            self.active -= 1
            self.log.append(f"{what}-")

    def solve(self, p, v0):
        self._enter("solve")
        try:
            if self.slow > 0:
                self.slow -= 1
                time.sleep(self.delay)
            return self.real.solve(p, v0)
        finally:
            self._leave("solve")

    def reset(self):
        self._enter("reset")
        try:
            time.sleep(0.01)  # wide enough for an overlap to show
            self.real.reset()
        finally:
            self._leave("reset")


def test_no_reset_runs_beside_a_late_solve(problem):
    """The fallback of a late step and the next episode's reset wait for the late solve: one call at a time."""
    ctrl = Controller(problem, "ipopt", time_limit=0.25, solve_thread=True)  # room to start the solve
    ctrl.backend = rec = Recording(ctrl.backend)
    u, info = ctrl.step(X0)  # late: falls back, and the fallback asks for a reset while the solve still runs
    assert info["status"] == "fallback_hold" and "step deadline" in info["solver_status"]
    ctrl.reset()  # a new episode while the late solve is still running
    deadline = time.perf_counter() + 5
    while ctrl._thread.busy and time.perf_counter() < deadline:
        time.sleep(0.01)
    assert rec.most == 1, rec.log
    assert rec.log[:2] == ["solve+", "solve-"] and rec.log.count("reset+") >= 2
    for _ in range(3):
        u3, info3 = ctrl.step(X0)
    assert info3["status"] == SUCCESS and rec.most == 1


def test_fallback_is_the_failure_path_without_a_measurement(problem):
    ctrl = Controller(problem, "ipopt")
    u, info = ctrl.step(X0)
    u2, info2 = ctrl.fallback("invalid_measurement: [nan, nan]")
    assert info2["status"] == "fallback_shifted" and info2["solver_status"].startswith("invalid_measurement")
    assert np.allclose(u2, info["plan"][1]) and ctrl.stats["failures"] == 1


def test_no_solve_is_started_once_the_deadline_has_passed():
    from icctrl.mpc._deadline import LateSolve, SolveThread

    calls = []
    thread = SolveThread()
    with pytest.raises(LateSolve, match="no time left"):
        thread.run(lambda: calls.append(1), 0.0)
    assert not calls and not thread.busy  # nothing runs in the background to compete with the loop
    assert thread.run(lambda: 7, 1.0) == 7


def test_a_bare_qp_exit_code_becomes_a_readable_reason():
    from icctrl.mpc._controller import readable_status

    class Call:
        def __init__(self, it):
            self.it = it

        def stats(self):
            return {"iter_count": self.it, "unified_return_status": "SOLVER_RET_UNKNOWN"}

    class QP:
        plugin = "daqp"

        def __init__(self, it):
            self.call = Call(it)

    class Backend:
        def __init__(self, it):
            self.qp = QP(it)

    assert readable_status(Backend(-1), "1").startswith("daqp exit 1: QP setup failed before solving")
    assert readable_status(Backend(3), "-4") == "daqp exit -4: iteration_limit"
    assert readable_status(Backend(3), "Maximum_Iterations_Exceeded") == "Maximum_Iterations_Exceeded"
    assert readable_status(object(), "1") == "1"  # not a daqp back-end: left as it is


def test_the_rti_controller_reports_a_failed_qp_with_a_reason():
    ctrl = default_controller("cstr", "iclstm")
    ctrl.step(X0)
    real = ctrl.backend.feedback

    def broken(p):
        ctrl.backend._lin["Hqp"] = -np.abs(ctrl.backend._lin["Hqp"])
        return real(p)

    ctrl.backend.feedback = broken  # an indefinite QP Hessian: the daqp set-up fails
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u, info = ctrl.step(X0)
    assert not info["success"] and info["solver_status"].startswith("daqp exit") and _in_bounds(u)


@pytest.mark.parametrize("solver, threaded", [("ipopt", False), ("sqp", False), ("rti", False),
                                              ("clarabel", True)])
def test_back_ends_that_stop_themselves_run_in_the_callers_thread(solver, threaded):
    name = "icrnn_cost" if solver == "clarabel" else "iclstm" if solver == "rti" else "first_principles"
    ctrl = default_controller("cstr", name, solver=solver, horizon=3, time_limit=1.0)
    assert (ctrl._thread is not None) is threaded
    if not threaded:
        assert default_controller("cstr", name, solver=solver, horizon=3, time_limit=1.0,
                                  solve_thread=True)._thread is not None
    with pytest.raises(InvalidValueError, match="solve_thread"):
        Controller(cstr_problem(FirstPrinciples(PLANT), horizon=2), "sqp", time_limit=1.0, solve_thread="yes")


def test_the_wall_clock_stops_before_an_iteration_that_would_end_past_the_deadline():
    from icctrl.mpc._solvers import WallClock

    clock = WallClock(2, 1, 1)
    args = [np.zeros(n) for n in (2, 1, 1, 2, 1, 1)]
    clock.start(time.perf_counter() + 10.0)
    assert float(clock(*args)) == 0.0 and 0 < clock.first.expected < 10.0  # the first call learns the set-up
    clock.iteration.add(0.02)
    clock.start(time.perf_counter() + 0.015)  # the typical 0.02 s iteration no longer fits
    assert float(clock(*args)) == 1.0
    clock.start(time.perf_counter() + 1.0)
    assert float(clock(*args)) == 0.0
    for _ in range(50):  # solves that stop early measure nothing: the estimate keeps the typical iteration
        clock.start(0.0)
    assert clock.iteration.expected == pytest.approx(0.02)


def test_rti_skips_a_phase_that_would_end_past_its_deadline():
    ctrl = default_controller("cstr", "iclstm", horizon=3, time_limit=1.0)
    be = ctrl.backend
    assert be._took["prepare"].expected > 0 and be._took["feedback"].expected > 0  # learned by the warm-up
    p = ctrl.problem.parameters(PLANT.x_ss)
    calls = []
    real = be.prepare
    be.prepare = lambda *a: calls.append(1) or real(*a)
    res = be.solve(p, ctrl.problem.cold_start(p), deadline=time.perf_counter() + 0.5 * be._took["prepare"].mean)
    assert not res.ok and res.status.startswith("time_limit (no time for a linearisation") and not calls
    res = be.solve(p, ctrl.problem.cold_start(p), deadline=time.perf_counter() + 10.0)
    assert res.ok and calls


def test_a_late_step_returns_the_fallback_by_its_deadline_without_a_thread():
    ctrl = default_controller("cstr", "first_principles", horizon=4, time_limit=1.0)
    ctrl.backend._clock.iteration.add(5.0)  # every iteration now looks longer than the limit
    u, info = ctrl.step(X0)
    assert info["status"] == "fallback_hold" and "User_Requested_Stop" in info["solver_status"] and _in_bounds(u)
    assert ctrl.backend.solver.stats()["iter_count"] == 0  # stopped at its first callback, before any iteration


@pytest.mark.parametrize("solver", ["sqp", "ipopt"])
def test_an_iterate_the_wall_clock_stops_at_is_kept_when_it_is_converged(solver):
    """The solvers test convergence after the callback: a stop at an optimal iterate must not throw it away."""
    ctrl = default_controller("cstr", "first_principles", solver=solver, horizon=4, time_limit=1.0)
    be, pb = ctrl.backend, ctrl.problem
    p = pb.parameters(X0)
    first = be.solve(p, pb.cold_start(p), deadline=time.perf_counter() + 10.0)
    be._clock.iteration.add(5.0)  # any further iteration looks too long: the clock stops at the first callback
    again = be.solve(p, first.v, deadline=time.perf_counter() + 1.0)
    assert first.ok and again.ok and again.iterations == 0 and "KKT conditions met" in again.status
    be.reset()
    cold = be.solve(p, pb.cold_start(p), deadline=time.perf_counter() + 1.0)  # not optimal: refused
    assert not cold.ok and "User_Requested_Stop" in cold.status


def test_the_kkt_recheck_is_not_started_when_it_would_end_past_the_deadline():
    """A stop by the wall clock leads to the KKT recheck; a recheck that cannot end by the deadline is skipped
    (on the convex controller it could end past the deadline), and the expected length exists from the start."""
    ctrl = default_controller("cstr", "first_principles", solver="sqp", horizon=4, time_limit=1.0)
    be, pb = ctrl.backend, ctrl.problem
    assert be._recheck.expected > 0  # measured when the solver was built
    p = pb.parameters(X0)
    first = be.solve(p, pb.cold_start(p), deadline=time.perf_counter() + 10.0)
    be._clock.iteration.add(5.0)  # the clock stops at the first callback
    be._recheck.add(5.0)  # and the recheck looks longer than the time left
    calls = []
    real = be._converged
    be._converged = lambda *a: calls.append(1) or real(*a)
    again = be.solve(p, first.v, deadline=time.perf_counter() + 1.0)
    assert not again.ok and "User_Requested_Stop" in again.status and not calls
    be._recheck = type(be._recheck)()
    again = be.solve(p, first.v, deadline=time.perf_counter() + 1.0)
    assert again.ok and calls == [1]


def test_the_keys_of_the_dictionaries_casadi_returns_each_solve_stay_interned():
    """Each conversion of a CasADi dictionary interns its keys; keys nothing held were interned and freed on every
    solve, and the dummies this left made Python rebuild its table of interned strings inside one solve."""
    import sys

    from icctrl.mpc._deadline import _KEYS

    for name, solver in (("first_principles", "sqp"), ("first_principles", "ipopt"), ("iclstm", "rti")):
        ctrl = default_controller("cstr", name, solver=solver, horizon=3, time_limit=1.0)
        ctrl.step(X0)
        be = ctrl.backend
        stats = be.solver.stats() if solver != "rti" else be.qp.call.stats()
        assert set(stats) <= _KEYS and all(sys.intern(k) is k for k in stats)
        if solver != "rti":
            assert {"lam_p", "lam_x", "lam_g"} <= _KEYS  # the nlpsol result's keys as well


def test_no_casadi_solve_computes_the_parameters_multipliers():
    """nlpsol's default computes the parameters' multipliers after each solve (a reverse pass through the model,
    after the deadline's last check); nothing uses them, so no back-end asks for them."""
    for solver in ("sqp", "ipopt"):
        ctrl = default_controller("cstr", "first_principles", solver=solver, horizon=3)
        nlpsol, results = ctrl.backend.solver, []
        ctrl.backend.solver = _Recording(nlpsol, results)
        ctrl.step(X0)
        assert results and np.all(np.isnan(np.asarray(results[0]["lam_p"]))), solver
        assert np.all(np.isfinite(np.asarray(results[0]["x"]))), solver


class _Recording:
    """An nlpsol function that keeps what it returns."""

    def __init__(self, fn, results: list):
        self._fn, self._results = fn, results

    def __call__(self, **kw):
        self._results.append(self._fn(**kw))
        return self._results[-1]

    def stats(self):
        return self._fn.stats()


def test_sqp_at_its_optimum_succeeds_though_its_line_search_stalls():
    """At the steady state the cold start is optimal; sqpmethod's first QP step is zero, its line search fails and
    leaves the slack's bound multiplier stale, so it reports a too-small step. The KKT test recomputes that
    multiplier and accepts the point; without it every step at the steady state was a fallback."""
    ctrl = default_controller("cstr", "first_principles", solver="sqp", horizon=4)
    be, pb = ctrl.backend, ctrl.problem
    p = pb.parameters(PLANT.x_ss)
    res = be.solve(p, pb.cold_start(p))
    assert res.ok and "Search_Direction_Becomes_Too_Small" in res.status
    assert not be._converged({"x": pb.cold_start(p) + 0.1, "lam_x": 0 * res.v, "lam_g": np.zeros(pb.g.numel())}, p)
