"""CSTR physics: steady states, instability, integrator agreement, Lyapunov helpers, bad input."""

import time

import casadi as ca
import numpy as np
import pytest

from icctrl.errors import IntegrationError, InvalidValueError, ShapeError
from plants import CSTR


@pytest.fixture(scope="module")
def cstr():
    return CSTR()


def test_steady_state_matches_paper_to_4_significant_digits(cstr):
    np.testing.assert_allclose(cstr.x_ss, [1.9537, 401.8727], rtol=5e-5)
    np.testing.assert_array_equal(cstr.u_ss, [4.0, 0.0])
    assert np.max(np.abs(cstr.rhs(cstr.x_ss, cstr.u_ss))) < 1e-8


def test_second_steady_state(cstr):
    xs2 = cstr.second_steady_state
    np.testing.assert_allclose(xs2, [3.936, 303.17], rtol=5e-4)
    assert np.max(np.abs(cstr.rhs(xs2, cstr.u_ss))) < 1e-8
    assert np.linalg.norm(xs2 - cstr.x_ss) > 50


def test_open_loop_unstable_at_nominal_and_stable_at_cold_state(cstr):
    x, u, d = ca.SX.sym("x", 2), ca.SX.sym("u", 2), ca.SX.sym("d", 0)
    jac = ca.Function("J", [x, u, d], [ca.jacobian(cstr.casadi_rhs()(x, u, d), x)])
    eig_hot = np.linalg.eigvals(np.array(jac(cstr.x_ss, cstr.u_ss, [])))
    eig_cold = np.linalg.eigvals(np.array(jac(cstr.second_steady_state, cstr.u_ss, [])))
    assert np.max(eig_hot.real) > 0
    assert np.max(eig_cold.real) < 0
    # casadi Jacobian equals the analytic one used by the stiff integrator
    np.testing.assert_allclose(np.array(jac(cstr.x_ss, cstr.u_ss, [])), cstr._jac(cstr.x_ss, cstr.u_ss, None))


def test_casadi_rhs_equals_numpy_rhs(cstr):
    rng = np.random.default_rng(1)
    f = cstr.casadi_rhs()
    for x in cstr.sample_stability_region(20, rng):
        u = rng.uniform(cstr.u_lb, cstr.u_ub)
        np.testing.assert_allclose(np.array(f(x, u, [])).ravel(), cstr.rhs(x, u), rtol=1e-12, atol=1e-9)


def test_steady_state_is_fixed_point_of_step(cstr):
    np.testing.assert_allclose(cstr.step(cstr.x_ss, cstr.u_ss), cstr.x_ss, rtol=1e-9)


def test_casadi_rk4_step_matches_scipy_step(cstr):
    rng = np.random.default_rng(2)
    f = cstr.casadi_step()
    X = cstr.sample_stability_region(30, rng)
    U = rng.uniform(cstr.u_lb, cstr.u_ub, size=(30, 2))
    for x, u in zip(X, U):
        ref = cstr.step(x, u, cstr.dt)
        np.testing.assert_allclose(np.array(f(x, u, [])).ravel(), ref, rtol=1e-6)
    # the comparison can fail: one RK4 substep over a much longer period is visibly off
    x, u = X[0], np.array([7.5, 5e5])
    coarse = np.array(cstr.casadi_step(dt=0.05, substeps=1)(x, u, [])).ravel()
    assert np.max(np.abs(coarse - cstr.step(x, u, 0.05)) / cstr.step(x, u, 0.05)) > 1e-6


def test_simulate_batch_matches_step_including_hot_states(cstr):
    rng = np.random.default_rng(3)
    X0 = np.vstack([cstr.sample_stability_region(6, rng), [[0.5, 900.0], [0.05, 1200.0]]])
    U = rng.uniform(cstr.u_lb, cstr.u_ub, size=(8, 20, 2))
    U[:, :, 1] = np.abs(U[:, :, 1])  # heating keeps every trajectory inside the valid region
    Xb = cstr.simulate_batch(X0, U)
    assert Xb.shape == (8, 21, 2)
    for b in range(8):
        Xs = cstr.simulate(X0[b], U[b])
        np.testing.assert_allclose(Xb[b], Xs, rtol=1e-6)
    # shared input sequence broadcasts over the batch
    Xshared = cstr.simulate_batch(X0[:2], U[0])
    np.testing.assert_allclose(Xshared[0], Xb[0], rtol=1e-12)


def _timed_batch(cstr, B, T, seed):
    rng = np.random.default_rng(seed)
    X0 = cstr.sample_stability_region(B, rng)
    U = rng.uniform(cstr.u_lb, cstr.u_ub, size=(B, 1, 2)).repeat(T, axis=1)
    U[:, :, 1] = np.abs(U[:, :, 1])
    t0 = time.perf_counter()
    X = cstr.simulate_batch(X0, U)
    elapsed = time.perf_counter() - t0
    assert X.shape == (B, T + 1, 2) and np.all(np.isfinite(X))
    return elapsed


def test_simulate_batch_runs_a_batch_of_random_episodes(cstr):
    _timed_batch(cstr, 200, 50, seed=4)  # speed is a benchmark figure, not a test


@pytest.mark.slow
def test_simulate_batch_runs_1000_by_100(cstr):
    _timed_batch(cstr, 1000, 100, seed=4)


def test_lyapunov_and_stability_region(cstr):
    assert cstr.lyapunov(cstr.x_ss) == 0.0
    dx = np.array([0.1, -2.0])
    assert cstr.lyapunov(cstr.x_ss + dx) == pytest.approx(dx @ cstr.P @ dx)
    X = cstr.sample_stability_region(500, np.random.default_rng(5))
    assert X.shape == (500, 2)
    assert np.all(cstr.in_stability_region(X))
    assert cstr.lyapunov(X.reshape(50, 10, 2)).shape == (50, 10)
    assert not cstr.in_stability_region(cstr.second_steady_state)
    # same seed, same samples; samples fill the ellipse (some near its edge)
    np.testing.assert_array_equal(X, cstr.sample_stability_region(500, np.random.default_rng(5)))
    assert np.max(cstr.lyapunov(X)) > 0.9 * cstr.rho_stability


def test_deviation_round_trip(cstr):
    x, u = np.array([2.5, 410.0]), np.array([5.0, 1e5])
    dx, du = cstr.to_deviation(x, u)
    np.testing.assert_allclose(dx, x - cstr.x_ss)
    np.testing.assert_allclose(du, [1.0, 1e5])
    back_x, back_u = cstr.from_deviation(dx, du)
    np.testing.assert_allclose(back_x, x)
    np.testing.assert_allclose(back_u, u)
    np.testing.assert_allclose(cstr.from_deviation(cstr.to_deviation(x)), x)


def test_simulate_shape_and_energy_direction(cstr):
    U = np.tile([4.0, 2e5], (10, 1))
    X = cstr.simulate(cstr.x_ss, U)
    assert X.shape == (11, 2)
    assert np.all(np.diff(X[:, 1]) > 0)  # heating raises the temperature


@pytest.mark.parametrize(
    ("x", "u", "dt", "exc", "fragment"),
    [
        ([1.9, 400.0], [8.0, 0.0], None, InvalidValueError, "8.0"),
        ([1.9, 400.0], [4.0, -6e5], None, InvalidValueError, "-600000.0"),
        ([1.9, 150.0], [4.0, 0.0], None, InvalidValueError, "150.0"),
        ([-0.5, 400.0], [4.0, 0.0], None, InvalidValueError, "-0.5"),
        ([np.nan, 400.0], [4.0, 0.0], None, InvalidValueError, "nan"),
        ([1.9, 400.0], [4.0, np.inf], None, InvalidValueError, "inf"),
        ([1.9, 400.0, 1.0], [4.0, 0.0], None, ShapeError, "(3,)"),
        ([1.9, 400.0], [4.0], None, ShapeError, "(1,)"),
        ([1.9, 400.0], [4.0, 0.0], -0.005, InvalidValueError, "-0.005"),
        ([1.9, 400.0], [4.0, 0.0], 0.0, InvalidValueError, "0.0"),
    ],
)
def test_bad_input_is_refused_naming_the_value(cstr, x, u, dt, exc, fragment):
    with pytest.raises(exc, match=fragment.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        cstr.step(x, u, dt)


def test_tiny_bound_overshoot_is_accepted_and_clipped(cstr):
    x1 = cstr.step(cstr.x_ss, [7.5 * (1 + 1e-12), 5e5])
    x2 = cstr.step(cstr.x_ss, [7.5, 5e5])
    np.testing.assert_array_equal(x1, x2)


def test_integration_failure_is_reported(cstr, monkeypatch):
    monkeypatch.setattr(cstr, "_rhs", lambda x, u, d: np.array([np.nan, np.nan]))
    monkeypatch.setattr(cstr, "_jac", lambda x, u, d: None)
    with pytest.raises(IntegrationError, match="cstr"):
        cstr.step(cstr.x_ss, cstr.u_ss)


def test_leaving_the_valid_region_is_reported(cstr):
    U = np.tile([4.0, -5e5], (200, 1))  # full cooling drives T below 200 K within an hour
    with pytest.raises(InvalidValueError, match="T = "):
        cstr.simulate(cstr.x_ss, U)
    with pytest.raises(InvalidValueError, match="trajectory 0"):
        cstr.simulate_batch(cstr.x_ss[None], U)
    with pytest.raises(ShapeError):
        cstr.simulate_batch(cstr.x_ss, U)
    with pytest.raises(InvalidValueError, match=r"U\[0, 3\]"):
        bad = np.tile(cstr.u_ss, (1, 5, 1))
        bad[0, 3, 0] = 9.0
        cstr.simulate_batch(cstr.x_ss[None], bad)
