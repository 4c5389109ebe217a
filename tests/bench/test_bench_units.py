"""Pieces of the benchmark harness: black-box rollout and finite-difference Jacobian, grid, statistics,
ratio arithmetic."""

from __future__ import annotations

import re

import casadi as ca
import numpy as np
import pytest

import icctrl
from icctrl.bench import (
    BLACKBOX_SOLVER,
    RATIO_NAMES,
    BenchConfig,
    BlackBoxPredictor,
    cells,
    compute_ratios,
)
from icctrl.bench._stats import distribution, mean_profile
from icctrl.errors import InvalidValueError, UnknownNameError
from icctrl.mpc import OneStepModel, rollout


@pytest.fixture(scope="module")
def iclstm():
    return icctrl.load_default("cstr", "iclstm").double().eval()


def test_blackbox_rollout_matches_exported_model(iclstm):
    rng = np.random.default_rng(0)
    x0 = np.array([1.2, 420.0])
    U = np.column_stack([rng.uniform(1, 7, 4), rng.uniform(-3e5, 3e5, 4)])
    bb = BlackBoxPredictor(iclstm, 2, 2, window=5)
    exported = rollout(OneStepModel(iclstm, 2, 2, window=5), x0, U)
    np.testing.assert_allclose(bb.rollout(x0, U), exported, rtol=1e-10, atol=1e-9)


def test_blackbox_finite_difference_jacobian_matches_exact_ad(iclstm):
    """The callback's central differences agree with CasADi's exact AD of the exported model."""
    N = 3
    x0, U = ca.MX.sym("x0", 2), ca.MX.sym("U", N, 2)
    bb = BlackBoxPredictor(iclstm, 2, 2, window=5)
    ex = OneStepModel(iclstm, 2, 2, window=5)
    jac_bb = ca.Function("jb", [x0, U], [ca.jacobian(ca.vec(bb.predict(x0, U)), ca.vec(U))])
    jac_ex = ca.Function("je", [x0, U], [ca.jacobian(ca.vec(ex.predict(x0, U)), ca.vec(U))])
    xv, Uv = np.array([1.5, 410.0]), np.array([[3.0, 1e5], [5.0, -2e5], [4.0, 0.0]])
    a, b = np.array(jac_bb(xv, Uv)), np.array(jac_ex(xv, Uv))
    assert bb.rollout.calls >= 2 * (2 + 2 * N)  # two rollouts per perturbed entry
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * np.abs(b).max())


def test_blackbox_certificate_is_the_exported_models(iclstm):
    from icctrl.mpc._defaults import cstr_problem

    bb = cstr_problem(BlackBoxPredictor(iclstm, 2, 2, window=5), 2, shooting="single").certificate()
    ex = cstr_problem(OneStepModel(iclstm, 2, 2, window=5), 2).certificate()
    assert bb.convex == ex.convex is False
    assert bb.reasons == ex.reasons


@pytest.mark.parametrize(
    "kw, err, shown",
    [
        ({"horizons": (0, 10)}, InvalidValueError, "(0, 10)"),
        ({"horizons": ()}, InvalidValueError, "()"),
        ({"models": ("iclstm", "transformer")}, UnknownNameError, "transformer"),
        ({"solvers": ("ipopt", "gurobi")}, UnknownNameError, "gurobi"),
        ({"steps": 0}, InvalidValueError, "steps"),
        ({"random_starts": -1}, InvalidValueError, "-1"),
        ({"cell_budget_s": 0.0}, InvalidValueError, "0.0"),
    ],
)
def test_config_rejects_bad_values(kw, err, shown):
    with pytest.raises(err, match=re.escape(shown)):
        BenchConfig(**kw)


def test_quick_grid_has_every_cell_the_ratios_need():
    cfg = BenchConfig.quick_config()
    ids = {c.id for c in cells(cfg)}
    for need in (
        "iclstm/papers/ipopt/exported/N10",
        "iclstm/papers/ipopt/exported/N10/single",
        f"iclstm/papers/{BLACKBOX_SOLVER}/blackbox/N10/single",
        "lstm/papers/ipopt/exported/N10",
        "icrnn_cost/convex/clarabel/exported/N10",
        "icrnn_cost/convex/ipopt/exported/N10",
        "picnn_cost/convex/sqp/exported/N10",
    ):
        assert need in ids
    assert not any(c.solver == "clarabel" and c.formulation != "convex" for c in cells(BenchConfig()))
    assert sum(c.path == "blackbox" for c in cells(BenchConfig())) == 1  # only at the reference horizon
    assert {c.horizon for c in cells(BenchConfig()) if c.model == "picnn_cost"} == {10}  # flat over N = 10


def test_blackbox_runs_at_smallest_horizon_when_reference_is_absent():
    cfg = BenchConfig(horizons=(3, 5), models=("iclstm",), solvers=("ipopt", BLACKBOX_SOLVER))
    got = [c.id for c in cells(cfg) if c.path == "blackbox"]
    assert got == [f"iclstm/papers/{BLACKBOX_SOLVER}/blackbox/N3/single"]


def test_distribution_and_profile():
    d = distribution([1.0, 2.0, 3.0, 4.0, 100.0])
    assert d["n"] == 5 and d["median"] == 3.0 and d["max"] == 100.0
    assert d["p90"] == pytest.approx(np.percentile([1, 2, 3, 4, 100], 90))
    assert distribution([])["median"] is None
    assert mean_profile([{"a": 1.0}, {"a": 3.0, "b": 2.0}]) == {"a": 2.0, "b": 1.0}


def _cell(cid: str, median: float, *, status="ok", success=1.0, trained=True, certified=False, costs=(10.0,)):
    model, form, solver, path, n = cid.split("/")[:5]
    eps = [{"start_index": i, "complete": True, "cost": c} for i, c in enumerate(costs)]
    return {
        "id": cid, "model": model, "formulation": form, "solver": solver, "path": path, "horizon": int(n[1:]),
        "status": status, "success_rate": success, "trained": trained, "certified_convex": certified,
        "solve_ms": {"median": median, "p99": 2 * median}, "step_cpu_ms": {"median": median / 2},
        "closed_loop": {"episodes": eps},
    }


def test_ratios_are_slower_over_faster_as_named():
    cfg = BenchConfig(horizons=(10,))
    cs = [
        _cell("iclstm/papers/ipopt/exported/N10", 20.0),
        _cell("iclstm/papers/ipopt/exported/N10/single", 40.0),
        _cell(f"iclstm/papers/{BLACKBOX_SOLVER}/blackbox/N10/single", 4000.0, status="capped", success=0.0),
        _cell("lstm/papers/ipopt/exported/N10", 50.0, costs=(100.0,)),
        _cell("icrnn_cost/convex/clarabel/exported/N10", 8.0, certified=True, costs=(105.0,)),
        _cell("icrnn_cost/convex/osqp/exported/N10", 4.0, certified=True, success=0.5),
        _cell("icrnn_cost/convex/ipopt/exported/N10", 80.0, certified=True, success=0.2),
    ]
    ratios, details = compute_ratios(cs, cfg)
    assert set(ratios) == set(RATIO_NAMES)
    assert ratios["exported_vs_blackbox"] == pytest.approx(200.0)
    assert details["exported_vs_blackbox"]["lower_bound"] is True
    assert details["exported_vs_blackbox"]["same_nlp_single_shooting"]["value"] == pytest.approx(100.0)
    assert ratios["iclstm_vs_lstm"] == pytest.approx(2.5)
    assert details["iclstm_vs_lstm"]["cpu_value"] == pytest.approx(2.5)
    # osqp is faster but fails half its solves: the best controller is clarabel
    assert ratios["convex_vs_lstm"] == pytest.approx(50.0 / 8.0)
    assert details["convex_vs_lstm"]["cost_ratio"] == pytest.approx(1.05)
    assert details["convex_vs_lstm"]["met"] is True
    assert ratios["convex_vs_ipopt"] == pytest.approx(10.0)


def test_ratio_is_none_when_a_cell_is_missing():
    cfg = BenchConfig(horizons=(10,))
    ratios, details = compute_ratios([_cell("lstm/papers/ipopt/exported/N10", 50.0)], cfg)
    assert all(v is None for v in ratios.values())
    assert "missing" in details["iclstm_vs_lstm"]["note"]


def test_smooth_cost_model_falls_back_to_a_labelled_stand_in(tmp_path):
    from icctrl.bench._build import ModelCache

    cache = ModelCache(seed=0, folder=tmp_path / "models", train_missing=False)
    m = cache.get("icrnn_cost_softplus")
    assert m.config["activation"] == "softplus"
    assert cache.meta["icrnn_cost_softplus"]["trained"] is False
    assert "timing only" in cache.meta["icrnn_cost_softplus"]["note"]
    assert not (tmp_path / "models").exists()  # nothing trained, nothing written
