"""`Plant.step`'s LSODA path against `solve_ivp` LSODA: same accuracy on normal and hot stiff CSTR states,
drifted parameters followed, failures raised, other `ivp_method`s still through solve_ivp."""

import copy

import numpy as np
import pytest

import plants.base
from icctrl.errors import IntegrationError
from icctrl.reliability._faults import FAULTS
from plants import CSTR, PVConverter

AGREE = 1e-7  # relative, on every component of every state
NO_D = np.zeros(0)


@pytest.fixture(scope="module")
def cstr():
    return CSTR()


def _states(cstr, n, hot, seed):
    rng = np.random.default_rng(seed)
    if hot:
        X = np.c_[rng.uniform(0.05, 8.0, n), rng.uniform(600.0, 1000.0, n)]
    else:
        X = cstr.sample_stability_region(n, rng)
    return X, rng.uniform(cstr.u_lb, cstr.u_ub, size=(n, 2))


def _gap(plant, X, U):
    """Largest relative gap between `step` and solve_ivp LSODA from the states X under U."""
    fast = np.array([plant.step(x, u) for x, u in zip(X, U)])
    ref = np.array([plant._advance_solve_ivp(x, u, plant.dt, NO_D) for x, u in zip(X, U)])
    return float(np.max(np.abs(fast - ref) / np.abs(ref)))


@pytest.mark.parametrize("hot", [False, True], ids=["stability_region", "hot_stiff"])
def test_lsoda_path_agrees_with_solve_ivp(cstr, hot):
    X, U = _states(cstr, 12, hot, seed=3)
    assert cstr.ivp_method == "LSODA"
    assert _gap(cstr, X, U) <= AGREE


def test_the_agreement_check_catches_a_looser_integrator(cstr):
    loose = copy.copy(cstr)
    X, U = _states(cstr, 12, True, seed=3)
    ref = np.array([cstr._advance_solve_ivp(x, u, cstr.dt, NO_D) for x, u in zip(X, U)])
    loose.rtol, loose.atol = 1e-4, 1e-6
    fast = np.array([loose.step(x, u) for x, u in zip(X, U)])
    assert np.max(np.abs(fast - ref) / np.abs(ref)) > AGREE


def test_drifted_parameters_are_followed(cstr):
    rng = np.random.default_rng(0)
    true = FAULTS["parameter_drift"].inject(cstr, rng).plant
    assert (true.k0, true.dH) != (cstr.k0, cstr.dH)
    X, U = _states(cstr, 6, False, seed=4)
    nominal = [cstr.step(x, u) for x, u in zip(X, U)]
    drifted = [true.step(x, u) for x, u in zip(X, U)]  # interleaved with the nominal plant's periods
    again = [cstr.step(x, u) for x, u in zip(X, U)]
    np.testing.assert_array_equal(again, nominal)
    assert np.min(np.abs(np.array(drifted) - nominal)[:, 1]) > 1e-3  # T moves with k0, ΔH
    assert _gap(true, X, U) <= AGREE
    true.T0 = cstr.T0 + 10.0  # the disturbance-step fault sets an attribute between periods
    assert _gap(true, X, U) <= AGREE and not np.allclose(true.step(X[0], U[0]), drifted[0], rtol=1e-6)


def test_a_failed_integration_names_x_u_and_dt(cstr, monkeypatch):
    blowing_up = copy.copy(cstr)
    blowing_up._rhs = lambda x, u, d: np.array([0.0, 1e3 * x[1] ** 2])  # T' = 1e3 T² leaves to infinity
    with pytest.warns(UserWarning), pytest.raises(IntegrationError, match=r"LSODA failed from x=\[.*u=\[.*dt=0\.005"):
        blowing_up.step(cstr.x_ss, cstr.u_ss)
    nan = copy.copy(cstr)
    nan._rhs = lambda x, u, d: np.array([np.nan, np.nan])
    with pytest.raises(IntegrationError, match=r"from x=\[.*with u=\[.*dt=0\.005.*non-finite"):
        nan.step(cstr.x_ss, cstr.u_ss)
    monkeypatch.setattr(plants.base, "LSODA_MAX_STEPS", 5)
    monkeypatch.setattr(plants.base._LSODA, "solvers", {})  # built afresh with the 5-step limit, then dropped
    with pytest.warns(UserWarning), pytest.raises(IntegrationError, match=r"dt=0\.005: excess work .*code -1"):
        cstr.step([2.0, 900.0], cstr.u_ss)
    monkeypatch.undo()
    np.testing.assert_allclose(cstr.step(cstr.x_ss, cstr.u_ss), cstr.x_ss, rtol=1e-9)  # nothing left broken


def test_other_ivp_methods_still_use_solve_ivp(cstr, monkeypatch):
    radau = copy.copy(cstr)
    radau.ivp_method = "Radau"
    monkeypatch.setattr(radau, "_advance_lsoda", lambda *a: pytest.fail("Radau went through LSODA"))
    X, U = _states(cstr, 3, True, seed=5)
    for x, u in zip(X, U):
        np.testing.assert_allclose(radau.step(x, u), cstr.step(x, u), rtol=1e-6)
    monkeypatch.setattr(cstr, "_advance_solve_ivp", lambda *a: pytest.fail("LSODA went through solve_ivp"))
    cstr.step(X[0], U[0])


def test_a_plant_without_jacobian_agrees_too():
    pv = PVConverter()
    rng = np.random.default_rng(6)
    X = pv.x_ss * rng.uniform(0.9, 1.1, size=(4, 3))
    U = rng.uniform(pv.u_lb, pv.u_ub, size=(4, 1))
    fast = np.array([pv.step(x, u) for x, u in zip(X, U)])
    ref = np.array([pv._advance_solve_ivp(x, u, pv.dt, pv.d_nom) for x, u in zip(X, U)])
    np.testing.assert_allclose(fast, ref, rtol=AGREE, atol=pv.atol)


def test_per_state_tolerances_are_used(cstr):
    X, U = _states(cstr, 4, True, seed=7)
    per_state = copy.copy(cstr)
    per_state.atol = np.array([1e-10, 1e-10])
    assert _gap(per_state, X, U) <= AGREE
    per_state.atol = np.array([1e-2, 1e-10])  # a loose C_A tolerance (it sets the steps) must show
    loose = np.array([per_state.step(x, u) for x, u in zip(X, U)])
    tight = np.array([cstr.step(x, u) for x, u in zip(X, U)])
    assert np.max(np.abs(loose - tight) / np.abs(tight)) > AGREE
