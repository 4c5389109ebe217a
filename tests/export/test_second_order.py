"""Second-order reading: outputs, Jacobian in the seeded entries and weighted Hessian equal CasADi's AD of the exported
function, on every model family (products of input-dependent values, recurrences, maxima, scalers)."""

import casadi as ca
import numpy as np
import pytest
import torch

from icctrl.errors import UnknownNameError
from icctrl.export import second_order, to_casadi
from icctrl.nn import MODELS, Scaled, build


def _model(name, **kw):
    torch.manual_seed(0)
    if name == "linear":
        m = build(name, 3, 2, lags=3)
        torch.nn.init.normal_(m.weight)
        torch.nn.init.normal_(m.bias)
        return m.double()
    return build(name, 3, 2, hidden=8, layers=2, **kw).double()


def _reference(model, window, seeds):
    """(y, A, H) by CasADi's AD of the exported function, the seeded entries as their own symbols."""
    F = to_casadi(model, window=window)
    s = ca.MX.sym("s", len(seeds))
    rest = ca.MX.sym("X", window, model.n_in)
    X = ca.MX(rest)
    for k, (t, c) in enumerate(seeds):
        X[t, c] = s[k]
    y = ca.vec(F(X).T)
    mu = ca.MX.sym("mu", y.shape[0])
    return ca.Function("ref", [rest, s, mu], [y, ca.jacobian(y, s), ca.hessian(ca.dot(mu, y), s)[0]])


def _compare(model, window, seeds, activation_scale=2.0):
    so = second_order(model, window, seeds)
    ref = _reference(model, window, seeds)
    rng = np.random.default_rng(3)
    for _ in range(3):
        X = activation_scale * rng.standard_normal((window, model.n_in))
        s = np.array([X[t, c] for t, c in seeds])
        mu = rng.standard_normal(window * model.n_out)
        got, want = so(X, mu), ref(X, s, mu)
        for a, b, what in zip(got, want, ("outputs", "Jacobian", "Hessian")):
            a, b = np.array(ca.densify(a)), np.array(ca.densify(b))
            np.testing.assert_allclose(a, b, atol=1e-9 * max(1.0, np.abs(b).max()), err_msg=what)
    return so


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_family_matches_casadi_ad_over_a_window(name):
    kw = {} if name in ("lstm", "linear") else {"activation": "tanh" if name in ("rnn", "lrnn") else "softplus"}
    m = _model(name, **kw)
    seeds = [(t, c) for t in range(4) for c in (1, 2)]  # inputs of every step but not the first column
    _compare(m, 4, seeds)


def test_a_flat_picnn_cost_matches_with_context_inputs_left_unseeded():
    torch.manual_seed(1)
    m = build("picnn", 6, 3, hidden=16, layers=2, activation="softplus", convex_inputs=[2, 3, 4, 5]).double()
    _compare(m, 1, [(0, c) for c in range(2, 6)])


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "celu"])
def test_piecewise_and_other_activations_match(activation):
    _compare(_model("icnn", activation=activation), 2, [(0, 0), (1, 0), (1, 2)])


def test_scaled_models_match():
    m = Scaled(_model("iclstm"), [1.0, 400.0, 0.0], [0.5, 20.0, 1.0], [2.0, 300.0], [0.1, 50.0]).double()
    _compare(m, 3, [(t, 2) for t in range(3)], activation_scale=0.5)


def test_the_hessian_term_of_products_is_needed(monkeypatch):
    """The LSTM's f ⊙ c products carry second derivatives of their own: without them the Hessian is wrong, so the
    comparisons above can fail."""
    import icctrl.export._second_order as S

    m = _model("lstm")
    seeds = [(t, 1) for t in range(3)]
    X = np.random.default_rng(0).standard_normal((3, 3))
    mu = np.ones(6)
    ref = np.array(_reference(m, 3, seeds)(X, np.array([X[t, c] for t, c in seeds]), mu)[2])
    np.testing.assert_allclose(np.array(second_order(m, 3, seeds)(X, mu)[2]), ref, atol=1e-9)
    original = S.SecondOrderDomain.mul

    def mul_without_term(self, a, b, node):
        out = original(self, a, b, node)
        self.terms = [t for t in self.terms if t[0] != "pq"]
        return out

    monkeypatch.setattr(S.SecondOrderDomain, "mul", mul_without_term)
    assert np.abs(np.array(second_order(m, 3, seeds)(X, mu)[2]) - ref).max() > 1e-3


def test_a_module_without_a_casadi_form_is_refused():
    class Odd(torch.nn.Module):
        n_in, n_out = 2, 1

        def forward_window(self, x):
            return torch.erf(x).sum(-1, keepdim=True)

        forward = forward_window

    with pytest.raises(UnknownNameError):
        second_order(Odd().double(), 1, [(0, 0)])
