"""cvxpy epigraph export: exact at the optimum for nondecreasing objectives; refused for non-convex models."""

import cvxpy as cp
import numpy as np
import pytest
import torch

from icctrl.errors import NotConvexError, ShapeError
from icctrl.export import to_casadi, to_cvxpy
from icctrl.nn import Scaled, build


def _model(name, **kw):
    torch.manual_seed(0)
    name, _, affine = name.partition("+")
    if name == "linear":
        m = build(name, 2, 1, lags=3, **kw)
    else:
        m = build(name, 2, 1, hidden=8, layers=2, affine=3 if affine else None, **kw)
    lin = m if name == "linear" else getattr(m, "affine", None)
    if lin is not None:  # random taps: a fresh affine path is zero until fitted
        with torch.no_grad():
            lin.weight.normal_()
            lin.bias.normal_()
    return m.double()


@pytest.mark.parametrize("name", ["icnn", "icrnn", "iclrnn", "linear", "icnn+affine", "iclrnn+affine"])
def test_epigraph_is_exact_at_the_optimum(name):
    m = _model(name)
    X = cp.Variable((4, 2))
    ep = to_cvxpy(m, X)
    prob = cp.Problem(cp.Minimize(cp.sum(ep.outputs) + 0.1 * cp.sum_squares(X)), ep.constraints + [cp.abs(X) <= 2])
    prob.solve(solver="CLARABEL")
    assert prob.status == "optimal"
    network = m(torch.as_tensor(X.value)[None])[0].detach().numpy()
    np.testing.assert_allclose(ep.outputs.value, network, atol=1e-6)
    assert ep.tightness() < 1e-6
    # and the optimum agrees with a direct minimisation of the network over a grid of random points
    rng = np.random.default_rng(0)
    cand = rng.uniform(-2, 2, (4000, 4, 2))
    vals = m(torch.as_tensor(cand))[..., 0].sum(1).detach().numpy() + 0.1 * (cand**2).sum((1, 2))
    assert prob.value <= vals.min() + 1e-7


def test_softplus_epigraph_and_scaled_model():
    inner = _model("icrnn", activation="softplus")
    m = Scaled(inner, [0.5, -1.0], [2.0, 0.5], [3.0], [4.0]).double()
    X = cp.Variable((3, 2))
    ep = to_cvxpy(m, X)
    prob = cp.Problem(cp.Minimize(cp.sum(ep.outputs)), ep.constraints + [cp.abs(X) <= 1])
    prob.solve(solver="CLARABEL")
    f = np.array(to_casadi(m, 3)(X.value))
    np.testing.assert_allclose(ep.outputs.value, f, atol=1e-5)


def test_objectives_not_nondecreasing_in_the_outputs_are_refused():
    m = _model("icnn")
    X = cp.Variable((1, 2))
    ep = to_cvxpy(m, X)
    for obj in (cp.Maximize(cp.sum(ep.outputs)), cp.Minimize(cp.sum_squares(ep.outputs - 5))):
        with pytest.raises(cp.error.DCPError):
            cp.Problem(obj, ep.constraints + [cp.abs(X) <= 1]).solve(solver="CLARABEL")


@pytest.mark.parametrize("activation", ["elu", "celu"])
def test_exponential_cone_epigraph_is_exact_and_guarded(activation):
    m = _model("icrnn", activation=activation)
    X = cp.Variable((3, 2))
    ep = to_cvxpy(m, X)
    assert ep.aux  # ELU/CELU have no DCP atom: an auxiliary per unit with an exponential-cone epigraph
    prob = ep.problem(cp.Minimize(cp.sum(ep.outputs) + 0.1 * cp.sum_squares(X)), [cp.abs(X) <= 1])
    prob.solve(solver="CLARABEL")
    assert prob.status == "optimal" and ep.gap() < 1e-5
    with pytest.raises(NotConvexError, match="objective"):
        ep.problem(cp.Minimize(cp.sum_squares(ep.outputs - 5)))
    with pytest.raises(NotConvexError, match="objective"):
        ep.problem(cp.Maximize(cp.sum(ep.outputs)))


def test_non_convex_models_are_refused_with_the_layer_named():
    with pytest.raises(NotConvexError, match="different arguments"):
        to_cvxpy(_model("iclstm"), cp.Variable((3, 2)))
    with pytest.raises(NotConvexError, match="tanh"):
        to_cvxpy(_model("rnn"), cp.Variable((3, 2)))
    with pytest.raises(ShapeError, match="expected \\(2,\\)"):
        to_cvxpy(_model("icnn"), cp.Variable((3, 5)))
