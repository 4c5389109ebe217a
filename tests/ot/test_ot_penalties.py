"""Sparsity penalties at known points and the adaptive-λ controller's moves."""

import math

import numpy as np
import pytest
import torch

import icctrl.ot as O
from icctrl.errors import InvalidValueError, UnknownNameError


def test_l0_values_and_count_limit():
    d = np.array([[0.0, 0.1, -0.2, 0.0]])
    np.testing.assert_allclose(O.displacement_penalty(d, "l0", epsilon=0.1),
                               [(1 - math.exp(-0.5)) + (1 - math.exp(-2.0))])
    # ε → 0: the smoothed ℓ0 tends to the number of non-zero coordinates
    assert O.displacement_penalty(d, "l0", epsilon=1e-4)[0] == pytest.approx(2.0)
    assert O.displacement_penalty(np.zeros((3, 5)), "l0").tolist() == [0.0, 0.0, 0.0]


def test_l1_and_stvs_values():
    d = np.array([[0.5, -1.5], [0.0, 0.0]])
    np.testing.assert_allclose(O.displacement_penalty(d, "l1"), [2.0, 0.0])
    gamma = 0.7
    s = np.arcsinh(np.abs(d[0]) / (2 * gamma))
    expect = gamma**2 * (s + 0.5 - 0.5 * np.exp(-2 * s)).sum()
    np.testing.assert_allclose(O.displacement_penalty(d, "stvs", gamma=gamma), [expect, 0.0])
    # STVS grows with |z| and is symmetric
    z = np.linspace(0, 5, 20)[:, None]
    v = O.displacement_penalty(z, "stvs")
    assert np.all(np.diff(v) > 0)
    np.testing.assert_allclose(v, O.displacement_penalty(-z, "stvs"))


def test_penalty_torch_in_torch_out_and_differentiable():
    d = torch.tensor([[0.3, -0.1]], requires_grad=True)
    v = O.displacement_penalty(d, "l0", epsilon=0.2)
    v.sum().backward()
    assert isinstance(v, torch.Tensor) and d.grad is not None and torch.all(d.grad.sign() == d.sign())


def test_penalty_bad_names_and_values():
    with pytest.raises(UnknownNameError, match="l2"):
        O.displacement_penalty(np.zeros((1, 2)), "l2")
    with pytest.raises(InvalidValueError, match="epsilon"):
        O.displacement_penalty(np.zeros((1, 2)), "l0", epsilon=0)
    with pytest.raises(InvalidValueError, match="growth"):
        O.AdaptiveLambda(1.0, target=3, growth=0.5)


def test_adaptive_lambda_grows_until_under_target_then_anneals_down():
    ctl = O.AdaptiveLambda(0.1, target=10, growth=2.0, check_every=5, temperature=1.0, warmup=3, seed=0)
    assert [ctl.update(0.0) for _ in range(3)] == [0.1] * 3  # warm-up: an unmoved map says nothing
    lams = [ctl.update(50.0) for _ in range(15)]  # dimensionality 50 > target: λ doubles at every check
    assert lams[4] == pytest.approx(0.2) and lams[9] == pytest.approx(0.4) and lams[14] == pytest.approx(0.8)
    assert ctl.phase == "grow"
    for _ in range(5):  # now under target: switch to annealing and propose a smaller λ
        lam = ctl.update(3.0)
    assert ctl.phase == "anneal" and ctl.best == pytest.approx(0.8) and lam < 0.8
    proposal = lam
    for _ in range(5):  # the proposal keeps the dimensionality under target: accepted, next proposal smaller
        lam = ctl.update(4.0)
    assert ctl.best == pytest.approx(proposal) and ctl.accepted == 1 and lam < proposal
    best = ctl.best
    for _ in range(5):  # this proposal overshoots the target: rejected, back to λ_best
        lam = ctl.update(40.0)
    assert ctl.rejected == 1 and lam == pytest.approx(best)
    for _ in range(5):  # λ_best itself no longer holds the target: grow again
        lam = ctl.update(40.0)
    assert ctl.phase == "grow" and lam == pytest.approx(2 * best)
    events = [e for e, _, _ in ctl.history]
    assert events[:3] == ["grow", "grow", "grow"] and "accept" in events and "reject" in events


def test_adaptive_lambda_cools_only_near_the_budget():
    ctl = O.AdaptiveLambda(1.0, target=10, check_every=2, window=2, temperature=1.0, cooling=0.5, near=0.9)
    for _ in range(2):
        ctl.update(5.0)  # far under the budget: anneal, propose, temperature kept
    assert ctl.phase == "anneal" and ctl.temperature == 1.0
    for _ in range(2):
        ctl.update(2.0)  # still far under: accepted, next proposal at full temperature
    assert ctl.accepted == 1 and ctl.temperature == 1.0
    for _ in range(2):
        ctl.update(9.5)  # near the budget: accepted, and now it cools
    assert ctl.accepted == 2 and ctl.temperature == 0.5
    with pytest.raises(InvalidValueError, match="near"):
        O.AdaptiveLambda(1.0, target=10, near=0.0)


def test_adaptive_lambda_stops_growing_at_its_cap():
    ctl = O.AdaptiveLambda(1.0, target=1, growth=4.0, check_every=2, window=2, lam_max=10.0)
    lams = [ctl.update(5.0) for _ in range(8)]  # always over target
    assert lams[1] == 4.0 and lams[3] == 10.0 and lams[-1] == 10.0  # 1 → 4 → 10 (not 16) → held at 10
    assert ctl.capped and [e for e, _, _ in ctl.history] == ["grow", "grow", "capped", "capped"]
    free = O.AdaptiveLambda(1.0, target=1, growth=4.0, check_every=2, window=2)
    assert [free.update(5.0) for _ in range(8)][-1] == 256.0 and not free.capped
    with pytest.raises(InvalidValueError, match="lam_max"):
        O.AdaptiveLambda(2.0, target=1, lam_max=1.0)
