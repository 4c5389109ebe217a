"""Closed loop over a time-lapsed stretch of a day: each RTO controller and P&O drive the LSODA plant."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from icctrl.errors import IntegrationError, InvalidValueError
from icctrl.pv._baseline import PerturbObserve
from icctrl.pv._models import PV_MODELS, QUICK, ModelSpec, pv_models
from icctrl.pv._rto import DutyRTO, rto_certificate, summary

CONTROLLERS = ("first_principles", *PV_MODELS, "perturb_observe")
PAPER_RATIO = 4.0  # the IC-LSTM paper: the input-convex model solves >= 4x faster than an LSTM


def day_stretch(plant, n_steps: int, minutes: int = 120, start: str = "2024-06-21 11:00", seed: int = 0,
                cloudiness: float = 0.5) -> np.ndarray:
    """(n_steps, 2) irradiance and cell temperature: `minutes` of pvlib weather with clouds, linearly
    interpolated onto the controller periods (a time-lapse: the stretch plays within n_steps·dt)."""
    w = plant.weather(start=start, periods=int(minutes), freq="1min", seed=seed, cloudiness=cloudiness)
    t = np.linspace(0.0, minutes - 1, n_steps)
    m = np.arange(minutes)
    return np.stack([np.interp(t, m, w["irradiance"].to_numpy()), np.interp(t, m, w["temp_cell"].to_numpy())], 1)


def _stats(ms: list[float]) -> dict:
    if not ms:
        return {"median": None, "p99": None, "max": None}
    a = np.asarray(ms)
    return {"median": float(np.median(a)), "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def run_pv(quick: bool = False, n_steps: int | None = None, minutes: int | None = None, seed: int = 0,
           horizon: int | None = None, spec: ModelSpec | None = None, load_fraction: float = 0.5,
           cache: bool = True, controllers=CONTROLLERS, solver: str = "rti") -> dict:
    """Simulate every controller on the same weather; energies, bound violations and solve times. `solver`:
    the RTO engine ("rti", one Gauss–Newton QP per period, or "ipopt", converged)."""
    from plants.pv_converter import PVConverter

    n_steps = int(n_steps or (12 if quick else 300))
    horizon = int(horizon or (3 if quick else 6))
    minutes = int(minutes or (2 if quick else 60))
    if n_steps < 2:
        raise InvalidValueError(f"n_steps must be >= 2, got {n_steps!r}")
    if not 0 < load_fraction <= 1.5:
        raise InvalidValueError(f"load_fraction must be in (0, 1.5], got {load_fraction!r}")
    bad = [c for c in controllers if c not in CONTROLLERS]
    if bad:
        raise InvalidValueError(f"unknown controller {bad[0]!r}; choose from {list(CONTROLLERS)}")
    spec = spec or (QUICK if quick else ModelSpec())
    base = PVConverter()
    plant = PVConverter(i_L=load_fraction * float(base.i_L))
    v_max = plant.v_b + 0.05
    D = day_stretch(plant, n_steps, minutes, seed=seed)
    mpp0 = plant.mpp(*D[0])
    x0 = np.array([float(mpp0.v_mp), float(mpp0.p_mp) / plant.v_b, v_max - 0.002])
    u0 = float(np.clip(mpp0.duty, 0.05, 0.95))
    models = pv_models(plant, [c for c in controllers if c in PV_MODELS], spec, cache=cache)
    out = {"energy_kwh": {}, "solve_ms": {}, "violations": {}, "max_v_c": {}, "failures": {}, "aborted": {},
           "certificates": {}, "traces": {}}
    for name in controllers:
        x, u, X, Ucl, ms, fails = x0.copy(), u0, [x0.copy()], [], [], 0
        if name == "perturb_observe":
            ctl = PerturbObserve()
        else:
            ctl = DutyRTO(plant, models.get(name), horizon=horizon, v_max=v_max, window=spec.window,
                          label=name.replace("_", ""), solver=solver)
            out["certificates"][name] = {"horizon": summary(ctl.certificate()),
                                         "one_step": summary(rto_certificate(models.get(name), 1, spec.window,
                                                                             plant))}
        for k in range(n_steps):
            if isinstance(ctl, PerturbObserve):
                u = ctl.update(plant.v_b * x[1], u) if k else u
            else:
                s = ctl.solve(x, D[k], u)
                u, fails = s.duty, fails + (not s.success)
                ms.append(s.ms)
            try:
                x = plant.step(x, [u], d=D[k])
            except (InvalidValueError, IntegrationError) as exc:  # the array voltage collapsed: stop here
                out["aborted"][name] = f"period {k}: {exc}"
                break
            X.append(x.copy())
            Ucl.append(u)
        X = np.asarray(X)
        p = plant.v_b * X[:, 1]
        energy_j = float(np.sum(0.5 * (p[1:] + p[:-1])) * plant.dt)
        out["energy_kwh"][name] = energy_j / 3.6e6
        out["solve_ms"][name] = _stats(ms)
        out["violations"][name] = int(np.sum(X[1:, 2] > v_max + 1e-6))
        out["max_v_c"][name] = float(X[:, 2].max())
        out["failures"][name] = fails
        out["traces"][name] = {"v_pv": X[:, 0].tolist(), "i_s": X[:, 1].tolist(), "v_c": X[:, 2].tolist(),
                               "duty": Ucl}
    mpp = plant.mpp(D[:, 0], D[:, 1])
    out["available_kwh"] = float(np.sum(np.asarray(mpp.p_mp)) * plant.dt / 3.6e6)
    med = out["solve_ms"]
    ratio = None
    if "iclstm" in med and "lstm" in med and med["iclstm"]["median"]:
        ratio = med["lstm"]["median"] / med["iclstm"]["median"]
    out["ratio_iclstm_vs_lstm"] = ratio
    out["paper_ratio"] = PAPER_RATIO
    out["setup"] = {"solver": solver, "n_steps": n_steps,
                    "dt_s": plant.dt, "horizon": horizon, "v_max": v_max, "i_L": plant.i_L,
                    "minutes": minutes, "seed": seed, "quick": quick, "weather": D.tolist(),
                    "models": replace(spec).__dict__}
    return out
