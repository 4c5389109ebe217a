"""State bounds (soft with reported slacks, or hard), path constraints, terminal cost and set, per-step
references and measured disturbances, and how each enters the certificate."""

import casadi as ca
import numpy as np
import pytest
import torch

from icctrl.errors import InvalidValueError
from icctrl.mpc import Controller, Ellipsoid, FirstPrinciples, HorizonModel, MPCProblem, PathConstraint
from icctrl.mpc._defaults import cstr_problem
from icctrl.nn import Scaled, build
from plants import CSTR

PLANT = CSTR()
N = 5
HOT = PLANT.from_deviation(np.array([-1.5, 70.0]))
CEILING = np.array([np.inf, PLANT.x_ss[1] + 30.0])


def _fp(**kw):
    return cstr_problem(FirstPrinciples(PLANT), N, lyapunov=False, **kw)


def test_soft_ceiling_reports_per_step_slacks_in_kelvin():
    ctrl = Controller(_fp(x_ub=CEILING), "ipopt")
    u, info = ctrl.step(HOT)
    slack = info["slacks"]["state"]
    assert slack.shape == (N, 1)  # one bounded state (T), one slack per step
    excess = np.maximum(info["prediction"][:, 1] - CEILING[1], 0.0)
    np.testing.assert_allclose(slack[:, 0], excess, atol=1e-3)
    assert info["constraint_violation"] == pytest.approx(excess.max(), abs=1e-3) and excess.max() > 1.0
    plain = Controller(_fp(), "ipopt").step(HOT)[1]
    assert plain["constraint_violation"] == 0.0 and plain["slacks"] == {}
    # the ceiling changes the plan: more cooling than without it
    assert u[1] < Controller(_fp(), "ipopt").step(HOT)[0][1] - 1e3


def test_hard_bound_holds_where_it_is_feasible():
    ceiling = np.array([np.inf, PLANT.x_ss[1] + 20.0])
    x0 = PLANT.from_deviation(np.array([-0.5, 15.0]))
    info = Controller(_fp(x_ub=ceiling, soft=False), "ipopt").step(x0)[1]
    assert info["success"] and info["prediction"][:, 1].max() <= ceiling[1] + 1e-4
    assert "state" not in info["slacks"]


def test_path_constraint_and_terminal_set_are_imposed():
    x, u = ca.MX.sym("x", 2), ca.MX.sym("u", 2)
    cool = PathConstraint(ca.Function("g", [x, u], [u[1] + 1e5]), scale=[1e5], name="cooling Q ≤ −1e5")
    info = Controller(_fp(path=cool), "ipopt").step(HOT)[1]
    assert np.all(info["plan"][:, 1] <= -1e5 + 1.0)
    ts = Ellipsoid(PLANT.P, level=200.0, soft=False)
    info = Controller(_fp(terminal_set=ts, terminal_cost=10 * PLANT.P), "ipopt").step(HOT)[1]
    e = info["prediction"][-1] - PLANT.x_ss
    assert info["success"] and e @ PLANT.P @ e <= 200.0 + 1e-3


def test_per_step_reference_and_parameter_blocks():
    pb = _fp()
    X_ref = np.tile(PLANT.x_ss, (N, 1))
    X_ref[2:] += [0.3, -10.0]
    p = pb.parameters(HOT, x_ref=X_ref)
    np.testing.assert_allclose(pb.block(p, "x_ref"), X_ref)
    np.testing.assert_allclose(pb.block(p, "x0"), HOT)
    with pytest.raises(Exception, match=r"\(5, 2\)"):
        pb.parameters(HOT, x_ref=X_ref[:3])


def _scaled(model, n_in):
    return Scaled(model, np.r_[PLANT.x_ss, PLANT.u_ss][:n_in], np.r_[1.0, 50.0, 1.0, 2.5e5][:n_in],
                  np.zeros(model.n_out), np.ones(model.n_out)).double()


def test_certificate_composes_the_constraints():
    torch.manual_seed(0)
    convex = HorizonModel(_scaled(build("icrnn", 4, 2, hidden=8, layers=1, doubled=[2, 3]), 4), 2, 2, N,
                          kind="state")
    kw = dict(u_lb=PLANT.u_lb, u_ub=PLANT.u_ub, u_ref=PLANT.u_ss, x_ref=PLANT.x_ss, input_names=PLANT.input_names)
    below = MPCProblem(convex, N, x_lb=[0.5, 300.0], **kw).certificate()
    assert not below.convex
    assert any("state lower bound" in r and "bounded below" in r for r in below.reasons), below.reasons
    above = MPCProblem(convex, N, x_ub=[5.0, 500.0], **kw).certificate()
    assert not any("state upper bound" in r for r in above.reasons), above.reasons
    x, u = ca.MX.sym("x", 2), ca.MX.sym("u", 2)
    path = MPCProblem(convex, N, path=PathConstraint(ca.Function("g", [x, u], [x[0] - 3.0])), **kw).certificate()
    assert any("CasADi expression" in r for r in path.reasons)
    terminal = MPCProblem(convex, N, terminal_set=Ellipsoid(PLANT.P, 10.0), **kw).certificate()
    assert any("terminal set" in r for r in terminal.reasons)


def test_a_cost_model_refuses_state_constraints():
    torch.manual_seed(0)
    cost = HorizonModel(_scaled(build("icnn", 4, 1, hidden=4, layers=1), 4), 2, 2, N, kind="cost")
    with pytest.raises(InvalidValueError, match="x_ub"):
        MPCProblem(cost, N, u_lb=PLANT.u_lb, u_ub=PLANT.u_ub, x_ub=CEILING)


def test_measured_disturbances_enter_the_predictions():
    from plants import PVConverter

    pv = PVConverter()
    pb = MPCProblem(FirstPrinciples(pv), 3, u_lb=pv.u_lb, u_ub=pv.u_ub, u_ref=pv.u_ss, x_ref=pv.x_ss,
                    x_scale=[10.0, 5.0, 1.0])
    w = pb.cold_start(pb.parameters(pv.x_ss))
    dim = np.array(pb.predict_fn(w, pb.parameters(pv.x_ss, d=[600.0, 25.0]))[0])
    nominal = np.array(pb.predict_fn(w, pb.parameters(pv.x_ss))[0])
    assert dim[-1, 0] < nominal[-1, 0] - 1.0  # less irradiance: the array voltage sags
    forecast = np.array([[1000.0, 25.0], [1000.0, 25.0], [600.0, 25.0]])
    per_step = np.array(pb.predict_fn(w, pb.parameters(pv.x_ss, d=forecast))[0])
    np.testing.assert_allclose(per_step[:2], nominal[:2])
    with pytest.raises(InvalidValueError, match="takes no measured disturbances"):
        Controller(_fp(), "ipopt").step(HOT, d=[1.0])


def test_mixed_sides_share_one_slack_per_bounded_state():
    floor = np.array([PLANT.x_ss[0] - 0.5, -np.inf])  # C_A from below, T from above
    info = Controller(_fp(x_lb=floor, x_ub=CEILING), "ipopt").step(HOT)[1]
    slack = info["slacks"]["state"]
    assert info["success"] and slack.shape == (N, 2)
    below = np.maximum(floor[0] - info["prediction"][:, 0], 0.0)
    above = np.maximum(info["prediction"][:, 1] - CEILING[1], 0.0)
    np.testing.assert_allclose(slack, np.c_[below, above], atol=1e-3)
