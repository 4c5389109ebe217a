"""Solar-PV converter: pvlib offline, single-diode limits, CasADi twin, power balance, bad input."""

import casadi as ca
import numpy as np
import pytest

from icctrl.errors import InvalidValueError, ShapeError, UnknownNameError
from plants import PVConverter


@pytest.fixture(scope="module")
def pv():
    return PVConverter()


def test_module_comes_from_pvlib_cec_table(pv):
    assert pv.module == "Canadian_Solar_Inc__CS6K_300M"
    assert pv.mod["STC"] == pytest.approx(299.7)
    with pytest.raises(UnknownNameError, match="No_Such_Module"):
        PVConverter(module="No_Such_Module")


def test_short_circuit_and_open_circuit(pv):
    isc = pv.i_pv(0.0, 1000.0, 25.0)
    assert isc == pytest.approx(pv.n_parallel * pv.mod["I_sc_ref"], rel=2e-3)
    voc = pv.n_series * pv.mod["V_oc_ref"]
    assert abs(pv.i_pv(voc, 1000.0, 25.0)) < 0.05
    # half the sun, half the current; hotter cells, lower voltage at the same current
    assert pv.i_pv(0.0, 500.0, 25.0) == pytest.approx(isc / 2, rel=1e-2)
    assert pv.mpp(1000.0, 60.0).v_mp < pv.mpp(1000.0, 25.0).v_mp


def test_mpp_matches_rating(pv):
    m = pv.mpp(1000.0, 25.0)
    assert m.p_mp == pytest.approx(pv.n_series * pv.n_parallel * pv.mod["STC"], rel=5e-3)
    assert m.duty == pytest.approx(pv.v_b / m.v_mp)
    v = np.linspace(0.0, pv.n_series * pv.mod["V_oc_ref"], 2001)
    assert np.max(v * pv.i_pv(v, 1000.0, 25.0)) <= m.p_mp * (1 + 1e-6)


def test_casadi_single_diode_matches_pvlib(pv):
    v, g, t = ca.SX.sym("v"), ca.SX.sym("g"), ca.SX.sym("t")
    f = ca.Function("i_pv", [v, g, t], [pv.casadi_i_pv(v, g, t)])
    volts = np.linspace(0.0, pv.x_ub[0], 200)
    worst = 0.0
    for irr in (0.0, 5.0, 200.0, 800.0, 1000.0, 1400.0):
        for temp in (-30.0, 0.0, 25.0, 70.0):
            got = np.array(f(volts, irr, temp)).ravel()
            worst = max(worst, float(np.max(np.abs(got - pv.i_pv(volts, irr, temp)))))
    assert worst < 1e-6


def test_casadi_rhs_and_step_match_scipy(pv):
    rng = np.random.default_rng(0)
    f_rhs, f_step = pv.casadi_rhs(), pv.casadi_step()
    for _ in range(10):
        x = np.array([rng.uniform(60.0, 150.0), rng.uniform(0.0, 100.0), rng.uniform(40.0, 56.0)])
        u = rng.uniform(0.2, 0.6, 1)
        d = np.array([rng.uniform(100.0, 1200.0), rng.uniform(0.0, 60.0)])
        np.testing.assert_allclose(np.array(f_rhs(x, u, d)).ravel(), pv.rhs(x, u, d), rtol=1e-7, atol=1e-3)
        ref = pv.step(x, u, d=d)
        np.testing.assert_allclose(np.array(f_step(x, u, d)).ravel(), ref, rtol=1e-5, atol=1e-4)


def test_nominal_point_is_equilibrium_with_power_balance(pv):
    dx = pv.rhs(pv.x_ss, pv.u_ss)
    assert np.max(np.abs(dx * np.array([pv.C, pv.L, pv.C_b]))) < 1e-9  # currents and voltages balance
    np.testing.assert_allclose(pv.step(pv.x_ss, pv.u_ss), pv.x_ss, rtol=1e-7)
    assert pv.pv_power(pv.x_ss) == pytest.approx(pv.power_to_load(pv.x_ss), rel=1e-9)
    assert pv.power_to_load(pv.x_ss) == pytest.approx(pv.mpp(*pv.d_nom).p_mp, rel=1e-9)


def test_energy_and_charge_balance_along_a_transient(pv):
    dt, n = 2e-4, 200
    U = np.full((n, 1), 0.45)  # off the MPP duty: the LC pair rings and settles
    X = pv.simulate(pv.x_ss, U, dt=dt)
    t = np.arange(n + 1) * dt
    stored = 0.5 * pv.C * X[:, 0] ** 2 + 0.5 * pv.L * X[:, 1] ** 2
    net_power = pv.pv_power(X) - pv.power_to_load(X)
    supplied = np.trapezoid(net_power, t)
    assert abs(stored[-1] - stored[0]) > 0.1  # the transient moves real energy
    assert stored[-1] - stored[0] == pytest.approx(supplied, rel=1e-3)
    charge = np.trapezoid(X[:, 1] - pv.i_L, t)
    assert pv.C_b * (X[-1, 2] - X[0, 2]) == pytest.approx(charge, rel=1e-3)


def test_weather_is_offline_seedable_and_physical(pv):
    w = pv.weather("2024-06-21", periods=24 * 12, freq="5min", site="golden", seed=3)
    assert list(w.columns[:2]) == ["irradiance", "temp_cell"]
    assert len(w) == 288 and str(w.index.tz) == "America/Denver"
    night = w["solar_zenith"] > 95
    assert night.any() and np.all(w.loc[night, "irradiance"] == 0.0)
    assert 800.0 < w["irradiance"].max() <= 1500.0
    assert np.all(w["temp_cell"] >= w["temp_air"] - 1e-9)  # sun heats the cells
    w2 = pv.weather("2024-06-21", periods=24 * 12, freq="5min", site="golden", seed=3)
    w3 = pv.weather("2024-06-21", periods=24 * 12, freq="5min", site="golden", seed=4)
    assert w.equals(w2) and not w.equals(w3)
    with pytest.raises(UnknownNameError, match="atlantis"):
        pv.weather(site="atlantis")


def test_weather_falls_back_to_haurwitz(pv, monkeypatch):
    from pvlib.location import Location

    original = Location.get_clearsky

    def no_linke(self, times, model="ineichen", **kwargs):
        if model == "ineichen":
            raise OSError("LinkeTurbidities.h5 not readable")
        return original(self, times, model=model, **kwargs)

    monkeypatch.setattr(Location, "get_clearsky", no_linke)
    w = pv.weather("2024-06-21", periods=48, freq="30min", site="freiburg", seed=0)
    assert w["irradiance"].max() > 500.0 and np.all(np.isfinite(w.to_numpy()))


def test_step_follows_weather_disturbance(pv):
    x = pv.x_ss
    dim = pv.step(x, pv.u_ss, d=[300.0, 25.0])
    assert dim[0] < x[0]  # less current from the array: the input capacitor discharges
    d = pv.disturbance(0.0, np.random.default_rng(1))
    assert d.shape == (2,) and np.all(d >= pv.d_lb) and np.all(d <= pv.d_ub)
    np.testing.assert_array_equal(d, pv.disturbance(0.0, np.random.default_rng(1)))


@pytest.mark.parametrize(
    ("u", "d", "dt", "exc", "fragment"),
    [
        ([0.99], None, None, InvalidValueError, "0.99"),
        ([0.01], None, None, InvalidValueError, "0.01"),
        ([0.4, 0.1], None, None, ShapeError, r"\(2,\)"),
        ([0.4], [2000.0, 25.0], None, InvalidValueError, "2000.0"),
        ([0.4], [800.0, np.nan], None, InvalidValueError, "nan"),
        ([0.4], [800.0], None, ShapeError, r"\(1,\)"),
        ([0.4], None, -1e-3, InvalidValueError, "-0.001"),
    ],
)
def test_bad_input_is_refused(pv, u, d, dt, exc, fragment):
    with pytest.raises(exc, match=fragment):
        pv.step(pv.x_ss, u, dt=dt, d=d)


def test_bad_state_and_components_are_refused(pv):
    with pytest.raises(InvalidValueError, match="v_pv = -5.0"):
        pv.step([-5.0, 10.0, 48.0], pv.u_ss)
    with pytest.raises(InvalidValueError, match="C_b"):
        PVConverter(C_b=-1.0)
    with pytest.raises(InvalidValueError, match="duty"):
        PVConverter(v_b=400.0)  # a 400 V bus cannot be reached by a buck from a 130 V array
