"""Closed loop on the microgrid plant: reference policies, a short run, the JSON contract and the CLI."""

import json

import numpy as np
import pytest

from icctrl.cli import main
from icctrl.errors import InvalidValueError, UnknownNameError
from icctrl.schedule import (
    Battery,
    DegradationTruth,
    ScheduleConfig,
    oracle_dispatch,
    plot_schedule,
    run_schedule,
    self_consumption_action,
)

CONTRACT = {"cost", "baseline_cost", "oracle_cost", "solve_ms", "violations", "certified_convex"}


def test_self_consumption_rule():
    b = Battery()
    assert self_consumption_action(b, 6.0, pv=3.0, load=1.0, dt=0.25) == pytest.approx(2.0)
    assert self_consumption_action(b, 6.0, pv=9.0, load=1.0, dt=0.25) == pytest.approx(5.0)
    assert self_consumption_action(b, 6.0, pv=0.0, load=1.5, dt=0.25) == pytest.approx(-1.5)
    assert self_consumption_action(b, b.soc_max, pv=3.0, load=1.0, dt=0.25) == 0.0
    assert self_consumption_action(b, b.soc_min, pv=0.0, load=1.0, dt=0.25) == 0.0


def test_oracle_is_a_lower_bound_on_the_rule(day):
    pv, load, pi, pe = day
    b, truth, dt = Battery(), DegradationTruth(), 0.25
    v = 0.25

    def score(p):
        soc = 6.0 + np.concatenate([[0.0], np.cumsum(b.soc_change(p, dt))])
        net = load - pv + p
        energy = dt * (pi * np.maximum(net, 0) - pe * np.maximum(-net, 0)).sum()
        return energy + dt * truth(p).sum() - v * (soc[-1] - 6.0), soc

    p_orc = oracle_dispatch(b, 6.0, pv, load, pi, pe, dt, truth, v)
    soc = 6.0
    p_rule = []
    for t in range(96):
        p_rule.append(self_consumption_action(b, soc, pv[t], load[t], dt))
        soc += float(b.soc_change(p_rule[-1], dt))
    s_orc, soc_orc = score(p_orc)
    s_rule, _ = score(np.array(p_rule))
    assert s_orc <= s_rule + 1e-9
    assert np.all(soc_orc[1:] >= b.soc_min - 1e-6) and np.all(soc_orc[1:] <= b.soc_max + 1e-6)
    with pytest.raises(InvalidValueError, match="export price"):
        oracle_dispatch(b, 6.0, pv, load, pi, -pe, dt, truth, v)


def test_short_closed_loop_run(tmp_path):
    cfg = ScheduleConfig(days=1, train_days=3, steps=12, degradation_steps=150, start="2024-06-18")
    r = run_schedule(cfg)
    s = r.summary()
    assert CONTRACT <= set(s) and set(s["solve_ms"]) == {"median", "p99"}
    assert s["violations"] == 0 and s["certified_convex"] is True and s["fallbacks"] == 0
    assert s["steps"] == 12 and s["statuses"] == {"optimal": 12}
    assert s["oracle_cost"] <= min(s["cost"], s["baseline_cost"]) + 1e-9
    assert s["violation_detail"]["max_plan_balance_residual_kw"] <= 1e-6
    assert s["violation_detail"]["max_meter_balance_residual_kw"] <= 1e-9
    ours = r.runs["ours"]
    b = r.battery
    assert np.all(ours.soc >= b.soc_min - 1e-6) and np.all(ours.soc <= b.soc_max + 1e-6)
    json.dumps(s)  # JSON-ready
    paths = plot_schedule(r, tmp_path)
    assert [p.name for p in paths] == ["soc.png", "power.png", "prices.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
    assert "rolling horizon" in r.table()


def test_config_is_checked():
    bad = (
        dict(days=0),
        dict(train_days=2),
        dict(steps=0),
        dict(soc0_frac=1.5),
        dict(forecast_risk=-1.0),
        dict(plan_terminal_value=-0.1),
    )
    for kw in bad:
        with pytest.raises(InvalidValueError):
            run_schedule(ScheduleConfig(**kw))
    for kw in (dict(solver="cplex"), dict(forecast="oracle"), dict(backend="gpu"), dict(formulation="x")):
        with pytest.raises(UnknownNameError):
            run_schedule(ScheduleConfig(**kw))


@pytest.mark.parametrize("forecast", ["clearsky", "perfect"])
def test_other_forecasts_run(forecast):
    cfg = ScheduleConfig(
        days=1,
        train_days=3,
        steps=4,
        degradation_steps=100,
        start="2024-06-18",
        forecast=forecast,
        store_surplus=False,
    )
    s = run_schedule(cfg).summary()
    assert (
        s["violations"] == 0 and s["steps"] == 4 and forecast[:5] in s["forecast"]["model"].replace("-", "")
    )


def test_cli_writes_the_json_contract_and_plots(tmp_path, capsys):
    out = tmp_path / "fig"
    path = tmp_path / "s.json"
    rc = main(
        [
            "schedule",
            "--days",
            "1",
            "--train-days",
            "3",
            "--steps",
            "4",
            "--degradation-steps",
            "100",
            "--json",
            str(path),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    data = json.loads(path.read_text())
    assert CONTRACT <= set(data)
    assert isinstance(data["violations"], int) and isinstance(data["certified_convex"], bool)
    assert {"median", "p99"} == set(data["solve_ms"])
    assert sorted(p.name for p in out.iterdir()) == ["power.png", "prices.png", "soc.png"]
    assert "perfect foresight" in capsys.readouterr().out


def test_cli_reports_bad_input_as_an_error(capsys):
    assert main(["schedule", "--days", "1", "--solver", "nope", "--no-plots"]) == 2
    assert "unknown solver" in capsys.readouterr().err


@pytest.mark.slow
def test_three_day_run_beats_the_rule_and_respects_every_limit():
    r = run_schedule(ScheduleConfig(days=3))
    s = r.summary()
    assert s["violations"] == 0 and s["fallbacks"] == 0 and s["certified_convex"]
    assert s["oracle_cost"] <= s["cost"] <= s["baseline_cost"] + 0.05  # ties the rule within 2 %, see docs
