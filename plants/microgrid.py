"""PV + battery microgrid: discrete-time SOC dynamics, pvlib PV, a seedable load, time-of-use prices."""

from __future__ import annotations

from typing import Any

import numpy as np

from icctrl.errors import InvalidValueError, ShapeError
from plants._weather import Site, weather_frame
from plants.base import Plant

__all__ = ["Microgrid"]

SOC_TOL = 1e-9  # kWh of slack on the energy limits, so a solver's rounding passes


class Microgrid(Plant):
    """Home battery next to a rooftop PV system, 15-minute steps (dt = 0.25 h), energies in kWh.

    State x = (soc [kWh]), input u = (p_b [kW]) battery power at its terminals, positive = charging:
        soc⁺ = soc + dt·(η_c·max(p_b, 0) − max(−p_b, 0)/η_d)
    so charging stores η_c of what it draws and discharging drains 1/η_d of what it delivers. `step`
    refuses a p_b that would take soc outside [0, capacity]; `input_bounds(soc)` gives the feasible range.
    The plant is discrete-time: `rhs` raises NotImplementedError and `casadi_step` is the exact update
    (with fmax/fmin, non-smooth at p_b = 0).

    PV and load do not enter the SOC dynamics; `profiles` provides them (PVWatts chain at a named site with
    seedable clouds, a residential load with morning and evening peaks) together with time-of-use import and
    feed-in export prices, and `grid_power` / `energy_cost` close the balance
        grid = load − pv + p_b   (positive = import).
    Defaults: 13.5 kWh / 5 kW battery with 95 % one-way efficiencies (≈ 90 % round trip), 6 kWp PV with a
    5 kW inverter, prices in €/kWh.
    """

    name = "microgrid"
    state_names = ("soc",)
    state_units = ("kWh",)
    input_names = ("p_b",)
    input_units = ("kW",)
    time_unit = "h"
    dt = 0.25

    def __init__(
        self,
        capacity_kwh: float = 13.5,
        p_charge_max: float = 5.0,
        p_discharge_max: float = 5.0,
        eta_charge: float = 0.95,
        eta_discharge: float = 0.95,
        pv_kwp: float = 6.0,
        inverter_kw: float = 5.0,
        gamma_pdc: float = -0.004,
        site: str | Site = "golden",
        price_offpeak: float = 0.20,
        price_midpeak: float = 0.30,
        price_peak: float = 0.45,
        price_export: float = 0.08,
    ) -> None:
        for label, val in (
            ("capacity_kwh", capacity_kwh),
            ("p_charge_max", p_charge_max),
            ("p_discharge_max", p_discharge_max),
            ("pv_kwp", pv_kwp), ("inverter_kw", inverter_kw),
        ):  # fmt: skip
            if not np.isfinite(val) or val <= 0:
                raise InvalidValueError(f"{label} must be positive, got {val!r}")
        for label, val in (("eta_charge", eta_charge), ("eta_discharge", eta_discharge)):
            if not 0 < val <= 1:
                raise InvalidValueError(f"{label} must be in (0, 1], got {val!r}")
        self.capacity_kwh = float(capacity_kwh)
        self.eta_charge, self.eta_discharge = float(eta_charge), float(eta_discharge)
        self.pv_kwp, self.inverter_kw, self.gamma_pdc = float(pv_kwp), float(inverter_kw), float(gamma_pdc)
        self.site = site
        self.prices = {"offpeak": price_offpeak, "midpeak": price_midpeak, "peak": price_peak}
        self.price_export = float(price_export)
        self.u_lb, self.u_ub = np.array([-float(p_discharge_max)]), np.array([float(p_charge_max)])
        self.x_lb, self.x_ub = np.array([0.0]), np.array([self.capacity_kwh])
        self.x_ss, self.u_ss = np.array([0.5 * self.capacity_kwh]), np.array([0.0])

    # ------------------------------------------------------------------ battery
    def _soc_change(self, p_b: Any, dt: float) -> Any:
        p = np.asarray(p_b, dtype=float)
        return dt * (self.eta_charge * np.maximum(p, 0.0) - np.maximum(-p, 0.0) / self.eta_discharge)

    def _advance(self, x: np.ndarray, u: np.ndarray, dt: float, d: np.ndarray) -> np.ndarray:
        soc = x + self._soc_change(u, dt)
        if soc[0] < -SOC_TOL or soc[0] > self.capacity_kwh + SOC_TOL:
            lo, hi = self.input_bounds(x[0], dt)
            raise InvalidValueError(
                f"{self.name}: p_b = {float(u[0])!r} kW at soc = {float(x[0])!r} kWh would take soc to "
                f"{float(soc[0])!r} kWh, "
                f"outside [0, {self.capacity_kwh}]; feasible p_b is [{lo}, {hi}] kW"
            )
        return np.clip(soc, 0.0, self.capacity_kwh)

    def input_bounds(self, soc: float, dt: Any = None) -> tuple[float, float]:
        """Feasible (p_b_min, p_b_max) in kW at this soc: power limits and energy limits combined."""
        dt = self.check_dt(dt)
        soc = float(self.check_state([soc])[0])
        hi = min(float(self.u_ub[0]), (self.capacity_kwh - soc) / (dt * self.eta_charge))
        lo = max(float(self.u_lb[0]), -soc * self.eta_discharge / dt)
        return lo, hi

    def casadi_step(self, dt: Any = None, substeps: int | None = None) -> Any:
        """casadi.Function (x, u, d) -> x_next, the exact SOC update (substeps is ignored: it is discrete)."""
        import casadi as ca

        dt = self.check_dt(dt)
        x, u, d = ca.SX.sym("x", 1), ca.SX.sym("u", 1), ca.SX.sym("d", 0)
        x_next = x + dt * (self.eta_charge * ca.fmax(u, 0) - ca.fmax(-u, 0) / self.eta_discharge)
        return ca.Function(f"{self.name}_step", [x, u, d], [x_next], ["x", "u", "d"], ["x_next"])

    # ------------------------------------------------------------------ grid side
    @staticmethod
    def grid_power(pv: Any, load: Any, p_b: Any) -> tuple[np.ndarray, np.ndarray]:
        """(import_kw, export_kw), both ≥ 0, from the balance grid = load − pv + p_b (broadcasting)."""
        arrays = [np.asarray(a, dtype=float) for a in (pv, load, p_b)]
        for label, arr in zip(("pv", "load", "p_b"), arrays):
            if not np.all(np.isfinite(arr)):
                raise InvalidValueError(f"grid_power: {label} must be finite, got {arr.tolist()}")
        try:
            net = arrays[1] - arrays[0] + arrays[2]
        except ValueError as exc:
            raise ShapeError(f"grid_power: shapes {[a.shape for a in arrays]} do not broadcast") from exc
        return np.maximum(net, 0.0), np.maximum(-net, 0.0)

    def energy_cost(self, profile: Any, p_b: Any, dt: Any = None) -> np.ndarray:
        """Cost per step (€, negative = revenue) of battery power p_b (T,) against a `profiles` frame."""
        dt = self.check_dt(dt)
        p_b = np.asarray(p_b, dtype=float).reshape(-1)
        if p_b.shape[0] != len(profile):
            raise ShapeError(f"energy_cost: p_b has {p_b.shape[0]} steps, the profile {len(profile)}")
        imp, exp = self.grid_power(profile["pv_kw"].to_numpy(), profile["load_kw"].to_numpy(), p_b)
        return dt * (profile["price_import"].to_numpy() * imp - profile["price_export"].to_numpy() * exp)

    def import_price(self, times: Any) -> np.ndarray:
        """Time-of-use import price (€/kWh): weekday peak 17–21 h, mid-peak 7–17 h and 21–22 h, else off."""
        hour = np.asarray(times.hour)
        weekday = np.asarray(times.day_of_week) < 5
        price = np.full(hour.shape, self.prices["offpeak"], dtype=float)
        price[weekday & (((hour >= 7) & (hour < 17)) | ((hour >= 21) & (hour < 22)))] = self.prices["midpeak"]
        price[weekday & (hour >= 17) & (hour < 21)] = self.prices["peak"]
        weekend_day = ~weekday & (hour >= 7) & (hour < 22)
        price[weekend_day] = self.prices["midpeak"]
        return price

    # ------------------------------------------------------------------ profiles
    def pv_power(self, weather: Any) -> np.ndarray:
        """AC power [kW] from a weather frame: pvwatts_dc(poa, temp_cell) then the PVWatts inverter."""
        from pvlib import inverter, pvsystem

        pdc = pvsystem.pvwatts_dc(
            weather["poa_global"].to_numpy(), weather["temp_cell"].to_numpy(), 1000.0 * self.pv_kwp,
            self.gamma_pdc,
        )  # fmt: skip
        pac = inverter.pvwatts(
            np.asarray(pdc, dtype=float), 1000.0 * self.inverter_kw / 0.96, eta_inv_nom=0.96
        )
        return np.clip(np.nan_to_num(np.asarray(pac, dtype=float)), 0.0, None) / 1000.0

    def load_profile(self, times: Any, rng: np.random.Generator) -> np.ndarray:
        """Residential load [kW]: base, morning and evening peaks, daily scale, AR(1) noise, appliances."""
        hour = np.asarray(times.hour) + np.asarray(times.minute) / 60.0
        day = np.asarray((times.normalize() - times[0].normalize()).days)
        n_days = int(day.max()) + 1
        scale = rng.lognormal(0.0, 0.1, n_days)[day]
        morning_at = 7.25 + 0.5 * rng.standard_normal(n_days)[day]
        evening_at = 19.0 + 0.5 * rng.standard_normal(n_days)[day]
        shape = (
            0.35
            + 0.9 * np.exp(-0.5 * ((hour - morning_at) / 0.9) ** 2)
            + 0.3 * np.exp(-0.5 * ((hour - 13.0) / 1.5) ** 2)
            + 1.6 * np.exp(-0.5 * ((hour - evening_at) / 1.6) ** 2)
        )
        noise = np.empty(len(hour))
        noise[0] = 0.0
        eps = rng.standard_normal(len(hour)) * 0.08
        for t in range(1, len(hour)):
            noise[t] = 0.8 * noise[t - 1] + eps[t]
        load = scale * shape * (1.0 + noise)
        # appliance events (oven, kettle, washer): ~4 a day, 1.5–3 kW for 1–3 steps, in waking hours
        starts = np.flatnonzero((rng.random(len(hour)) < 4.0 / 96.0 * (hour >= 6.5)) & (hour < 23))
        for s in starts:
            length = int(rng.integers(1, 4))
            load[s : s + length] += rng.uniform(1.5, 3.0)
        return np.clip(load, 0.1, None)

    def profiles(
        self,
        days: int = 1,
        start: Any = "2024-06-21",
        seed: int | np.random.Generator | None = 0,
        **weather_kwargs: Any,
    ) -> Any:
        """15-minute DataFrame over `days` days: pv_kw, load_kw, price_import, price_export (€/kWh).

        PV and weather are evaluated at the middle of each interval; the index is the interval start in the
        site's time zone. Same seed, same frame.
        """
        import pandas as pd

        if int(days) != days or days < 1:
            raise InvalidValueError(f"days must be a positive integer, got {days!r}")
        rng = np.random.default_rng(seed)
        periods = int(days) * 96
        start_ts = pd.Timestamp(start)
        weather = weather_frame(
            start_ts + pd.Timedelta(minutes=7.5), periods, "15min", self.site, rng, **weather_kwargs
        )
        times = weather.index - pd.Timedelta(minutes=7.5)
        frame = pd.DataFrame(
            {
                "pv_kw": self.pv_power(weather),
                "load_kw": self.load_profile(times, rng),
                "price_import": self.import_price(times),
                "price_export": np.full(periods, self.price_export),
            },
            index=times,
        )
        frame.index.name = "time"
        return frame
