"""Soundness: the cases built to fool a certificate, and a fuzzed grammar of modules. Certified convex must
mean no Jensen violation is found, and the certified Lipschitz bound is never below the measured estimate."""

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from icctrl.convexity import certify, jensen_check, lipschitz_bound, lipschitz_estimate
from icctrl.errors import InvalidValueError
from icctrl.mpc import Lyapunov
from icctrl.nn import Scaled, build


def _windows(n, gen, n_in=2):
    return 3 * torch.randn(n, 1, n_in, generator=gen, dtype=torch.float64)


class Negated(nn.ReLU):
    def forward(self, x):
        return -super().forward(x)


def _head(act, seed=0):
    torch.manual_seed(seed)
    a, b = nn.Linear(2, 8), nn.Linear(8, 1)
    with torch.no_grad():
        b.weight.abs_()
    return nn.Sequential(a, act, b).double()


FOOLS = {
    "leaky_relu(3)": lambda: _head(nn.LeakyReLU(3.0)),
    "elu(alpha=4)": lambda: _head(nn.ELU(alpha=4.0)),
    "softplus(beta=-1)": lambda: _head(nn.Softplus(beta=-1.0)),
    "relu subclass negating": lambda: _head(Negated()),
}


def _hooked():
    m = _head(nn.ReLU())
    m[1].register_forward_hook(lambda mod, i, o: -o)
    return m


def _icnn_negative_quadratic():
    m = build("icnn", 2, 1, hidden=8, layers=2, quadratic=1.0).double()
    m.quadratic = -5.0
    return m


def _icnn_edited():
    m = build("icnn", 2, 1, hidden=8, layers=2).double()
    torch.nn.utils.parametrize.remove_parametrizations(m.hidden_w[-1], "weight")
    with torch.no_grad():
        m.hidden_w[-1].weight.copy_(-5 * m.hidden_w[-1].weight.abs() - 1)  # the parametrisation is no guarantee
    return m


def _scaled_negative():
    m = Scaled(build("icrnn", 2, 1, hidden=8, layers=1), [0.0, 0.0], [1.0, 1.0], [0.0], [1.0]).double()
    m.out_scale.fill_(-2.0)
    return m


FOOLS.update({"forward hook negating": _hooked, "icnn quadratic < 0": _icnn_negative_quadratic,
              "icnn weights edited": _icnn_edited, "Scaled.out_scale < 0": _scaled_negative})


@pytest.mark.parametrize("case", sorted(FOOLS))
def test_models_built_to_fool_the_certificate_are_refused_and_do_violate_jensen(case):
    m = FOOLS[case]()
    assert not certify(m).convex
    assert not jensen_check(m, _windows, 3000, seed=0).passed  # the refusal is right: a violation exists


def test_a_checkpoint_that_disagrees_with_its_scalers_is_read_by_its_values():
    good = Scaled(build("icrnn", 2, 1, hidden=8, layers=1), [0.0, 0.0], [1.0, 1.0], [0.0], [1.0]).double()
    assert certify(good).convex
    state = good.state_dict()
    state["out_scale"] = -state["out_scale"]
    good.load_state_dict(state)
    cert = certify(good)
    assert not cert.convex and cert.digest


def test_the_digest_records_the_values_checked():
    m = build("icnn", 2, 1, hidden=4, layers=1).double()
    d = certify(m).digest
    with torch.no_grad():
        m.skip[0].bias.add_(1.0)
    assert certify(m).digest != d


@pytest.mark.parametrize("act, lip", [(nn.LeakyReLU(5.0), 5.0), (nn.ELU(alpha=4.0), 4.0)])
def test_lipschitz_bound_uses_the_activation_parameters(act, lip):
    m = nn.Sequential(nn.Linear(1, 1, bias=False), act).double()
    with torch.no_grad():
        m[0].weight.fill_(1.0)
    assert lipschitz_bound(m) >= lip - 1e-12
    est = lipschitz_estimate(m, lambda n, g: -torch.rand(n, 1, 1, generator=g, dtype=torch.float64) * 0.01,
                             64).worst
    assert est <= lipschitz_bound(m) * (1 + 1e-9)


def test_scaled_bound_stays_non_negative():
    m = Scaled(build("icnn", 2, 1, hidden=4, layers=1), [0.0, 0.0], [1.0, 1.0], [0.0], [1.0]).double()
    m.out_scale.fill_(-3.0)
    assert lipschitz_bound(m) > 0


@pytest.mark.parametrize("kw", [{"P": -np.eye(2)}, {"P": np.eye(2), "penalty": -5.0},
                                {"P": np.eye(2), "decay": 0.0}, {"P": np.eye(2), "decay": 1.5}])
def test_lyapunov_parameters_are_validated(kw):
    with pytest.raises(InvalidValueError):
        Lyapunov(**kw)


# ---- the fuzzed grammar ---------------------------------------------------------------------------
ACTS = [lambda p: nn.ReLU(), lambda p: nn.LeakyReLU(p * 4 - 1), lambda p: nn.ELU(alpha=p * 3 - 0.5),
        lambda p: nn.CELU(alpha=p * 2 + 0.1), lambda p: nn.Softplus(beta=p * 4 - 2 or 1.0), lambda p: nn.Tanh(),
        lambda p: Negated(), lambda p: nn.Identity()]


def fuzz_module(rng: np.random.Generator, n_in: int = 2) -> nn.Module:
    """A random small module from the grammar: linear layers of random sign patterns, activations with random
    parameters, and attachments (negating hooks, subclass forwards)."""
    layers, width = [], n_in
    for _ in range(int(rng.integers(1, 4))):
        out = int(rng.integers(1, 6))
        lin = nn.Linear(width, out)
        with torch.no_grad():
            kind = rng.integers(0, 3)
            if kind == 1:
                lin.weight.abs_()
            elif kind == 2:
                lin.weight.neg_().abs_().neg_()
        act = ACTS[int(rng.integers(len(ACTS)))](float(rng.random()))
        if rng.random() < 0.1:
            act.register_forward_hook(lambda mod, i, o: -o)
        layers += [lin, act]
        width = out
    final = nn.Linear(width, 1)
    if rng.random() < 0.7:
        with torch.no_grad():
            final.weight.abs_()
    return nn.Sequential(*layers, final).double()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1))
def test_fuzz_certified_means_no_violation_and_bounds_hold(seed):
    m = fuzz_module(np.random.default_rng(seed))
    cert = certify(m)
    if cert.convex:
        assert jensen_check(m, _windows, 400, seed=seed % 1000).worst <= 1e-6 * 10
    bound = lipschitz_bound(m)
    if math.isfinite(bound):
        est = lipschitz_estimate(m, _windows, 64, seed=seed % 1000, ascent_steps=5).worst
        assert est <= bound * (1 + 1e-6)
