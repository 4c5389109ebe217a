"""Soak: every failure in closed loop is counted and explained, never raised; `icctrl soak` writes the
contract JSON atomically (also while it runs and when interrupted)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

import icctrl.mpc._defaults as defaults
from icctrl.cli import main
from icctrl.commands.soak import CONTRACT_KEYS
from icctrl.errors import InvalidValueError, UnknownNameError
from icctrl.reliability import soak, soak_episode
from plants import CSTR

PLANT = CSTR()
X0 = PLANT.from_deviation(np.array([0.5, -20.0]))


class Scripted:
    """A stand-in controller: `action(k, x)` gives the k-th action or raises."""

    solver_name = "scripted"
    certificate = SimpleNamespace(convex=False)
    problem = SimpleNamespace(predictor=SimpleNamespace(label="scripted"))

    def __init__(self, action):
        self.action, self.k = action, 0

    def reset(self):
        self.k = 0

    def step(self, x):
        u = self.action(self.k, x)
        self.k += 1
        return u, {"status": "success", "success": True, "solver_status": "ok", "solve_time": 1e-3}


def _run(action, steps=5):
    return soak_episode(PLANT, Scripted(action), X0, steps, settle_tol=(0.02, 3.0))


def test_a_well_behaved_controller_runs_every_step():
    rec = _run(lambda k, x: PLANT.u_ss)
    assert rec["steps_run"] == 5 and rec["error_kind"] is None and rec["unhandled"] is None
    assert rec["successes"] == 5 and len(rec["solve_times"]) == 5 and rec["v_end"] is not None


@pytest.mark.parametrize("bad", [[np.nan, 0.0], [4.0, np.inf], [4.0], None])
def test_a_nan_or_malformed_action_is_counted_and_never_applied(bad):
    rec = _run(lambda k, x: PLANT.u_ss if k < 2 else bad)
    assert rec["nan_actions"] == 1 and rec["error_kind"] == "nan_action" and rec["steps_run"] == 2
    assert "step 2" in rec["error"]


def test_an_action_outside_the_hard_bounds_is_a_violation():
    rec = _run(lambda k, x: PLANT.u_ub + [0.0, 1.0])
    assert rec["violations"] == {"input_bounds": 1} and rec["steps_run"] == 0
    assert "500001.0" in rec["error"]


def test_a_state_leaving_the_valid_region_is_a_violation():
    rec = _run(lambda k, x: np.array([0.5, PLANT.u_lb[1]]), steps=200)
    assert rec["violations"] == {"state_region": 1} and rec["error_kind"] == "violation"
    assert "valid region" in rec["error"] and 0 < rec["steps_run"] < 200


def test_exceptions_end_the_episode_and_are_recorded_by_kind():
    def boom(k, x):
        raise ZeroDivisionError("bug in a controller")

    def refuse(k, x):
        raise InvalidValueError("state x = [1, 2] refused")

    rec = _run(boom)
    assert rec["error_kind"] == "unhandled"
    assert rec["unhandled"] == "step 0: ZeroDivisionError: bug in a controller"
    rec = _run(refuse)
    assert rec["error_kind"] == "icctrl_error" and "refused" in rec["error"] and rec["unhandled"] is None


def _read(path):
    return json.loads(path.read_text())


def test_reduced_soak_through_the_cli_writes_the_contract(tmp_path):
    path = tmp_path / "soak.json"
    rc = main(["soak", "--plant", "cstr", "--starts", "3", "--steps", "4", "--horizon", "3",
               "--json", str(path), "--quiet", "--strict"])
    out = _read(path)
    assert rc == 0 and set(CONTRACT_KEYS) <= set(out)
    assert out["episodes"] == 6 and out["complete"] and out["starts_done"] == 3
    assert out["unhandled_exceptions"] == 0 and out["nan_actions"] == 0 and out["violations"] == 0
    assert out["fallbacks"] == out["steps"] - out["successes"]
    assert out["worst_solve_ms"] > 0 and out["worst_solve_ms"] == max(
        c["worst_solve_ms"] for c in out["per_controller"].values())
    assert set(out["per_controller"]) == {"iclstm", "first_principles"}
    assert out["per_controller"]["iclstm"]["episodes"] == 3
    starts = np.array([e for e in CSTR().sample_stability_region(3, np.random.default_rng(0))])
    assert np.all(PLANT.in_stability_region(starts))
    assert not list(tmp_path.glob(".*.tmp"))  # atomic: no temporary file left behind


def test_an_iteration_limit_soak_counts_and_explains_every_fallback():
    out = soak("cstr", 2, controllers=("first_principles",), steps=3, horizon=3, max_iter=1, progress=False)
    assert out["fallbacks"] == 6 and out["successes"] == 0
    assert out["fallback_statuses"] == {"fallback_hold": 6}
    assert set(out["fallback_reasons"]) == {"Maximum_Iterations_Exceeded"}
    assert out["violations"] == 0 and out["nan_actions"] == 0 and out["unhandled_exceptions"] == 0


def test_a_crashing_controller_is_counted_per_episode_and_the_soak_completes(tmp_path, monkeypatch):
    def fake(plant, name, **kw):
        def act(k, x):
            if k == 0 and x[1] < PLANT.x_ss[1] - 25:
                raise RuntimeError(f"crash at T={x[1]:.1f}")
            return PLANT.u_ss
        return Scripted(act)

    monkeypatch.setattr(defaults, "default_controller", fake)
    out = soak("cstr", 6, controllers=("fake",), steps=2, json_path=tmp_path / "s.json", progress=False)
    hot = int(np.sum(CSTR().sample_stability_region(6, np.random.default_rng(0))[:, 1] < PLANT.x_ss[1] - 25))
    assert 0 < hot < 6
    assert out["unhandled_exceptions"] == hot and out["episodes"] == 6 and out["complete"]
    assert all(e["message"].startswith("step 0: RuntimeError: crash at T=") for e in out["exceptions"])
    assert _read(tmp_path / "s.json")["unhandled_exceptions"] == hot


def test_an_interrupted_soak_keeps_its_figures(tmp_path, monkeypatch):
    calls = {"n": 0}

    def fake(plant, name, **kw):
        def act(k, x):
            calls["n"] += 1
            if calls["n"] > 4:
                raise KeyboardInterrupt
            return PLANT.u_ss
        return Scripted(act)

    monkeypatch.setattr(defaults, "default_controller", fake)
    path = tmp_path / "s.json"
    with pytest.raises(KeyboardInterrupt):
        soak("cstr", 5, controllers=("fake",), steps=2, json_path=path, save_every=1, progress=False)
    out = _read(path)
    assert out["complete"] is False and out["starts_done"] == 2 and out["episodes"] == 2


def test_a_soak_in_progress_writes_running_counts_and_summarises_once(tmp_path, monkeypatch):
    """The full summary reads every record: it runs once, after the episodes, never while workers run."""
    import icctrl.reliability._soak as S

    monkeypatch.setattr(defaults, "default_controller", lambda plant, name, **kw: Scripted(lambda k, x: PLANT.u_ss))
    monkeypatch.setattr(S, "PROGRESS_S", 0.0)
    calls, written = {"n": 0}, []
    full = S.summarize

    def counting(*a, **k):
        calls["n"] += 1
        return full(*a, **k)

    def write(path, obj):
        written.append(json.loads(json.dumps(obj, default=str)))

    monkeypatch.setattr(S, "summarize", counting)
    monkeypatch.setattr(S, "write_json", write)
    out = soak("cstr", 4, controllers=("fake",), steps=2, json_path=tmp_path / "s.json", save_every=1,
               progress=False)
    partial = [w for w in written if w["complete"] is False]
    assert calls["n"] == 1 and out["complete"] and len(partial) == 3
    assert [w["episodes"] for w in partial] == [1, 2, 3] and partial[-1]["starts_done"] == 3


@pytest.mark.parametrize("kw, err, needle", [
    ({"starts": 0}, InvalidValueError, "starts"), ({"steps": -1}, InvalidValueError, "steps"),
    ({"plant": "pv"}, UnknownNameError, "'pv'"), ({"controllers": ()}, InvalidValueError, "controllers"),
    ({"time_limit": 0.0}, InvalidValueError, "time_limit"), ({"jobs": 0}, InvalidValueError, "jobs"),
])
def test_bad_soak_arguments_are_refused(kw, err, needle):
    args = {"plant": "cstr", "starts": 2, **kw}
    with pytest.raises(err, match=needle):
        soak(args.pop("plant"), args.pop("starts"), progress=False, **args)


def test_the_cli_reports_a_bad_plant_as_an_error(capsys):
    assert main(["soak", "--plant", "pv", "--starts", "2", "--quiet"]) == 2
    assert "'pv'" in capsys.readouterr().err


@pytest.mark.slow
def test_soak_of_twenty_starts_meets_the_goal(tmp_path):
    out = soak("cstr", 20, steps=30, json_path=tmp_path / "soak.json", progress=False)
    assert out["episodes"] == 40
    assert out["unhandled_exceptions"] == 0 and out["nan_actions"] == 0 and out["violations"] == 0


@pytest.mark.slow
def test_soak_in_two_processes_gives_the_same_counts_as_one(tmp_path):
    kw = dict(controllers=("first_principles",), steps=5, horizon=3, progress=False)
    one, two = soak("cstr", 4, **kw), soak("cstr", 4, jobs=2, **kw)
    for key in ("episodes", "successes", "fallbacks", "violations", "unhandled_exceptions", "settled"):
        assert one[key] == two[key]


def test_the_soak_controllers_come_from_the_public_default_controller():
    import icctrl.mpc

    assert icctrl.mpc.default_controller is defaults.default_controller


def _slow_step(pid, at, wall, cpu, controller="c", fault="time_limit_cut"):
    return {"pid": pid, "worst_step_at": at, "worst_step_ms": wall, "worst_step_cpu_ms": cpu,
            "controller": controller, "fault": fault}


def test_the_timeline_finds_another_workers_step_held_up_at_the_same_moment():
    from icctrl.reliability._soak import Timeline

    top = _slow_step(1, 100.0, 6.0, 0.5)  # 100.000–100.006 s
    recs = [top,
            _slow_step(1, 100.001, 5.0, 0.1),  # same process: not another worker
            _slow_step(3, 100.001, 0.5, 0.5),  # starts at the same instant as the one above; did not wait
            _slow_step(2, 99.990, 5.0, 4.9),  # another worker, ended before top began
            _slow_step(2, 100.004, 3.0, 2.9, controller="a"),  # overlaps, did its own work
            _slow_step(2, 99.9999, 5.0, 0.2, controller="b"),  # overlaps, waited 4.8 ms: the one reported
            {"pid": 3, "worst_step_at": None, "worst_step_ms": 0.0}]
    assert Timeline(recs).overlapping(top) == {"wall_ms": 5.0, "cpu_ms": 0.2, "controller": "b",
                                               "fault": "time_limit_cut"}
    assert Timeline([top, recs[1], recs[3]]).overlapping(top) is None  # its own process, and one that had ended
    assert Timeline(recs).overlapping({"worst_step_ms": 1.0}) is None  # a record without a time or process
