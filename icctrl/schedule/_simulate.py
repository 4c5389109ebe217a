"""Closed-loop comparison on the microgrid plant: rolling-horizon dispatch vs self-consumption vs perfect
foresight."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from icctrl.errors import InvalidValueError, UnknownNameError
from icctrl.schedule._baseline import oracle_dispatch, self_consumption_action
from icctrl.schedule._battery import Battery
from icctrl.schedule._degradation import DegradationTruth, fit_degradation
from icctrl.schedule._dispatch import BACKENDS, BALANCE_TOL, FORMULATIONS, SOC_TOL, SOLVERS, Dispatcher
from icctrl.schedule._forecast import RidgeForecaster

POLICIES = ("baseline", "ours", "oracle")
FORECASTS = ("ridge", "clearsky", "perfect")


@dataclass
class ScheduleConfig:
    """Settings of one simulated run; the defaults are the documented figures."""

    days: int = 3  # simulated days
    train_days: int = 14  # days of history before them, used to fit the forecaster
    start: str = "2024-06-07"  # first training day (the simulation starts train_days later)
    site: str = "golden"  # plants._weather.SITES
    seed: int = 0  # weather, load and training seed
    cloudiness: float = 0.3  # fraction of time overcast in the cloud process
    horizon: int = 96  # steps of 15 min per plan
    solver: str = "highs"  # clarabel, ecos, highs, osqp
    formulation: str = "pieces"  # pieces, epigraph, none
    backend: str = "auto"  # auto, compiled, cvxpy
    soc0_frac: float = 0.5  # initial SOC as a fraction of capacity
    degradation_steps: int = 800  # Adam steps for the ICNN
    steps: int | None = None  # stop after this many simulated steps (smoke tests); None = all
    realtime_correction: bool = True  # the battery also absorbs the current forecast error (meter loop)
    store_surplus: bool = True  # real-time floor: a measured PV surplus always goes to the battery first
    forecast: str = (
        "ridge"  # ridge, clearsky (PV from the clear-sky profile), perfect (true future: reference)
    )
    forecast_risk: float = 0.0  # plan on PV − k·σ and load + k·σ (σ: residual std per lead time)
    plan_terminal_value: float | None = None  # €/kWh kept past the horizon; None: η_d × mean training price

    def check(self) -> None:
        for name in ("days", "train_days", "horizon", "degradation_steps"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise InvalidValueError(f"ScheduleConfig.{name} must be a positive integer, got {v!r}")
        if self.train_days < 3:
            raise InvalidValueError(
                f"train_days must be >= 3 (lags + horizon + one day), got {self.train_days!r}"
            )
        if self.steps is not None and (int(self.steps) != self.steps or self.steps < 1):
            raise InvalidValueError(f"steps must be a positive integer or None, got {self.steps!r}")
        if self.plan_terminal_value is not None and not (
            np.isfinite(self.plan_terminal_value) and self.plan_terminal_value >= 0
        ):
            raise InvalidValueError(
                f"plan_terminal_value must be >= 0 €/kWh, got {self.plan_terminal_value!r}"
            )
        if not (np.isfinite(self.forecast_risk) and self.forecast_risk >= 0):
            raise InvalidValueError(f"forecast_risk must be finite and >= 0, got {self.forecast_risk!r}")
        if not 0.0 <= self.soc0_frac <= 1.0:
            raise InvalidValueError(f"soc0_frac must be in [0, 1], got {self.soc0_frac!r}")
        for name, known in (
            ("solver", SOLVERS),
            ("formulation", FORMULATIONS),
            ("backend", BACKENDS),
            ("forecast", FORECASTS),
        ):
            if str(getattr(self, name)).lower() not in known:
                raise UnknownNameError(
                    f"unknown {name} {getattr(self, name)!r}; choose one of {sorted(known)}"
                )


@dataclass
class PolicyRun:
    """One policy's closed-loop trajectory on the plant and its score (€)."""

    p_battery: np.ndarray
    soc: np.ndarray
    grid_import: np.ndarray
    grid_export: np.ndarray
    energy_cost: float
    degradation_cost: float
    terminal_value: float

    @property
    def cost(self) -> float:
        """Energy cost + true degradation − value of the SOC gained over the run."""
        return self.energy_cost + self.degradation_cost - self.terminal_value


@dataclass
class ScheduleResult:
    """Everything a run produced: trajectories, scores, timings, statuses, forecast and fit errors,
    certificate."""

    config: ScheduleConfig
    battery: Battery
    times: object
    pv: np.ndarray
    load: np.ndarray
    price_import: np.ndarray
    price_export: np.ndarray
    runs: dict
    solve_ms: np.ndarray
    solver_ms: np.ndarray
    compile_ms: float
    backend: str
    statuses: dict
    fallbacks: int
    violations: dict
    forecast: dict
    degradation_fit: dict
    certificate: dict
    terminal_price: float
    extras: dict = field(default_factory=dict)

    @property
    def n_violations(self) -> int:
        return int(sum(v for k, v in self.violations.items() if k.endswith("_steps")))

    def summary(self) -> dict:
        """JSON-ready figures; the keys cost, baseline_cost, oracle_cost, solve_ms, violations,
        certified_convex are
        a public contract."""
        ours, base, orc = (self.runs[k] for k in ("ours", "baseline", "oracle"))
        savings = base.cost - ours.cost
        possible = base.cost - orc.cost
        return {
            "cost": ours.cost,
            "baseline_cost": base.cost,
            "oracle_cost": orc.cost,
            "solve_ms": {
                "median": float(np.median(self.solve_ms)),
                "p99": float(np.percentile(self.solve_ms, 99)),
            },
            "violations": self.n_violations,
            "certified_convex": bool(self.certificate["certified_convex"]),
            "savings_vs_baseline": savings,
            "savings_fraction_of_oracle": savings / possible if possible > 0 else None,
            "gap_to_oracle": ours.cost - orc.cost,
            "solve_cpu_ms": {
                "median": float(np.median(self.extras["cpu_ms"])),
                "p99": float(np.percentile(self.extras["cpu_ms"], 99)),
            },
            "load_average": self.extras.get("load_average"),
            "solver_ms": {
                "median": float(np.nanmedian(self.solver_ms)),
                "p99": float(np.nanpercentile(self.solver_ms, 99)),
            },
            "compile_ms": self.compile_ms,
            "backend": self.backend,
            "steps": int(self.solve_ms.size),
            "fallbacks": self.fallbacks,
            "statuses": self.statuses,
            "violation_detail": self.violations,
            "policies": {
                k: {
                    "cost": r.cost,
                    "energy_cost": r.energy_cost,
                    "degradation_cost": r.degradation_cost,
                    "terminal_value": r.terminal_value,
                    "soc_start_kwh": float(r.soc[0]),
                    "soc_end_kwh": float(r.soc[-1]),
                    "throughput_kwh": float(np.abs(r.p_battery).sum() * 0.25),
                }
                for k, r in self.runs.items()
            },
            "terminal_price_eur_per_kwh": self.terminal_price,
            "forecast": self.forecast,
            "degradation_fit": self.degradation_fit,
            "certificate": self.certificate,
            "config": asdict(self.config),
            **{k: v for k, v in self.extras.items() if k != "cpu_ms"},
        }

    def table(self) -> str:
        """Plain-text comparison table."""
        s = self.summary()
        base = s["baseline_cost"]
        lines = [
            f"{'policy':<26}{'energy €':>10}{'degr. €':>10}{'SOC value €':>12}{'cost €':>10}"
            f"{'vs baseline':>13}",
            "-" * 81,
        ]
        names = {
            "baseline": "self-consumption (rule)",
            "ours": "rolling horizon (ICNN)",
            "oracle": "perfect foresight",
        }
        for k in POLICIES:
            r = self.runs[k]
            lines.append(
                f"{names[k]:<26}{r.energy_cost:>10.3f}{r.degradation_cost:>10.3f}{r.terminal_value:>12.3f}"
                f"{r.cost:>10.3f}{base - r.cost:>+13.3f}"
            )
        frac = s["savings_fraction_of_oracle"]
        lines += [
            "-" * 81,
            f"savings vs baseline {s['savings_vs_baseline']:.3f} € ("
            + (f"{100 * frac:.0f} % of the perfect-foresight savings" if frac is not None else "n/a")
            + f"), gap to perfect foresight {s['gap_to_oracle']:.3f} €",
            f"solve time per step ({self.backend}, {self.config.solver}, {self.config.formulation}): median "
            f"{s['solve_ms']['median']:.2f} ms, p99 {s['solve_ms']['p99']:.2f} ms over {s['steps']} "
            f"re-solves (CPU time median {s['solve_cpu_ms']['median']:.2f} ms)",
            f"fallbacks {self.fallbacks}, violations {s['violations']}, certified convex "
            f"{s['certified_convex']}",
            f"forecast MAE: PV {self.forecast['pv']['mae_kw']:.3f} kW (persistence "
            f"{self.forecast['pv']['persistence_mae_kw']:.3f}), "
            f"load {self.forecast['load']['mae_kw']:.3f} kW "
            f"(persistence {self.forecast['load']['persistence_mae_kw']:.3f})",
            f"degradation ICNN fit: max error {self.degradation_fit['max_abs_error_eur_per_h']:.4f} €/h "
            f"(range {self.degradation_fit['range_eur_per_h']:.3f} €/h)",
        ]
        return "\n".join(lines)


def _apply(plant, battery: Battery, soc: float, action: float, dt: float) -> tuple[float, float, float]:
    """Apply one battery power to the plant, clipped to what the SOC window allows: (power, next SOC, clip
    size).

    A plan that respects the window is clipped by solver rounding only (< 1e-6 kW); more counts as a
    violation."""
    lo, hi = battery.power_window(soc, dt)
    plo, phi = plant.input_bounds(soc, dt)
    p = float(np.clip(action, max(lo, plo), min(hi, phi)))
    return p, float(plant.step([soc], [p], dt)[0]), abs(p - action)


def _replay(plant, battery: Battery, soc0: float, actions, dt: float):
    """Apply a sequence of battery powers: (powers, SOC trajectory, clip sizes)."""
    p, soc, clip = np.empty(len(actions)), np.empty(len(actions) + 1), np.empty(len(actions))
    soc[0] = soc0
    for t, a in enumerate(actions):
        p[t], soc[t + 1], clip[t] = _apply(plant, battery, soc[t], a, dt)
    return p, soc, clip


def _score(plant, truth, frame, p, soc, dt: float, terminal_price: float) -> PolicyRun:
    imp, exp = plant.grid_power(frame["pv_kw"].to_numpy(), frame["load_kw"].to_numpy(), p)
    energy = float(plant.energy_cost(frame, p, dt).sum())
    degr = float(dt * truth(p).sum())
    return PolicyRun(p, soc, imp, exp, energy, degr, terminal_price * float(soc[-1] - soc[0]))


def run_schedule(
    config: ScheduleConfig | None = None, truth: DegradationTruth | None = None
) -> ScheduleResult:
    """Simulate the three policies on a seeded microgrid and score them with the true degradation cost."""
    from plants import Microgrid

    cfg = config or ScheduleConfig()
    cfg.check()
    truth = truth or DegradationTruth()
    plant = Microgrid(site=cfg.site)
    battery = Battery.from_microgrid(plant)
    dt, H, spd = float(plant.dt), int(cfg.horizon), 96
    frame = plant.profiles(
        days=cfg.train_days
        + cfg.days
        + -(-H // spd),  # one more horizon of prices (and weather) past the end
        start=cfg.start,
        seed=cfg.seed,
        cloudiness=cfg.cloudiness,
    )
    pv_all, load_all = frame["pv_kw"].to_numpy(), frame["load_kw"].to_numpy()
    pi_all, pe_all = frame["price_import"].to_numpy(), frame["price_export"].to_numpy()
    sod = (frame.index.hour * 4 + frame.index.minute // 15).to_numpy()
    t0 = cfg.train_days * spd
    n = cfg.days * spd if cfg.steps is None else min(int(cfg.steps), cfg.days * spd)
    sim = slice(t0, t0 + n)

    days_total = cfg.train_days + cfg.days + -(-H // spd)
    clear = None
    if cfg.forecast == "clearsky":  # the same PVWatts chain under a cloudless sky: astronomy, known ahead
        clear = plant.profiles(days=days_total, start=cfg.start, seed=cfg.seed, cloudiness=0.0)["pv_kw"]
        clear = clear.to_numpy()
    forecaster = RidgeForecaster(horizon=H).fit(
        pv_all[:t0], load_all[:t0], step0=int(sod[0]), pv_clear=None if clear is None else clear[:t0]
    )
    lo, hi = t0 - max(forecaster.lags, spd), t0 + n + H - 1
    forecast = forecaster.evaluate(
        pv_all[lo:hi], load_all[lo:hi], step0=int(sod[lo]), pv_clear=None if clear is None else clear[lo:hi]
    )
    forecast["model"] = (
        f"ridge regression (alpha={forecaster.alpha}) on {forecaster.lags} lags of PV and load "
        f"and {forecaster.harmonics} time-of-day harmonics; fitted on {cfg.train_days} days"
        + ("; PV from the clear-sky profile and the recent clear-sky index" if clear is not None else "")
        + (
            "; the dispatch was given the TRUE future instead (perfect forecasts)"
            if cfg.forecast == "perfect"
            else ""
        )
    )

    def predict(i: int) -> tuple[np.ndarray, np.ndarray]:
        if cfg.forecast == "perfect":
            return pv_all[i : i + H].copy(), load_all[i : i + H].copy()
        window = None if clear is None else clear[i - forecaster.lags : i + H]
        return forecaster.predict(pv_all[:i], load_all[:i], int(sod[i]), cfg.forecast_risk, pv_clear=window)

    deg = fit_degradation(
        truth,
        p_max=battery.p_charge_max,
        p_min=-battery.p_discharge_max,
        steps=cfg.degradation_steps,
        seed=cfg.seed,
    )
    plan_value = cfg.plan_terminal_value
    if plan_value is None:  # what a stored kWh displaces later, judged from the history only
        plan_value = float(battery.eta_discharge * pi_all[:t0].mean())
    dispatcher = Dispatcher(
        battery,
        deg,
        horizon=H,
        dt=dt,
        solver=cfg.solver,
        formulation=cfg.formulation,
        backend=cfg.backend,
        terminal_value=plan_value,
    )

    soc0 = cfg.soc0_frac * battery.capacity_kwh
    p_ours, soc_ours, clip_ours = np.empty(n), np.empty(n + 1), np.zeros(n)
    solve_ms, solver_ms, plan_resid, cpu_ms = np.empty(n), np.empty(n), np.zeros(n), np.empty(n)
    soc_ours[0] = soc0
    for k in range(n):
        i = t0 + k
        pv_fc, load_fc = predict(i)
        cpu = time.process_time()
        plan = dispatcher.solve(soc_ours[k], pv_fc, load_fc, pi_all[i : i + H], pe_all[i : i + H])
        cpu_ms[k] = 1e3 * (time.process_time() - cpu)
        solve_ms[k], solver_ms[k] = plan.solve_ms, plan.solver_ms
        plan_resid[k] = plan.balance_residual if plan.ok else 0.0
        action = plan.action
        lo_w, hi_w = battery.power_window(soc_ours[k], dt)
        clip_ours[k] = max(0.0, lo_w - action, action - hi_w)  # how far the plan itself leaves the SOC window
        if cfg.realtime_correction and plan.ok:
            action += (pv_all[i] - pv_fc[0]) - (load_all[i] - load_fc[0])
        if cfg.store_surplus:
            action = max(action, pv_all[i] - load_all[i])  # never export while the battery has room
        p_ours[k], soc_ours[k + 1], _ = _apply(plant, battery, soc_ours[k], action, dt)
    terminal_price = float(battery.eta_discharge * pi_all[sim].mean())
    frame_sim = frame.iloc[sim]
    runs = {"ours": _score(plant, truth, frame_sim, p_ours, soc_ours, dt, terminal_price)}
    p_base, soc_base = np.empty(n), np.empty(n + 1)
    soc_base[0] = soc0
    for k in range(n):
        p_base[k] = self_consumption_action(battery, soc_base[k], pv_all[t0 + k], load_all[t0 + k], dt)
        soc_base[k + 1] = plant.step([soc_base[k]], [p_base[k]], dt)[0]
    runs["baseline"] = _score(plant, truth, frame_sim, p_base, soc_base, dt, terminal_price)
    p_orc = oracle_dispatch(
        battery, soc0, pv_all[sim], load_all[sim], pi_all[sim], pe_all[sim], dt, truth, terminal_price
    )
    p_orc, soc_orc, _ = _replay(plant, battery, soc0, p_orc, dt)
    runs["oracle"] = _score(plant, truth, frame_sim, p_orc, soc_orc, dt, terminal_price)

    soc_arr = runs["ours"].soc[1:]
    violations = {
        "soc_bound_steps": int(
            np.sum((soc_arr < battery.soc_min - SOC_TOL) | (soc_arr > battery.soc_max + SOC_TOL))
        ),
        "plan_balance_steps": int(np.sum(plan_resid > BALANCE_TOL)),
        "plan_window_steps": int(np.sum(clip_ours > 1e-6)),
        "max_plan_balance_residual_kw": float(plan_resid.max(initial=0.0)),
        "max_plan_window_excess_kw": float(clip_ours.max(initial=0.0)),
        "max_meter_balance_residual_kw": float(
            np.abs(
                runs["ours"].grid_import
                - runs["ours"].grid_export
                - (load_all[sim] - pv_all[sim] + runs["ours"].p_battery)
            ).max()
        ),
    }
    return ScheduleResult(
        cfg,
        battery,
        frame_sim.index,
        pv_all[sim],
        load_all[sim],
        pi_all[sim],
        pe_all[sim],
        runs,
        solve_ms,
        solver_ms,
        dispatcher.compile_ms,
        dispatcher.backend,
        dispatcher.stats.to_dict()["statuses"],
        dispatcher.stats.fallbacks,
        violations,
        forecast,
        deg.fit,
        dispatcher.certificate(),
        terminal_price,
        {
            "pieces": list(getattr(dispatcher, "n_pieces", ())),
            "cpu_ms": cpu_ms,
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
    )
