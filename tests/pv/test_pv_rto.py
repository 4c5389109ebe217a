"""icctrl.pv: dataset, P&O, RTO certificate verdicts, bad input and the `icctrl pv --quick` JSON contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from icctrl.errors import InvalidValueError, ShapeError, UnknownNameError
from icctrl.nn import build
from icctrl.pv import INPUT_NAMES, DutyRTO, PerturbObserve, pv_dataset, pv_models, rto_certificate
from plants.pv_converter import PVConverter


@pytest.fixture(scope="module")
def plant():
    return PVConverter()


def test_dataset_has_measured_disturbances(plant):
    ds = pv_dataset(plant, n_traj=6, steps=4, window=2, seed=1)
    assert ds.input_names == INPUT_NAMES
    assert ds.inputs.shape[1:] == (2, 5) and ds.targets.shape[1:] == (2, 2)
    assert np.all((ds.inputs[..., 3] >= 150) & (ds.inputs[..., 3] <= 1100))
    assert np.all((ds.inputs[..., 2] >= 0.05) & (ds.inputs[..., 2] <= 0.95))
    with pytest.raises(InvalidValueError, match="0"):
        pv_dataset(plant, n_traj=0)


def test_perturb_observe_reverses_when_power_falls():
    po = PerturbObserve(delta=0.01, every=1)
    u = po.update(100.0, 0.5)
    assert u == pytest.approx(0.51)
    u = po.update(90.0, u)  # power fell: step back
    assert u == pytest.approx(0.50)
    with pytest.raises(InvalidValueError, match="-1"):
        PerturbObserve(delta=-1)


def _model(name):
    torch.manual_seed(0)
    kw = {"activation": "softplus"} if name != "lstm" else {}
    return build(name, 5, 2, hidden=4, layers=1, **kw)


def test_certificate_verdicts(plant):
    # maximising energy (−î_s of a convex model) is never convex; ICLRNN's one-step constraints are
    for name in ("iclrnn", "iclstm", "lstm"):
        v = rto_certificate(_model(name), 3, 2)
        assert not v["problem"].convex and v["problem"].reasons
        assert any("concave" in n for n in v["problem"].notes)
    assert rto_certificate(_model("iclrnn"), 1, 2)["constraints"].convex
    assert not rto_certificate(_model("iclrnn"), 3, 2)["constraints"].convex  # [x, −x] feedback
    assert not rto_certificate(_model("lstm"), 1, 2)["constraints"].convex
    assert not rto_certificate(None, 2, 2, plant)["problem"].convex


def test_rto_solves_and_rejects_bad_input(plant):
    rto = DutyRTO(plant, _model("iclrnn"), horizon=2)
    s = rto.solve(np.r_[plant.x_ss[:2], 48.0], [800.0, 30.0], 0.4)
    assert 0.05 <= s.duty <= 0.95 and s.ms > 0 and s.plan.shape == (2,)
    with pytest.raises(ShapeError, match="3"):
        rto.solve([1.0, 2.0], [800.0, 30.0], 0.4)
    with pytest.raises(InvalidValueError, match="nan"):
        rto.solve([np.nan, 1.0, 48.0], [800.0, 30.0], 0.4)
    with pytest.raises(InvalidValueError, match="0"):
        DutyRTO(plant, None, horizon=0)
    with pytest.raises(ShapeError, match="3"):
        DutyRTO(plant, build("lstm", 3, 2, hidden=2, layers=1))
    with pytest.raises(UnknownNameError, match="gru"):
        pv_models(plant, ["gru"])
    with pytest.raises(UnknownNameError, match="qpoases"):
        DutyRTO(plant, None, horizon=2, solver="qpoases")


def test_rto_engine_iterated_reaches_the_ipopt_plan(plant):
    """The real-time engine's QPs, iterated to convergence (sqp-gn), find Ipopt's plan on the same RTO."""
    from icctrl.mpc._rti import RTISolver

    x, d, u = np.r_[plant.x_ss[:2], 48.0], np.array([800.0, 30.0]), 0.4
    ip = DutyRTO(plant, None, horizon=3, solver="ipopt").solve(x, d, u)
    rto = DutyRTO(plant, None, horizon=3)
    s = rto.solve(x, d, u)  # one real-time iteration
    assert s.success and 0.05 <= s.duty <= 0.95
    res = RTISolver(rto.qp, "sqp-gn", derivatives="sx", tol=1e-9, max_iter=100).solve(np.r_[x, d, u], np.full(3, u))
    assert res.ok and res.iterations > 1
    np.testing.assert_allclose(res.v, ip.plan, atol=1e-4)


@pytest.mark.slow
def test_cli_quick_json_schema(tmp_path, monkeypatch):
    from icctrl.cli import main

    monkeypatch.setenv("ICCTRL_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "pv.json"
    assert main(["pv", "--quick", "--json", str(path), "--out", str(tmp_path)]) == 0
    res = json.loads(path.read_text())
    names = {"first_principles", "iclstm", "iclrnn", "lstm", "perturb_observe"}
    assert set(res["energy_kwh"]) == names and set(res["solve_ms"]) == names
    assert all(isinstance(v, float) for v in res["energy_kwh"].values())
    assert res["ratio_iclstm_vs_lstm"] is None or res["ratio_iclstm_vs_lstm"] > 0
    assert (tmp_path / "pv_closed_loop.png").exists()
