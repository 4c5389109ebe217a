"""A certified-convex path asked for something the core cannot certify is refused with NotConvexError naming
the failing layer and rule; random convex models are accepted and their epigraph is exact."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import icctrl
from icctrl.convexity import certify
from icctrl.errors import NotConvexError
from icctrl.export import to_cvxpy
from icctrl.mpc._defaults import default_controller
from icctrl.nn import build

SOME = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("solver", ["clarabel", "osqp", "ecos"])
def test_cvxpy_solvers_on_the_iclstm_problem_name_the_failing_layer(solver):
    with pytest.raises(NotConvexError) as err:
        default_controller("cstr", "iclstm", solver=solver, horizon=3)
    msg = str(err.value)
    assert "_iclstm.py" in msg and "c = f * c + i * g" in msg and "horizon step 1" in msg


@pytest.mark.parametrize("model, needle", [
    ("lstm", "tanh (neither convex nor concave)"),
    ("iclrnn", "horizon step 2: Scaled at _recurrent.py"),
    ("first_principles", "first-principles dynamics: no convexity rule"),
])
def test_other_uncertified_problems_are_refused_with_the_rule_that_fails(model, needle):
    with pytest.raises(NotConvexError, match="certified convex") as err:
        default_controller("cstr", model, solver="clarabel", horizon=3)
    assert needle in str(err.value)


def test_epigraph_export_of_the_shipped_iclstm_is_refused():
    m = icctrl.load_default("cstr", "iclstm")
    with pytest.raises(NotConvexError, match=r"_iclstm.py:\d+ `c = f \* c \+ i \* g`"):
        to_cvxpy(m, [cp.Variable(4) for _ in range(3)])


@SOME
@given(kind=st.sampled_from(["lstm", "rnn", "iclstm"]), hidden=st.integers(2, 6), window=st.integers(2, 4),
       seed=st.integers(0, 10_000))
def test_random_non_convex_models_are_refused_naming_a_layer(kind, hidden, window, seed):
    torch.manual_seed(seed)
    model = build(kind, 3, 1, hidden=hidden, layers=1)
    cert = certify(model, window=window)
    assert not cert.convex and cert.reasons
    with pytest.raises(NotConvexError) as err:
        to_cvxpy(model, [cp.Variable(3) for _ in range(window)])
    assert " at " in str(err.value) and cert.reasons[0] in str(err.value)


@SOME
@given(kind=st.sampled_from(["icnn", "icrnn", "iclrnn"]), hidden=st.integers(2, 6), layers=st.integers(1, 2),
       window=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_random_convex_models_are_accepted_and_their_epigraph_is_exact(kind, hidden, layers, window, seed):
    torch.manual_seed(seed)
    model = build(kind, 3, 2, hidden=hidden, layers=layers).double()
    assert certify(model, window=window).convex
    X = np.random.default_rng(seed).uniform(-1, 1, (window, 3))
    ep = to_cvxpy(model, [cp.Constant(x) for x in X])
    prob = cp.Problem(cp.Minimize(cp.sum(ep.outputs)), ep.constraints)
    prob.solve(solver="CLARABEL")
    assert prob.status == "optimal"
    with torch.no_grad():
        y = model(torch.as_tensor(X)[None])[0].numpy()
    # exact at the optimum: outputs equal the network's (auxiliaries unused downstream may stay loose)
    np.testing.assert_allclose(ep.outputs.value, y, rtol=1e-5, atol=1e-6)
