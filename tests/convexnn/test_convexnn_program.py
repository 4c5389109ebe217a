"""Convex ReLU training against enumeration, SGD on the same objective, and the robust upper bound."""

import numpy as np
import pytest
import torch

from icctrl.convexnn import (
    ConvexReLU,
    count_patterns,
    enumerate_patterns,
    pgd_attack,
    program_certificate,
    sample_patterns,
    sgd_objectives,
)
from icctrl.errors import InvalidValueError, ShapeError, UnknownNameError


def _data(n=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    return X, np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] ** 2


def test_enumeration_counts_every_region_and_contains_every_sample():
    X, _ = _data(12)
    Xa = np.c_[X, np.ones(12)]
    E = enumerate_patterns(Xa)
    assert len(E) == count_patterns(12, 3) - 1  # every region but the all-off one
    S = sample_patterns(Xa, 20000, seed=1)
    assert {r.tobytes() for r in S.astype(bool)} <= {r.tobytes() for r in E.astype(bool)}


@pytest.mark.parametrize("loss", ["squared", "hinge"])
def test_exact_optimum_beats_sgd_and_is_the_recovered_networks_objective(loss):
    X, y = _data()
    t = y if loss == "squared" else np.where(y > np.median(y), 1.0, -1.0)
    m = ConvexReLU(beta=1e-2, loss=loss).fit(X, t)
    assert np.isclose(m.nonconvex_objective(X, t), m.objective_, rtol=1e-4, atol=1e-6)
    sgd = sgd_objectives(X, t, beta=1e-2, loss=loss, width=16, runs=2, steps=500)
    assert m.objective_ <= min(sgd) + 1e-6
    net = m.to_torch()
    with torch.no_grad():
        f = net(torch.as_tensor(X)).squeeze(1).numpy()
    assert np.allclose(f, m.decision_function(X))


def test_sampled_patterns_reach_the_exact_optimum_from_above():
    X, y = _data()
    exact = ConvexReLU(beta=1e-2).fit(X, y).objective_
    few = ConvexReLU(beta=1e-2, n_patterns=3, seed=0).fit(X, y).objective_
    many = ConvexReLU(beta=1e-2, n_patterns=5000, seed=0).fit(X, y).objective_
    assert few >= exact - 1e-7 and few > exact * 1.01
    assert np.isclose(many, exact, rtol=1e-4)


def test_hinge_predicts_the_given_classes():
    X, y = _data(20)
    labels = np.where(y > np.median(y), "hi", "lo")
    m = ConvexReLU(beta=1e-3, loss="hinge", n_patterns="auto").fit(X, labels)
    assert set(m.predict(X)) <= {"hi", "lo"}
    assert (m.predict(X) == labels).mean() > 0.8


def test_robust_objective_bounds_the_attacked_loss_and_the_plain_one_does_not():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 2))
    t = np.where(X[:, 0] + 0.3 * X[:, 1] ** 2 > 0, 1.0, -1.0)
    eps, beta = 0.1, 1e-3
    out = {}
    for r_eps in (0.0, eps):
        m = ConvexReLU(beta=beta, loss="hinge", n_patterns=200, robust_eps=r_eps).fit(X, t)
        net = m.to_torch()
        Xt, tt = torch.as_tensor(X), torch.as_tensor(t)
        Xa = pgd_attack(net, Xt, tt, eps, steps=50)
        with torch.no_grad():
            attacked = float(torch.relu(1 - tt * net(Xa).squeeze(1)).sum())
            reg = 0.5 * beta * sum(float(p.pow(2).sum()) for p in net.parameters())
        out[r_eps] = (m.objective_, attacked + reg)
    assert out[eps][1] <= out[eps][0] * (1 + 1e-4) + 1e-6  # the robust counterpart is a true upper bound
    assert out[0.0][1] > out[0.0][0] * 1.05  # without it, the attack finds a larger loss than the optimum


@pytest.mark.parametrize("loss", ["squared", "hinge"])
@pytest.mark.parametrize("robust", [False, True])
def test_program_certificates_and_facts(loss, robust):
    assert program_certificate(loss, robust).convex
    X, y = _data()
    t = y if loss == "squared" else np.sign(y - np.median(y))
    facts = ConvexReLU(beta=1e-2, loss=loss, n_patterns=50, robust_eps=0.05 * robust).fit(X, t).facts()
    assert facts["program"]["convex"] and facts["cvxpy_is_dcp"]
    assert facts["network"]["convex_in_input"] is False  # output weights of both signs: not convex in x
    assert np.isfinite(facts["network"]["lipschitz_bound"])


def test_bad_input():
    X, y = _data()
    with pytest.raises(InvalidValueError, match="beta"):
        ConvexReLU(beta=0)
    with pytest.raises(UnknownNameError, match="loss"):
        ConvexReLU(loss="logistic")
    with pytest.raises(InvalidValueError, match="robust_eps"):
        ConvexReLU(robust_eps=-1)
    with pytest.raises(InvalidValueError, match="n_patterns"):
        ConvexReLU(n_patterns=0)
    with pytest.raises(ShapeError, match="samples"):
        ConvexReLU().fit(X, y[:5])
    with pytest.raises(InvalidValueError, match="two classes"):
        ConvexReLU(loss="hinge").fit(X, np.arange(len(X)))
    with pytest.raises(InvalidValueError, match="n_patterns='auto'"):
        ConvexReLU().fit(np.random.default_rng(0).standard_normal((200, 8)), np.zeros(200))
    with pytest.raises(InvalidValueError, match="not fitted"):
        ConvexReLU().predict(X)
    m = ConvexReLU(n_patterns=10).fit(X, y)
    with pytest.raises(ShapeError, match=r"\(samples, 2\)"):
        m.predict(np.zeros((3, 5)))
