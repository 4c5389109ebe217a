"""Certified Lipschitz bounds are sound (never below the empirical estimate) and grow as documented."""

import math

import pytest
import torch
from torch import nn

from icctrl.convexity import lipschitz_bound, lipschitz_estimate
from icctrl.nn import build


def _sampler(T, n_in):
    return lambda n, g: torch.randn(n, T, n_in, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("name", ["icnn", "icrnn", "iclrnn", "lrnn", "rnn", "linear", "icrnn+affine"])
@pytest.mark.parametrize("window", [1, 4])
def test_bound_is_never_below_the_estimate(name, window):
    torch.manual_seed(0)
    name, _, affine = name.partition("+")
    if name == "linear":
        m = build(name, 3, 2, lags=3)
    else:
        m = build(name, 3, 2, hidden=8, layers=2, affine=3 if affine else None)
    lin = m if name == "linear" else getattr(m, "affine", None)
    if lin is not None:
        nn.init.normal_(lin.weight)
    m = m.double()
    bound = lipschitz_bound(m, window)
    est = lipschitz_estimate(m, _sampler(window, 3), 128, ascent_steps=10).worst
    assert math.isfinite(bound)
    assert est <= bound * (1 + 1e-9), f"{name}: estimate {est} above bound {bound}"


def test_iclrnn_bound_grows_with_the_window_and_carries_sqrt2():
    torch.manual_seed(0)
    m = build("iclrnn", 3, 1, hidden=8, layers=1).double()
    b1, b8 = lipschitz_bound(m, 1), lipschitz_bound(m, 8)
    assert b8 > b1
    assert b1 <= math.sqrt(2) + 1e-9  # one step: ‖V‖ ≤ 1, ‖W‖ ≤ 1, relu 1-Lipschitz, doubling √2
    assert b8 <= 8 * math.sqrt(2) + 1e-9  # at most linear growth in the window


def test_gated_and_unknown_models_have_no_finite_bound():
    assert lipschitz_bound(build("iclstm", 2, 1, hidden=4, layers=1)) == math.inf
    assert lipschitz_bound(build("lstm", 2, 1, hidden=4, layers=1)) == math.inf
    assert lipschitz_bound(nn.Sequential(nn.Linear(2, 3), nn.GELU())) == math.inf


def test_sequential_bound_is_product_of_spectral_norms():
    torch.manual_seed(0)
    a, b = nn.Linear(3, 5), nn.Linear(5, 2)
    m = nn.Sequential(a, nn.ReLU(), b)
    expected = float(torch.linalg.matrix_norm(a.weight.detach(), 2) * torch.linalg.matrix_norm(b.weight.detach(), 2))
    assert lipschitz_bound(m) == pytest.approx(expected)
