"""Controller: solves, warm starts, and never applies a failed iterate (fallback with a status and a counter)."""

import numpy as np
import pytest

from icctrl.errors import InvalidValueError, NotConvexError, ShapeError, UnknownNameError
from icctrl.mpc import SUCCESS, Controller, FirstPrinciples, run_episode
from icctrl.mpc._defaults import CSTR_R, CSTR_SETTLE, cstr_problem, default_controller
from icctrl.mpc._solvers import SolveResult
from plants import CSTR

PLANT = CSTR()
X0 = PLANT.from_deviation(np.array([-1.5, 70.0]))


@pytest.fixture(scope="module")
def problem():
    return cstr_problem(FirstPrinciples(PLANT), horizon=5)


def test_step_contract(problem):
    ctrl = Controller(problem, "ipopt")
    u, info = ctrl.step(X0)
    assert info["status"] == SUCCESS and info["success"]
    assert info["solve_time"] > 0 and info["iterations"] > 0
    assert u.shape == (2,) and np.all(u >= PLANT.u_lb) and np.all(u <= PLANT.u_ub)
    assert info["plan"].shape == (5, 2) and info["prediction"].shape == (5, 2)
    assert info["certified_convex"] is False


def test_closed_loop_settles_with_the_first_principles_nmpc(problem):
    ep = run_episode(PLANT, Controller(problem, "sqp"), X0, 40, Q=PLANT.P, R=CSTR_R, settle_tol=CSTR_SETTLE)
    assert ep.settled and ep.error is None
    assert all(i["success"] for i in ep.infos)


class _Failing:
    """A backend that succeeds `ok` times, then fails in the way given."""

    def __init__(self, real, ok, how):
        self.real, self.ok, self.how = real, ok, how

    def solve(self, p, v0):
        if self.ok > 0:
            self.ok -= 1
            return self.real.solve(p, v0)
        if self.how == "nan":
            return SolveResult(np.full_like(v0, np.nan), True, "Solve_Succeeded", 3, 0.0, 1e-3)
        if self.how == "bounds":
            return SolveResult(np.full_like(v0, 5.0), True, "Solve_Succeeded", 3, 0.0, 1e-3)
        return SolveResult(v0, False, "Maximum_Iterations_Exceeded", 100, 1.0, 1e-3)

    def reset(self):
        self.real.reset()


@pytest.mark.parametrize("how", ["limit", "nan", "bounds"])
def test_failed_solve_applies_the_shifted_plan_then_holds(problem, how):
    ctrl = Controller(problem, "ipopt")
    ctrl.backend = _Failing(ctrl.backend, 1, how)
    u0, info0 = ctrl.step(X0)
    plan = info0["plan"]
    u1, info1 = ctrl.step(X0)
    assert info1["status"] == "fallback_shifted" and not info1["success"]
    np.testing.assert_allclose(u1, plan[1])
    for _ in range(problem.N - 2):
        ctrl.step(X0)
    u_hold, info = ctrl.step(X0)  # plan exhausted: hold the last applied input
    assert info["status"] == "fallback_hold"
    assert np.all(np.isfinite(u_hold)) and np.all(u_hold >= PLANT.u_lb) and np.all(u_hold <= PLANT.u_ub)
    assert ctrl.stats["failures"] == problem.N and ctrl.stats["fallback_shifted"] == problem.N - 1
    ctrl.backend = ctrl.backend.real  # the solver recovers: the controller keeps working
    assert ctrl.step(X0)[1]["status"] == SUCCESS


def test_first_step_failure_holds_the_reference_input(problem):
    ctrl = Controller(problem, "ipopt")
    ctrl.backend = _Failing(ctrl.backend, 0, "limit")
    u, info = ctrl.step(X0)
    assert info["status"] == "fallback_hold"
    np.testing.assert_allclose(u, PLANT.u_ss)


def test_time_limit_is_honoured(problem):
    ctrl = Controller(problem, "ipopt", time_limit=1e-6)
    u, info = ctrl.step(X0)
    assert not info["success"] and info["status"].startswith("fallback")
    ctrl = Controller(problem, "sqp", time_limit=1e-6)
    assert ctrl.step(X0)[1]["solver_status"].startswith("time_limit")


def test_bad_state_is_refused_before_any_solve(problem):
    ctrl = Controller(problem, "ipopt", state_bounds=(PLANT.x_lb, PLANT.x_ub))
    with pytest.raises(InvalidValueError, match="nan"):
        ctrl.step([np.nan, 400.0])
    with pytest.raises(ShapeError, match=r"\(2,\)"):
        ctrl.step([1.0, 2.0, 3.0])
    with pytest.raises(InvalidValueError, match="valid region"):
        ctrl.step([1.0, 5000.0])
    assert ctrl.stats["steps"] == 0


def test_unknown_solver_and_non_convex_cvxpy_request(problem):
    with pytest.raises(UnknownNameError, match="'gurobi'"):
        Controller(problem, "gurobi")
    with pytest.raises(NotConvexError, match="first-principles"):
        Controller(problem, "clarabel")


def test_default_controllers_take_absolute_states():
    for name in ("iclstm", "lstm", "first_principles"):
        ctrl = default_controller("cstr", model=name, horizon=3)
        u, info = ctrl.step(X0)
        assert info["status"] in (SUCCESS, "fallback_hold") and "solve_time" in info
        assert np.all(u >= PLANT.u_lb) and np.all(u <= PLANT.u_ub)
    with pytest.raises(UnknownNameError):
        default_controller("reactor", model="iclstm")


def test_cvxpy_path_builds_its_problem_through_the_exactness_checked_epigraph():
    import torch.nn.functional as F

    import icctrl

    m = icctrl.load_default("cstr", "icrnn_cost").double()
    m.model.act = F.elu  # an exponential-cone epigraph: exact only because the problem pushes the outputs down
    ctrl = default_controller("cstr", model=m, solver="clarabel", horizon=4)
    u, info = ctrl.step(X0)
    assert info["status"] == SUCCESS and info["certified_convex"]
    ep = ctrl.backend.epigraph
    assert ep.aux and ep.gap() < 1e-5 * (1 + float(abs(ep.outputs.value).max()))
