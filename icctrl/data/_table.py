"""Datasets from logged plant data (CSV/Parquet or a DataFrame): checks, optional fill/resample, windows."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from icctrl.data._assemble import check_fractions, check_noise, finish
from icctrl.data._dataset import SequenceDataset
from icctrl.data._generate import output_names_for
from icctrl.data._windows import check_layout, positive_int, window_trajectories
from icctrl.errors import DataError, InvalidValueError, UnknownNameError

FILLS = ("interpolate", "ffill")
# At most this many offending rows/cells are listed in an error message.
SHOW = 8


def from_table(
    path_or_frame: Any,
    inputs: Sequence[str],
    outputs: Sequence[str],
    time: str | None = None,
    dt: Any = None,
    window: int = 10,
    layout: str = "multi_step",
    stride: int | None = None,
    fill: str | None = None,
    resample: Any = None,
    traj: str | None = None,
    target_fn: Callable[[np.ndarray], Any] | None = None,
    target_names: Sequence[str] | None = None,
    val_frac: float = 0.15,
    test_frac: float = 0.15,
    noise_std: float = 0.0,
    seed: int = 0,
    tol: float = 1e-6,
) -> SequenceDataset:
    """Windows from a table whose rows are samples: `outputs` are the measured states, `inputs` the inputs.

    Row k holds x_k and the input u_k applied from t_k to t_(k+1). The `time` column (numbers, or
    datetimes read as seconds) must step by `dt` (default: its median step) within relative `tol`;
    irregular steps, gaps, non-numeric cells and NaNs raise DataError naming rows and columns, unless:
    fill="interpolate" fills NaNs and missing samples (gaps of whole periods) with linear interpolation in
    time for outputs and zero-order hold for inputs; fill="ffill" holds the last value for every column;
    resample=period (or True for `dt`) maps irregular data onto a regular grid the same way (outputs
    linear, inputs held). Each series (the whole table, or each group of the `traj` column) is cut into
    contiguous blocks, first (1 - val_frac - test_frac) for training, then validation, then test, and
    each block is windowed on its own (no window straddles two splits) as `window_trajectories` does.
    """
    layout = check_layout(layout)
    window = positive_int(window, "window")
    if layout == "one_step" and stride is not None:
        raise InvalidValueError(f"stride={stride!r} applies to the multi_step layout only")
    val_frac, test_frac = check_fractions(val_frac, test_frac)
    noise_std = check_noise(noise_std)
    if fill is not None and fill not in FILLS:
        raise UnknownNameError(f"unknown fill {fill!r}; known: None, {', '.join(FILLS)}")
    if target_fn is None and target_names is not None:
        raise InvalidValueError(f"target_names={target_names!r} given without a target_fn")
    frame, source = _read(path_or_frame)
    inputs, outputs = _names(inputs, "inputs"), _names(outputs, "outputs")
    overlap = sorted(set(inputs) & set(outputs))
    if overlap:
        raise InvalidValueError(f"columns {overlap} are both inputs and outputs")
    used = [*outputs, *inputs, *(c for c in (time, traj) if c is not None)]
    missing = [c for c in used if c not in frame.columns]
    if missing:
        raise UnknownNameError(f"{source}: no column(s) {missing}; columns are {list(map(str, frame.columns))}")
    if len(set(used)) != len(used):
        raise InvalidValueError(f"a column is used twice among outputs/inputs/time/traj: {used}")

    values = _numeric(frame, [*outputs, *inputs], source)
    nx = len(outputs)
    times = _times(frame, time, source) if time is not None else None
    groups = _groups(frame, traj)
    steps = None if times is None else np.concatenate([np.diff(times[rows]) for _, rows in groups])
    dt_val = _period(dt, steps, time, source)

    series: list[tuple[np.ndarray, np.ndarray]] = []
    n_filled = 0
    for label, rows in groups:
        where = f"{source}" if traj is None else f"{source} ({traj}={label!r})"
        v = values[rows]
        t = None if times is None else times[rows]
        row_labels = frame.index.to_numpy()[rows].tolist()
        if t is not None:
            _check_increasing(t, row_labels, where, time)
        if resample is not None and resample is not False:
            if t is None:
                raise InvalidValueError("resample needs a time column (time=...)")
            period = dt_val if resample is True else _positive(resample, "resample")
            v, n_new = _resample(v, t, period, nx, fill, row_labels, where, [*outputs, *inputs])
            n_filled += n_new
        else:
            if t is not None:
                v, t, gaps = _regularise(v, t, dt_val, tol, row_labels, where, time)
                if gaps and fill is None:
                    raise DataError(
                        f"{where}: samples missing in time column {time!r} (row, next row, missing count): "
                        f"{gaps}; pass fill='interpolate' or fill='ffill' to fill them"
                    )
                row_labels = None if gaps else row_labels
            v, n_new = _fill(v, t, nx, fill, row_labels, where, [*outputs, *inputs])
            n_filled += n_new
        series.append((v[:, :nx], v[:, nx:]))
    if resample is not None and resample is not False:
        dt_val = dt_val if resample is True else float(resample)

    parts = {"train": [], "val": [], "test": []}
    block_inputs, block_targets, block_ids = [], [], []
    block = 0
    for x, u in series:
        n = len(x)
        n_train, n_val, n_test = _block_rows(n, val_frac, test_frac)
        cuts = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, n)}
        for split, (a, b) in cuts.items():
            win = _window_block(x[a:b], u[a:b], layout, window, stride, target_fn, a, source)
            if win is None:
                continue
            xi, yi = win
            parts[split].append(np.arange(len(xi)) + sum(len(w) for w in block_inputs))
            block_inputs.append(xi)
            block_targets.append(yi)
            block_ids.append(np.full(len(xi), block, dtype=np.int64))
            block += 1
    if not parts["train"]:
        raise DataError(
            f"{source}: no training window of {window} steps fits in the data "
            f"({[len(x) for x, _ in series]} rows per series)"
        )
    for split in ("val", "test"):
        if not parts[split] and (val_frac if split == "val" else test_frac) > 0:
            warnings.warn(f"{source}: the {split} split is empty (series too short for a block)", stacklevel=2)
    splits = {k: np.concatenate(v) if v else np.zeros(0, dtype=np.int64) for k, v in parts.items()}
    inputs_arr = np.concatenate(block_inputs)
    targets_arr = np.concatenate(block_targets)
    output_names = output_names_for(outputs, target_fn, target_names, targets_arr.shape[2])
    meta = {
        "source": "table",
        "table": source,
        "outputs": list(outputs),
        "inputs": list(inputs),
        "time": time,
        "traj": traj,
        "dt": dt_val,
        "time_unit": "s" if times is not None and _is_datetime(frame[time]) else None,
        "fill": fill,
        "resample": resample if resample is None or isinstance(resample, bool) else float(resample),
        "n_filled": int(n_filled),
        "n_rows": int(len(frame)),
        "n_series": len(series),
        "layout": layout,
        "window": window,
        "stride": stride if layout == "multi_step" else None,
        "seed": int(seed),
        "val_frac": val_frac,
        "test_frac": test_frac,
        "split_rule": "contiguous blocks per series: train, then val, then test",
    }
    rng_noise = np.random.default_rng(np.random.SeedSequence(int(seed)).spawn(4)[3])
    return finish(
        inputs_arr,
        targets_arr,
        np.concatenate(block_ids),
        splits,
        (*outputs, *inputs),
        output_names,
        meta,
        noise_std,
        rng_noise,
    )


# ---------------------------------------------------------------------- reading and checking
def _read(path_or_frame: Any) -> tuple[Any, str]:
    import pandas as pd

    if isinstance(path_or_frame, pd.DataFrame):
        return path_or_frame.reset_index(drop=True), "DataFrame"
    if not isinstance(path_or_frame, (str, Path)):
        raise InvalidValueError(f"expected a CSV/Parquet path or a pandas DataFrame, got {type(path_or_frame)}")
    path = Path(path_or_frame)
    if not path.is_file():
        raise DataError(f"table file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            # pandas 3 parses floats exactly by default; pandas 2 needs "round_trip" for that
            exact = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
            frame = pd.read_csv(path, **exact)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            raise DataError(f"table file {str(path)!r}: unknown format {suffix!r}; use .csv or .parquet")
    except DataError:
        raise
    except Exception as exc:  # pandas raises many types for unreadable files
        raise DataError(f"table file {str(path)!r} could not be read: {exc}") from exc
    return frame.reset_index(drop=True), str(path)


def _names(cols: Any, what: str) -> tuple[str, ...]:
    if isinstance(cols, str):
        cols = [cols]
    try:
        names = tuple(cols)
    except TypeError as exc:
        raise InvalidValueError(f"{what} must be a list of column names, got {cols!r}") from exc
    if not names:
        raise InvalidValueError(f"{what} must name at least one column, got {cols!r}")
    return names


def _numeric(frame: Any, cols: list[str], source: str) -> np.ndarray:
    """Selected columns as float; non-numeric cells raise DataError naming rows and column."""
    import pandas as pd

    out = np.empty((len(frame), len(cols)))
    for j, c in enumerate(cols):
        col = frame[c]
        num = pd.to_numeric(col, errors="coerce")
        bad = num.isna() & col.notna()
        if bad.any():
            rows = frame.index[bad.to_numpy()][:SHOW].tolist()
            raise DataError(
                f"{source}: column {c!r} has non-numeric values at rows {rows}: "
                f"{col[bad].head(SHOW).tolist()}"
            )
        out[:, j] = num.to_numpy(dtype=float)
    return out


def _is_datetime(col: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_datetime64_any_dtype(col)


def _times(frame: Any, time: str, source: str) -> np.ndarray:
    """Time stamps as floats (datetimes as seconds since the first stamp); NaN/NaT raise DataError."""
    import pandas as pd

    col = frame[time]
    if _is_datetime(col):
        if col.isna().any():
            rows = frame.index[col.isna().to_numpy()][:SHOW].tolist()
            raise DataError(f"{source}: time column {time!r} is missing at rows {rows}")
        return ((col - col.iloc[0]) / pd.Timedelta(seconds=1)).to_numpy(dtype=float)
    t = _numeric(frame, [time], source)[:, 0]
    if not np.all(np.isfinite(t)):
        rows = frame.index[~np.isfinite(t)][:SHOW].tolist()
        raise DataError(f"{source}: time column {time!r} is NaN or infinite at rows {rows}")
    return t


def _period(dt: Any, steps: np.ndarray | None, time: str | None, source: str) -> float | None:
    """dt as a positive float (timedeltas and strings as seconds), or the median time step."""
    import pandas as pd

    if dt is None:
        if steps is None or len(steps) == 0:
            return None
        return _positive(float(np.median(steps)), f"{source}: median step of time column {time!r}")
    if isinstance(dt, (str, pd.Timedelta, np.timedelta64)) or hasattr(dt, "total_seconds"):
        try:
            return _positive(pd.Timedelta(dt) / pd.Timedelta(seconds=1), "dt")
        except ValueError as exc:
            raise InvalidValueError(f"dt must be a positive number or time span, got {dt!r}") from exc
    return _positive(dt, "dt")


def _positive(v: Any, what: str) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(f"{what} must be a positive number, got {v!r}") from exc
    if not np.isfinite(f) or f <= 0:
        raise InvalidValueError(f"{what} must be positive and finite, got {v!r}")
    return f


def _groups(frame: Any, traj: str | None) -> list[tuple[Any, np.ndarray]]:
    """Row positions per series, in order of first appearance."""
    if traj is None:
        return [(None, np.arange(len(frame)))]
    codes, labels = frame[traj].factorize(sort=False)
    if (codes < 0).any():
        rows = frame.index[codes < 0][:SHOW].tolist()
        raise DataError(f"trajectory column {traj!r} is missing at rows {rows}")
    return [(label, np.flatnonzero(codes == g)) for g, label in enumerate(labels.tolist())]


def _check_increasing(t: np.ndarray, rows: list, where: str, time: str) -> None:
    bad = np.flatnonzero(np.diff(t) <= 0)
    if len(bad):
        pairs = [(rows[i], rows[i + 1], float(t[i]), float(t[i + 1])) for i in bad[:SHOW]]
        raise DataError(
            f"{where}: time column {time!r} must increase strictly; rows (row, next, t, t_next): {pairs}"
        )


def _regularise(
    v: np.ndarray, t: np.ndarray, dt: float, tol: float, rows: list, where: str, time: str
) -> tuple[np.ndarray, np.ndarray, list]:
    """Check steps are whole multiples of dt; missing samples become NaN rows, listed as gaps."""
    ratio = np.diff(t) / dt
    k = np.rint(ratio)
    irregular = np.flatnonzero((k < 1) | (np.abs(ratio - k) > tol * np.maximum(k, 1)))
    if len(irregular):
        show = [(rows[i], float(t[i + 1] - t[i])) for i in irregular[:SHOW]]
        raise DataError(
            f"{where}: time column {time!r} does not step by dt={dt} (rel. tol {tol}); "
            f"(row, step) where it breaks: {show}; pass resample= to interpolate onto a regular grid"
        )
    if np.all(k == 1):
        return v, t, []
    pos = np.concatenate([[0], np.cumsum(k.astype(np.int64))])
    full = np.full((int(pos[-1]) + 1, v.shape[1]), np.nan)
    full[pos] = v
    t_full = t[0] + dt * np.arange(len(full))
    t_full[pos] = t
    gaps = [(rows[i], rows[i + 1], int(k[i]) - 1) for i in np.flatnonzero(k > 1)[:SHOW]]
    return full, t_full, gaps


def _fill(
    v: np.ndarray, t: np.ndarray | None, nx: int, fill: str | None, rows: Any, where: str, cols: list
) -> tuple[np.ndarray, int]:
    """Fill NaNs: outputs linear in time ("interpolate") or held ("ffill"), inputs held; else DataError."""
    nan = np.isnan(v)
    if not nan.any():
        return v, 0
    if fill is None:
        cells = [(rows[i] if rows is not None else int(i), cols[j]) for i, j in np.argwhere(nan)[:SHOW]]
        raise DataError(f"{where}: NaN at (row, column) {cells}; pass fill='interpolate' or fill='ffill'")
    out = v.copy()
    tt = np.arange(len(v), dtype=float) if t is None else t
    for j in range(v.shape[1]):
        miss = nan[:, j]
        if not miss.any():
            continue
        have = np.flatnonzero(~miss)
        if len(have) == 0:
            raise DataError(f"{where}: column {cols[j]!r} has no values to fill from")
        if have[0] > 0:
            raise DataError(
                f"{where}: column {cols[j]!r} starts with {have[0]} missing value(s); nothing to fill them from"
            )
        if fill == "interpolate" and j < nx:
            if miss[-1]:
                raise DataError(
                    f"{where}: column {cols[j]!r} ends with {len(v) - 1 - int(have[-1])} missing value(s); "
                    "interpolation cannot extrapolate"
                )
            out[miss, j] = np.interp(tt[miss], tt[have], v[have, j])
        else:
            idx = np.maximum.accumulate(np.where(miss, 0, np.arange(len(v))))
            out[:, j] = v[idx, j]
    return out, int(nan.any(axis=1).sum())


def _resample(
    v: np.ndarray, t: np.ndarray, period: float, nx: int, fill: str | None, rows: list, where: str, cols: list
) -> tuple[np.ndarray, int]:
    """Values on the grid t_0 + k * period: outputs by linear interpolation, inputs by zero-order hold."""
    v, n_filled = _fill(v, t, nx, fill, rows, where, cols)
    n = int(np.floor((t[-1] - t[0]) / period * (1 + 1e-12))) + 1
    grid = t[0] + period * np.arange(n)
    out = np.empty((n, v.shape[1]))
    for j in range(nx):
        out[:, j] = np.interp(grid, t, v[:, j])
    held = np.clip(np.searchsorted(t, grid + 1e-9 * period, side="right") - 1, 0, len(t) - 1)
    out[:, nx:] = v[held, nx:]
    return out, n_filled


def _block_rows(n: int, val_frac: float, test_frac: float) -> tuple[int, int, int]:
    """Rows of the train, val and test blocks of a series of n rows."""
    n_val = int(round(val_frac * n))
    n_test = int(round(test_frac * n))
    return n - n_val - n_test, n_val, n_test


def _window_block(
    x: np.ndarray,
    u: np.ndarray,
    layout: str,
    window: int,
    stride: int | None,
    target_fn: Any,
    first_row: int,
    where: str,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Windows of one contiguous block (rows x_0..x_L-1, inputs u_0..u_L-2), or None if it is too short."""
    T = len(x) - 1
    if layout == "one_step":
        T = (T // window) * window
        if T < window:
            return None
        periods = u[:T].reshape(-1, window, u.shape[1])
        moved = np.any(periods != periods[:, :1, :], axis=2)
        if moved.any():
            p, k = np.argwhere(moved)[0]
            row = first_row + int(p) * window + int(k)
            raise DataError(
                f"{where}: one_step layout needs the inputs held over each period of {window} rows; they change "
                f"at series row {row} (period starting at series row {first_row + int(p) * window})"
            )
    elif T < window:
        return None
    xi, yi, _ = window_trajectories(x[None, : T + 1], u[None, :T], layout, window, target_fn, stride)
    return xi, yi
