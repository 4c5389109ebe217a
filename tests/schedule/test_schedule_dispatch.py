"""Dispatch LP: feasibility, SOC bounds, energy balance, certificate, formulations and solvers agree, bad
input,
safe fallback."""

import cvxpy as cp
import numpy as np
import pytest
import torch

from icctrl.errors import InfeasibleError, InvalidValueError, ShapeError, UnknownNameError
from icctrl.schedule import Battery, CompiledLP, Dispatcher


@pytest.fixture(scope="module")
def dispatcher(degradation, battery):
    return Dispatcher(battery, degradation)


def _check_plan(plan, b: Battery, soc0, pv, load, dt=0.25):
    assert plan.ok and plan.status == "optimal"
    assert plan.soc[0] == soc0
    assert np.all(plan.soc[1:] >= b.soc_min - 1e-9) and np.all(plan.soc[1:] <= b.soc_max + 1e-9)
    assert plan.soc[-1] >= b.soc_terminal - 1e-9
    dyn = plan.soc[:-1] + dt * (b.eta_charge * plan.p_charge - plan.p_discharge / b.eta_discharge)
    np.testing.assert_allclose(plan.soc[1:], dyn, atol=1e-6)
    balance = plan.grid_import - plan.grid_export - (load - pv + plan.p_charge - plan.p_discharge)
    assert np.abs(balance).max() <= 1e-6 and plan.balance_residual <= 1e-6
    assert np.all(plan.p_charge >= -1e-9) and np.all(plan.p_charge <= b.p_charge_max + 1e-9)
    assert np.all(plan.p_discharge >= -1e-9) and np.all(plan.p_discharge <= b.p_discharge_max + 1e-9)
    assert np.minimum(plan.p_charge, plan.p_discharge).max() <= 1e-7  # the relaxation is exact


def test_plan_is_feasible_within_soc_bounds_and_balanced(dispatcher, battery, day):
    pv, load, pi, pe = day
    for soc0 in (battery.soc_min, 6.0, battery.soc_max):
        plan = dispatcher.solve(soc0, pv, load, pi, pe)
        _check_plan(plan, battery, soc0, pv, load)
    assert dispatcher.backend == "compiled"
    assert np.abs(plan.p_battery).max() > 0.5  # the battery is used
    assert plan.solve_ms > 0 and np.isfinite(plan.objective)


def test_certificate(dispatcher):
    cert = dispatcher.certificate()
    assert cert["certified_convex"] is True and dispatcher.certified_convex
    assert cert["problem_is_dcp_dpp"] is True and dispatcher.problem.is_dcp(dpp=True)
    assert cert["degradation_certificate"]["convex"] is True


def test_learned_convex_cost_flattens_the_battery_profile(degradation, battery, day):
    pv, load, pi, pe = day
    with_cost = Dispatcher(battery, degradation).solve(6.0, pv, load, pi, pe)
    plain = Dispatcher(battery, None, formulation="none").solve(6.0, pv, load, pi, pe)
    _check_plan(plain, battery, 6.0, pv, load)
    # the same energy is moved at lower peak power: the learned cost grows faster than linearly
    assert np.abs(with_cost.p_battery).max() < 0.5 * np.abs(plain.p_battery).max()


def test_formulations_backends_and_solvers_agree(degradation, battery, day):
    pv, load, pi, pe = (a[40:56] for a in day)  # 16 steps keep the epigraph small
    b = Battery(soc_terminal=battery.soc_min)
    ref = Dispatcher(b, degradation, horizon=16, backend="cvxpy").solve(6.0, pv, load, pi, pe)
    cases = [
        dict(backend="compiled"),
        dict(formulation="epigraph"),
        dict(formulation="epigraph", backend="cvxpy"),
        dict(solver="ecos"),
        dict(solver="clarabel"),
        dict(solver="osqp"),
    ]
    for kw in cases:
        d = Dispatcher(b, degradation, horizon=16, **kw)
        plan = d.solve(6.0, pv, load, pi, pe)
        tol = 1e-4 if kw.get("solver") == "osqp" else 1e-6
        assert plan.objective == pytest.approx(ref.objective, abs=tol), kw
        if kw.get("formulation") == "epigraph" and d.backend == "cvxpy":
            assert d.epigraph.tightness() < 1e-5  # the epigraph is tight at the optimum


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(soc_min=8.0, soc_max=6.0), InfeasibleError, "soc_min"),
        (dict(soc_terminal=13.0), InfeasibleError, "soc_terminal"),
        (dict(p_charge_max=0.0), InfeasibleError, "p_charge_max"),
        (dict(soc_max=20.0), InfeasibleError, "capacity"),
        (dict(eta_charge=1.2), InvalidValueError, "eta_charge"),
        (dict(capacity_kwh=float("nan")), InvalidValueError, "capacity_kwh"),
    ],
)
def test_impossible_battery_limits_are_refused(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Battery(**kwargs)


def test_bad_forecasts_and_prices_raise(dispatcher, day):
    pv, load, pi, pe = day
    bad = pv.copy()
    bad[7] = np.nan
    with pytest.raises(InvalidValueError, match=r"pv forecast has non-finite values at steps \[7\]"):
        dispatcher.solve(6.0, bad, load, pi, pe)
    with pytest.raises(ShapeError, match="load forecast must have length 96"):
        dispatcher.solve(6.0, pv, load[:95], pi, pe)
    with pytest.raises(InvalidValueError, match="load forecast must be >= 0"):
        dispatcher.solve(6.0, pv, -load, pi, pe)
    with pytest.raises(InvalidValueError, match="export price must be > 0"):
        dispatcher.solve(6.0, pv, load, pi, np.where(np.arange(96) == 50, -0.05, pe))
    with pytest.raises(InvalidValueError, match="exceeds import price"):
        dispatcher.solve(6.0, pv, load, pi, np.full(96, 0.5))
    with pytest.raises(InvalidValueError, match="soc0"):
        dispatcher.solve(20.0, pv, load, pi, pe)
    with pytest.raises(InvalidValueError, match="soc0"):
        dispatcher.solve(float("nan"), pv, load, pi, pe)


def test_bad_settings_raise(degradation, battery):
    with pytest.raises(UnknownNameError, match="gurobi"):
        Dispatcher(battery, degradation, solver="gurobi")
    with pytest.raises(UnknownNameError, match="formulation"):
        Dispatcher(battery, degradation, formulation="exact")
    with pytest.raises(InvalidValueError, match="needs a trained Degradation"):
        Dispatcher(battery, None, formulation="pieces")
    with pytest.raises(InvalidValueError, match="horizon"):
        Dispatcher(battery, degradation, horizon=0)
    with pytest.raises(InvalidValueError, match="compiled backend runs HiGHS"):
        Dispatcher(battery, degradation, solver="ecos", backend="compiled")


def test_cost_not_minimal_at_zero_is_refused(degradation, battery):
    import copy

    shifted = copy.deepcopy(degradation)
    out = shifted.model.model.skip[-1]
    with torch.no_grad():
        out.weight += 0.5  # adds a linear term: the cost now falls when discharging starts
    with pytest.raises(InvalidValueError, match="decreases away from p = 0"):
        Dispatcher(battery, shifted)


@pytest.mark.parametrize("backend", ["compiled", "cvxpy"])
def test_infeasible_step_falls_back_and_the_next_step_recovers(degradation, battery, day, backend):
    pv, load, pi, pe = day
    d = Dispatcher(battery, degradation, backend=backend)
    plan = d.solve(0.0, pv, load, pi, pe)  # 5 kW for 15 min cannot lift an empty battery to soc_min
    assert not plan.ok and plan.status.startswith("fallback")
    assert d.stats.fallbacks == 1 and d.stats.solves == 1
    assert np.all(plan.p_charge == 0) and np.all(plan.p_discharge == 0) and np.all(plan.soc == 0.0)
    np.testing.assert_allclose(
        plan.grid_import - plan.grid_export, load - pv, atol=1e-12
    )  # imports the deficit
    assert plan.action == 0.0
    good = d.solve(6.0, pv, load, pi, pe)
    _check_plan(good, battery, 6.0, pv, load)
    assert d.stats.to_dict()["statuses"]["optimal"] == 1


def test_solver_failure_falls_back(degradation, battery, day, monkeypatch):
    pv, load, pi, pe = day
    d = Dispatcher(battery, degradation, backend="cvxpy")

    def broken(*args, **kwargs):
        raise cp.error.SolverError("numerical trouble")

    monkeypatch.setattr(d.problem, "solve", broken)
    plan = d.solve(6.0, pv, load, pi, pe)
    assert not plan.ok and "solver error: numerical trouble" in plan.status
    assert d.stats.fallbacks == 1


def test_compiled_lp_refuses_parameters_in_the_matrix():
    x = cp.Variable(2, bounds=[0, 1])
    a = cp.Parameter(2, value=np.ones(2))
    prob = cp.Problem(cp.Minimize(cp.sum(x)), [a @ x >= 0.5])
    with pytest.raises(InvalidValueError, match="changes the constraint matrix"):
        CompiledLP(prob)


def test_compiled_lp_matches_cvxpy_on_random_parameters():
    rng = np.random.default_rng(0)
    x = cp.Variable(5, bounds=[-1, 2])
    c, b = cp.Parameter(5), cp.Parameter()
    prob = cp.Problem(cp.Minimize(c @ x), [cp.sum(x) == b, x[0] - x[1] >= -0.5])
    c.value, b.value = rng.normal(size=5), 1.0
    lp = CompiledLP(prob)
    for _ in range(5):
        c.value, b.value = rng.normal(size=5), rng.uniform(-2, 4)
        status, values, obj = lp.solve()
        prob.solve(solver="CLARABEL")
        assert status == "optimal" and obj == pytest.approx(prob.value, abs=1e-7)
        np.testing.assert_allclose(c.value @ values[x.id], prob.value, atol=1e-7)


def test_terminal_value_keeps_energy_past_the_horizon(degradation, battery, day):
    pv, load, pi, pe = day
    plain = Dispatcher(battery, degradation).solve(6.0, pv, load, pi, pe)
    valued = Dispatcher(battery, degradation, terminal_value=0.4).solve(6.0, pv, load, pi, pe)
    assert valued.soc[-1] > plain.soc[-1] + 0.5
    _check_plan(valued, battery, 6.0, pv, load)
    with pytest.raises(InvalidValueError, match="terminal_value"):
        Dispatcher(battery, degradation, terminal_value=-1.0)
