"""Datasets for sequence models: generated from plants or read from logged tables, windowed and scaled.

Every dataset is a `SequenceDataset` of (batch, time, features) windows in physical units with
train/val/test splits (by trajectory for simulated data, by contiguous time blocks for tables) and
`Scaler`s fitted on the training split only; the scalers travel with the trained model.

Layouts:
- "one_step" (the papers' model): one window per sampling period, split into `window` sub-steps of
  dt/window; inputs [x_k, u_k] at every sub-step, targets the sub-step states (the last is x_(k+1)).
- "multi_step": windows of `window` periods; inputs [x_0, u_j], targets x_(j+1) or target_fn(x_(j+1)).
- `horizon_flat(ds, nx)` turns a multi_step dataset into one step per window: [x_0, u_0, …] → all targets;
  `window_flat(ds)` does the same for a one_step dataset: the held [x_k, u_k] → every sub-step state.

Designs for `generate`: "grid" (constant inputs, uniform or an input_grid**nu grid crossed with the
initial states), "steps" (random levels held hold[0]..hold[1] periods), "prbs" (maximal-length binary
sequences between the u_range limits). Initial states come from the plant's stability region when it
has one. Windows that leave the valid state box or {V <= REGION_MARGIN * rho} are dropped and counted
in `meta` (n_dropped, n_dropped_invalid, n_dropped_region). `noise_std` adds Gaussian noise of that
std in scaled units to the training targets only. Generated datasets are cached under
`$ICCTRL_CACHE_DIR` (default ~/.cache/icctrl/datasets), keyed by the generation spec.
"""

from icctrl.data._cache import cache_dir
from icctrl.data._dataset import SequenceDataset
from icctrl.data._designs import DESIGNS
from icctrl.data._flat import horizon_flat, window_flat
from icctrl.data._generate import REGION_MARGIN, cstr_dataset, generate
from icctrl.data._scaler import Scaler
from icctrl.data._table import FILLS, from_table
from icctrl.data._windows import LAYOUTS, window_trajectories

__all__ = [
    "DESIGNS",
    "FILLS",
    "LAYOUTS",
    "REGION_MARGIN",
    "Scaler",
    "SequenceDataset",
    "cache_dir",
    "cstr_dataset",
    "from_table",
    "generate",
    "horizon_flat",
    "window_flat",
    "window_trajectories",
]
