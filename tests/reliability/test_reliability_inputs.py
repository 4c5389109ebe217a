"""Bad-input matrix: every malformed state, parameter, bound, name, dimension, dt or region is refused with a
specific icctrl error that names the bad value, before anything is solved or integrated."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import icctrl
from icctrl.errors import (
    IcctrlError,
    InfeasibleError,
    InvalidValueError,
    ShapeError,
    UnknownNameError,
)
from icctrl.mpc import Controller, FirstPrinciples, HorizonModel, MPCProblem, OneStepModel
from icctrl.mpc._defaults import cstr_problem, default_controller
from icctrl.nn import build
from plants import CSTR, Microgrid

PLANT = CSTR()
FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NON_FINITE = st.sampled_from([np.nan, np.inf, -np.inf])


@functools.cache
def fp_controller() -> Controller:
    """One compiled first-principles controller (horizon 3) shared by the property tests."""
    return Controller(cstr_problem(FirstPrinciples(PLANT), horizon=3), "ipopt",
                      state_bounds=(PLANT.x_lb, PLANT.x_ub))


def _named(value: float) -> str:
    """How an error message prints a float value."""
    return "nan" if np.isnan(value) else repr(value)


def _assert_names_value(exc: BaseException, value: float) -> None:
    text = str(exc).lower()
    assert ("nan" if np.isnan(value) else "inf") in text, text


# ---- NaN / inf / wrong-shape states and parameters ----
@FAST
@given(pos=st.integers(0, 1), bad=NON_FINITE)
def test_controller_refuses_a_non_finite_state_before_solving(pos, bad):
    ctrl = fp_controller()
    before = ctrl.stats["steps"]
    x = PLANT.x_ss.copy()
    x[pos] = bad
    with pytest.raises(InvalidValueError) as err:
        ctrl.step(x)
    _assert_names_value(err.value, bad)
    assert ctrl.stats["steps"] == before  # nothing was solved


@FAST
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4).filter(lambda s: s != (2,)))
def test_controller_refuses_a_wrongly_shaped_state(shape):
    with pytest.raises(ShapeError) as err:
        fp_controller().step(np.full(shape, 1.0))
    assert str(shape) in str(err.value)


@FAST
@given(what=st.sampled_from(["u_prev", "x_ref"]), pos=st.integers(0, 1), bad=NON_FINITE)
def test_problem_parameters_refuse_non_finite_values(what, pos, bad):
    pb = fp_controller().problem
    v = (PLANT.u_ss if what == "u_prev" else PLANT.x_ss).copy()
    v[pos] = bad
    with pytest.raises(InvalidValueError, match=what) as err:
        pb.parameters(PLANT.x_ss, **{what: v})
    _assert_names_value(err.value, bad)


@FAST
@given(what=st.sampled_from(["x0", "u_prev", "x_ref"]), n=st.integers(0, 6).filter(lambda n: n != 2))
def test_problem_parameters_refuse_wrong_sizes(what, n):
    pb = fp_controller().problem
    args = {"x0": PLANT.x_ss, "u_prev": None, "x_ref": None, what: np.ones(n)}
    with pytest.raises(ShapeError, match=f"got {n}"):
        pb.parameters(args["x0"], args["u_prev"], args["x_ref"])


@FAST
@given(x=hnp.arrays(float, 2, elements=st.floats(-1e4, 1e4)))
def test_plant_refuses_states_outside_its_valid_region(x):
    outside = np.any(x < PLANT.x_lb) or np.any(x > PLANT.x_ub)
    if not outside:
        np.testing.assert_array_equal(PLANT.check_state(x), x)
        return
    with pytest.raises(InvalidValueError, match="valid region") as err:
        PLANT.step(x, PLANT.u_ss)
    i = int(np.argmax((x < PLANT.x_lb) | (x > PLANT.x_ub)))
    assert repr(float(x[i])) in str(err.value)


@FAST
@given(pos=st.integers(0, 1), bad=NON_FINITE, which=st.sampled_from(["x", "u"]))
def test_plant_step_refuses_non_finite_state_or_input(pos, bad, which):
    x, u = PLANT.x_ss.copy(), PLANT.u_ss.copy()
    (x if which == "x" else u)[pos] = bad
    with pytest.raises(InvalidValueError, match="finite") as err:
        PLANT.step(x, u)
    _assert_names_value(err.value, bad)


@FAST
@given(u=hnp.arrays(float, 2, elements=st.floats(-2e6, 2e6)))
def test_plant_refuses_inputs_outside_the_hard_bounds(u):
    slack = 1e-9 * (PLANT.u_ub - PLANT.u_lb)
    if np.all(u >= PLANT.u_lb - slack) and np.all(u <= PLANT.u_ub + slack):
        return
    with pytest.raises(InvalidValueError, match="bounds") as err:
        PLANT.step(PLANT.x_ss, u)
    assert "input" in str(err.value)


def test_model_forward_refuses_wrong_shapes_and_non_tensors():
    m = icctrl.load_default("cstr", "iclstm")
    with pytest.raises(ShapeError, match=r"\(1, 3, 5\)"):
        m(torch.zeros(1, 3, 5))
    with pytest.raises(ShapeError, match="ndarray"):
        m(np.zeros((1, 3, 4)))
    with pytest.raises(ShapeError):
        m(torch.zeros(4))


def test_model_forward_propagates_non_finite_inputs_rather_than_hiding_them():
    """Documented behaviour: a model is a pure function; a NaN input gives NaN outputs (never a finite value),
    and the boundaries (Controller.step, MPCProblem.parameters, plants, datasets) refuse non-finite values."""
    m = icctrl.load_default("cstr", "iclstm")
    x = torch.zeros(1, 3, 4)
    x[0, 0, 0] = float("nan")
    with torch.no_grad():
        y = m(x)
    assert torch.isnan(y[0, 0]).all() and torch.isnan(y).all()


def test_casadi_export_propagates_non_finite_inputs_like_torch():
    from icctrl.export import to_casadi

    m = icctrl.load_default("cstr", "iclstm").double()
    X = np.zeros((3, 4))
    X[0, 0] = np.nan
    y = np.array(to_casadi(m, window=3)(X))
    assert np.isnan(y).all()


# ---- references outside bounds ----
def test_input_reference_outside_the_bounds_is_refused():
    with pytest.raises(InvalidValueError, match="100"):
        MPCProblem(FirstPrinciples(PLANT), 3, u_lb=PLANT.u_lb, u_ub=PLANT.u_ub, u_ref=[100.0, 0.0])


@pytest.mark.parametrize("kw", [{"x_ref": [-5.0, 10000.0]}, {"u_prev": [100.0, 1e9]}])
def test_state_reference_and_previous_input_outside_the_bounds_are_refused(kw):
    ctrl = fp_controller()
    with pytest.raises(InvalidValueError):
        ctrl.step(PLANT.x_ss, **kw)


# ---- infeasible constraint sets, horizon, problem weights ----
@FAST
@given(lb=hnp.arrays(float, 2, elements=st.floats(-10, 10)),
       gap=hnp.arrays(float, 2, elements=st.floats(-5, 5)))
def test_empty_input_bounds_are_infeasible(lb, gap):
    ub = lb + gap
    if np.all(lb < ub):
        MPCProblem(FirstPrinciples(PLANT), 1, u_lb=lb, u_ub=ub)  # a non-empty box is accepted
        return
    with pytest.raises(InfeasibleError, match="empty") as err:
        MPCProblem(FirstPrinciples(PLANT), 1, u_lb=lb, u_ub=ub)
    assert str(lb.tolist()) in str(err.value)


@FAST
@given(du=hnp.arrays(float, 2, elements=st.floats(-1e3, 1e3)).filter(lambda d: np.any(d <= 0)))
def test_non_positive_rate_limits_are_infeasible(du):
    with pytest.raises(InfeasibleError, match="du_max") as err:
        MPCProblem(FirstPrinciples(PLANT), 2, u_lb=PLANT.u_lb, u_ub=PLANT.u_ub, du_max=du)
    assert str(du.tolist()) in str(err.value)


@pytest.mark.parametrize("horizon", [0, -3, 2.5, "10", None])
def test_horizon_below_one_or_not_an_integer_is_refused(horizon):
    with pytest.raises(InvalidValueError, match="horizon") as err:
        MPCProblem(FirstPrinciples(PLANT), horizon, u_lb=PLANT.u_lb, u_ub=PLANT.u_ub)
    assert repr(horizon) in str(err.value)


def test_default_controller_with_horizon_zero_is_refused():
    with pytest.raises(InvalidValueError, match="got 0"):
        default_controller("cstr", "first_principles", horizon=0)


@pytest.mark.parametrize("kw", [
    {"Q": [[np.nan, 0.0], [0.0, 1.0]]}, {"Q": [1.0, 2.0, 3.0]}, {"Q": [[1.0, 0.0], [0.0, -1.0]]},
    {"R": [-1.0, 1.0]}, {"cost_scale": 0.0}, {"cost_scale": -1.0}, {"x_scale": [0.0, 1.0]},
], ids=["Q-nan", "Q-shape", "Q-indefinite", "R-negative", "cost_scale-0", "cost_scale-negative", "x_scale-0"])
def test_invalid_cost_weights_are_refused(kw):
    with pytest.raises(IcctrlError):
        MPCProblem(FirstPrinciples(PLANT), 2, u_lb=PLANT.u_lb, u_ub=PLANT.u_ub, **kw)


# ---- unknown names and dimension mismatches ----
@pytest.mark.parametrize("call, name", [
    (lambda: default_controller("cstr", "first_principles", solver="gurobi"), "gurobi"),
    (lambda: default_controller("cstr", "no_such_model"), "no_such_model"),
    (lambda: default_controller("reactor", "iclstm"), "reactor"),
    (lambda: build("transformer", 4, 2), "transformer"),
    (lambda: build("icnn", 4, 2, activation="swish"), "swish"),
    (lambda: icctrl.load_default("cstr", "gru"), "gru"),
])
def test_unknown_names_are_refused_naming_them(call, name):
    with pytest.raises(UnknownNameError, match=name):
        call()


def test_unknown_shooting_is_refused():
    with pytest.raises(InvalidValueError, match="triple"):
        MPCProblem(FirstPrinciples(PLANT), 2, u_lb=PLANT.u_lb, u_ub=PLANT.u_ub, shooting="triple")


@FAST
@given(n_in=st.integers(1, 6), n_out=st.integers(1, 4))
def test_model_plant_dimension_mismatch_is_refused(n_in, n_out):
    model = build("icrnn", n_in, n_out, hidden=3, layers=1).double()
    if (n_in, n_out) == (4, 2):
        OneStepModel(model, 2, 2)
        return
    with pytest.raises(ShapeError) as err:
        OneStepModel(model, 2, 2)
    assert f"{n_in} inputs to {n_out} outputs" in str(err.value)
    if n_in != 4:
        with pytest.raises(ShapeError):
            HorizonModel(model, 2, 2, horizon=3, kind="cost")


def test_default_controller_refuses_a_model_of_another_plant():
    model = build("iclstm", 3, 1, hidden=4, layers=1)
    with pytest.raises(ShapeError, match="3 inputs"):
        default_controller("cstr", model)


# ---- dt and plants driven outside their valid region ----
@FAST
@given(dt=st.one_of(st.floats(max_value=0.0), NON_FINITE))
def test_non_positive_or_non_finite_dt_is_refused_everywhere(dt):
    for call in (lambda: PLANT.step(PLANT.x_ss, PLANT.u_ss, dt=dt), lambda: PLANT.casadi_step(dt=dt),
                 lambda: PLANT.simulate(PLANT.x_ss, [PLANT.u_ss], dt=dt),
                 lambda: PLANT.simulate_batch(PLANT.x_ss[None], [PLANT.u_ss], dt=dt),
                 lambda: Microgrid().step([5.0], [0.0], dt=dt)):
        with pytest.raises(InvalidValueError, match="dt") as err:
            call()
        assert _named(dt) in str(err.value)


def test_cstr_driven_below_its_valid_temperature_is_stopped_with_the_step_and_value():
    cooling = np.tile([0.5, PLANT.u_lb[1]], (200, 1))  # full cooling drives T below 200 K
    with pytest.raises(InvalidValueError, match=r"at step \d+: cstr: state T = 1\d\d\.\d+ K"):
        PLANT.simulate(PLANT.x_ss, cooling)
    with pytest.raises(InvalidValueError, match="outside the valid region"):
        PLANT.simulate_batch(PLANT.x_ss[None], cooling)


def test_battery_driven_past_its_capacity_is_refused_with_the_feasible_power():
    mg = Microgrid()
    with pytest.raises(InvalidValueError, match=r"soc = 13\.5 kWh.*feasible p_b"):
        mg.step(mg.x_ub, mg.u_ub)
    with pytest.raises(InvalidValueError, match=r"soc = 0\.0 kWh"):
        mg.step(mg.x_lb, mg.u_lb)


def test_controller_refuses_a_state_outside_the_model_region():
    with pytest.raises(InvalidValueError, match=r"5000\.0.*valid region"):
        fp_controller().step([1.0, 5000.0])
