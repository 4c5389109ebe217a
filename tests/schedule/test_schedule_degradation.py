"""Learned degradation cost: ground truth, ICNN fit, certificate, exact affine pieces and segments."""

import numpy as np
import pytest
import torch

from icctrl.errors import InvalidValueError
from icctrl.nn import build
from icctrl.schedule import DegradationTruth, affine_pieces, breakpoints, fit_degradation


def test_truth_is_convex_zero_and_minimal_at_zero():
    truth = DegradationTruth()
    p = np.linspace(-5, 5, 2001)
    r = truth(p)
    assert truth(0.0) == 0.0 and np.all(r >= 0)
    assert np.all(np.diff(r, 2) >= -1e-12)  # convex on the grid
    assert truth(-2.0) > truth(2.0)  # discharging ages more than charging at the same power
    with pytest.raises(InvalidValueError, match="b_charge"):
        DegradationTruth(b_charge=-0.1)


def test_fit_is_certified_close_and_anchored_at_zero(degradation):
    assert degradation.certificate.convex
    fit = degradation.fit
    assert fit["relative_max_error"] < 0.1, fit
    assert fit["hidden"] == 16 and fit["layers"] == 2 and fit["activation"] == "relu"
    assert abs(degradation(np.array([0.0]))[0]) < 1e-12
    for side in (1, -1):
        slopes, widths = degradation.segments(5.0, side)
        assert slopes[0] >= -1e-12 and np.all(np.diff(slopes) >= -1e-12)
        assert widths.sum() == pytest.approx(5.0, abs=1e-12)


def test_pieces_and_segments_reproduce_the_network_exactly(degradation):
    for lo, hi in ((-5.0, 5.0), (0.0, 5.0), (-5.0, 0.0), (-1.3, 2.7)):
        s, i = degradation.pieces(lo, hi)
        grid = np.linspace(lo, hi, 4001)
        net = degradation(grid)
        np.testing.assert_allclose(np.max(np.outer(grid, s) + i, axis=1), net, atol=1e-12)
        p, y = breakpoints(degradation.model, lo, hi)
        np.testing.assert_allclose(y, degradation(p), atol=1e-12)
    for side in (1, -1):
        slopes, widths = degradation.segments(5.0, side)
        q = np.linspace(0, 5, 1001)
        knots = np.concatenate([[0.0], np.cumsum(widths)])
        values = np.concatenate([[0.0], np.cumsum(slopes * widths)])
        np.testing.assert_allclose(np.interp(q, knots, values), degradation(side * q), atol=1e-12)


def test_pieces_refuse_models_that_are_not_piecewise_linear_scalar_icnns():
    torch.manual_seed(0)
    with pytest.raises(InvalidValueError, match="piecewise-linear"):
        affine_pieces(build("icnn", 1, 1, hidden=4, layers=2, activation="softplus").double(), -1, 1)
    with pytest.raises(InvalidValueError, match="scalar ICNN"):
        affine_pieces(build("icnn", 2, 1, hidden=4, layers=2).double(), -1, 1)
    with pytest.raises(InvalidValueError, match="scalar ICNN"):
        affine_pieces(build("lstm", 1, 1, hidden=4, layers=1).double(), -1, 1)
    with pytest.raises(InvalidValueError, match="lo < hi"):
        affine_pieces(build("icnn", 1, 1, hidden=4, layers=2).double(), 1, -1)


def test_fit_rejects_bad_ranges_and_step_counts():
    with pytest.raises(InvalidValueError, match="p_min < 0 < p_max"):
        fit_degradation(p_max=5.0, p_min=1.0)
    with pytest.raises(InvalidValueError, match="steps"):
        fit_degradation(steps=0)
