"""Fault scenarios: each one changes what the controller measures, what the actuator applies or what the true
plant is, seeded and reproducible; in closed loop no fault produces an unhandled exception, a NaN action or a
hard-input violation."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from icctrl.errors import InvalidValueError, UnknownNameError
from icctrl.reliability import FAULTS, fault_names, soak, soak_episode
from icctrl.reliability._faults import DURATION, ONSET
from plants import CSTR

PLANT = CSTR()
X0 = PLANT.from_deviation(np.array([0.5, -20.0]))


def _inject(name, seed=0, med=None):
    return FAULTS[name].inject(PLANT, np.random.default_rng(seed), med)


class Recorder:
    """A controller that holds the steady-state input and remembers what it measured; `fallback` as the real one."""

    solver_name = "recorder"
    certificate = SimpleNamespace(convex=False)
    problem = SimpleNamespace(predictor=SimpleNamespace(label="recorder"))

    def __init__(self, u=None):
        self.seen, self.fallbacks, self.u = [], [], PLANT.u_ss if u is None else np.asarray(u, float)

    def reset(self):
        self.seen, self.fallbacks = [], []

    def step(self, x):
        self.seen.append(np.array(x))
        return self.u, {"status": "success", "success": True, "solver_status": "ok", "solve_time": 1e-3}

    def fallback(self, reason):
        self.fallbacks.append(reason)
        return self.u, {"status": "fallback_hold", "success": False, "solver_status": reason, "solve_time": 0.0}


def test_every_fault_of_the_issue_is_named():
    assert set(FAULTS) == {"nominal", "sensor_noise", "sensor_bias", "sensor_stuck", "nan_measurement",
                           "actuator_saturation", "actuator_stuck", "parameter_drift", "disturbance_step",
                           "time_limit_cut"}
    assert fault_names("all") == tuple(FAULTS) and fault_names("sensor_noise, nominal") == ("sensor_noise", "nominal")
    with pytest.raises(UnknownNameError, match="'sensor_nois'"):
        fault_names("sensor_nois")


@pytest.mark.parametrize("name", ["sensor_noise", "sensor_bias"])
def test_sensor_faults_change_the_measurement_not_the_plant(name):
    inj = _inject(name)
    y = inj.measure(0, X0.copy())
    assert inj.plant is PLANT and not np.allclose(y, X0) and np.allclose(y, X0, rtol=0.02)
    same = _inject(name).measure(0, X0.copy())
    assert np.array_equal(y, same)  # seeded: the same realisation for every controller


def test_a_stuck_sensor_freezes_inside_its_window_and_recovers():
    inj = _inject("sensor_stuck")
    xs = [X0 + k for k in range(ONSET + DURATION + 2)]
    ys = [inj.measure(k, x) for k, x in enumerate(xs)]
    assert np.array_equal(ys[ONSET - 1], xs[ONSET - 1])
    assert all(np.array_equal(ys[k], xs[ONSET]) for k in range(ONSET, ONSET + DURATION))
    assert np.array_equal(ys[ONSET + DURATION], xs[ONSET + DURATION])


def test_a_nan_measurement_never_reaches_step_and_takes_the_fallback():
    ctrl = Recorder()
    rec = soak_episode(PLANT, ctrl, X0, 40, injection=_inject("nan_measurement", seed=3))
    assert ctrl.fallbacks and all(r.startswith("invalid_measurement") for r in ctrl.fallbacks)
    assert all(np.all(np.isfinite(x)) for x in ctrl.seen) and len(ctrl.seen) + len(ctrl.fallbacks) == 40
    assert rec["fallbacks"] == len(ctrl.fallbacks) and rec["nan_actions"] == 0 and rec["error_kind"] is None


def test_actuator_saturation_clips_what_reaches_the_plant_not_what_the_controller_asked():
    inj = _inject("actuator_saturation")
    u = inj.actuate(0, PLANT.u_ub.copy())
    assert np.all(u < PLANT.u_ub) and np.all(u > PLANT.u_lb)
    rec = soak_episode(PLANT, Recorder(PLANT.u_ub), X0, 3, injection=inj)
    assert rec["violations"] == {} and rec["steps_run"] == 3  # the controller's action was within the bounds


def test_a_stuck_actuator_holds_the_last_input_only():
    inj = _inject("actuator_stuck")
    us = [PLANT.u_ss + [0.1 * k, 1e3 * k] for k in range(ONSET + 2)]
    out = [inj.actuate(k, u) for k, u in enumerate(us)]
    assert out[ONSET + 1][0] == us[ONSET + 1][0] and out[ONSET + 1][1] == us[ONSET][1]


def test_parameter_drift_changes_a_copy_of_the_plant_within_twenty_percent():
    inj = _inject("parameter_drift", seed=5)
    assert inj.plant is not PLANT and PLANT.k0 == CSTR.k0 and PLANT.dH == CSTR.dH
    for n in ("k0", "dH"):
        ratio = getattr(inj.plant, n) / getattr(PLANT, n)
        assert 0.8 <= ratio <= 1.2 and ratio != 1.0
    assert not np.allclose(inj.plant.step(X0, PLANT.u_ss), PLANT.step(X0, PLANT.u_ss))


def test_the_disturbance_step_raises_the_feed_temperature_from_its_onset():
    inj = _inject("disturbance_step")
    inj.before_step(ONSET - 1)
    assert inj.plant.T0 == PLANT.T0
    inj.before_step(ONSET)
    assert inj.plant.T0 == PLANT.T0 + 10.0 and PLANT.T0 == CSTR.T0


def test_the_time_limit_cut_halves_the_nominal_median_and_needs_it():
    assert _inject("time_limit_cut", med=0.01).options == {"time_limit": 0.005}
    with pytest.raises(InvalidValueError, match="median"):
        _inject("time_limit_cut", med=None)


def test_every_fault_in_closed_loop_gives_no_unhandled_exception_nan_action_or_hard_violation():
    out = soak("cstr", 1, controllers=("first_principles",), steps=8, horizon=3, faults="all", progress=False)
    assert set(out["by_fault"]) == set(FAULTS) and out["episodes"] == len(FAULTS)
    assert out["unhandled"] == 0 and out["nan_actions"] == 0 and out["hard_violations"] == 0
    cut = out["by_fault"]["time_limit_cut"]["first_principles"]
    assert cut["latency_ms"]["limit"] is not None and out["config"]["calibration_median_solve_s"]["first_principles"]
    lat = cut["latency_ms"]  # the CPU time of the step most over its limit: at most its wall time
    assert 0 < lat["cpu_at_max_over_limit"] <= lat["max_over_limit"] + lat["limit"] + 0.05
    assert lat["other_worker_at_max"] is None  # one process: no other worker to compare with
    nominal = out["by_fault"]["nominal"]["first_principles"]
    assert nominal["cost_degradation"] == pytest.approx(1.0) and nominal["fallbacks"] == 0


def test_a_soak_can_run_every_controller_on_another_solver():
    out = soak("cstr", 1, controllers=("first_principles",), steps=4, horizon=3, faults="nominal,time_limit_cut",
               solver="ipopt", progress=False)
    assert out["per_controller"]["first_principles"]["solver"] == "ipopt"
    assert out["config"]["solver_options"]["solver"] == "ipopt" and out["unhandled"] == 0
    with pytest.raises(UnknownNameError, match="nosuch"):
        soak("cstr", 1, controllers=("first_principles",), solver="nosuch", progress=False)
