"""Real-time iterations: the interval linearisation equals CasADi AD of the whole problem, RTI tracks converged
Ipopt in closed loop, sqp-gn converges to Ipopt's solution, both QP forms agree, and a bad iterate falls back."""

import numpy as np
import pytest

import icctrl
from icctrl.errors import InvalidValueError, UnknownNameError
from icctrl.mpc import SUCCESS, Controller, FirstPrinciples, OneStepModel, run_episode
from icctrl.mpc._defaults import CSTR_R, CSTR_SETTLE, cstr_problem, default_controller
from icctrl.mpc._derivatives import digest
from icctrl.mpc._linearise import GenericLinearisation, IntervalLinearisation
from icctrl.mpc._rti import RTISolver
from plants import CSTR

PLANT = CSTR()
X0 = PLANT.from_deviation(np.array([0.75, -40.0]))


@pytest.fixture(scope="module")
def fp_problem():
    return cstr_problem(FirstPrinciples(PLANT), horizon=6)


@pytest.fixture(scope="module")
def iclstm_problem():
    m = icctrl.load_default("cstr", "iclstm").double().eval()
    return cstr_problem(OneStepModel(m, 2, 2, window=5), horizon=4)


def _point(pb, seed=0):
    rng = np.random.default_rng(seed)
    w = np.concatenate([rng.uniform(-1, 1, pb.N * pb.nu), rng.normal(0, 0.3, pb.n_states), [0.2] * pb.n_slack])
    return w, pb.parameters(PLANT.x_ss + [0.3, 10.0], PLANT.u_ss, bias=[0.01, 0.5])


@pytest.mark.parametrize("which", ["fp_problem", "iclstm_problem"])
def test_interval_linearisation_equals_ad_of_the_whole_problem(which, request):
    pb = request.getfixturevalue(which)
    w, p = _point(pb)
    a = GenericLinearisation(pb, "mx", hessian=False)(w, p)
    b = IntervalLinearisation(pb, "mx", hessian=False)(w, p)
    for key in ("J", "g", "grad", "G", "Gp"):
        np.testing.assert_allclose(b[key], a[key], rtol=1e-9, atol=1e-10, err_msg=key)
    assert np.abs(b["G"][: pb.n_states, pb.N * pb.nu: pb.N * pb.nu + pb.n_states]).max() > 0  # dynamics rows
    sx = IntervalLinearisation(pb, "sx", hessian=False)(w, p)
    np.testing.assert_allclose(sx["G"], a["G"], rtol=1e-9, atol=1e-10)
    if which == "iclstm_problem":  # batched forward-mode tangents read from the model's graph
        tg = IntervalLinearisation(pb, "tangent", hessian=False)(w, p)
        for key in ("g", "G", "Gp"):
            np.testing.assert_allclose(tg[key], a[key], rtol=1e-9, atol=1e-10, err_msg=key)
        fd = IntervalLinearisation(pb, "differences", hessian=False)(w, p)  # forward differences, same graph
        np.testing.assert_array_equal(fd["g"], tg["g"])
        assert np.abs(fd["G"] - a["G"]).max() < 1e-6 * np.abs(a["G"]).max()


def test_multi_level_refresh_keeps_values_exact_and_reuses_shifted_jacobians(iclstm_problem):
    pb = iclstm_problem
    w, p = _point(pb)
    exact = IntervalLinearisation(pb, "tangent", hessian=False)
    lin = IntervalLinearisation(pb, "tangent", hessian=False, refresh=1)
    first = lin(w, p)
    np.testing.assert_allclose(first["G"], exact(w, p)["G"], rtol=1e-12)  # nothing stored yet: all exact
    w2 = pb.shift(w)
    w2[: pb.N * pb.nu] += 0.05
    a, b = exact(w2, p), lin(w2, p)
    assert lin.refreshed == 1
    np.testing.assert_allclose(b["g"], a["g"], rtol=1e-12, atol=1e-12)  # residuals always exact
    rows = np.arange(pb.nx) * pb.N  # the first interval's dynamics rows (state-major): always refreshed
    np.testing.assert_allclose(b["G"][rows], a["G"][rows], rtol=1e-12, atol=1e-12)
    stale = np.abs(b["G"] - a["G"]).max()
    assert 0 < stale < 0.5 * np.abs(a["G"]).max()  # later intervals reuse the shifted Jacobians
    lin.reset()
    np.testing.assert_allclose(lin(w2, p)["G"], a["G"], rtol=1e-12)


def test_rti_closed_loop_tracks_converged_ipopt(fp_problem):
    costs = {}
    for solver in ("ipopt", "rti"):
        ep = run_episode(PLANT, Controller(fp_problem, solver), X0, 25, Q=PLANT.P, R=CSTR_R,
                         settle_tol=CSTR_SETTLE)
        assert ep.settled and all(i["success"] for i in ep.infos), solver
        costs[solver] = ep.cost
        if solver == "rti":
            for info in ep.infos:
                assert info["prepare_time"] > 0 and info["feedback_time"] > 0
                assert info["solve_time"] == pytest.approx(info["prepare_time"] + info["feedback_time"])
                assert info["iterations"] == 1 and 0 <= info["model_gap"] < 0.05  # one QP, a small linearisation gap
    assert costs["rti"] == pytest.approx(costs["ipopt"], rel=0.01)


def test_prepare_runs_between_steps_and_feedback_uses_the_measured_state(fp_problem):
    ctrl = Controller(fp_problem, "rti")
    ctrl.step(X0)
    assert not ctrl.backend.prepared
    ctrl.prepare()
    assert ctrl.backend.prepared
    x1 = PLANT.step(X0, ctrl._u_last)
    u, info = ctrl.step(x1)
    assert info["status"] == SUCCESS
    # the same step linearised at the measured state instead of the predicted one: equal to second order
    ref = Controller(fp_problem, "rti")
    ref.step(X0)
    u2, _ = ref.step(x1)
    np.testing.assert_allclose(u, u2, rtol=1e-3)


@pytest.mark.parametrize("which", ["fp_problem", "iclstm_problem"])
def test_sqp_gn_converges_to_the_ipopt_solution(which, request):
    pb = request.getfixturevalue(which)
    x = PLANT.from_deviation(np.array([-1.5, 70.0])) if which == "fp_problem" else X0
    u_ip, i_ip = Controller(pb, "ipopt", tol=1e-10).step(x)
    u_gn, i_gn = Controller(pb, "sqp-gn", tol=1e-9, max_iter=100).step(x)
    assert i_gn["success"] and i_gn["iterations"] > 1
    np.testing.assert_allclose(i_gn["plan"], i_ip["plan"], rtol=1e-4, atol=1e-4 * np.abs(PLANT.u_ub).max())


def test_condensed_and_sparse_qps_give_the_same_step(fp_problem):
    w, p = _point(fp_problem)
    out = {}
    for qp, plugin in (("condensed", "daqp"), ("condensed", "qrqp"), ("sparse", "piqp"), ("sparse", "osqp")):
        s = RTISolver(fp_problem, "rti", qp=qp, qp_solver=plugin)
        s.prepare(w, p)
        out[(qp, plugin)] = s.feedback(p)
        assert out[(qp, plugin)][1], (qp, plugin, out[(qp, plugin)][2])
    ref = out[("condensed", "daqp")][0]
    for key, r in out.items():
        np.testing.assert_allclose(r[0][: fp_problem.N * 2], ref[: fp_problem.N * 2], atol=2e-5, err_msg=str(key))


def test_inconsistent_linearisation_falls_back(fp_problem):
    """A gap between the QP's prediction and the model above the tolerance is never applied."""
    ctrl = Controller(fp_problem, "rti", consistency_tol=1e-12)
    ctrl.backend.consistency = lambda w, p: 1e-3  # a linearisation 1e-3 away from the model
    u, info = ctrl.step(X0)
    assert not info["success"] and info["status"] == "fallback_hold"
    assert info["solver_status"].startswith("model_inconsistent")
    np.testing.assert_allclose(u, PLANT.u_ss)


def test_failed_qp_is_never_applied(fp_problem):
    ctrl = Controller(fp_problem, "rti")
    ctrl.step(X0)
    ctrl.backend.qp.solve = lambda *a: (np.full(ctrl.backend.qp.n, np.nan), False, "MAX_ITER", 5)
    u, info = ctrl.step(X0)
    assert info["status"] == "fallback_shifted" and not info["success"]


def test_bad_options_are_named():
    pb = cstr_problem(FirstPrinciples(PLANT), horizon=3)
    with pytest.raises(UnknownNameError, match="dense"):
        RTISolver(pb, "rti", qp="dense")
    with pytest.raises(UnknownNameError, match="nope"):
        RTISolver(pb, "rti", qp_solver="nope")
    with pytest.raises(UnknownNameError, match="jit"):
        RTISolver(pb, "rti", derivatives="jit")
    with pytest.raises(InvalidValueError, match="consistency_tol"):
        RTISolver(pb, "rti", consistency_tol=-1.0)
    single = cstr_problem(FirstPrinciples(PLANT), horizon=3, shooting="single")
    with pytest.raises(InvalidValueError, match="multiple shooting"):
        RTISolver(single, "rti")
    with pytest.raises(InvalidValueError, match="learned one-period model"):
        RTISolver(pb, "rti", derivatives="tangent")
    with pytest.raises(InvalidValueError, match="refresh"):
        RTISolver(pb, "rti", refresh=2)
    with pytest.raises(InvalidValueError, match="sqp-gn"):
        RTISolver(pb, "sqp-gn", refresh=2)


def test_codegen_derivatives_are_compiled_once_and_cached(tmp_path, monkeypatch, fp_problem):
    monkeypatch.setenv("ICCTRL_CACHE", str(tmp_path))
    w, p = _point(fp_problem)
    lin = IntervalLinearisation(fp_problem, "codegen", hessian=False)
    libs = sorted((tmp_path / "codegen").glob("*.so"))
    assert len(libs) == 1 and digest(lin.period.f) != ""
    mtime = libs[0].stat().st_mtime_ns
    again = IntervalLinearisation(fp_problem, "codegen", hessian=False)
    assert [x.stat().st_mtime_ns for x in (tmp_path / "codegen").glob("*.so")] == [mtime]
    ref = IntervalLinearisation(fp_problem, "mx", hessian=False)(w, p)
    np.testing.assert_allclose(again(w, p)["G"], ref["G"], rtol=1e-10, atol=1e-12)


def test_learned_state_models_default_to_rti():
    ctrl = default_controller("cstr", "iclstm", horizon=3, lyapunov=False)
    assert ctrl.solver_name == "rti" and isinstance(ctrl.backend, RTISolver)
    assert ctrl.backend.derivatives == "differences"  # a gated model: differences skip the product rule
    assert default_controller("cstr", "iclrnn", horizon=3, lyapunov=False).backend.derivatives == "tangent"
    assert default_controller("cstr", "iclstm", solver="sqp-gn", horizon=3).backend.derivatives == "tangent"
    assert default_controller("cstr", "iclstm", solver="ipopt", horizon=3).solver_name == "ipopt"
    u, info = ctrl.step(X0)
    assert info["success"] and {"prepare_time", "feedback_time"} <= set(info)


def test_interval_linearisation_with_measured_disturbances():
    """A period (x, u, d) with measured disturbances: d enters through the parameters, exactly."""
    from icctrl.mpc import controller
    from plants.pv_converter import PVConverter

    pv = PVConverter()
    pb = controller(pv, "first_principles", horizon=3, solver="rti").problem
    assert pb.nd == 2 and pb.period_fn.n_in() == 3
    rng = np.random.default_rng(1)
    w = np.concatenate([rng.uniform(-1, 1, pb.N * pb.nu), rng.normal(0, 0.1, pb.n_states), [0.1] * pb.n_slack])
    p = pb.parameters(pv.x_ss, pv.u_ss, d=[[800.0, 40.0], [700.0, 41.0], [600.0, 42.0]])
    a = GenericLinearisation(pb, "mx", hessian=False)(w, p)
    b = IntervalLinearisation(pb, "mx", hessian=False)(w, p)
    for key in ("g", "G", "Gp"):
        np.testing.assert_allclose(b[key], a[key], rtol=1e-8, atol=1e-9 * np.abs(a[key]).max(), err_msg=key)
    d_cols = slice(*[pb.layout["d"][0] + k for k in (0, 6)])
    assert np.abs(b["Gp"][:, d_cols]).max() > 0  # the disturbances do move the dynamics rows


def test_step_reuses_the_consistency_evaluation_and_reads_lifted_predictions():
    """The offset-free update takes f(x, u) from the back-end's consistency check when it saw that point, and
    the predictions of a multiple-shooting solution are its lifted states: both equal the direct model calls."""
    ctrl = default_controller("cstr", "iclstm", horizon=4, lyapunov=False)
    pb = ctrl.problem
    u, info = ctrl.step(X0)
    assert info["success"]
    x0, u0, _, f = ctrl.backend.model_step
    np.testing.assert_array_equal(x0, X0)
    np.testing.assert_array_equal(u0, u)
    direct = np.array(pb.period_fn(X0, u)).ravel()
    np.testing.assert_allclose(f, direct, rtol=1e-12)
    np.testing.assert_allclose(ctrl._model_step(X0, u, None), direct, rtol=1e-12)
    other = u + [0.1, 0.0]  # a point the check did not see: the model is called
    np.testing.assert_allclose(ctrl._model_step(X0, other, None), np.array(pb.period_fn(X0, other)).ravel(),
                               rtol=1e-12)
    p = pb.parameters(X0, u)
    np.testing.assert_allclose(pb.predictions(ctrl._v, p), np.array(pb.predict_fn(ctrl._v, p)[0]), rtol=1e-12)
    np.testing.assert_allclose(info["prediction"], np.array(pb.predict_fn(ctrl._v, pb.parameters(X0))[0]),
                               rtol=1e-12)


def test_parameters_with_and_without_explicit_nominal_blocks_agree(iclstm_problem):
    pb = iclstm_problem
    x = PLANT.x_ss + [0.2, 5.0]
    a = pb.parameters(x, PLANT.u_ss)
    b = pb.parameters(x, PLANT.u_ss, x_ref=pb.x_ref, d=pb.predictor.d_nom, u_ref=pb.u_ref, bias=np.zeros(pb.nx))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(InvalidValueError, match="u_ref"):
        pb.parameters(x, u_ref=pb.u_ub + 1.0)


def test_qp_data_that_overflow_are_a_failed_feedback_without_numpy_warnings():
    import warnings

    ctrl = default_controller("cstr", "iclstm", horizon=3)
    pb, be = ctrl.problem, ctrl.backend
    p = pb.parameters(PLANT.x_ss)
    be.prepare(pb.cold_start(p), p)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in the QP data must not surface as a RuntimeWarning
        w, ok, status, *_ = be.feedback(p + 1e308 * np.sign(p + 0.5))
    assert not ok and status.startswith("non_finite_linearisation") and not be.prepared


def test_a_model_overflowing_far_outside_its_data_is_a_failed_solve_without_numpy_warnings():
    import warnings

    ctrl = default_controller("cstr", "iclstm", horizon=3)
    pb, be = ctrl.problem, ctrl.backend
    p = pb.parameters(PLANT.x_ss * np.array([1e150, 1e150]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = be.solve(p, pb.cold_start(p))
    assert not res.ok and "non_finite" in res.status
