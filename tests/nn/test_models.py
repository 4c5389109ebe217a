"""The model zoo: shapes, configs, and weight constraints that hold after optimizer steps."""

import pytest
import torch

from icctrl.errors import InvalidValueError, ShapeError, UnknownNameError
from icctrl.nn import MODELS, Scaled, build, from_config

NAMES = sorted(set(MODELS) - {"linear"})  # the affine baseline has taps, not layers: test_nn_affine.py


@pytest.mark.parametrize("name", NAMES)
def test_window_in_window_out(name):
    m = build(name, n_in=3, n_out=2, hidden=8, layers=2)
    y = m(torch.randn(5, 7, 3))
    assert y.shape == (5, 7, 2)
    assert m(torch.randn(5, 3)).shape == (5, 2)  # one step without a time axis


@pytest.mark.parametrize("name", NAMES)
def test_wrong_shape_is_named(name):
    m = build(name, n_in=3, n_out=2, hidden=8, layers=1)
    with pytest.raises(ShapeError, match=r"\(batch, time, 3\).*\(5, 7, 4\)"):
        m(torch.randn(5, 7, 4))


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    m = build(name, n_in=3, n_out=2, hidden=8, layers=2)
    m2 = from_config(m.config)
    m2.load_state_dict(m.state_dict())
    x = torch.randn(2, 4, 3)
    torch.testing.assert_close(m(x), m2(x))


def test_unknown_name_and_bad_sizes():
    with pytest.raises(UnknownNameError, match="'gru'"):
        build("gru", 2, 1)
    with pytest.raises(InvalidValueError, match="n_in"):
        build("icnn", 0, 1)
    with pytest.raises(UnknownNameError, match="'swish'"):
        build("icnn", 2, 1, activation="swish")
    with pytest.raises(ShapeError, match=r"doubled indices \[5\]"):
        build("iclstm", 2, 1, doubled=[5])


def _train_hard(m, steps=30):
    opt = torch.optim.Adam(m.parameters(), lr=0.1)  # large steps push raw parameters far negative
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        opt.zero_grad()
        x = torch.randn(8, 4, m.n_in, generator=gen)
        target = 3 * torch.randn(8, 4, m.n_out, generator=gen)
        ((m(x) - target) ** 2).mean().backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 10.0)
        opt.step()
    assert all(torch.isfinite(p).all() for p in m.parameters())


@pytest.mark.parametrize("name", ["icnn", "picnn", "icrnn", "iclstm", "iclrnn"])
def test_nonnegativity_holds_after_optimizer_steps(name):
    torch.manual_seed(0)
    m = build(name, n_in=3, n_out=2, hidden=8, layers=2)
    _train_hard(m)
    constrained = [p for n, p in m.named_modules() if hasattr(p, "parametrizations")]
    assert constrained, "the model declares no constrained weights"
    for mod in constrained:
        for pname in mod.parametrizations:
            assert (getattr(mod, pname) >= 0).all(), f"{name}: negative entry in {pname}"


@pytest.mark.parametrize("name", ["iclrnn", "lrnn"])
def test_spectral_bound_holds_after_optimizer_steps(name):
    torch.manual_seed(0)
    m = build(name, n_in=3, n_out=2, hidden=8, layers=2)
    _train_hard(m)
    for mod in m.modules():
        if hasattr(mod, "parametrizations"):
            w = mod.weight.detach().double()
            assert torch.linalg.matrix_norm(w, ord=2) <= 1 + 1e-6
            if name == "iclrnn":
                assert (w >= 0).all()


def test_iclrnn_step_is_one_lipschitz_and_doubling_costs_sqrt2():
    m = build("iclrnn", n_in=3, n_out=1, hidden=16, layers=1)
    _train_hard(m)
    s = m.step_lipschitz()
    assert s["x_hat"] <= 1 + 1e-6 and s["h_prev"] <= 1 + 1e-6
    assert s["x"] == pytest.approx(s["x_hat"] * 2**0.5)


def test_doubling_feeds_minus_x():
    m = build("iclstm", n_in=3, n_out=1, hidden=4, layers=1, doubled=[1])
    x = torch.tensor([[[1.0, 2.0, 3.0]]])
    assert m.doubling(x).tolist() == [[[1.0, 2.0, 3.0, -2.0]]]


def test_scaled_model_works_in_physical_units():
    inner = build("icnn", 2, 1, hidden=8, layers=1)
    m = Scaled(inner, in_offset=[1.0, 400.0], in_scale=[0.5, 20.0], out_offset=[3.0], out_scale=[2.0])
    x = torch.tensor([[[1.5, 420.0]]])
    expected = inner(torch.tensor([[[1.0, 1.0]]])) * 2.0 + 3.0
    torch.testing.assert_close(m(x), expected)
    with pytest.raises(InvalidValueError, match="positive"):
        Scaled(inner, [0, 0], [1, -1], [0], [1])
