"""Parametrisations of the non-negative weights (softplus, exp, projected): each is certified from the values
that run, and a weight that went negative is refused by the certificate and by the Jensen check."""

import pytest
import torch

from icctrl.convexity import certify, jensen_check
from icctrl.errors import InvalidValueError, UnknownNameError
from icctrl.nn import WEIGHTS, build, from_config, project_

JOINT = ["icnn", "icrnn", "iclrnn"]


def _window(n):
    return torch.randn(n, 4, 3, dtype=torch.float64) * 2


def _jensen(m):
    m = m.double()
    return jensen_check(lambda x: m(x).reshape(len(x), -1), _window, 400, tol=1e-9)


def _steps(m, steps=30, project=True):
    """Large Adam steps that push weights negative; `project` applies the trainer's projection after each."""
    opt = torch.optim.Adam(m.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        opt.zero_grad()
        x = torch.randn(8, 4, m.n_in, generator=gen)
        ((m(x) - 3 * torch.randn(8, 4, m.n_out, generator=gen)) ** 2).mean().backward()
        opt.step()
        if project:
            project_(m)


def _projected_weights(m):
    return [(mod, name) for mod in m.modules() for name in getattr(mod, "_projected", {})]


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("name", JOINT)
def test_every_parametrisation_is_certified_and_passes_jensen_after_training(name, weights):
    torch.manual_seed(0)
    m = build(name, 3, 2, hidden=8, layers=2, weights=weights, affine=3)
    _steps(m)
    assert certify(m, window=4).convex
    assert _jensen(m).passed


@pytest.mark.parametrize("weights", WEIGHTS)
def test_iclstm_parametrisations_stay_per_step_convex(weights):
    torch.manual_seed(0)
    m = build("iclstm", 3, 2, hidden=6, layers=1, weights=weights)
    _steps(m)
    assert certify(m, per_step=True).convex
    assert not certify(m, window=3).convex


@pytest.mark.parametrize("name", JOINT + ["iclstm"])
def test_projection_keeps_weights_non_negative_and_iclrnn_contractive(name):
    torch.manual_seed(0)
    m = build(name, 3, 2, hidden=8, layers=2, weights="projected")
    assert _projected_weights(m), "no projected weights declared"
    _steps(m)
    for mod, pname in _projected_weights(m):
        w = getattr(mod, pname).detach().double()
        assert (w >= 0).all()
        if name == "iclrnn":
            assert torch.linalg.matrix_norm(w, ord=2) <= 1 + 1e-6


@pytest.mark.parametrize("name", JOINT)
def test_a_negative_weight_is_refused_by_the_certificate_and_fails_jensen(name):
    torch.manual_seed(0)
    m = build(name, 3, 2, hidden=8, layers=2, weights="projected")
    _steps(m, project=False)  # an unprojected loop: nothing enforces W >= 0 now
    readout = m.hidden_w[-1] if name == "icnn" else m.w_out
    with torch.no_grad():
        readout.weight.copy_(-readout.weight.abs() - 0.5)  # a negative read-out of convex hidden units
    cert = certify(m, window=4)
    assert not cert.convex and cert.reasons
    assert not _jensen(m).passed
    project_(m)
    assert certify(m, window=4).convex


def test_exp_weights_are_positive_and_round_trip_through_a_checkpoint_config():
    torch.manual_seed(0)
    for weights in ("exp", "projected"):
        m = build("icrnn", 3, 2, hidden=8, layers=1, weights=weights, affine=2)
        assert m.config["weights"] == weights
        m2 = from_config(m.config)
        m2.load_state_dict(m.state_dict())
        x = torch.randn(2, 4, 3)
        torch.testing.assert_close(m(x), m2(x))
    m = build("icnn", 3, 1, hidden=8, layers=2, weights="exp")
    assert all((mod.weight > 0).all() for mod in m.hidden_w)


def test_bad_parametrisations_are_named():
    with pytest.raises(UnknownNameError, match="'relu'"):
        build("icrnn", 3, 2, weights="relu")
    with pytest.raises(InvalidValueError, match="weights='exp'"):
        build("rnn", 3, 2, weights="exp")
