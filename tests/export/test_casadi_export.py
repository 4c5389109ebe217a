"""CasADi export: parity with torch in float64, exact derivatives, any window length."""

import casadi as ca
import numpy as np
import pytest
import torch

from icctrl.errors import ShapeError, UnknownNameError
from icctrl.export import to_casadi
from icctrl.nn import MODELS, Scaled, build


def _model(name, **kw):
    torch.manual_seed(0)
    if name == "linear":  # random taps (a fresh one is zero until fitted)
        m = build(name, 3, 2, lags=3, **kw)
        torch.nn.init.normal_(m.weight)
        torch.nn.init.normal_(m.bias)
        return m.double()
    m = build(name, 3, 2, hidden=8, layers=2, **kw)
    if kw.get("affine"):
        torch.nn.init.normal_(m.affine.weight)
    return m.double()


@pytest.mark.parametrize("name", [*sorted(MODELS), "icrnn+affine", "icnn+affine"])
@pytest.mark.parametrize("activation", ["relu", "softplus"])
def test_parity_with_torch(name, activation):
    name, _, affine = name.partition("+")
    kw = {} if name in ("lstm", "linear") else {"activation": activation if name not in ("rnn", "lrnn") else "tanh"}
    if affine:
        kw["affine"] = 3
    m = _model(name, **kw)
    f = to_casadi(m, window=6)
    assert isinstance(f, ca.Function)
    rng = np.random.default_rng(1)
    for _ in range(3):
        X = 2 * rng.standard_normal((6, 3))
        expected = m(torch.as_tensor(X)[None])[0].detach().numpy()
        np.testing.assert_allclose(np.array(f(X)), expected, atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("name", ["iclstm", "lstm", "icrnn"])
def test_other_window_lengths_are_built_on_demand(name):
    m = _model(name)
    f = to_casadi(m, window=4)
    X = np.random.default_rng(0).standard_normal((9, 3))
    np.testing.assert_allclose(np.array(f(X)), m(torch.as_tensor(X)[None])[0].detach().numpy(), atol=1e-10)


def test_scaled_model_exports_its_scalers():
    m = Scaled(_model("iclrnn"), [1.0, 400.0, 0.0], [0.5, 20.0, 1.0], [2.0, 300.0], [0.1, 50.0]).double()
    X = np.array([[1.2, 410.0, 0.3]] * 5)
    np.testing.assert_allclose(np.array(to_casadi(m, 5)(X)), m(torch.as_tensor(X)[None])[0].detach().numpy(),
                               rtol=1e-10)


@pytest.mark.parametrize("name", ["iclstm", "lstm", "icnn"])
def test_exact_jacobian_matches_autograd(name):
    m = _model(name, **({"activation": "softplus"} if name != "lstm" else {}))
    f = to_casadi(m, window=3)
    X = ca.MX.sym("X", 3, 3)
    J = ca.Function("J", [X], [ca.jacobian(ca.vec(f(X)), ca.vec(X))])
    x0 = np.random.default_rng(2).standard_normal((3, 3))
    xt = torch.as_tensor(x0)

    jac = torch.autograd.functional.jacobian(lambda v: m(v[None])[0].T.reshape(-1), xt)  # (6, 3, 3)
    jac = jac.permute(0, 2, 1).reshape(6, 9).numpy()  # inputs in column-major order
    np.testing.assert_allclose(np.array(J(x0)), jac, atol=1e-9)


def test_bad_input():
    m = _model("icrnn")
    with pytest.raises(ShapeError, match=r"\(time, 3\)"):
        to_casadi(m, 2)(np.zeros((2, 5)))
    with pytest.raises(UnknownNameError):
        to_casadi(torch.nn.Linear(2, 2))
