"""window_trajectories: both layouts on hand-made trajectories, target functions, and bad input."""

import numpy as np
import pytest

from icctrl.data import window_trajectories
from icctrl.errors import InvalidValueError, ShapeError, UnknownNameError


def _ramp(B=2, T=6, nx=2, nu=1):
    """X[b, t] = (100 b + t, -(100 b + t)), U[b, t] = 10 b + t: every entry says where it came from."""
    X = np.stack([np.add.outer(100 * np.arange(B), np.arange(T + 1))] * nx, axis=-1).astype(float)
    X[..., 1] *= -1
    U = np.add.outer(10 * np.arange(B), np.arange(T)).astype(float)[..., None].repeat(nu, axis=-1)
    return X, U


def test_multi_step_repeats_initial_state_and_shifts_targets():
    X, U = _ramp()
    inputs, targets, traj = window_trajectories(X, U, "multi_step", window=3)
    assert inputs.shape == (4, 3, 3) and targets.shape == (4, 3, 2)
    np.testing.assert_array_equal(traj, [0, 0, 1, 1])
    # second window of trajectory 1 starts at t = 3
    np.testing.assert_array_equal(inputs[3, :, 0], [103, 103, 103])
    np.testing.assert_array_equal(inputs[3, :, 2], [13, 14, 15])
    np.testing.assert_array_equal(targets[3, :, 0], [104, 105, 106])
    np.testing.assert_array_equal(targets[3, :, 1], [-104, -105, -106])


def test_multi_step_stride_gives_overlapping_windows():
    X, U = _ramp(B=1, T=6)
    inputs, targets, _ = window_trajectories(X, U, "multi_step", window=3, stride=1)
    assert len(inputs) == 4
    np.testing.assert_array_equal(inputs[:, 0, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(targets[:, -1, 0], [3, 4, 5, 6])


def test_one_step_windows_are_periods_of_held_input():
    X, _ = _ramp(B=1, T=6)
    U = np.repeat(np.array([[[5.0], [7.0]]]), 3, axis=1)  # two periods of 3 sub-steps
    inputs, targets, traj = window_trajectories(X, U, "one_step", window=3)
    assert inputs.shape == (2, 3, 3)
    np.testing.assert_array_equal(inputs[1, :, 0], [3, 3, 3])
    np.testing.assert_array_equal(inputs[1, :, 2], [7, 7, 7])
    np.testing.assert_array_equal(targets[1, :, 0], [4, 5, 6])
    np.testing.assert_array_equal(traj, [0, 0])


def test_target_fn_vectorised_and_per_state_agree():
    X, U = _ramp()
    def energy(x):
        return np.sum(np.asarray(x) ** 2, axis=-1)
    def energy_one(x):
        if np.ndim(x) != 1:
            raise TypeError("one state at a time")
        return float(x @ x)
    _, y1, _ = window_trajectories(X, U, "multi_step", window=2, target_fn=energy)
    _, y2, _ = window_trajectories(X, U, "multi_step", window=2, target_fn=energy_one)
    assert y1.shape == (6, 2, 1)
    np.testing.assert_allclose(y1, y2)
    np.testing.assert_allclose(y1[0, :, 0], [2.0, 8.0])


def test_bad_input_is_named():
    X, U = _ramp()
    with pytest.raises(UnknownNameError, match="'two_step'"):
        window_trajectories(X, U, "two_step", window=2)
    with pytest.raises(ShapeError, match=r"\(2, 7, 2\).*\(2, 7, 1\)"):
        window_trajectories(X, np.concatenate([U, U[:, :1]], axis=1), "multi_step", window=2)
    with pytest.raises(ShapeError, match="window=9"):
        window_trajectories(X, U, "multi_step", window=9)
    with pytest.raises(ShapeError, match="multiple of window=4"):
        window_trajectories(X, U, "one_step", window=4)
    with pytest.raises(InvalidValueError, match="held"):
        window_trajectories(X, U, "one_step", window=3)
    with pytest.raises(InvalidValueError, match="window must be an integer >= 1, got 0"):
        window_trajectories(X, U, "multi_step", window=0)
    X[1, 2, 0] = np.nan
    with pytest.raises(InvalidValueError, match="nan"):
        window_trajectories(X, U, "multi_step", window=2)
