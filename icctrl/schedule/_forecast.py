"""PV and load forecaster: multi-output ridge regression on lagged values and time-of-day harmonics.

Exogenous forecasts do not need convexity, so a closed-form linear model is used: one least-squares solve fits
all `horizon` steps of both series, and a forecast is one matrix-vector product (microseconds per re-solve).
"""

from __future__ import annotations

import numpy as np

from icctrl.errors import DataError, InvalidValueError, ShapeError

_K_NOW = 4  # steps averaged for the current clear-sky index (1 h)


def _series(x, name: str, min_len: int) -> np.ndarray:
    arr = np.asarray(x, dtype=float).reshape(-1) if np.ndim(x) <= 1 else None
    if arr is None:
        raise ShapeError(f"{name} must be one-dimensional, got shape {np.shape(x)}")
    if arr.size < min_len:
        raise ShapeError(f"{name} has {arr.size} values, at least {min_len} are needed")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise DataError(f"{name} has non-finite values at index {bad[:5].tolist()}: {arr[bad[:5]].tolist()}")
    return arr


class RidgeForecaster:
    """Predicts PV power and load for the next `horizon` steps from the last `lags` values of both.

    The model predicts the correction to a persistence forecast (the value one day earlier) from both lag
    windows and sin/cos of the time of day (`harmonics` orders), standardised, with ridge penalty `alpha`: a
    large penalty falls back to persistence, never to a constant. Outputs are clipped to the physical range
    seen in training (PV to [0, max], and to 0 at times of day when PV was 0 on every training day)."""

    def __init__(
        self,
        horizon: int = 96,
        lags: int = 96,
        alpha: float = 10.0,
        harmonics: int = 3,
        steps_per_day: int = 96,
    ):
        for name, v in (("horizon", horizon), ("lags", lags), ("steps_per_day", steps_per_day)):
            if int(v) != v or v < 1:
                raise InvalidValueError(f"{name} must be a positive integer, got {v!r}")
        if int(harmonics) != harmonics or harmonics < 0:
            raise InvalidValueError(f"harmonics must be a non-negative integer, got {harmonics!r}")
        if not np.isfinite(alpha) or alpha < 0:
            raise InvalidValueError(f"alpha must be finite and >= 0, got {alpha!r}")
        self.horizon, self.lags, self.alpha = int(horizon), int(lags), float(alpha)
        self.harmonics, self.steps_per_day = int(harmonics), int(steps_per_day)
        self.weights: np.ndarray | None = None
        self.clear_weights: np.ndarray | None = None

    # ------------------------------------------------------------------ features
    def _time_features(self, step_of_day: np.ndarray) -> np.ndarray:
        ang = 2 * np.pi * np.asarray(step_of_day, dtype=float)[:, None] / self.steps_per_day
        k = np.arange(1, self.harmonics + 1)[None, :]
        return np.hstack([np.sin(k * ang), np.cos(k * ang)])

    def _features(self, pv: np.ndarray, load: np.ndarray, origins: np.ndarray, step0: int) -> np.ndarray:
        idx = origins[:, None] - self.lags + np.arange(self.lags)[None, :]
        return np.hstack([pv[idx], load[idx], self._time_features((origins + step0) % self.steps_per_day)])

    # ------------------------------------------------------------------ fit / predict
    def _persistence(self, pv: np.ndarray, load: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """The value one day (or `lags` steps, if shorter) before each target: the forecast the ridge
        corrects."""
        back = min(self.lags, self.steps_per_day)
        h = np.arange(self.horizon)[None, :]
        idx = origins[:, None] - back + (h % back)
        return np.hstack([pv[idx], load[idx]])

    def _clear_sky_pv(self, pv_lags: np.ndarray, clear: np.ndarray, targets: np.ndarray | None = None):
        """Clear-sky PV model: pv[t+h] ≈ clear[t+h]·(a_h + b_h·k_now + c_h·k_day), k the clear-sky index of
        the last hour and of the last `lags` steps. Fits (a, b, c) per lead time when `targets` is given."""
        past, ahead = clear[:, : self.lags], clear[:, self.lags :]

        def index(n):
            num, den = pv_lags[:, -n:].sum(1), past[:, -n:].sum(1)
            return np.where(den > 1e-3, num / np.maximum(den, 1e-3), np.nan)

        k_day = np.nan_to_num(index(self.lags), nan=1.0).clip(0.0, 1.5)
        k_now = index(_K_NOW)
        k_now = np.where(np.isnan(k_now), k_day, k_now).clip(0.0, 1.5)
        F = np.stack([ahead, ahead * k_now[:, None], ahead * k_day[:, None]], axis=-1)  # (n, H, 3)
        if targets is not None:
            self.clear_weights = np.stack(
                [
                    np.linalg.solve(F[:, h].T @ F[:, h] + 1e-6 * np.eye(3), F[:, h].T @ targets[:, h])
                    for h in range(self.horizon)
                ]
            )
        return np.einsum("nhf,hf->nh", F, self.clear_weights)

    def fit(self, pv, load, step0: int = 0, pv_clear=None) -> RidgeForecaster:
        """Fit on aligned series; `step0` is the time-of-day step index of the first value. With `pv_clear`
        (clear-sky PV of the same system, aligned), PV is forecast from the clear-sky profile and the recent
        clear-sky index instead of the ridge."""
        n_min = self.lags + self.horizon + 1
        pv, load = _series(pv, "pv", n_min), _series(load, "load", n_min)
        if pv.size != load.size:
            raise ShapeError(f"pv and load must have the same length, got {pv.size} and {load.size}")
        origins = np.arange(self.lags, pv.size - self.horizon + 1)
        self.clear_weights = None
        if pv_clear is not None:
            clear = _series(pv_clear, "pv_clear", pv.size)
            if clear.size != pv.size:
                raise ShapeError(f"pv_clear must align with pv ({pv.size} values), got {clear.size}")
            win = origins[:, None] - self.lags + np.arange(self.lags + self.horizon)[None, :]
            lagw = origins[:, None] - self.lags + np.arange(self.lags)[None, :]
            tgt = origins[:, None] + np.arange(self.horizon)[None, :]
            self._clear_sky_pv(pv[lagw], clear[win], targets=pv[tgt])
        X = self._features(pv, load, origins, step0)
        tgt = origins[:, None] + np.arange(self.horizon)[None, :]
        Y = np.hstack([pv[tgt], load[tgt]]) - self._persistence(pv, load, origins)
        self.x_mean, self.x_std = X.mean(0), X.std(0) + 1e-9
        self.y_mean = Y.mean(0)
        Xs = (X - self.x_mean) / self.x_std
        A = Xs.T @ Xs + self.alpha * np.eye(Xs.shape[1])
        self.weights = np.linalg.solve(A, Xs.T @ (Y - self.y_mean))
        self.resid_std = (Y - self.y_mean - Xs @ self.weights).std(0)  # per series and lead time, in-sample
        self.pv_max = float(pv.max())
        days = pv.size // self.steps_per_day
        sod = (np.arange(pv.size) + step0) % self.steps_per_day
        self.dark = (
            np.array([np.all(pv[sod == s] <= 1e-9) for s in range(self.steps_per_day)])
            if days
            else np.zeros(self.steps_per_day, dtype=bool)
        )
        return self

    def predict(
        self, pv_history, load_history, step_of_day: int, risk: float = 0.0, pv_clear=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(pv, load) forecasts for the `horizon` steps starting at time-of-day step `step_of_day`.

        `pv_clear`: clear-sky PV (kW) over the last `lags` steps and the `horizon` ahead, required when the
        forecaster was fitted with one. `risk` > 0 lowers the PV forecast by `risk` residual standard
        deviations of its lead time (storing a surplus now is worth more than exporting it and hoping for more
        later)."""
        if self.weights is None:
            raise InvalidValueError("RidgeForecaster.predict called before fit")
        pv = _series(pv_history, "pv_history", self.lags)[-self.lags :]
        load = _series(load_history, "load_history", self.lags)[-self.lags :]
        x = np.hstack([pv, load, self._time_features(np.array([step_of_day]))[0]])
        base = self._persistence(pv, load, np.array([self.lags]))[0]
        y = ((x - self.x_mean) / self.x_std) @ self.weights + self.y_mean + base
        if risk:
            if not np.isfinite(risk) or risk < 0:
                raise InvalidValueError(f"risk must be finite and >= 0, got {risk!r}")
            y = y - risk * self.resid_std * np.repeat([1.0, 0.0], self.horizon)
        if self.clear_weights is not None:
            if pv_clear is None:
                raise InvalidValueError("this forecaster was fitted with clear-sky PV: pass pv_clear")
            clear = _series(pv_clear, "pv_clear", self.lags + self.horizon)
            if clear.size != self.lags + self.horizon:
                raise ShapeError(
                    f"pv_clear must have lags + horizon = {self.lags + self.horizon} values, got {clear.size}"
                )
            y[: self.horizon] = self._clear_sky_pv(pv[None], clear[None])[0]
        pv_fc = np.clip(y[: self.horizon], 0.0, self.pv_max)
        pv_fc[self.dark[(step_of_day + np.arange(self.horizon)) % self.steps_per_day]] = 0.0
        return pv_fc, np.clip(y[self.horizon :], 0.0, None)

    def evaluate(self, pv, load, step0: int = 0, stride: int = 4, pv_clear=None) -> dict:
        """Mean absolute / RMS errors (kW) over all horizons on held-out series, beside a persistence forecast
        that repeats the last day (value one day before each target). `pv_clear` aligns with pv when the
        forecaster uses clear-sky PV."""
        pv, load = (
            _series(pv, "pv", self.lags + self.horizon),
            _series(load, "load", self.lags + self.horizon),
        )
        clear = None if pv_clear is None else _series(pv_clear, "pv_clear", pv.size)
        origins = np.arange(
            max(self.lags, self.steps_per_day), pv.size - self.horizon + 1, max(1, int(stride))
        )
        if origins.size == 0:
            raise ShapeError(
                f"evaluate needs at least {max(self.lags, self.steps_per_day) + self.horizon} values"
            )
        errs = {"pv": [], "load": []}
        pers = {"pv": [], "load": []}
        for t in origins:
            window = None if clear is None else clear[t - self.lags : t + self.horizon]
            fp, fl = self.predict(pv[:t], load[:t], int((t + step0) % self.steps_per_day), pv_clear=window)
            tgt = t + np.arange(self.horizon)
            errs["pv"].append(fp - pv[tgt])
            errs["load"].append(fl - load[tgt])
            pers["pv"].append(pv[tgt - self.steps_per_day] - pv[tgt])
            pers["load"].append(load[tgt - self.steps_per_day] - load[tgt])
        out = {}
        for k in ("pv", "load"):
            e, p = np.concatenate(errs[k]), np.concatenate(pers[k])
            out[k] = {
                "mae_kw": float(np.mean(np.abs(e))),
                "rmse_kw": float(np.sqrt(np.mean(e**2))),
                "persistence_mae_kw": float(np.mean(np.abs(p))),
                "persistence_rmse_kw": float(np.sqrt(np.mean(p**2))),
            }
        out["origins"] = int(origins.size)
        return out
