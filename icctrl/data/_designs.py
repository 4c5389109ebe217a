"""Excitation designs (constant-input grid, random steps, PRBS) and initial states for data generation."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.signal import max_len_seq

from icctrl.errors import InvalidValueError, ShapeError, UnknownNameError

DESIGNS = ("grid", "steps", "prbs")
# Register length of the maximal-length sequences behind "prbs" (period 2**9 - 1 = 511 clock ticks).
PRBS_BITS = 9


def check_design(design: Any) -> str:
    """Return the design name or raise UnknownNameError listing the known ones."""
    if design not in DESIGNS:
        raise UnknownNameError(f"unknown design {design!r}; known: {', '.join(DESIGNS)}")
    return design


def input_range(plant: Any, u_range: Any) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) the designs draw inputs from: the plant's bounds, or a sub-range of them."""
    lb = np.asarray(plant.u_lb, dtype=float)
    ub = np.asarray(plant.u_ub, dtype=float)
    if u_range is None:
        lo, hi = lb, ub
    else:
        try:
            lo, hi = (np.asarray(v, dtype=float).reshape(-1) for v in u_range)
        except (TypeError, ValueError) as exc:
            raise InvalidValueError(
                f"u_range must be a pair (lo, hi) of input vectors, got {u_range!r}"
            ) from exc
        if lo.shape != lb.shape or hi.shape != ub.shape:
            raise ShapeError(f"u_range entries must have shape ({len(lb)},), got {lo.shape} and {hi.shape}")
    names = tuple(plant.input_names)
    for i in range(len(lb)):
        if not (np.isfinite(lo[i]) and np.isfinite(hi[i])):
            raise InvalidValueError(
                f"input {names[i]} has an unbounded range [{lo[i]}, {hi[i]}]; pass a finite u_range"
            )
        if lo[i] > hi[i]:
            raise InvalidValueError(f"u_range for input {names[i]}: lower {lo[i]} exceeds upper {hi[i]}")
        if lo[i] < lb[i] or hi[i] > ub[i]:
            raise InvalidValueError(
                f"u_range for input {names[i]} = [{lo[i]}, {hi[i]}] is outside its bounds [{lb[i]}, {ub[i]}]"
            )
    return lo, hi


def initial_states(plant: Any, n: int, rng: np.random.Generator, x0: Any = None) -> np.ndarray:
    """n initial states: given ones (checked), else the plant's stability region, else its state box."""
    nx = int(plant.nx)
    names = tuple(plant.state_names)
    x_lb = np.asarray(plant.x_lb, dtype=float)
    x_ub = np.asarray(plant.x_ub, dtype=float)
    if x0 is not None:
        X0 = np.asarray(x0, dtype=float)
        if X0.shape == (nx,):
            X0 = np.tile(X0, (n, 1))
        if X0.shape != (n, nx):
            raise ShapeError(f"x0 must have shape ({nx},) or (n_traj={n}, {nx}), got {X0.shape}")
        if not np.all(np.isfinite(X0)):
            b = int(np.argwhere(~np.all(np.isfinite(X0), axis=1))[0][0])
            raise InvalidValueError(f"x0[{b}] = {X0[b].tolist()} is not finite")
        bad = (X0 < x_lb) | (X0 > x_ub)
        if np.any(bad):
            b, i = np.argwhere(bad)[0]
            raise InvalidValueError(
                f"x0[{b}]: state {names[i]} = {float(X0[b, i])!r} is outside the valid region [{x_lb[i]}, {x_ub[i]}]"
            )
        return X0
    if hasattr(plant, "sample_stability_region"):
        return np.asarray(plant.sample_stability_region(n, rng), dtype=float).reshape(n, nx)
    if not (np.all(np.isfinite(x_lb)) and np.all(np.isfinite(x_ub))):
        raise InvalidValueError(
            f"{getattr(plant, 'name', type(plant).__name__)} has no stability region and an unbounded state "
            f"box [{x_lb.tolist()}, {x_ub.tolist()}]; pass initial states with x0="
        )
    return rng.uniform(x_lb, x_ub, size=(n, nx))


def design_inputs(
    design: str,
    rng: np.random.Generator,
    n_traj: int,
    periods: int,
    lo: np.ndarray,
    hi: np.ndarray,
    input_grid: int | None,
    hold: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Input sequences U (B, periods, nu) and, per sequence, the index of its initial state.

    grid: one constant input per trajectory, uniform in [lo, hi], or with input_grid=m every initial
    state crossed with the m**nu points of a regular grid (B = n_traj * m**nu).
    steps: piecewise constant, each input independently redrawn uniformly after a hold of
    hold[0]..hold[1] periods (uniform integer).
    prbs: each input switches between lo and hi following a maximal-length binary sequence (scipy
    max_len_seq, 9-bit register, random start), one bit per hold[0] periods.
    """
    nu = len(lo)
    idx = np.arange(n_traj)
    if design == "grid":
        if input_grid is None:
            u = rng.uniform(lo, hi, size=(n_traj, nu))
        else:
            axes = [np.linspace(lo[i], hi[i], input_grid) for i in range(nu)]
            grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, nu)
            u = np.tile(grid, (n_traj, 1))
            idx = np.repeat(idx, len(grid))
        return np.repeat(u[:, None, :], periods, axis=1), idx
    if design == "steps":
        U = np.empty((n_traj, periods, nu))
        for b in range(n_traj):
            for i in range(nu):
                t = 0
                while t < periods:
                    length = int(rng.integers(hold[0], hold[1] + 1))
                    U[b, t : t + length, i] = rng.uniform(lo[i], hi[i])
                    t += length
        return U, idx
    clock = hold[0]
    ticks = -(-periods // clock)
    U = np.empty((n_traj, periods, nu))
    for b in range(n_traj):
        for i in range(nu):
            state = rng.integers(0, 2, size=PRBS_BITS)
            if not state.any():
                state[0] = 1
            bits, _ = max_len_seq(PRBS_BITS, state=state, length=ticks)
            U[b, :, i] = np.where(np.repeat(bits, clock)[:periods] > 0, hi[i], lo[i])
    return U, idx
