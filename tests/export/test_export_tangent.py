"""Forward-mode tangents read from the graph: values and Jacobians equal CasADi's AD of the exported period on
every zoo model kind, partial Jacobians equal the full ones, and an op without a tangent form is refused."""

import casadi as ca
import numpy as np
import pytest
import torch

import icctrl
from icctrl.errors import ShapeError, UnknownNameError
from icctrl.export import PeriodTangents
from icctrl.mpc import OneStepModel
from icctrl.nn import build


def _points(n_in, B=6, seed=0):
    return np.random.default_rng(seed).normal(0, 1, (B, n_in))


def _casadi_reference(model, window, XU):
    period = OneStepModel(model, model.n_out, model.n_in - model.n_out, window=window).step_function()
    x, u = ca.MX.sym("x", model.n_out), ca.MX.sym("u", model.n_in - model.n_out)
    y = period(x, u)
    f = ca.Function("f", [x, u], [y, ca.jacobian(y, ca.vertcat(x, u))])
    out = [f(r[: model.n_out], r[model.n_out:]) for r in XU]
    return np.array([np.array(a).ravel() for a, _ in out]), np.array([np.array(b) for _, b in out])


ZOO = [("icnn", {}), ("icrnn", {}), ("iclrnn", {}), ("iclstm", {}), ("iclstm", {"activation": "softplus"}),
       ("icrnn", {"activation": "softplus"}), ("lrnn", {}), ("rnn", {}), ("lstm", {}), ("linear", {})]


@pytest.mark.parametrize("name,kw", ZOO, ids=[f"{n}-{kw.get('activation', 'default')}" for n, kw in ZOO])
def test_tangents_equal_casadi_ad_on_every_zoo_kind(name, kw):
    torch.manual_seed(0)
    extra = {} if name == "linear" else {"hidden": 8, "layers": 2}
    model = build(name, 4, 2, **extra, **kw).double().eval()
    with torch.no_grad():  # off the initialisation (a fresh linear model is zero)
        for t in model.parameters():
            t.add_(0.3 * torch.randn_like(t))
    window = 3
    XU = _points(4)
    Y, J = PeriodTangents(model, window)(XU)
    Yr, Jr = _casadi_reference(model, window, XU)
    np.testing.assert_allclose(Y, Yr, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(J, Jr, rtol=1e-9, atol=1e-12)
    assert np.abs(J).max() > 0


def test_shipped_iclstm_and_partial_jacobians():
    model = icctrl.load_default("cstr", "iclstm").double().eval()
    XU = np.column_stack([[0.5, 400.0] + _points(2, 5) * [0.3, 10.0],
                          [5.0, 0.0] + _points(2, 5, 1) * [1.0, 1e4]])
    f = PeriodTangents(model, 5)
    Y, J = f(XU)
    Yr, Jr = _casadi_reference(model, 5, XU)
    np.testing.assert_allclose(Y, Yr, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(J, Jr, rtol=1e-9, atol=1e-12)
    Y2, J2 = f(XU, m=2)
    np.testing.assert_allclose(Y2, Y, rtol=1e-12)
    np.testing.assert_allclose(J2, J[:2], rtol=1e-12)
    Y0, J0 = f(XU, m=0)
    np.testing.assert_allclose(Y0, Y, rtol=1e-12)
    assert J0.shape == (0, 2, 4)


@pytest.mark.parametrize("name", ["iclstm", "lstm", "iclrnn", "linear"])
def test_forward_differences_match_the_exact_tangents(name):
    """The value-plan differences of the shipped models agree with forward mode to 1e-6 of the Jacobian's scale
    (inputs scaled by x_scale / u_half as the RTI does), and a step below √ε visibly loses accuracy."""
    model = icctrl.load_default("cstr", name).double().eval()
    f = PeriodTangents(model, 5)
    XU = np.column_stack([[0.5, 400.0] + _points(2, 6) * [0.3, 10.0], [3.5, 0.0] + _points(2, 6, 1) * [1.0, 2e5]])
    scale = np.array([1.0, 50.0, 3.5, 5e5])
    Y, J = f(XU, m=3)
    Yd, Jd = f.differences(XU, 3, 1e-6 * scale)
    np.testing.assert_array_equal(Yd, Y)  # values: the same plan rows, exactly
    err = np.abs((Jd - J) * scale).max() / np.abs(J * scale).max()
    assert err < 1e-6, err
    _, Jbad = f.differences(XU, 3, 1e-13 * scale)  # rounding dominates: the check can fail
    assert np.abs((Jbad - J) * scale).max() / np.abs(J * scale).max() > 1e-4
    with pytest.raises(ShapeError, match="step"):
        f.differences(XU, 3, [1e-6, 1e-6])
    with pytest.raises(ShapeError, match="m"):
        f.differences(XU, 7, 1e-6 * scale)


def test_bad_inputs_and_unknown_ops_are_refused():
    torch.manual_seed(0)
    f = PeriodTangents(build("icrnn", 4, 2, hidden=4, layers=1).double(), 2)
    with pytest.raises(ShapeError, match="4 inputs"):
        f(np.zeros((3, 5)))
    with pytest.raises(ShapeError, match="m"):
        f(np.zeros((3, 4)), m=4)

    class Sine(torch.nn.Module):  # no tangent form for aten.sin
        n_in, n_out = 2, 1

        def forward_window(self, x):
            return torch.sin(x).sum(-1, keepdim=True)

        forward = forward_window

    with pytest.raises(UnknownNameError, match="sin"):
        PeriodTangents(Sine(), 1)
