"""Datasets generated from a plant: designs, simulation, windowing, drop rules, splits and caching."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from icctrl._version import __version__
from icctrl.data import _cache
from icctrl.data._assemble import check_fractions, check_noise, finish, split_by_group
from icctrl.data._dataset import SequenceDataset
from icctrl.data._designs import check_design, design_inputs, initial_states, input_range
from icctrl.data._simulate import LEFT_REGION, LEFT_VALID, OK, region_level, simulate
from icctrl.data._windows import assemble, check_layout, positive_int, window_starts, window_states
from icctrl.errors import DataError, InvalidValueError, ShapeError

# Bump when generation changes what a spec produces (invalidates cached datasets).
GENERATOR_VERSION = 1
# Default drop rule: windows must stay inside {V(x) <= REGION_MARGIN * rho} of a plant with a Lyapunov
# function and stability level rho (the CSTR: V <= 2 * 372), besides the plant's valid state box.
REGION_MARGIN = 2.0


def generate(
    plant: Any,
    *,
    layout: str = "one_step",
    design: str | None = None,
    n_traj: int = 100,
    steps: int | None = None,
    window: int = 10,
    stride: int | None = None,
    noise_std: float = 0.0,
    seed: int = 0,
    target_fn: Callable[[np.ndarray], Any] | None = None,
    target_names: Sequence[str] | None = None,
    cache: bool = True,
    val_frac: float = 0.15,
    test_frac: float = 0.15,
    x0: Any = None,
    u_range: Any = None,
    input_grid: int | None = None,
    hold: tuple[int, int] = (1, 10),
    region_margin: float | None = REGION_MARGIN,
    dt: float | None = None,
) -> SequenceDataset:
    """Simulate `plant` under an excitation design and window the trajectories (see module docs).

    layout "one_step": each sampling period is one window of `window` sub-steps of dt/window (default
    design "grid", `steps`=1 period per trajectory). layout "multi_step": windows of `window` periods
    every `stride` periods (default design "steps", `steps`=`window`). `n_traj` initial states come from
    `x0`, else the plant's stability region, else its state box; with design "grid" and `input_grid`=m
    each is crossed with an m**nu input grid. Windows leaving the valid box or {V <= region_margin * rho}
    are dropped and counted in meta. `noise_std` (scaled units) perturbs the training targets only.
    """
    layout = check_layout(layout)
    design = check_design(design if design is not None else ("grid" if layout == "one_step" else "steps"))
    n_traj = positive_int(n_traj, "n_traj")
    window = positive_int(window, "window")
    steps = positive_int(steps if steps is not None else (1 if layout == "one_step" else window), "steps")
    if stride is not None:
        stride = positive_int(stride, "stride")
    if layout == "one_step" and stride is not None:
        raise InvalidValueError(f"stride={stride!r} applies to the multi_step layout only")
    if input_grid is not None:
        input_grid = positive_int(input_grid, "input_grid")
    hold = _check_hold(hold)
    noise_std = check_noise(noise_std)
    val_frac, test_frac = check_fractions(val_frac, test_frac)
    dt = plant.check_dt(dt) if hasattr(plant, "check_dt") else _check_dt(plant.dt if dt is None else dt)
    if region_margin is not None and not (np.isfinite(region_margin) and region_margin > 0):
        raise InvalidValueError(f"region_margin must be positive or None, got {region_margin!r}")
    if layout == "multi_step" and window > steps:
        raise InvalidValueError(f"multi_step: window={window} periods exceeds steps={steps} per trajectory")
    lo, hi = input_range(plant, u_range)
    if target_fn is None and target_names is not None:
        raise InvalidValueError(f"target_names={target_names!r} given without a target_fn")
    x0_given = None if x0 is None else np.asarray(x0, dtype=float)

    plant_name = str(getattr(plant, "name", type(plant).__name__.lower()))
    spec = {
        "generator": GENERATOR_VERSION,
        "version": __version__,
        "plant": _cache.plant_fingerprint(plant),
        "layout": layout,
        "design": design,
        "n_traj": n_traj,
        "steps": steps,
        "window": window,
        "stride": stride,
        "noise_std": noise_std,
        "seed": int(seed),
        "target_fn": _cache.function_fingerprint(target_fn),
        "target_names": None if target_names is None else [str(n) for n in _as_names(target_names)],
        "val_frac": val_frac,
        "test_frac": test_frac,
        "x0": x0_given,
        "u_range": [lo, hi],
        "input_grid": input_grid,
        "hold": list(hold),
        "region_margin": region_margin,
        "dt": dt,
    }
    key = _cache.spec_key(spec)
    if target_fn is not None and spec["target_fn"]["source_sha256"] is None:
        cache = False  # a target function without retrievable source cannot be told apart from another
    path = _cache.cache_path(plant_name, key)
    if cache:
        hit = _cache.load_cached(path, key)
        if hit is not None:
            return hit

    ss = np.random.SeedSequence(int(seed))
    rng_x0, rng_u, rng_split, rng_noise = (np.random.default_rng(s) for s in ss.spawn(4))
    X0 = initial_states(plant, n_traj, rng_x0, x0)
    U, x0_idx = design_inputs(design, rng_u, n_traj, steps, lo, hi, input_grid, hold)
    sub = window if layout == "one_step" else 1
    level = region_level(plant, region_margin)
    X, status = simulate(plant, X0[x0_idx], np.repeat(U, sub, axis=1), dt / sub, level)

    starts = window_starts(layout, U.shape[1] * sub, window, stride)
    states = window_states(X, starts, window)
    win_status = window_states(status[..., None], starts, window)[..., 0].max(axis=1)
    u_win = np.repeat(U, sub, axis=1)[:, starts[:, None] + np.arange(window)[None, :]]
    u_win = u_win.reshape(-1, window, U.shape[2])
    traj_id = np.repeat(np.arange(len(U), dtype=np.int64), len(starts))
    keep = win_status == OK
    if not np.any(keep):
        raise DataError(
            f"no windows left: all {len(keep)} windows left the valid region or the stability region "
            f"(level {level}); use smaller u_range, shorter windows or a larger region_margin"
        )
    inputs, targets = assemble(states[keep], u_win[keep], layout, target_fn)
    traj_id = traj_id[keep]
    output_names = output_names_for(plant.state_names, target_fn, target_names, targets.shape[2])
    splits = split_by_group(traj_id, val_frac, test_frac, rng_split)
    meta = {
        "source": "plant",
        "plant": plant_name,
        "plant_class": spec["plant"]["class"],
        "layout": layout,
        "design": design,
        "seed": int(seed),
        "n_traj": int(len(U)),
        "n_initial_states": n_traj,
        "steps": steps,
        "window": window,
        "stride": stride if layout == "multi_step" else None,
        "dt": dt,
        "sub_dt": dt / sub,
        "input_grid": input_grid,
        "hold": list(hold),
        "u_range": [lo.tolist(), hi.tolist()],
        "region_margin": region_margin,
        "region_level": level,
        "n_candidates": int(len(keep)),
        "n_dropped": int(np.sum(~keep)),
        "n_dropped_invalid": int(np.sum(win_status == LEFT_VALID)),
        "n_dropped_region": int(np.sum(win_status == LEFT_REGION)),
        "target_fn": spec["target_fn"],
        "val_frac": val_frac,
        "test_frac": test_frac,
        "spec_key": key,
    }
    ds = finish(
        inputs,
        targets,
        traj_id,
        splits,
        (*plant.state_names, *plant.input_names),
        output_names,
        meta,
        noise_std,
        rng_noise,
    )
    if cache:
        try:
            ds.save(path)
        except OSError as exc:
            warnings.warn(f"could not cache the dataset at {str(path)!r}: {exc}", stacklevel=2)
    return ds


def cstr_dataset(layout: str = "one_step", **kw: Any) -> SequenceDataset:
    """CSTR data as in the IC-LSTM/ICLRNN papers; keyword arguments override the preset.

    one_step: 600 initial states from the stability region crossed with a 3×3 grid of constant inputs
    over the full bounds (5400 one-period windows of 10 sub-steps of 0.0005 h). multi_step: 6000
    runs of 10 periods (0.05 h) under random steps held 1–5 periods over the full bounds, windows that
    leave {V <= 2 rho} dropped (about half remain).
    """
    from plants import CSTR

    layout = check_layout(layout)
    plant = kw.pop("plant", None) or CSTR()
    if layout == "one_step":
        preset: dict[str, Any] = {"design": "grid", "n_traj": 600, "input_grid": 3, "steps": 1, "window": 10}
    else:
        preset = {"design": "steps", "n_traj": 6000, "steps": 10, "window": 10, "hold": (1, 5)}
    preset.update(kw)
    return generate(plant, layout=layout, **preset)


def output_names_for(
    state_names: Sequence[str], target_fn: Any, target_names: Sequence[str] | str | None, n_out: int
) -> tuple[str, ...]:
    """Target names: the states, `target_names`, or the target function's name (indexed if several)."""
    if target_fn is None:
        return tuple(state_names)
    if target_names is None:
        base = getattr(target_fn, "__name__", "target").replace("<lambda>", "target")
        return (base,) if n_out == 1 else tuple(f"{base}[{i}]" for i in range(n_out))
    names = _as_names(target_names)
    if len(names) != n_out:
        raise ShapeError(f"target_names={names!r} names {len(names)} outputs but target_fn returns {n_out}")
    return names


def _as_names(names: Sequence[str] | str) -> tuple[str, ...]:
    return (names,) if isinstance(names, str) else tuple(str(s) for s in names)


def _check_hold(hold: Any) -> tuple[int, int]:
    try:
        a, b = hold
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(f"hold must be a pair (min, max) of periods, got {hold!r}") from exc
    a = positive_int(a, "hold[0]")
    b = positive_int(b, "hold[1]")
    if b < a:
        raise InvalidValueError(f"hold must satisfy min <= max, got {hold!r}")
    return a, b


def _check_dt(dt: Any) -> float:
    try:
        v = float(dt)
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(f"dt must be a positive number, got {dt!r}") from exc
    if not np.isfinite(v) or v <= 0:
        raise InvalidValueError(f"dt must be positive and finite, got {dt!r}")
    return v
