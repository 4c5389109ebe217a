"""JKO steps on small problems with exact answers: OU, heat, potential and interaction energy, porous medium."""

import numpy as np
import pytest
import torch

from icctrl.errors import InvalidValueError, NotConvexError, ShapeError, UnknownNameError
from icctrl.nn import build
from icctrl.wgf import JKO, KL, Entropy, HeatProblem, InteractionEnergy, PotentialEnergy, ou_problem
from icctrl.wgf._experiments import porous_run

SMALL = dict(iters=60, batch_size=256, hidden=32, critic_hidden=32, device="cpu")


@pytest.fixture(scope="module")
def ou_run():
    torch.set_num_threads(1)
    p = ou_problem(2, seed=0)
    x0 = np.random.default_rng(1).standard_normal((4000, 2)).astype(np.float32)
    jko = JKO(KL(p.potential), 0.1, seed=0, **SMALL)
    return p, x0, jko, jko.run(x0, 3)


def test_ou_flow_follows_the_exact_law(ou_run):
    p, x0, _, res = ou_run
    err = p.symkl(res[-1], 0.3)
    assert err < 0.02  # the particles that did not move are at 0.16 from the law at t = 0.3
    assert p.symkl(x0, 0.3) > 8 * err
    assert all(p.symkl(x, t) < 0.03 for x, t in zip(res[1:], res.times[1:]))


def test_run_returns_the_particles_per_step_with_timing(ou_run):
    _, x0, jko, res = ou_run
    assert isinstance(res, list) and len(res) == 4 and res[0] is x0
    assert all(isinstance(x, np.ndarray) and x.shape == x0.shape and x.dtype == np.float32 for x in res)
    assert np.allclose(res.times, [0, 0.1, 0.2, 0.3]) and len(res.seconds) == 3 and res.seconds_per_step > 0
    assert len(res.values) == 3 and res.device == "cpu"
    fresh = jko.sample(3000)  # fresh rows of x0 pushed through the three maps
    assert fresh.shape == (3000, 2) and np.allclose(fresh.mean(0), res[-1].mean(0), atol=0.1)
    assert np.allclose(jko.sample(5, step=0).std(), x0.std(), rtol=1)


def test_heat_flow_spreads_as_the_exact_law():
    h = HeatProblem(mean=np.array([0.5]), cov=np.array([[0.25]]))
    x0 = np.random.default_rng(2).normal(0.5, 0.5, (4000, 1))
    res = JKO(Entropy(), 0.05, **SMALL).run(x0, 2)
    assert res[-1].dtype == np.float64
    assert h.symkl(res[-1], 0.1) < 0.02 < h.symkl(x0, 0.1)


def test_potential_and_interaction_energy_match_the_exact_implicit_steps():
    """For V = ½|x − c|² the JKO step is x ↦ (x + a·c)/(1 + a); for W = ½|z|² it is x ↦ (x + a·E X)/(1 + a)."""
    x0 = np.random.default_rng(3).standard_normal((2000, 2)).astype(np.float32)
    c, a, opts = torch.tensor([1.0, -2.0]), 0.2, {**SMALL, "iters": 300}
    exact = (x0 + a * c.numpy()) / (1 + a)
    res = JKO(PotentialEnergy(lambda y: 0.5 * ((y - c) ** 2).sum(1)), a, **opts).run(x0, 1)
    assert np.abs(res[1] - exact).mean() < 0.02 < np.abs(x0 - exact).mean() / 10
    exact = (x0 + a * x0.mean(0)) / (1 + a)
    res = JKO(InteractionEnergy(lambda z: 0.5 * (z**2).sum(1)), a, **opts).run(x0, 1)
    assert np.abs(res[1] - exact).mean() < 0.02 < np.abs(x0 - exact).mean() / 5


def test_icnn_map_is_certified_and_a_non_convex_potential_is_refused():
    p = ou_problem(2, seed=0)
    x0 = np.random.default_rng(1).standard_normal((2000, 2)).astype(np.float32)
    jko = JKO(KL(p.potential), 0.2, map="icnn", **{**SMALL, "iters": 100})
    res = jko.run(x0, 1)
    assert len(res.certificates) == 1 and res.certificates[0].convex
    assert p.symkl(res[-1], 0.2) < p.symkl(x0, 0.2) / 3
    bad = jko.maps_[-1]
    bad.potential = build("icnn", n_in=2, n_out=1, hidden=8, layers=2, activation="tanh")
    with pytest.raises(NotConvexError, match="tanh"):
        bad.certificate()


def test_porous_medium_tracks_the_barenblatt_profile():
    r = porous_run(1, steps=2, iters=60, particles=5000, probe=20000, batch_size=256, device="cpu")
    assert max(r["entropy_rel_error"]) < 0.1
    assert max(r["l1"]) < 0.35 and max(r["l1_radial"]) < 0.3


def test_bad_input_is_refused_with_the_value():
    f = Entropy()
    with pytest.raises(InvalidValueError, match="step_size"):
        JKO(f, 0.0)
    with pytest.raises(UnknownNameError, match="'resnet'"):
        JKO(f, 0.1, map="resnet")
    with pytest.raises(InvalidValueError, match="functional"):
        JKO(lambda x: x, 0.1)
    jko = JKO(f, 0.1, **SMALL)
    with pytest.raises(ShapeError, match="numpy array"):
        jko.run([[0.0, 1.0]], 1)
    with pytest.raises(ShapeError, match=r"\(3,\)"):
        jko.run(np.zeros(3), 1)
    with pytest.raises(InvalidValueError, match="non-finite"):
        jko.run(np.array([[0.0], [np.nan]]), 1)
    with pytest.raises(InvalidValueError, match="steps"):
        jko.run(np.zeros((10, 1)), 0)
    with pytest.raises(InvalidValueError, match="not run"):
        jko.sample(3)
    with pytest.raises(ShapeError, match=r"got \(256, 1\)"):
        JKO(PotentialEnergy(lambda y: y), 0.1, **SMALL).run(np.random.default_rng(0).standard_normal((100, 1)), 1)
