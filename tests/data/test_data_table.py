"""from_table: CSV/Parquet round trips of simulated CSTR data, contiguous splits, and every data defect."""

import numpy as np
import pandas as pd
import pytest

from icctrl.data import from_table, window_trajectories
from icctrl.errors import DataError, InvalidValueError, UnknownNameError
from plants import CSTR


@pytest.fixture(scope="module")
def cstr_run():
    """One CSTR trajectory: 8 input levels held 5 periods each, started inside the stability region."""
    p = CSTR()
    rng = np.random.default_rng(7)
    x0 = p.sample_stability_region(1, rng)
    U = np.repeat(rng.uniform(p.u_ss - 0.3 * p.du_max, p.u_ss + 0.3 * p.du_max, size=(8, 2)), 5, axis=0)
    X = p.simulate_batch(x0, U[None])[0]
    return p, X, U


def _frame(p, X, U, t0=0.0):
    """Rows k = (t_k, x_k, u_k); the last row repeats the last input (it is never used)."""
    Uf = np.vstack([U, U[-1:]])
    return pd.DataFrame({"t": t0 + np.arange(len(X)) * p.dt, "C_A": X[:, 0], "T": X[:, 1],
                         "C_A0": Uf[:, 0], "Q": Uf[:, 1]})


def _read(path, **kw):
    base = {"inputs": ["C_A0", "Q"], "outputs": ["C_A", "T"], "time": "t", "val_frac": 0, "test_frac": 0}
    return from_table(path, **{**base, **kw})


def test_csv_round_trip_gives_the_same_windows(cstr_run, tmp_path):
    p, X, U = cstr_run
    path = tmp_path / "cstr.csv"
    _frame(p, X, U).to_csv(path, index=False)
    ds = _read(path, dt=p.dt, window=5, stride=1)
    inputs, targets, _ = window_trajectories(X[None], U[None], "multi_step", 5, stride=1)
    np.testing.assert_array_equal(ds.inputs, inputs)
    np.testing.assert_array_equal(ds.targets, targets)
    assert ds.input_names == ("C_A", "T", "C_A0", "Q") and ds.output_names == ("C_A", "T")
    assert ds.meta["dt"] == p.dt and ds.meta["source"] == "table"
    back = type(ds).load(ds.save(tmp_path / "ds.npz"))
    assert back.content_hash == ds.content_hash


def test_parquet_and_frame_agree_with_csv(cstr_run, tmp_path):
    p, X, U = cstr_run
    frame = _frame(p, X, U)
    frame.to_parquet(tmp_path / "cstr.parquet")
    a = _read(tmp_path / "cstr.parquet", window=4)
    b = _read(frame, window=4)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    assert a.meta["dt"] == pytest.approx(p.dt)


def test_one_step_layout_from_substep_log(cstr_run):
    p, _, _ = cstr_run
    U = np.repeat([[4.5, 1e5], [3.0, -2e5]], 10, axis=0)
    X = p.simulate_batch(p.x_ss[None], U[None], p.dt / 10)[0]
    frame = pd.DataFrame({"C_A": X[:, 0], "T": X[:, 1], "C_A0": np.r_[U[:, 0], 3.0], "Q": np.r_[U[:, 1], 0.0]})
    ds = from_table(frame, inputs=["C_A0", "Q"], outputs=["C_A", "T"], layout="one_step", window=10,
                    val_frac=0, test_frac=0)
    assert len(ds) == 2
    np.testing.assert_array_equal(ds.targets[1, -1], X[-1])
    frame.loc[13, "Q"] = 0.0
    with pytest.raises(DataError, match="series row 13"):
        from_table(frame, inputs=["C_A0", "Q"], outputs=["C_A", "T"], layout="one_step", window=10,
                   val_frac=0, test_frac=0)


def test_splits_are_contiguous_blocks_in_time():
    n = 200
    frame = pd.DataFrame({"y": np.arange(n, dtype=float), "u": np.sin(np.arange(n))})
    ds = from_table(frame, inputs=["u"], outputs=["y"], window=5, val_frac=0.2, test_frac=0.1)
    first = {k: ds.inputs[v, 0, 0] for k, v in ds.splits.items()}
    assert first["train"].max() < first["val"].min() and first["val"].max() < first["test"].min()
    # no window reaches into the next block
    assert ds.targets[ds.splits["train"]].max() < 140 <= first["val"].min()
    assert ds.targets[ds.splits["val"]].max() < 180 <= first["test"].min()
    assert len(np.unique(ds.traj_id)) == 3


def test_traj_column_windows_each_run_separately():
    frame = pd.DataFrame({"run": ["a"] * 12 + ["b"] * 12, "y": np.r_[np.arange(12.0), 100 + np.arange(12.0)],
                          "u": np.ones(24)})
    ds = from_table(frame, inputs=["u"], outputs=["y"], traj="run", window=4, val_frac=0, test_frac=0)
    assert len(ds) == 4
    assert np.all(np.abs(np.diff(ds.targets[:, :, 0], axis=1)) == 1)  # never a jump from run a to run b


def test_gaps_nans_and_irregular_steps_are_named(cstr_run):
    p, X, U = cstr_run
    frame = _frame(p, X, U)
    gap = frame.drop(index=[10, 11]).reset_index(drop=True)
    with pytest.raises(DataError, match=r"missing.*\(9, 10, 2\)"):
        _read(gap, dt=p.dt, window=5)
    nan = frame.copy()
    nan.loc[17, "T"] = np.nan
    with pytest.raises(DataError, match=r"\(17, 'T'\)"):
        _read(nan, dt=p.dt, window=5)
    jitter = frame.copy()
    jitter.loc[20, "t"] += 0.3 * p.dt
    with pytest.raises(DataError, match="does not step by dt=0.005.*19"):
        _read(jitter, dt=p.dt, window=5)
    back = frame.copy()
    back.loc[5, "t"] = back.loc[3, "t"]
    with pytest.raises(DataError, match="increase strictly"):
        _read(back, window=5)
    text = frame.astype({"Q": object})
    text.loc[4, "Q"] = "n/a"
    with pytest.raises(DataError, match=r"'Q'.*\[4\].*n/a"):
        _read(text, window=5)


def test_fill_interpolates_outputs_and_holds_inputs(cstr_run):
    p, X, U = cstr_run
    frame = _frame(p, X, U)
    gap = frame.drop(index=[10, 11]).reset_index(drop=True)
    gap.loc[20, "C_A"] = np.nan
    ds = _read(gap, dt=p.dt, window=40, fill="interpolate")
    y = ds.targets[0]  # targets are x_1 .. x_40
    np.testing.assert_allclose(y[9, 1], X[9, 1] + (X[12, 1] - X[9, 1]) / 3, rtol=1e-12)
    np.testing.assert_allclose(y[10, 0], X[9, 0] + 2 * (X[12, 0] - X[9, 0]) / 3, rtol=1e-12)
    np.testing.assert_array_equal(ds.inputs[0, 10:12, 2:], np.repeat(U[9:10], 2, axis=0))
    np.testing.assert_allclose(y[21, 0], 0.5 * (X[21, 0] + X[23, 0]), rtol=1e-12)
    assert ds.meta["n_filled"] == 3
    held = _read(gap, dt=p.dt, window=40, fill="ffill")
    np.testing.assert_array_equal(held.targets[0, 9:11], np.repeat(X[9:10], 2, axis=0))
    lead = frame.copy()
    lead.loc[0, "T"] = np.nan
    with pytest.raises(DataError, match="'T' starts with 1 missing"):
        _read(lead, dt=p.dt, window=5, fill="interpolate")


def test_resample_irregular_log_onto_regular_grid():
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.uniform(0.5, 1.5, size=60))
    frame = pd.DataFrame({"t": t, "y": 2.0 * t + 1.0, "u": np.floor(t)})
    ds = from_table(frame, inputs=["u"], outputs=["y"], time="t", resample=1.0, window=10, val_frac=0,
                    test_frac=0)
    grid = t[0] + np.arange(len(ds) * 10 + 1)
    np.testing.assert_allclose(ds.inputs[:, 0, 0], 2.0 * grid[:-1:10] + 1.0, rtol=1e-12)
    held = np.floor(t[np.searchsorted(t, grid, side="right") - 1])
    np.testing.assert_array_equal(ds.inputs[:, :, 1].reshape(-1), held[:-1])
    assert ds.meta["dt"] == 1.0


def test_datetime_time_column_with_timedelta_dt():
    stamps = pd.date_range("2024-06-01", periods=48, freq="15min")
    frame = pd.DataFrame({"when": stamps, "soc": np.linspace(0.2, 0.8, 48), "p": np.ones(48)})
    with pytest.warns(UserWarning) as caught:
        ds = from_table(frame, inputs=["p"], outputs=["soc"], time="when", dt="15min", window=8)
    assert sorted(str(w.message).split(" the ")[1][:4] for w in caught) == ["test", "val "]
    assert ds.meta["dt"] == 900.0 and ds.meta["time_unit"] == "s"
    with pytest.raises(DataError, match="dt=600.0"):
        from_table(frame, inputs=["p"], outputs=["soc"], time="when", dt="10min", window=8)


def test_bad_arguments(cstr_run, tmp_path):
    p, X, U = cstr_run
    frame = _frame(p, X, U)
    with pytest.raises(UnknownNameError, match="Temp"):
        _read(frame, outputs=["C_A", "Temp"])
    with pytest.raises(InvalidValueError, match="dt.*-0.005"):
        _read(frame, dt=-0.005)
    with pytest.raises(UnknownNameError, match="'spline'"):
        _read(frame, fill="spline")
    with pytest.raises(UnknownNameError, match="'diagonal'"):
        _read(frame, layout="diagonal")
    with pytest.raises(DataError, match="missing.xlsx"):
        _read(tmp_path / "missing.xlsx")
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(DataError, match="unknown format '.xlsx'"):
        _read(tmp_path / "data.xlsx")
    with pytest.raises(DataError, match="no training window of 100"):
        _read(frame, window=100)
    with pytest.raises(InvalidValueError, match="both inputs and outputs"):
        _read(frame, inputs=["C_A0", "T"])
