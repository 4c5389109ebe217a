"""Metrics, Gaussian pairs, Sinkhorn and the Monge gap: values at known points and clear errors."""

import numpy as np
import ot
import pytest
import torch

import icctrl.ot as O
from icctrl.errors import InvalidValueError, ShapeError


def _sqrtm(a):
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(w)) @ v.T


def test_l2_uvp_and_cosine_of_the_true_map():
    g = O.gaussian_pair(3, seed=4)
    x = g.sample(2000, seed=1)
    y = g.true_map(x)
    assert O.l2_uvp(y, y, y) == 0.0
    assert O.cosine(x, y, y) == pytest.approx(1.0)
    # the constant map at the target mean scores 100 % by definition of L2-UVP
    const = np.broadcast_to(y.mean(0), y.shape)
    assert O.l2_uvp(const, y, y) == pytest.approx(100.0 * y.var(0).sum() / y.var(0).sum())


def test_metrics_reject_bad_input():
    a = np.zeros((5, 2))
    with pytest.raises(ShapeError, match="dimension 3"):
        O.l2_uvp(a, np.zeros((5, 3)), np.zeros((5, 3)))
    with pytest.raises(ShapeError, match="same shape"):
        O.l2_uvp(a, np.ones((4, 2)), np.random.rand(4, 2))
    bad = np.ones((5, 2))
    bad[2, 1] = np.nan
    with pytest.raises(InvalidValueError, match="row 2"):
        O.cosine(a, bad, a + 1)
    with pytest.raises(InvalidValueError, match="identical"):
        O.l2_uvp(a, a, a)


def test_gaussian_map_matches_closed_form_and_pushes_forward():
    g = O.gaussian_pair(4, seed=7)
    sp = _sqrtm(g.cov_p)
    isp = np.linalg.inv(sp)
    a = isp @ _sqrtm(sp @ g.cov_q @ sp) @ isp
    np.testing.assert_allclose(g.A, a, atol=1e-8)
    np.testing.assert_allclose(g.A @ g.cov_p @ g.A, g.cov_q, atol=1e-8)
    x = g.sample(10, seed=0)
    assert x.dtype == np.float32
    y = g.true_map(x)
    assert isinstance(y, np.ndarray) and y.shape == x.shape and y.dtype == np.float32
    yt = g.true_map(torch.from_numpy(x))
    assert isinstance(yt, torch.Tensor) and yt.dtype == torch.float32
    np.testing.assert_allclose(g.true_inverse(y), x, atol=1e-4)
    # W2² of the pair equals E‖X − T*(X)‖²
    xs = g.sample(200_000, seed=3).astype(np.float64)
    assert ((xs - g.true_map(xs)) ** 2).sum(1).mean() == pytest.approx(g.w2_squared(), rel=0.02)


def test_sinkhorn_matches_pot_log_domain():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((120, 2)), rng.standard_normal((100, 2)) * 1.5 + 1
    C = 0.5 * ot.dist(x, y)
    eps = 0.02 * C.mean()
    ref = ot.sinkhorn2(ot.unif(120), ot.unif(100), C, eps, method="sinkhorn_log", numItermax=20000, stopThr=1e-10)
    res = O.sinkhorn(torch.from_numpy(C), eps, tol=1e-8, max_iter=20000)
    assert float(res.cost) == pytest.approx(float(ref), rel=1e-4)
    np.testing.assert_allclose(res.plan.sum(0).numpy(), 1 / 100, atol=1e-6)


def test_sinkhorn_divergence_is_debiased():
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.standard_normal((150, 2)))
    same = O.sinkhorn_divergence(x, x.clone(), 0.05)
    shifted = O.sinkhorn_divergence(x, x + 2.0, 0.05)
    assert abs(float(same)) < 1e-6
    assert float(shifted) == pytest.approx(2.0 * 2.0**2 / 2, rel=0.05)  # ½‖shift‖² = 4


def test_monge_gap_zero_for_optimal_maps_positive_for_rotation():
    # Tolerance: the ε blur biases the gap by O(ε·mean cost); 2 % of the mean cost at epsilon = 0.01, n = 300.
    g = O.gaussian_pair(2, seed=0)
    x = g.sample(300, seed=5)
    scale = 0.5 * ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1).mean()
    assert abs(O.monge_gap(lambda z: z, x)) < 0.02 * scale
    assert abs(O.monge_gap(g.true_map, x)) < 0.02 * scale
    # A 90° rotation pushes the standard Gaussian to itself but is not the gradient of a convex function.
    iso = np.random.default_rng(2).standard_normal((300, 2))
    rot = np.array([[0.0, -1.0], [1.0, 0.0]])
    gap = O.monge_gap(lambda z: z @ rot.T, iso)
    assert gap > 0.5 * 0.5 * ((iso - iso @ rot.T) ** 2).sum(1).mean()


def test_monge_gap_rejects_bad_maps():
    x = np.random.default_rng(0).standard_normal((20, 3))
    with pytest.raises(ShapeError, match="T\\(x\\) has shape"):
        O.monge_gap(lambda z: z[:, :2], x)
    with pytest.raises(InvalidValueError, match="epsilon"):
        O.monge_gap(lambda z: z, x, epsilon=-1)
    with pytest.raises(InvalidValueError, match="non-finite"):
        O.monge_gap(lambda z: z * np.nan, x)


def test_displacement_dims_and_support_recovery():
    x = np.zeros((4, 5))
    m = x.copy()
    m[:, 1] = 3.0
    m[0, 4] = 0.5
    np.testing.assert_array_equal(O.displacement_dims(x, m, threshold=0.1), [2, 1, 1, 1])
    rec = O.support_recovery(x, m, [1, 2], threshold=0.2)
    assert rec["precision"] == 1.0 and rec["recall"] == 0.5


def test_monge_gap_agrees_with_ott_jax_up_to_the_stated_conventions():
    pytest.importorskip("ott")
    import jax.numpy as jnp
    from ott.geometry import pointcloud
    from ott.solvers import linear

    g = O.gaussian_pair(2, seed=0)
    x = g.sample(200, seed=5).astype(np.float64)
    for T in (g.true_map, lambda z: z @ np.array([[0.0, -1.0], [1.0, 0.0]]) * 1.3):
        tx = T(x)
        ours = O.monge_gap(T, x, epsilon=0.01)
        eps_abs = 0.01 * float((0.5 * ((x[:, None] - tx[None]) ** 2).sum(-1)).mean())
        # OTT's SqEuclidean cost is ‖x − y‖² = 2 × ours, so its ε is 2 × ours for the same plan
        geom = pointcloud.PointCloud(jnp.asarray(x), jnp.asarray(tx), epsilon=2 * eps_abs)
        out = linear.solve(geom, threshold=1e-6, max_iterations=20000)
        direct = float(((x - tx) ** 2).sum(1).mean())
        plan_cost = float(jnp.sum(out.matrix * geom.cost_matrix))
        assert ours == pytest.approx(0.5 * (direct - plan_cost), rel=2e-2, abs=1e-3)
        # OTT subtracts its entropic value, which lies below the plan's cost by an ε·entropy term: its gap
        # sits above ours (×2 for the cost), biased upwards by O(ε log n)
        assert direct - float(out.ent_reg_cost) >= 2 * ours - 1e-6


def test_moved_coordinates_reads_sparse_and_dense_pairs():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2000, 40))
    shift = rng.normal(0, 0.1, size=40)
    shift[[2, 9, 30]] = [3.0, -5.0, 8.0]
    read = O.moved_coordinates(x, rng.standard_normal((2000, 40)) + shift)
    assert read["moved"].tolist() == [2, 9, 30] and read["sparse"] and read["share"] > 0.95
    np.testing.assert_allclose(O.marginal_w2(x, x + shift)[[2, 9, 30]], [3.0, 5.0, 8.0], rtol=1e-9)
    g = O.gaussian_pair(8, seed=0)  # random covariances: every coordinate moves
    assert not O.moved_coordinates(g.sample(2000, seed=1), g.sample_q(2000, seed=2))["sparse"]
    # a shift of every coordinate by about the same amount is not sparse either
    assert not O.moved_coordinates(x, x + rng.uniform(2, 3, size=40))["sparse"]
