"""PV + battery microgrid: SOC energy balance, enforced limits, PVWatts profiles, load and prices."""

import numpy as np
import pandas as pd
import pytest

from icctrl.errors import InvalidValueError, ShapeError, UnknownNameError
from plants import Microgrid


@pytest.fixture(scope="module")
def grid():
    return Microgrid()


@pytest.fixture(scope="module")
def week(grid):
    return grid.profiles(days=7, start="2024-06-17", seed=11)  # Monday to Sunday


def test_soc_energy_balance(grid):
    rng = np.random.default_rng(0)
    soc = [grid.x_ss.copy()]
    powers = []
    for _ in range(200):
        lo, hi = grid.input_bounds(soc[-1][0])
        p = rng.uniform(lo, hi)
        powers.append(p)
        soc.append(grid.step(soc[-1], [p]))
    p = np.array(powers)
    charged, delivered = np.clip(p, 0, None), np.clip(-p, 0, None)
    stored = grid.dt * np.sum(grid.eta_charge * charged - delivered / grid.eta_discharge)
    assert soc[-1][0] - soc[0][0] == pytest.approx(stored, abs=1e-9)
    # charging 1 kW for 1 h stores eta_c kWh; delivering 1 kW for 1 h drains 1/eta_d kWh
    assert grid.step([5.0], [1.0], dt=1.0)[0] == pytest.approx(5.0 + grid.eta_charge, abs=1e-12)
    assert grid.step([5.0], [-1.0], dt=1.0)[0] == pytest.approx(5.0 - 1 / grid.eta_discharge, abs=1e-12)
    # a full charge/discharge cycle loses energy
    up = grid.simulate([2.0], np.full((8, 1), 2.0))
    down = grid.simulate(up[-1], np.full((8, 1), -2.0 * grid.eta_charge * grid.eta_discharge))
    assert down[-1, 0] == pytest.approx(2.0, abs=1e-9)


def test_limits_are_enforced(grid):
    with pytest.raises(InvalidValueError, match="6.0"):
        grid.step([5.0], [6.0])  # above the 5 kW charge limit
    with pytest.raises(InvalidValueError, match="feasible p_b"):
        grid.step([13.0], [5.0])  # would overfill the 13.5 kWh battery
    with pytest.raises(InvalidValueError, match="feasible p_b"):
        grid.step([0.2], [-2.0])  # would drain below empty
    with pytest.raises(InvalidValueError, match="-1.0"):
        grid.step([-1.0], [0.0])
    with pytest.raises(ShapeError):
        grid.step([5.0, 1.0], [0.0])
    lo, hi = grid.input_bounds(13.0)
    assert grid.step([13.0], [hi])[0] == pytest.approx(grid.capacity_kwh, abs=1e-12)
    assert grid.step([0.2], [grid.input_bounds(0.2)[0]])[0] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(NotImplementedError):
        grid.rhs([5.0], [0.0])
    with pytest.raises(InvalidValueError, match="eta_charge"):
        Microgrid(eta_charge=1.2)


def test_casadi_step_is_the_exact_update(grid):
    f = grid.casadi_step()
    for soc, p in [(3.0, 2.5), (3.0, -2.5), (7.0, 0.0)]:
        assert float(f([soc], [p], [])) == pytest.approx(grid.step([soc], [p])[0], abs=1e-12)


def test_grid_power_balance(grid, week):
    p_b = np.random.default_rng(2).uniform(-2.0, 2.0, len(week))
    imp, exp = grid.grid_power(week["pv_kw"], week["load_kw"], p_b)
    assert np.all(imp >= 0) and np.all(exp >= 0) and np.all(imp * exp == 0)
    np.testing.assert_allclose(imp - exp, week["load_kw"] - week["pv_kw"] + p_b, atol=1e-12)
    cost = grid.energy_cost(week, p_b)
    np.testing.assert_allclose(
        cost, grid.dt * (week["price_import"] * imp - week["price_export"] * exp), atol=1e-12
    )
    with pytest.raises(ShapeError):
        grid.energy_cost(week, p_b[:-1])
    with pytest.raises(InvalidValueError, match="nan"):
        grid.grid_power([1.0], [np.nan], [0.0])


def test_profile_layout_and_determinism(grid, week):
    assert list(week.columns) == ["pv_kw", "load_kw", "price_import", "price_export"]
    assert len(week) == 7 * 96
    assert (week.index[1] - week.index[0]) == pd.Timedelta(minutes=15)
    assert week.index[0] == pd.Timestamp("2024-06-17", tz="America/Denver")
    again = grid.profiles(days=7, start="2024-06-17", seed=11)
    other = grid.profiles(days=7, start="2024-06-17", seed=12)
    assert week.equals(again) and not week.equals(other)
    with pytest.raises(InvalidValueError, match="0"):
        grid.profiles(days=0)
    with pytest.raises(UnknownNameError):
        Microgrid(site="nowhere").profiles()


def test_pv_is_zero_at_night(grid, week):
    from pvlib.solarposition import get_solarposition

    from plants import SITES

    s = SITES[grid.site]

    def elevation(times):
        return get_solarposition(times, s.latitude, s.longitude, s.altitude)["elevation"].to_numpy()

    # the sun is down at both ends of the 15-minute interval
    dark = (elevation(week.index) < -1.0) & (elevation(week.index + pd.Timedelta(minutes=15)) < -1.0)
    assert dark.sum() > 7 * 30
    assert np.all(week["pv_kw"].to_numpy()[dark] == 0.0)
    assert np.all(week["pv_kw"].to_numpy()[~dark].max() > 3.0)
    assert np.all(week["pv_kw"] <= grid.inverter_kw + 1e-9)


def test_daily_pv_energy_plausible(grid):
    clear_june = grid.profiles(days=2, start="2024-06-21", seed=0, cloudiness=0.0)
    clear_dec = grid.profiles(days=2, start="2024-12-21", seed=0, cloudiness=0.0)
    cloudy_june = grid.profiles(days=2, start="2024-06-21", seed=0, cloudiness=0.8)
    per_kwp = {
        name: frame["pv_kw"].sum() * grid.dt / 2 / grid.pv_kwp
        for name, frame in (("june", clear_june), ("dec", clear_dec), ("cloudy", cloudy_june))
    }
    assert 5.0 < per_kwp["june"] < 8.5  # kWh/kWp/day on a clear Colorado summer day
    assert 2.0 < per_kwp["dec"] < per_kwp["june"]
    assert per_kwp["cloudy"] < 0.8 * per_kwp["june"]


def test_load_and_prices_have_the_daily_shape(grid, week):
    hour = week.index.hour
    load = week["load_kw"]
    night = load[(hour >= 1) & (hour < 5)].mean()
    morning = load[(hour >= 6) & (hour < 9)].mean()
    evening = load[(hour >= 17) & (hour < 22)].mean()
    assert evening > morning > night > 0.1
    assert 8.0 < load.sum() * grid.dt / 7 < 40.0  # kWh/day of a household
    monday, sunday = week.index.day_of_week == 0, week.index.day_of_week == 6
    assert np.all(week["price_import"][monday & (hour == 18)] == grid.prices["peak"])
    assert np.all(week["price_import"][monday & (hour == 3)] == grid.prices["offpeak"])
    assert np.all(week["price_import"][sunday & (hour == 18)] == grid.prices["midpeak"])
    assert np.all(week["price_export"] < week["price_import"].min())
