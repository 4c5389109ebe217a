"""`icctrl.mpc.controller` for any plant: a second plant with an active state constraint and measured
disturbances, references a controller would ignore, models that say where they were trained."""

import warnings

import numpy as np
import pytest

from icctrl.errors import CheckpointError, InvalidValueError, ShapeError
from icctrl.mpc import ExtrapolationWarning, controller, default_controller, run_episode
from icctrl.mpc._defaults import CSTR_OFFSET, CSTR_R, CSTR_SETTLE
from icctrl.mpc._factory import predictor_for
from plants import CSTR, PVConverter

CSTR_PLANT = CSTR()
FAR = np.array([0.3, 300.0])  # V(x) ≈ 42 ρ: far outside where the models were trained


def _pv_run(ctrl, pv, steps=9):
    x, bright = pv.x_ss.copy(), np.array([1200.0, 25.0])  # irradiance steps up at k = 2, measured
    xs, infos = [], []
    for k in range(steps):
        d = pv.d_nom if k < 2 else bright
        u, info = ctrl.step(x, d=d)
        x = pv.step(x, u, d=d)
        xs.append(x)
        infos.append(info)
    return np.array(xs), infos


def test_second_plant_holds_an_active_current_limit_under_a_measured_irradiance_step():
    pv = PVConverter()
    i_max = pv.x_ss[1] + 2.0
    limited = controller(pv, "first_principles", horizon=5, R=[0.1], x_ub=[np.inf, i_max, np.inf])
    free = controller(pv, "first_principles", horizon=5, R=[0.1])
    xs, infos = _pv_run(limited, pv)
    xs_free, _ = _pv_run(free, pv)
    assert xs_free[:, 1].max() > i_max + 0.5  # without the limit the current would go past it
    assert xs[:, 1].max() <= i_max + 0.05  # with it the plant stays at the limit
    assert np.isclose(xs[-1, 1], i_max, atol=0.05)  # active: the current sits on its bound
    assert all(i["success"] for i in infos)
    assert max(i["constraint_violation"] for i in infos) < 0.05


def test_factory_refuses_bad_arguments():
    with pytest.raises(InvalidValueError, match="Plant"):
        controller("cstr", "first_principles")
    with pytest.raises(InvalidValueError, match="horizn"):
        controller(CSTR_PLANT, "first_principles", horizn=5)
    with pytest.raises(InvalidValueError, match="on_extrapolation"):
        controller(CSTR_PLANT, "first_principles", on_extrapolation="panic")


def test_horizon_models_must_declare_their_kind():
    import icctrl

    m = icctrl.load_default("cstr", "icrnn_cost").double()
    assert predictor_for(m, CSTR_PLANT, 10).kind == "cost"
    m.info = {**m.info, "train_config": {"tags": {"layout": "multi_step"}}, "dataset": {}}
    with pytest.raises(CheckpointError, match="kind="):
        predictor_for(m, CSTR_PLANT, 10)
    with pytest.raises(ShapeError, match="1 outputs"):  # declared, then checked against the sizes
        predictor_for(m, CSTR_PLANT, 10, kind="state")


def test_convex_controller_refuses_a_reference_and_ends_without_offset():
    ctrl = default_controller("cstr", "convex", horizon=10)
    with pytest.raises(InvalidValueError, match="no reference input"):
        ctrl.step(CSTR_PLANT.x_ss, x_ref=CSTR_PLANT.x_ss + [0.5, -15.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        ep = run_episode(CSTR_PLANT, ctrl, CSTR_PLANT.from_deviation(np.array([0.75, -40.0])), 40, Q=CSTR_PLANT.P,
                         R=CSTR_R, settle_tol=CSTR_SETTLE)
    assert np.all(ep.offset < CSTR_OFFSET), ep.offset


def test_state_model_controller_tracks_a_setpoint_step():
    x_new = CSTR_PLANT._solve_steady_state(CSTR_PLANT.x_ss, CSTR_PLANT.u_ss + np.array([0.2, 0.0]))
    ctrl = default_controller("cstr", "iclstm", horizon=5)
    assert ctrl.region.contains(x_new)
    ep = run_episode(CSTR_PLANT, ctrl, CSTR_PLANT.x_ss, 40, Q=CSTR_PLANT.P, R=CSTR_R, settle_tol=CSTR_SETTLE,
                     setpoint=lambda k: None if k < 5 else x_new)
    assert ep.settled and np.all(ep.offset < CSTR_SETTLE), ep.offset


def test_extrapolation_is_flagged_and_the_policy_applied():
    with pytest.warns(ExtrapolationWarning, match="trained in"):
        u, info = default_controller("cstr", "iclstm", horizon=3).step(FAR)
    assert info["extrapolating"] is True
    ok = default_controller("cstr", "iclstm", horizon=3, on_extrapolation="ignore").step(CSTR_PLANT.x_ss)[1]
    assert ok["extrapolating"] is False and ok["status"] == "success"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "ignore" must not warn
        info = default_controller("cstr", "iclstm", horizon=3, on_extrapolation="ignore").step(FAR)[1]
    assert info["extrapolating"] and info["status"] == "success"
    fb = default_controller("cstr", "iclstm", horizon=3, on_extrapolation="fallback")
    u, info = fb.step(FAR)
    assert info["status"] == "fallback_hold" and info["fallback_reason"] == "extrapolating"
    np.testing.assert_allclose(u, CSTR_PLANT.u_ss)
    assert default_controller("cstr", "first_principles", horizon=3).step(FAR)[1]["extrapolating"] is False


def test_extrapolation_checks_every_predicted_state_and_input():
    ctrl = default_controller("cstr", "iclstm", horizon=3, on_extrapolation="ignore")
    x, N = CSTR_PLANT.x_ss, ctrl.problem.N
    inside = np.tile(x, (N, 1))
    assert not ctrl.extrapolating(x, inside, np.tile(CSTR_PLANT.u_ss, (N, 1)))
    for k in range(N):  # one predicted state far out, the current state inside: flagged
        pred = inside.copy()
        pred[k] = FAR
        assert ctrl.extrapolating(x, pred)
    assert ctrl.extrapolating(FAR, inside)
    plan = np.tile(CSTR_PLANT.u_ss, (N, 1))
    plan[-1] = CSTR_PLANT.u_ub + 10 * (CSTR_PLANT.u_ub - CSTR_PLANT.u_lb)
    assert ctrl.extrapolating(x, inside, plan)


def test_per_step_reference_input_outside_the_bounds_is_named():
    pb = default_controller("cstr", "iclstm", horizon=3).problem
    U = np.tile(pb.u_ref, (pb.N, 1))
    pb.parameters(CSTR_PLANT.x_ss, u_ref=U)
    U[1] = pb.u_ub + 1.0
    with pytest.raises(InvalidValueError, match=r"u_ref=\[" + str(U[1][0])[:4]):
        pb.parameters(CSTR_PLANT.x_ss, u_ref=U)


def test_soft_ceiling_violation_of_a_learned_controller_stays_near_the_nmpc():
    from icctrl.mpc._demo import CEILING_START, ceiling_controller

    x_ub = np.array([np.inf, CSTR_PLANT.x_ss[1] + 30.0])
    start = CSTR_PLANT.from_deviation(np.array(CEILING_START))
    viol = {}
    for name in ("first_principles", "iclstm"):
        ctrl = ceiling_controller(name, None, 10)
        ep = run_episode(CSTR_PLANT, ctrl, start, 20, Q=CSTR_PLANT.P, R=CSTR_R, settle_tol=CSTR_SETTLE, x_ub=x_ub)
        viol[name] = ep.violation
    assert viol["first_principles"] > 0  # the ceiling binds: the start is 40 K above it
    assert viol["iclstm"] <= 1.2 * viol["first_principles"], viol
