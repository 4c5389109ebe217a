"""Cut simulated or logged trajectories into (batch, time, features) windows for sequence models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from icctrl.errors import InvalidValueError, ShapeError, UnknownNameError

LAYOUTS = ("one_step", "multi_step")


def check_layout(layout: Any) -> str:
    """Return the layout name or raise UnknownNameError listing the known ones."""
    if layout not in LAYOUTS:
        raise UnknownNameError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
    return layout


def positive_int(v: Any, what: str) -> int:
    """An int >= 1, else InvalidValueError naming the value."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise InvalidValueError(f"{what} must be an integer >= 1, got {v!r}")
    return int(v)


def check_trajectories(X: Any, U: Any) -> tuple[np.ndarray, np.ndarray]:
    """X (B, T+1, nx) and U (B, T, nu) as finite float arrays, else ShapeError/InvalidValueError."""
    X = np.asarray(X, dtype=float)
    U = np.asarray(U, dtype=float)
    if X.ndim != 3 or U.ndim != 3:
        raise ShapeError(f"X must be (B, T+1, nx) and U (B, T, nu), got shapes {X.shape} and {U.shape}")
    if X.shape[0] != U.shape[0] or X.shape[1] != U.shape[1] + 1:
        raise ShapeError(f"X {X.shape} and U {U.shape} must be (B, T+1, nx) and (B, T, nu) with equal B, T")
    if not np.all(np.isfinite(U)):
        bad = np.argwhere(~np.isfinite(U))[0].tolist()
        raise InvalidValueError(f"U must be finite, got {U[tuple(bad)]} at index {bad}")
    return X, U


def window_starts(layout: str, T: int, window: int, stride: int | None) -> np.ndarray:
    """First time index of every window in a trajectory with T transitions."""
    if layout == "one_step":
        if stride is not None:
            raise InvalidValueError(f"stride={stride!r} applies to the multi_step layout only")
        if T % window:
            raise ShapeError(
                f"one_step layout: trajectory length {T} must be a multiple of window={window} sub-steps"
            )
        return np.arange(0, T, window)
    if window > T:
        raise ShapeError(f"multi_step layout: window={window} is longer than the trajectory ({T} steps)")
    step = window if stride is None else positive_int(stride, "stride")
    return np.arange(0, T - window + 1, step)


def window_states(X: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """States covered by each window: (B * len(starts), window + 1, nx), trajectory-major."""
    idx = starts[:, None] + np.arange(window + 1)[None, :]
    return X[:, idx].reshape(-1, window + 1, X.shape[2])


def window_trajectories(
    X: Any,
    U: Any,
    layout: str,
    window: int,
    target_fn: Callable[[np.ndarray], Any] | None = None,
    stride: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows (inputs, targets, traj_id) from trajectories X (B, T+1, nx) under inputs U (B, T, nu).

    one_step: X is sampled every sub-step, `window` sub-steps make one sampling period during which U is
    held; one window per period with inputs [x_k, u_k] at every sub-step and targets the sub-step states.
    multi_step: windows of `window` periods starting every `stride` (default `window`) periods; inputs at
    step j are [x_0, u_j] and targets x_(j+1), or target_fn(x_(j+1)).
    """
    layout = check_layout(layout)
    window = positive_int(window, "window")
    X, U = check_trajectories(X, U)
    B, T = U.shape[:2]
    starts = window_starts(layout, T, window, stride)
    states = window_states(X, starts, window)
    if not np.all(np.isfinite(states)):
        bad = np.argwhere(~np.isfinite(states))[0].tolist()
        raise InvalidValueError(f"X must be finite, got {states[tuple(bad)]} in window {bad[0]}")
    uidx = starts[:, None] + np.arange(window)[None, :]
    u_win = U[:, uidx].reshape(-1, window, U.shape[2])
    inputs, targets = assemble(states, u_win, layout, target_fn, n_per_traj=len(starts))
    traj_id = np.repeat(np.arange(B, dtype=np.int64), len(starts))
    return inputs, targets, traj_id


def assemble(
    states: np.ndarray,
    u_win: np.ndarray,
    layout: str,
    target_fn: Callable[[np.ndarray], Any] | None = None,
    n_per_traj: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs [x_0, u_j] and targets x_(j+1) (or target_fn of them) from window states and inputs."""
    n, window = u_win.shape[:2]
    if layout == "one_step":
        held = u_win[:, :1, :]
        moved = np.any(u_win != held, axis=(1, 2))
        if np.any(moved):
            w = int(np.argmax(moved))
            where = f"window {w}"
            if n_per_traj:
                where = "trajectory {}, period {}".format(*divmod(w, n_per_traj))
            raise InvalidValueError(
                f"one_step layout: the input must be held over each period of {window} sub-steps; {where} "
                f"has {u_win[w].tolist()}"
            )
    x_in = np.broadcast_to(states[:, :1, :], (n, window, states.shape[2]))
    inputs = np.concatenate([x_in, u_win], axis=2)
    targets = apply_target_fn(states[:, 1:, :], target_fn)
    return inputs, targets


def apply_target_fn(x_next: np.ndarray, target_fn: Callable[[np.ndarray], Any] | None) -> np.ndarray:
    """Targets (n, T, n_out): the states themselves, or target_fn over them (vectorised, else row by row)."""
    if target_fn is None:
        return np.array(x_next, dtype=float)
    n, T, nx = x_next.shape
    flat = x_next.reshape(-1, nx)
    try:
        out = np.asarray(target_fn(flat), dtype=float)
        if out.shape[:1] != (flat.shape[0],) or out.ndim > 2:
            raise ValueError("not vectorised")
    except Exception:  # a function of one state is allowed too: retry row by row
        out = np.asarray([np.asarray(target_fn(x), dtype=float) for x in flat], dtype=float)
    out = out.reshape(flat.shape[0], -1)
    if not np.all(np.isfinite(out)):
        bad = int(np.argwhere(~np.isfinite(out))[0][0])
        raise InvalidValueError(
            f"target_fn returned a non-finite value {out[bad].tolist()} for x={flat[bad].tolist()}"
        )
    return out.reshape(n, T, out.shape[1])
