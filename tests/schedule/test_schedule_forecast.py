"""Ridge forecaster: shapes, physical clipping, skill on a repeating signal, bad input."""

import numpy as np
import pytest

from icctrl.errors import DataError, InvalidValueError, ShapeError
from icctrl.schedule import RidgeForecaster


def _series(days=8, seed=0):
    rng = np.random.default_rng(seed)
    h = (np.arange(days * 96) % 96) / 4.0
    pv = np.clip(4.0 * np.sin(np.pi * (h - 6.0) / 14.0), 0.0, None) * rng.uniform(0.6, 1.0, days).repeat(96)
    load = 0.5 + 1.5 * np.exp(-0.5 * ((h - 19.0) / 1.5) ** 2) + 0.1 * rng.standard_normal(h.size)
    return pv, np.clip(load, 0.05, None)


def test_forecast_shapes_and_physical_ranges():
    pv, load = _series()
    f = RidgeForecaster().fit(pv[: 6 * 96], load[: 6 * 96])
    fp, fl = f.predict(pv[: 6 * 96], load[: 6 * 96], step_of_day=0)
    assert fp.shape == fl.shape == (96,)
    assert np.all(fp >= 0) and np.all(fp <= pv[: 6 * 96].max()) and np.all(fl >= 0)
    night = (np.arange(96) < 20) | (np.arange(96) > 84)  # PV was zero there on every training day
    assert np.all(fp[night] == 0.0)


def test_forecast_beats_the_mean_profile_and_reports_errors():
    pv, load = _series(days=10)
    f = RidgeForecaster(alpha=1.0).fit(pv[: 8 * 96], load[: 8 * 96])
    err = f.evaluate(pv[7 * 96 :], load[7 * 96 :])
    assert err["origins"] > 0
    for k in ("pv", "load"):
        assert np.isfinite(err[k]["mae_kw"]) and err[k]["rmse_kw"] >= err[k]["mae_kw"]
    assert (
        err["load"]["mae_kw"] < err["load"]["persistence_mae_kw"]
    )  # the noise does not repeat; the shape does


def test_bad_input():
    pv, load = _series()
    with pytest.raises(InvalidValueError, match="before fit"):
        RidgeForecaster().predict(pv, load, 0)
    bad = pv.copy()
    bad[5] = np.nan
    with pytest.raises(DataError, match=r"index \[5\]"):
        RidgeForecaster().fit(bad, load)
    with pytest.raises(ShapeError, match="at least"):
        RidgeForecaster().fit(pv[:100], load[:100])
    with pytest.raises(ShapeError, match="same length"):
        RidgeForecaster().fit(pv, load[:-1])
    f = RidgeForecaster().fit(pv, load)
    with pytest.raises(ShapeError, match="at least 96"):
        f.predict(pv[:10], load[:10], 0)
    with pytest.raises(InvalidValueError, match="horizon"):
        RidgeForecaster(horizon=0)
    with pytest.raises(InvalidValueError, match="alpha"):
        RidgeForecaster(alpha=-1.0)


def test_risk_lowers_pv_only_and_is_checked():
    pv, load = _series(days=8)
    f = RidgeForecaster().fit(pv[: 6 * 96], load[: 6 * 96])
    p0, l0 = f.predict(pv[: 6 * 96], load[: 6 * 96], 0)
    p1, l1 = f.predict(pv[: 6 * 96], load[: 6 * 96], 0, risk=1.0)
    assert np.all(p1 <= p0) and p1.sum() < p0.sum()
    np.testing.assert_array_equal(l0, l1)
    with pytest.raises(InvalidValueError, match="risk"):
        f.predict(pv[: 6 * 96], load[: 6 * 96], 0, risk=-1.0)


def test_clear_sky_pv_model_tracks_the_cloud_index():
    days = 8
    h = (np.arange(days * 96) % 96) / 4.0
    clear = np.clip(4.0 * np.sin(np.pi * (h - 6.0) / 14.0), 0.0, None)
    index = np.repeat(np.random.default_rng(1).uniform(0.3, 1.0, days), 96)  # one cloud level per day
    pv, load = clear * index, np.full(days * 96, 0.5)
    f = RidgeForecaster().fit(pv[: 7 * 96], load[: 7 * 96], pv_clear=clear[: 7 * 96])
    t = 7 * 96 + 40  # mid-morning of the last day: the index of the last hour is that day's
    fp, _ = f.predict(pv[:t], load[:t], 40, pv_clear=clear[t - 96 : t + 56].tolist() + [0.0] * 40)
    np.testing.assert_allclose(fp[:56], pv[t : t + 56], atol=0.35)
    with pytest.raises(InvalidValueError, match="pass pv_clear"):
        f.predict(pv[:t], load[:t], 40)
    with pytest.raises(ShapeError, match="pv_clear"):
        f.predict(pv[:t], load[:t], 40, pv_clear=clear[:10])
