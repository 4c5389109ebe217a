"""One feature vector per horizon: [x₀, u₀, …, u_(N−1)] → every target of the window, for whole-horizon models
(a PICNN convex in the planned inputs and free in the initial state)."""

from __future__ import annotations

import numpy as np

from icctrl.data._dataset import SequenceDataset
from icctrl.data._scaler import Scaler
from icctrl.errors import DataError, ShapeError


def horizon_flat(ds: SequenceDataset, nx: int) -> SequenceDataset:
    """Flatten a "multi_step" dataset (inputs [x₀, u_k] at step k) into windows of one time step."""
    if ds.meta.get("layout") != "multi_step":
        raise DataError(f"horizon_flat needs a 'multi_step' dataset, got layout {ds.meta.get('layout')!r}")
    n, N, n_in = ds.inputs.shape
    if not 0 < nx < n_in:
        raise ShapeError(f"nx={nx} must split the {n_in} input features into states and inputs")
    X, Y = ds.inputs, ds.targets
    inputs = np.concatenate([X[:, 0, :nx], X[:, :, nx:].reshape(n, -1)], axis=1)[:, None, :]
    targets = Y.reshape(n, 1, -1)
    u_names = ds.input_names[nx:]
    names_in = tuple(ds.input_names[:nx]) + tuple(f"{u}[{k}]" for k in range(N) for u in u_names)
    names_out = tuple(f"{y}[{k + 1}]" for k in range(N) for y in ds.output_names)
    train = ds.splits["train"]
    meta = {**ds.meta, "layout": "horizon_flat", "window": 1, "horizon": N, "nx": nx,
            "source_hash": ds.content_hash}
    return SequenceDataset(inputs, targets, ds.traj_id, names_in, names_out, ds.splits,
                           Scaler.fit(inputs[train]), Scaler.fit(targets[train]), meta)


def window_flat(ds: SequenceDataset) -> SequenceDataset:
    """One feature vector per one_step window: the held input [x_k, u_k] → every sub-step target, for
    feed-forward models (an ICNN over the whole window)."""
    if ds.meta.get("layout") != "one_step":
        raise DataError(f"window_flat needs a 'one_step' dataset, got layout {ds.meta.get('layout')!r}")
    n, T, _ = ds.targets.shape
    inputs = ds.inputs[:, :1, :]
    targets = ds.targets.reshape(n, 1, -1)
    names_out = tuple(f"{y}[{t + 1}]" for t in range(T) for y in ds.output_names)
    train = ds.splits["train"]
    meta = {**ds.meta, "layout": "window_flat", "window": 1, "sub_steps": T, "source_hash": ds.content_hash}
    return SequenceDataset(inputs, targets, ds.traj_id, ds.input_names, names_out, ds.splits,
                           Scaler.fit(inputs[train]), Scaler.fit(targets[train]), meta)
