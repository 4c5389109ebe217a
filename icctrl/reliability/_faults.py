"""Named, seedable fault scenarios for closed-loop soaks: what the controller measures, what the actuator
does with its action, and how the true plant differs from the one the controller was built for."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from icctrl.errors import InvalidValueError, UnknownNameError

#: Fault window: stuck sensors and actuators stay stuck for steps [ONSET, ONSET + DURATION); steps happen
#: at ONSET.
ONSET, DURATION = 5, 10


def _same(k: int, v: np.ndarray) -> np.ndarray:
    return v


@dataclass
class Injection:
    """One episode's fault: the true plant, the measurement map, the actuator map, a hook run before each
    plant step, and controller options (a solver time limit)."""

    plant: object
    measure: Callable[[int, np.ndarray], np.ndarray] = _same
    actuate: Callable[[int, np.ndarray], np.ndarray] = _same
    before_step: Callable[[int], None] = lambda k: None
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Fault:
    """A named scenario; `inject(plant, rng, median_solve_s)` makes the episode's Injection."""

    name: str
    summary: str
    make: Callable[..., Injection]

    def inject(self, plant, rng: np.random.Generator, median_solve_s: float | None = None) -> Injection:
        return self.make(plant, rng, median_solve_s)


def _scale(plant) -> np.ndarray:
    """Size of each state used for sensor faults: its steady-state magnitude (C_A ~2 kmol/m3, T ~400 K)."""
    return np.maximum(np.abs(np.asarray(plant.x_ss, dtype=float)), 1e-6)


def _nominal(plant, rng, med):
    return Injection(plant)


def _sensor_noise(plant, rng, med, rel=0.0025):
    s = rel * _scale(plant)
    return Injection(plant, measure=lambda k, x: x + s * rng.standard_normal(x.shape))


def _sensor_bias(plant, rng, med, rel=0.005):
    b = rel * _scale(plant) * rng.choice([-1.0, 1.0], size=np.shape(plant.x_ss))
    return Injection(plant, measure=lambda k, x: x + b)


def _stuck(window_value: dict, k: int, v: np.ndarray, index=None) -> np.ndarray:
    """v, except inside the fault window, where it stays at its value at the window's onset."""
    if k == ONSET:
        window_value["v"] = v.copy()
    if ONSET <= k < ONSET + DURATION:
        out = v.copy()
        idx = slice(None) if index is None else index
        out[idx] = window_value["v"][idx]
        return out
    return v


def _sensor_stuck(plant, rng, med):
    held: dict = {}
    return Injection(plant, measure=lambda k, x: _stuck(held, k, x))


def _nan_measurement(plant, rng, med, p=0.1):
    def measure(k, x):
        return np.full_like(x, np.nan) if rng.random() < p else x
    return Injection(plant, measure=measure)


def _actuator_saturation(plant, rng, med, keep=0.5):
    mid, half = (plant.u_ub + plant.u_lb) / 2, keep * (plant.u_ub - plant.u_lb) / 2
    return Injection(plant, actuate=lambda k, u: np.clip(u, mid - half, mid + half))


def _actuator_stuck(plant, rng, med):
    held: dict = {}
    last = plant.nu - 1  # the heat input on the CSTR
    return Injection(plant, actuate=lambda k, u: _stuck(held, k, u, index=last))


#: Plant parameters that drift, per plant name, and by how much (relative, uniform in ±).
DRIFT = {"cstr": (("k0", "dH"), 0.2)}
#: Unmeasured disturbance steps: plant name -> (parameter, absolute step) applied from ONSET on.
DISTURBANCE = {"cstr": ("T0", 10.0)}


def _parameter_drift(plant, rng, med):
    names, rel = DRIFT[plant.name]
    true = copy.copy(plant)
    for n in names:
        setattr(true, n, getattr(plant, n) * (1 + rng.uniform(-rel, rel)))
    return Injection(true)


def _disturbance_step(plant, rng, med):
    name, step = DISTURBANCE[plant.name]
    true = copy.copy(plant)
    base = getattr(plant, name)

    def before(k):
        setattr(true, name, base + step if k >= ONSET else base)
    return Injection(true, before_step=before)


def _time_limit_cut(plant, rng, med):
    if med is None or not np.isfinite(med) or med <= 0:
        raise InvalidValueError(f"the time_limit_cut fault needs the controller's nominal median solve time, "
                                f"got {med!r}")
    return Injection(plant, options={"time_limit": 0.5 * float(med)})


FAULTS = {f.name: f for f in (
    Fault("nominal", "no fault", _nominal),
    Fault("sensor_noise", "Gaussian sensor noise, σ = 0.25 % of each steady-state value", _sensor_noise),
    Fault("sensor_bias", "constant sensor bias of ±0.5 % of each steady-state value", _sensor_bias),
    Fault("sensor_stuck", f"all sensors frozen for steps {ONSET}–{ONSET + DURATION - 1}", _sensor_stuck),
    Fault("nan_measurement", "each measurement is NaN with probability 0.1", _nan_measurement),
    Fault("actuator_saturation", "actuators reach only the middle 50 % of the input range", _actuator_saturation),
    Fault("actuator_stuck", f"last input frozen for steps {ONSET}–{ONSET + DURATION - 1}", _actuator_stuck),
    Fault("parameter_drift", "k0 and ΔH of the true plant × U(0.8, 1.2)", _parameter_drift),
    Fault("disturbance_step", f"unmeasured feed temperature step +10 K from step {ONSET}", _disturbance_step),
    Fault("time_limit_cut", "solver time limit cut to half the nominal median solve time", _time_limit_cut),
)}


def fault_names(spec) -> tuple[str, ...]:
    """Fault names from "all", a comma-separated string or a sequence; unknown names raise."""
    if spec is None:
        return ("nominal",)
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s) for s in spec]
    names = [n for n in names if n]
    if names == ["all"]:
        return tuple(FAULTS)
    bad = [n for n in names if n not in FAULTS]
    if bad or not names:
        raise UnknownNameError(f"unknown fault(s) {bad or names}; choose from all, {', '.join(FAULTS)}")
    return tuple(dict.fromkeys(names))
