"""Training regions: held-out points of the training distribution pass, a seeded sweep outside is flagged."""

import numpy as np
import pytest

from icctrl.data import TrainingRegion, cstr_dataset
from icctrl.errors import DataError, ShapeError
from plants import CSTR

PLANT = CSTR()


@pytest.fixture(scope="module")
def data():
    ds = cstr_dataset(layout="one_step", window=5)
    return ds, TrainingRegion.from_dataset(ds)


def _outside_sweep(n=3000, seed=0):
    """States of the valid box well outside the training data (V > 3ρ; training keeps V ≤ 2ρ)."""
    rng = np.random.default_rng(seed)
    x = np.c_[rng.uniform(0.0, 10.0, 20 * n), rng.uniform(250.0, 700.0, 20 * n)]
    return x[PLANT.lyapunov(x) > 3 * PLANT.rho_stability][:n]


def test_held_out_states_pass_and_states_outside_are_all_flagged(data):
    ds, region = data
    X, _ = ds.arrays("test", scaled=False)
    held_out = X.reshape(-1, X.shape[-1])[:, :2]
    assert region.contains(held_out).mean() == 1.0
    out = _outside_sweep()
    assert len(out) > 1000 and not region.contains(out).any()
    assert not region.contains([0.3, 300.0]) and region.contains(PLANT.x_ss)


def test_the_distance_test_is_what_flags_corners_of_the_box(data):
    _, region = data
    corner = np.array([region.x_lb[0], region.x_lb[1]])  # inside the box, far from the data ellipse
    assert region.distance(corner) > region.threshold and not region.contains(corner)


def test_round_trip_and_bad_input(data):
    _, region = data
    again = TrainingRegion.from_dict(region.to_dict())
    pts = _outside_sweep(50, seed=1)
    np.testing.assert_array_equal(again.contains(pts), region.contains(pts))
    with pytest.raises(ShapeError, match="2 entries"):
        region.contains([1.0, 2.0, 3.0])
    with pytest.raises(DataError, match="malformed"):
        TrainingRegion.from_dict({"x_lb": [0.0]})
    with pytest.raises(DataError, match="distinct states"):
        TrainingRegion.fit(np.zeros((3, 2)), np.zeros((3, 2)))


def test_covers_is_contains_and_contains_inputs_together(data):
    ds, region = data
    X, _ = ds.arrays("test", scaled=False)
    feats = X.reshape(-1, X.shape[-1])
    states, inputs = feats[:40, :2], feats[:40, 2:4]
    assert region.covers(states, inputs) and region.contains(states).all()
    corner = np.array([[region.x_lb[0], region.x_lb[1]]])  # in the box, flagged by the neighbour test
    assert not region.covers(np.vstack([states, corner]), inputs)
    assert not region.covers(states, np.vstack([inputs, region.u_ub + 10 * (region.u_ub - region.u_lb)]))
    assert not region.covers(_outside_sweep(5))
