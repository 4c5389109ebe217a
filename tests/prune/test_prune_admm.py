"""Net-Trim's ADMM against the cvxpy reference, the sparse-recovery claim, and bad input."""

import numpy as np
import pytest
import torch

from icctrl.errors import InvalidValueError, ShapeError
from icctrl.prune import layer_program_certificate, net_trim_layer, net_trim_layer_cvxpy, solve_layer


def _layer(P=120, n=20, m=6, relu=True, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((P, n))
    Y = X @ rng.standard_normal((n, m))
    return X, (np.maximum(Y, 0) if relu else Y)


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("eps", [0.02, 0.1])
def test_admm_matches_cvxpy(relu, eps):
    X, Y = _layer(relu=relu)
    r = solve_layer(X, Y, epsilon=eps, relu=relu)
    W_ref, obj = net_trim_layer_cvxpy(X, Y, epsilon=eps, relu=relu)
    assert r.converged
    assert abs(float(r.W.abs().sum()) - obj) <= 1e-3 * obj
    assert r.discrepancy <= eps * (1 + 1e-3)
    assert r.violation <= 1e-3 * Y.max()
    assert r.nonzeros < X.shape[1] * Y.shape[1]  # the l1 program does prune


def test_admm_matches_cvxpy_with_cascade_bound():
    X, Y = _layer(seed=1)
    rng = np.random.default_rng(2)
    V = X @ rng.standard_normal((X.shape[1], Y.shape[1])) * 0.3  # a non-zero bound on the inactive set
    V = np.where(Y > 0, 0.0, np.abs(V))
    r = solve_layer(X, Y, epsilon=0.05, V=V)
    _, obj = net_trim_layer_cvxpy(X, Y, epsilon=0.05, V=V)
    assert abs(float(r.W.abs().sum()) - obj) <= 1e-3 * obj
    assert r.violation <= 1e-3 * Y.max()


def test_sparse_recovery_of_a_planted_unit():
    """With P ≫ s log(N/s) samples the planted sparse unit is recovered; with P < s it cannot be."""
    rng = np.random.default_rng(0)
    N, s = 40, 3
    w = np.zeros((N, 1))
    w[rng.choice(N, s, replace=False), 0] = [1.0, -0.7, 0.5]
    errs = {}
    for P in (4, 60):
        X = rng.standard_normal((P, N))
        W = net_trim_layer(X, np.maximum(X @ w, 0), epsilon=1e-6).numpy()
        errs[P] = np.linalg.norm(W - w) / np.linalg.norm(w)
    assert errs[60] < 1e-2
    assert errs[4] > 0.1


def test_free_rows_are_not_shrunk():
    X, Y = _layer(relu=False)
    Xa = np.c_[X, np.ones(len(X))]
    Ya = Y + 5.0  # a large offset that the bias row should carry unshrunk
    r = solve_layer(Xa, Ya, epsilon=0.05, relu=False, free_rows=1)
    assert np.allclose(r.W[-1].numpy(), 5.0, atol=0.5)


def test_program_is_certified_convex():
    for relu in (True, False):
        c = layer_program_certificate(relu)
        assert c.convex and not c.reasons


def test_bad_input():
    X, Y = _layer()
    with pytest.raises(InvalidValueError, match="epsilon"):
        net_trim_layer(X, Y, epsilon=-0.1)
    with pytest.raises(ShapeError, match="samples"):
        net_trim_layer(X[:10], Y, epsilon=0.1)
    with pytest.raises(InvalidValueError, match="Y >= 0"):
        net_trim_layer(X, Y - 1.0, epsilon=0.1)
    with pytest.raises(InvalidValueError, match="NaN"):
        net_trim_layer(np.full_like(X, np.nan), Y, epsilon=0.1)
    with pytest.raises(ShapeError, match="V must"):
        net_trim_layer(X, Y, epsilon=0.1, V=np.zeros((3, 3)))
    with pytest.raises(InvalidValueError, match="relax"):
        net_trim_layer(X, Y, epsilon=0.1, relax=2.5)
    assert isinstance(net_trim_layer(torch.as_tensor(X), Y, epsilon=0.1), torch.Tensor)


def test_penalty_ratio_default_on_an_ill_conditioned_signal():
    """A hidden-layer-like signal (singular values over four decades): the default ratio meets the cvxpy optimum
    within the iteration budget that the plain c = 1 splitting does not."""
    rng = np.random.default_rng(3)
    P, n, m = 200, 30, 5
    U, _ = np.linalg.qr(rng.standard_normal((P, n)))
    Vt, _ = np.linalg.qr(rng.standard_normal((n, n)))
    X = U @ np.diag(np.logspace(0, -4, n)) @ Vt * 10
    Y = np.maximum(X @ rng.standard_normal((n, m)), 0)
    _, obj = net_trim_layer_cvxpy(X, Y, epsilon=0.05)
    fast = solve_layer(X, Y, epsilon=0.05, max_iter=1500, tol=1e-4)
    plain = solve_layer(X, Y, epsilon=0.05, max_iter=1500, tol=1e-4, penalty_ratio=1.0)
    assert fast.converged and abs(float(fast.W.abs().sum()) - obj) <= 1e-3 * obj
    assert not plain.converged
    with pytest.raises(InvalidValueError, match="penalty_ratio"):
        solve_layer(X, Y, epsilon=0.05, penalty_ratio=0.0)
