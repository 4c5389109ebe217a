"""The exact laws the flows are scored against: OU and heat moments, the discrete-JKO law, Barenblatt."""

import numpy as np
import pytest

from icctrl.errors import InvalidValueError, ShapeError
from icctrl.wgf import Barenblatt, HeatProblem, fit_gaussian, ou_problem, symkl_gaussian


def test_ou_law_starts_at_standard_normal_and_relaxes_to_target():
    p = ou_problem(4, seed=3)
    m0, c0 = p.exact(0.0)
    assert np.allclose(m0, 0) and np.allclose(c0, np.eye(4))
    m, c = p.exact(60.0)
    assert np.allclose(m, p.mean, atol=1e-8) and np.allclose(c, p.cov, atol=1e-8)
    assert np.all(np.linalg.eigvalsh(p.cov) >= 1 - 1e-12) and np.all(np.linalg.eigvalsh(p.cov) <= 2 + 1e-12)


def test_ou_law_solves_the_fokker_planck_moment_equations():
    """dm/dt = Σ⁻¹(m_target − m), dC/dt = 2I − Σ⁻¹C − CΣ⁻¹, checked by finite differences."""
    p = ou_problem(3, seed=1)
    a, t, h = np.linalg.inv(p.cov), 0.4, 1e-5
    (mp, cp), (mm, cm), (m, c) = p.exact(t + h), p.exact(t - h), p.exact(t)
    assert np.allclose((mp - mm) / (2 * h), a @ (p.mean - m), atol=1e-6)
    assert np.allclose((cp - cm) / (2 * h), 2 * np.eye(3) - a @ c - c @ a, atol=1e-6)


def test_discrete_jko_law_converges_to_the_exact_law_at_first_order():
    p = ou_problem(3, seed=0)
    exact = p.exact(0.9)
    errs = [symkl_gaussian(*p.jko_exact(0.9 / n, n), *exact) for n in (9, 18, 36)]
    assert errs[0] > errs[1] > errs[2] > 0
    assert 3.0 < errs[0] / errs[1] < 5.0  # symmetric KL ~ (error)² ~ a²


def test_symkl_of_a_gaussian_fit_and_its_failure_on_a_wrong_law():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200_000, 2))
    h = HeatProblem(mean=np.zeros(2), cov=np.eye(2))
    assert h.symkl(x, 0.0) < 1e-4
    assert h.symkl(x, 0.1) > 0.02  # the law at t = 0.1 has covariance 1.2 I (SymKL 0.033)
    with pytest.raises(ShapeError, match="n > d"):
        fit_gaussian(x[:2])
    with pytest.raises(InvalidValueError, match="-1"):
        ou_problem(-1)


@pytest.mark.parametrize("dim", [1, 3, 6])
def test_barenblatt_has_unit_mass_exact_samples_and_entropy(dim):
    b, t = Barenblatt(dim), 0.02
    r = b.support_radius(t)
    z = np.random.default_rng(1).uniform(-r, r, (400_000, dim))
    vol = (2 * r) ** dim
    assert vol * b.density(z, t).mean() == pytest.approx(1.0, rel=0.03)
    assert vol * (b.density(z, t) ** 2).mean() == pytest.approx(b.entropy(t), rel=0.03)
    x = b.sample(50_000, t, seed=2)
    assert np.linalg.norm(x, axis=1).max() <= r
    assert b.radial_l1(x, t) < 0.05
    assert b.radial_l1(b.sample(50_000, 3 * t, seed=2), t) > 0.3  # the check fails on the wrong profile


def test_barenblatt_solves_the_porous_medium_equation():
    """∂ρ/∂t = Δρ² at an interior point of the support (1-d, finite differences)."""
    b, t, x, h = Barenblatt(1), 0.01, np.array([[0.05]]), 1e-4
    dt = (b.density(x, t + 1e-7) - b.density(x, t - 1e-7)) / 2e-7
    sq = lambda y: b.density(y, t) ** 2  # noqa: E731
    lap = (sq(x + h) - 2 * sq(x) + sq(x - h)) / h**2
    assert dt == pytest.approx(lap, rel=1e-3)
    with pytest.raises(InvalidValueError, match="must be > 0"):
        b.density(x, 0.0)
