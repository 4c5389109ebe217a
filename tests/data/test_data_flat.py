"""window_flat: a one_step dataset as one feature vector per window (the held input → every sub-step)."""

import numpy as np
import pytest

from icctrl.data import Scaler, SequenceDataset, window_flat
from icctrl.errors import DataError


def _one_step(n=12, T=3, layout="one_step"):
    rng = np.random.default_rng(0)
    held = rng.normal(size=(n, 1, 3))
    inputs = np.repeat(held, T, axis=1)
    targets = rng.normal(size=(n, T, 2))
    splits = {"train": np.arange(8), "val": np.arange(8, 10), "test": np.arange(10, 12)}
    return SequenceDataset(inputs, targets, np.arange(n), ("a", "b", "u"), ("y", "z"), splits,
                           Scaler.fit(inputs[:8]), Scaler.fit(targets[:8]), {"layout": layout})


def test_window_flat_keeps_the_held_input_and_every_sub_step():
    ds = _one_step()
    flat = window_flat(ds)
    assert flat.inputs.shape == (12, 1, 3) and flat.targets.shape == (12, 1, 6)
    np.testing.assert_array_equal(flat.targets.reshape(12, 3, 2), ds.targets)
    assert flat.output_names[:3] == ("y[1]", "z[1]", "y[2]")
    assert flat.meta["layout"] == "window_flat" and flat.meta["source_hash"] == ds.content_hash


def test_window_flat_refuses_other_layouts():
    with pytest.raises(DataError, match="multi_step"):
        window_flat(_one_step(layout="multi_step"))
