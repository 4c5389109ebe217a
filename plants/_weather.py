"""Named sites and seedable weather: pvlib clear sky, a Markov cloud process, air temperature, POA."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from icctrl.errors import InvalidValueError, UnknownNameError

__all__ = ["SITES", "Site", "get_site", "weather_frame"]


@dataclass(frozen=True)
class Site:
    """A place with the climate numbers the weather model needs (mean/amplitude of air temperature in °C)."""

    name: str
    latitude: float
    longitude: float
    altitude: float
    tz: str
    temp_mean: float
    temp_daily_amplitude: float
    wind_speed: float = 2.0  # m/s, used by the cell-temperature model

    def location(self) -> Any:
        """The pvlib Location of this site."""
        from pvlib.location import Location

        return Location(self.latitude, self.longitude, tz=self.tz, altitude=self.altitude, name=self.name)


SITES: dict[str, Site] = {
    # NREL's campus (Golden, Colorado): summer-day figures.
    "golden": Site("golden", 39.742, -105.179, 1829.0, "America/Denver", 22.0, 8.0),
    # Freiburg im Breisgau (Fraunhofer ISE): temperate central European climate.
    "freiburg": Site("freiburg", 47.995, 7.849, 278.0, "Europe/Berlin", 18.0, 6.0),
    # Sevilla: hot, sunny southern Spain.
    "sevilla": Site("sevilla", 37.389, -5.984, 11.0, "Europe/Madrid", 27.0, 9.0),
}


def get_site(site: str | Site) -> Site:
    """Resolve a site name (see SITES) or pass a Site through."""
    if isinstance(site, Site):
        return site
    try:
        return SITES[str(site).lower()]
    except KeyError:
        raise UnknownNameError(f"unknown site {site!r}; known sites: {sorted(SITES)}") from None


def _cloud_index(n: int, step_h: float, rng: np.random.Generator, cloudiness: float) -> np.ndarray:
    """Clear-sky index in (0, 1]: a two-state (clear/overcast) Markov chain, smoothed and jittered.

    Mean dwell times are 2 h clear and 2 h·cloudiness/(1 − cloudiness) overcast; overcast passes 25 % of
    clear-sky irradiance. An exponential filter with a 20-minute time constant softens cloud edges.
    """
    p_leave_clear = min(1.0, step_h / 2.0 * cloudiness / max(1e-9, 1.0 - cloudiness))
    p_leave_cloudy = min(1.0, step_h / 2.0)
    state = np.empty(n, dtype=bool)  # True = overcast
    state[0] = rng.random() < cloudiness
    u = rng.random(n)
    for t in range(1, n):
        leave = p_leave_cloudy if state[t - 1] else p_leave_clear
        state[t] = (not state[t - 1]) if u[t] < leave else state[t - 1]
    target = np.where(state, 0.25, 1.0)
    alpha = 1.0 - np.exp(-step_h / (20.0 / 60.0))
    k = np.empty(n)
    k[0] = target[0]
    for t in range(1, n):
        k[t] = k[t - 1] + alpha * (target[t] - k[t - 1])
    return np.clip(k * (1.0 + 0.03 * rng.standard_normal(n)), 0.05, 1.0)


def weather_frame(
    start: Any,
    periods: int,
    freq: str,
    site: str | Site = "golden",
    seed: int | np.random.Generator | None = 0,
    *,
    tilt: float | None = None,
    azimuth: float = 180.0,
    cloudiness: float = 0.3,
) -> Any:
    """Seedable weather at a site: clear sky × cloud index, air and cell temperature, plane-of-array.

    Clear sky is pvlib Ineichen (Linke turbidity from pvlib's shipped table), or Haurwitz when that table
    cannot be read. Columns: ghi, dni, dhi, ghi_clear [W/m2], clear_sky_index [-], solar_zenith [deg],
    poa_global [W/m2] (tilt defaults to the latitude, facing `azimuth`), temp_air, temp_cell [°C]
    (pvlib faiman model with the site's wind speed).
    """
    import pandas as pd
    from pvlib import irradiance, temperature

    if int(periods) != periods or periods < 1:
        raise InvalidValueError(f"periods must be a positive integer, got {periods!r}")
    if not 0.0 <= cloudiness < 1.0:
        raise InvalidValueError(f"cloudiness must be in [0, 1), got {cloudiness!r}")
    s = get_site(site)
    loc = s.location()
    try:
        times = pd.date_range(start=pd.Timestamp(start), periods=int(periods), freq=freq)
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(f"bad start {start!r} or freq {freq!r}: {exc}") from exc
    times = times.tz_localize(s.tz) if times.tz is None else times.tz_convert(s.tz)
    step_h = (times[1] - times[0]).total_seconds() / 3600.0 if len(times) > 1 else 1.0
    rng = np.random.default_rng(seed)

    solpos = loc.get_solarposition(times)
    try:
        clear = loc.get_clearsky(times, model="ineichen", solar_position=solpos)
    except (OSError, ImportError, KeyError, ValueError):
        clear = loc.get_clearsky(times, model="haurwitz", solar_position=solpos)
        clear["dni"] = irradiance.disc(clear["ghi"], solpos["zenith"], times)["dni"]
        clear["dhi"] = clear["ghi"] - clear["dni"] * np.cos(np.radians(solpos["zenith"]))

    k = _cloud_index(len(times), step_h, rng, cloudiness)
    ghi = clear["ghi"].to_numpy() * k
    dni = clear["dni"].to_numpy() * k**2  # the beam is hit harder than the global by clouds
    cosz = np.clip(np.cos(np.radians(solpos["zenith"].to_numpy())), 0.0, None)
    dhi = np.clip(ghi - dni * cosz, 0.0, None)

    poa = irradiance.get_total_irradiance(
        surface_tilt=s.latitude if tilt is None else tilt,
        surface_azimuth=azimuth,
        solar_zenith=solpos["apparent_zenith"],
        solar_azimuth=solpos["azimuth"],
        dni=dni,
        ghi=ghi,
        dhi=dhi,
        albedo=0.2,
    )
    hour = times.hour.to_numpy() + times.minute.to_numpy() / 60.0
    # air temperature: daily sine peaking at 15:00, plus a slow seedable drift of ±1.5 °C
    drift = np.cumsum(rng.standard_normal(len(times))) * 0.2 * np.sqrt(step_h)
    temp_air = s.temp_mean + s.temp_daily_amplitude * np.sin(2 * np.pi * (hour - 9.0) / 24.0)
    temp_air = temp_air + np.clip(drift, -1.5, 1.5)
    poa_global = np.nan_to_num(np.clip(poa["poa_global"].to_numpy(), 0.0, None))
    temp_cell = temperature.faiman(poa_global, temp_air, wind_speed=s.wind_speed)
    return pd.DataFrame(
        {
            "ghi": ghi,
            "dni": dni,
            "dhi": dhi,
            "ghi_clear": clear["ghi"].to_numpy(),
            "clear_sky_index": k,
            "solar_zenith": solpos["zenith"].to_numpy(),
            "poa_global": poa_global,
            "temp_air": temp_air,
            "temp_cell": np.asarray(temp_cell, dtype=float),
        },
        index=times,
    )
