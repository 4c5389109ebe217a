"""Training windows for the PV converter with irradiance and cell temperature as measured model inputs.

`icctrl.data.generate` has no disturbance channel, so the windows are built here from the plant's CasADi
twin (RK4 + unrolled Newton on the single-diode equation, within 1e-6 A of pvlib), mapped over a batch.
"""

from __future__ import annotations

import numpy as np

from icctrl.data import Scaler, SequenceDataset
from icctrl.errors import InvalidValueError

INPUT_NAMES = ("v_pv", "i_s", "duty", "irradiance", "temp_cell")
OUTPUT_NAMES = ("v_pv", "i_s")
G_RANGE = (150.0, 1100.0)  # W/m2 drawn per trajectory
T_RANGE = (5.0, 65.0)  # °C drawn per trajectory


def _positive(v, what: str) -> int:
    if isinstance(v, bool) or int(v) != v or v < 1:
        raise InvalidValueError(f"{what} must be a positive integer, got {v!r}")
    return int(v)


def pv_dataset(plant, n_traj: int = 160, steps: int = 40, window: int = 2, hold: int = 4,
               seed: int = 0) -> SequenceDataset:
    """One-step windows: each period dt split into `window` sub-steps; inputs [v_pv, i_s, u, G, T_c].

    Each trajectory draws (G, T_c), starts near the MPP duty with a random state offset and holds random
    duty levels in [0.05, 0.95] for 1..`hold` periods. Targets are the sub-step (v_pv, i_s).
    """
    import casadi as ca

    n_traj, steps = _positive(n_traj, "n_traj"), _positive(steps, "steps")
    window, hold = _positive(window, "window"), _positive(hold, "hold")
    rng = np.random.default_rng(seed)
    G = rng.uniform(*G_RANGE, n_traj)
    T = rng.uniform(*T_RANGE, n_traj)
    mpp = plant.mpp(G, T)
    duty0 = np.clip(np.asarray(mpp.duty, float), 0.1, 0.9)
    U = np.empty((n_traj, steps))
    for i in range(n_traj):
        k, level = 0, duty0[i]
        while k < steps:
            n = int(rng.integers(1, hold + 1))
            U[i, k:k + n] = level
            level = float(np.clip(duty0[i] + rng.normal(0.0, 0.12), 0.05, 0.95))
            k += n
    x = np.stack([np.asarray(mpp.v_mp, float) * rng.uniform(0.85, 1.1, n_traj),
                  np.asarray(mpp.p_mp, float) / plant.v_b * rng.uniform(0.6, 1.2, n_traj),
                  np.full(n_traj, plant.v_b)])
    step = plant.casadi_step(dt=plant.dt / window, substeps=max(1, plant.rk4_substeps // window)).map(n_traj)
    D = np.stack([G, T])
    inputs = np.empty((n_traj, steps, window, len(INPUT_NAMES)))
    targets = np.empty((n_traj, steps, window, len(OUTPUT_NAMES)))
    for k in range(steps):
        row = np.concatenate([x[:2], U[None, :, k], D]).T
        inputs[:, k] = row[:, None, :]
        for j in range(window):
            x = np.array(step(ca.DM(x), ca.DM(U[None, :, k]), ca.DM(D)))
            targets[:, k, j] = x[:2].T
    inputs = inputs.reshape(-1, window, len(INPUT_NAMES))
    targets = targets.reshape(-1, window, len(OUTPUT_NAMES))
    ok = np.all(np.isfinite(targets), axis=(1, 2)) & np.all(targets[..., 0] > 0, axis=1)
    traj = np.repeat(np.arange(n_traj), steps)[ok]
    inputs, targets = inputs[ok], targets[ok]
    order = rng.permutation(n_traj)
    n_val, n_test = max(1, n_traj // 10), max(1, n_traj // 10)
    val_t, test_t = set(order[:n_val].tolist()), set(order[n_val:n_val + n_test].tolist())
    split = np.array(["val" if t in val_t else "test" if t in test_t else "train" for t in traj])
    splits = {s: np.flatnonzero(split == s) for s in ("train", "val", "test")}
    tr = splits["train"]
    return SequenceDataset(inputs, targets, traj, INPUT_NAMES, OUTPUT_NAMES, splits,
                           Scaler.fit(inputs[tr]), Scaler.fit(targets[tr]),
                           meta={"plant": plant.name, "layout": "one_step", "window": window, "dt": plant.dt,
                                 "n_traj": n_traj, "steps": steps, "seed": seed, "n_dropped": int((~ok).sum())})
