"""NTK: the closed forms against quadrature and exact values, the empirical kernel against the analytic one,
the two empirical methods against each other, and the GD predictions against the dynamics they solve."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from icctrl.analysis.ntk import NTKMLP, analytic_ntk, empirical_ntk, gd_predict, relu_step
from icctrl.errors import InvalidValueError, ShapeError, UnknownNameError
from icctrl.nn import build

X = np.random.default_rng(0).normal(size=(5, 3))


def _rng(seed):
    return np.random.default_rng(seed)


def _relu_moments_by_quadrature(k, q1, q2):
    """E[relu(u)relu(v)], E[1(u>0)1(v>0)] by 1-D quadrature over u, with v | u Gaussian in closed form."""
    s1 = math.sqrt(q1)
    m_of = lambda u: k / q1 * u  # noqa: E731
    s = math.sqrt(max(q2 - k * k / q1, 1e-300))
    phi = lambda u: stats.norm.pdf(u, scale=s1)  # noqa: E731
    ev = lambda u: m_of(u) * stats.norm.cdf(m_of(u) / s) + s * stats.norm.pdf(m_of(u) / s)  # noqa: E731
    kk = integrate.quad(lambda u: u * ev(u) * phi(u), 0, np.inf, epsabs=1e-13, epsrel=1e-11)[0]
    dk = integrate.quad(lambda u: stats.norm.cdf(m_of(u) / s) * phi(u), 0, np.inf, epsabs=1e-13, epsrel=1e-11)[0]
    return kk, dk


@pytest.mark.parametrize("k,q1,q2", [(0.3, 1.0, 2.0), (-0.9, 1.5, 0.7), (0.0, 1.0, 1.0), (1.39, 1.4, 1.4)])
def test_relu_step_matches_quadrature(k, q1, q2):
    kk, dk = relu_step(np.array(k), np.array(q1), np.array(q2))
    assert (float(kk), float(dk)) == pytest.approx(_relu_moments_by_quadrature(k, q1, q2), rel=1e-7, abs=1e-10)


def test_analytic_matches_neural_tangents_stax():
    # Values computed by neural-tangents 0.6.5 (stax, float64): tests/analysis/data/make_stax_reference.py
    ref = json.loads((Path(__file__).parent / "data" / "stax_reference.json").read_text())
    for c in ref["cases"]:
        nngp, ntk = analytic_ntk(ref["x1"], ref["x2"], c["depth"], c["w_std"], c["b_std"])
        assert nngp == pytest.approx(np.array(c["nngp"]), rel=1e-12, abs=1e-14)
        assert ntk == pytest.approx(np.array(c["ntk"]), rel=1e-12, abs=1e-14)
    nngp, _ = analytic_ntk(ref["x1"], ref["x2"], 2, 1.0, 0.0)
    assert not nngp == pytest.approx(np.array(ref["cases"][1]["nngp"]), rel=1e-3)  # the check can fail


def test_identical_points_have_exact_closed_form():
    # b = 0: each Dense multiplies by W², each ReLU halves (θ = 0 exactly), and Θ(x, x) = (L + 1)·K(x, x).
    for depth in (0, 1, 3):
        w = 1.7
        nngp, ntk = analytic_ntk(X, X.copy(), depth, w, 0.0)
        q0 = (X * X).sum(1) / X.shape[1]
        assert np.diag(nngp) == pytest.approx(w ** (2 * depth + 2) * q0 / 2**depth, rel=1e-14)
        assert np.diag(ntk) == pytest.approx((depth + 1) * np.diag(nngp), rel=1e-14)
    assert float(relu_step(np.array(2.0), np.array(2.0), np.array(2.0))[1]) == 0.5  # θ = 0, not ~1e-8
    a, b = analytic_ntk(X, None, 2, 1.3, 0.2), analytic_ntk(X, X.copy(), 2, 1.3, 0.2)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert np.allclose(a[1], a[1].T) and np.linalg.eigvalsh(a[1]).min() > 0


def test_wide_empirical_ntk_matches_analytic_and_not_a_wrong_one():
    _, ntk = analytic_ntk(X, None, 2, math.sqrt(2), 0.1)
    errs = [np.linalg.norm(empirical_ntk(NTKMLP(3, 2048, 2, math.sqrt(2), 0.1, seed=s, dtype=torch.float64), X)
                           - ntk) / np.linalg.norm(ntk) for s in range(3)]
    assert np.median(errs) < 0.08
    _, wrong = analytic_ntk(X, None, 2, math.sqrt(2), 1.0)  # other b_std: the check can fail
    e = empirical_ntk(NTKMLP(3, 2048, 2, math.sqrt(2), 0.1, seed=0, dtype=torch.float64), X)
    assert np.linalg.norm(e - wrong) / np.linalg.norm(wrong) > 0.3


def test_empirical_nngp_is_the_output_covariance_over_initialisations():
    nngp, _ = analytic_ntk(X[:3], None, 1, math.sqrt(2), 0.5)
    torch.manual_seed(0)
    with torch.no_grad():
        outs = torch.stack([NTKMLP(3, 256, 1, math.sqrt(2), 0.5, dtype=torch.float64)(torch.as_tensor(X[:3]))
                            .flatten() for _ in range(4000)]).numpy()
    assert outs.T @ outs / len(outs) == pytest.approx(nngp, rel=0.08, abs=0.04)


def test_width_convergence_slope_is_about_minus_half():
    x = _rng(1).normal(size=(4, 2))
    _, ntk = analytic_ntk(x, None, 1, math.sqrt(2), 0.1)
    widths = [128, 512, 2048, 8192]
    med = [np.median([np.linalg.norm(empirical_ntk(NTKMLP(2, w, 1, math.sqrt(2), 0.1, seed=s, dtype=torch.float64),
                                                   x) - ntk) / np.linalg.norm(ntk) for s in range(12)])
           for w in widths]
    slope = np.polyfit(np.log(widths), np.log(med), 1)[0]
    assert -0.75 < slope < -0.3


def test_methods_modes_and_batches_agree():
    m = NTKMLP(3, 32, 2, seed=1, n_out=3, dtype=torch.float64)
    full = empirical_ntk(m, X, mode="full")
    assert full.shape == (5, 5, 3, 3)
    assert np.abs(empirical_ntk(m, X, mode="full", method="ntvp") - full).max() < 1e-12
    assert np.abs(empirical_ntk(m, X, X[:2], mode="trace", batch_size=1)
                  - np.einsum("abii->ab", full)[:, :2]).max() < 1e-12
    assert np.abs(empirical_ntk(m, X, mode="diagonal", method="ntvp", batch_size=2)
                  - np.einsum("abii->abi", full)).max() < 1e-12
    # a memory budget below one Jacobian: one point per block, same kernel
    assert np.abs(empirical_ntk(m, X, mode="full", max_memory=1e3) - full).max() < 1e-12
    # against a hand-made Jacobian
    x = torch.as_tensor(X[:2])
    jac = []
    for i in range(2):
        m.zero_grad()
        m(x[i:i + 1])[0, 0].backward()
        jac.append(torch.cat([p.grad.flatten() for p in m.parameters()]))
    assert float(jac[0] @ jac[1]) == pytest.approx(full[0, 1, 0, 0], rel=1e-12)


def test_works_on_an_icctrl_model():
    model = build("icnn", n_in=3, n_out=2, hidden=8, layers=2)
    k = empirical_ntk(model, torch.randn(4, 3), dtype=torch.float64)
    assert k.shape == (4, 4) and np.allclose(k, k.T) and np.linalg.eigvalsh(k).min() > -1e-9


def test_float32_overflow_is_refused_and_float64_is_right():
    w = 1000.0  # Θ ~ W^14 ≈ 1e42: beyond float32
    m = NTKMLP(2, 512, 6, w, 0.0, seed=0)
    x = _rng(2).normal(size=(3, 2))
    with pytest.raises(InvalidValueError, match="float64"):
        empirical_ntk(m, x)
    e = empirical_ntk(m, x, dtype=torch.float64)
    _, ntk = analytic_ntk(x, None, 6, w, 0.0)
    assert np.isfinite(e).all() and np.linalg.norm(e - ntk) / np.linalg.norm(ntk) < 0.3


def test_gd_predict_solves_the_linearised_dynamics():
    _, K = analytic_ntk(X, None, 2, 1.4, 0.1)
    rng = _rng(3)
    _, Ks = analytic_ntk(rng.normal(size=(4, 3)), X, 2, 1.4, 0.1)
    y, f0, g0 = rng.normal(size=(5, 2)), rng.normal(size=(5, 2)), rng.normal(size=(4, 2))
    lr, n = 0.7, 5
    # steps=True: iterate the linear recursion f ← f − (η/n)Θ(f − y) by hand
    p = gd_predict(K, y, Ks, t=[0, 1, 7, 40], learning_rate=lr, f0_train=f0, f0_test=g0, steps=True)
    f, g, out = f0.copy(), g0.copy(), {}
    for s in range(41):
        out[s] = (f.copy(), g.copy())
        f, g = f - lr / n * K @ (f - y), g - lr / n * Ks @ (f - y)
    for i, s in enumerate([0, 1, 7, 40]):
        assert p.train[i] == pytest.approx(out[s][0], abs=1e-10)
        assert p.test[i] == pytest.approx(out[s][1], abs=1e-10)
    # gradient flow: matrix exponential; t = ∞ is kernel regression
    from scipy.linalg import expm
    q = gd_predict(K, y, Ks, t=[2.5, np.inf], learning_rate=lr, f0_train=f0, f0_test=g0)
    E = expm(-lr / n * K * 2.5)
    assert q.train[0] == pytest.approx(y + E @ (f0 - y), abs=1e-10)
    assert q.test[0] == pytest.approx(g0 + Ks @ np.linalg.solve(K, (np.eye(n) - E) @ (y - f0)), abs=1e-9)
    assert q.train[1] == pytest.approx(y, abs=1e-8)
    assert q.test[1] == pytest.approx(g0 + Ks @ np.linalg.solve(K, y - f0), abs=1e-8)


def test_wide_network_follows_the_ntk_prediction():
    x = torch.as_tensor(_rng(4).normal(size=(8, 2)))
    y = torch.sin(2 * x[:, :1]) + x[:, 1:] ** 2 / 2
    _, ntk = analytic_ntk(x.numpy(), None, 1, math.sqrt(2), 0.1)
    lr = len(x) / np.linalg.eigvalsh(ntk).max()  # η λ_max / n = 1: stable, fast
    errs = {}
    for width in (16, 8192):
        net = NTKMLP(2, width, 1, math.sqrt(2), 0.1, seed=0, dtype=torch.float64)
        K = empirical_ntk(net, x)
        with torch.no_grad():
            f0 = net(x).numpy()
        pred = gd_predict(K, y.numpy(), t=200, learning_rate=lr, f0_train=f0, steps=True).train[0]
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        for _ in range(200):
            opt.zero_grad()
            (0.5 * ((net(x) - y) ** 2).sum(1).mean()).backward()
            opt.step()
        with torch.no_grad():
            errs[width] = float(np.linalg.norm(net(x).numpy() - pred) / np.linalg.norm(pred))
    assert errs[8192] < 0.05 and errs[16] > 2 * errs[8192]


def test_bad_input_is_refused():
    with pytest.raises(InvalidValueError, match="depth"):
        analytic_ntk(X, X, -1, 1.0, 0.0)
    with pytest.raises(InvalidValueError, match="w_std"):
        analytic_ntk(X, X, 1, float("nan"), 0.0)
    with pytest.raises(ShapeError, match="features"):
        analytic_ntk(X, X[:, :2], 1, 1.0, 0.0)
    with pytest.raises(UnknownNameError, match="mode"):
        empirical_ntk(NTKMLP(3, 4), X, mode="sum")
    with pytest.raises(ShapeError):
        gd_predict(np.eye(3), np.ones(4))
    with pytest.raises(InvalidValueError, match="times"):
        gd_predict(np.eye(3), np.ones(3), t=-1.0)
