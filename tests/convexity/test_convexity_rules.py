"""Property table of the rules, one row per rule and parameter: the certified curvature and monotonicity, each
backed by a numeric counterexample search (Jensen segments, monotonicity rays). A rule made deliberately wrong
is caught by the same search."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from icctrl.convexity import _ops, certify, jensen_check, monotonicity_check
from icctrl.convexity._flags import FlagDomain

W_POS = torch.tensor([[1.0, 0.5], [0.3, 2.0], [1.5, 0.2]], dtype=torch.float64)  # (3, 2): non-negative
W_MIX = torch.tensor([[1.0, -0.5], [-0.3, 2.0], [1.5, -0.2]], dtype=torch.float64)


class Fn(nn.Module):
    """A plain module computing `fn` of a (batch, 2) input."""

    n_in = 2

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def lin(x, w=W_POS, b=(0.5, -1.0, 0.2)):
    return x @ w.T + torch.tensor(b, dtype=torch.float64)


def cvx(x):
    return F.relu(lin(x))  # convex, nondecreasing in both inputs


def ccv(x):
    return -F.relu(lin(x))  # concave, nonincreasing


def _act(m):
    return lambda x: m(lin(x, W_MIX)).sum(-1, keepdim=True)


def _act_of_convex(m):
    return lambda x: m(cvx(x) - 1.0).sum(-1, keepdim=True)


# rule -> (function, certified curvature, certified monotonicity in (x0, x1))
ND, NI, NO = "nondecreasing", "nonincreasing", "none"
TABLE = {
    "add convex + convex": (lambda x: cvx(x) + F.relu(-x[:, :1]), "convex", (NO, ND)),
    "add convex + concave": (lambda x: F.relu(x[:, :1]) - F.relu(x[:, 1:]), "unknown", (ND, NI)),
    "sub convex - convex": (lambda x: F.relu(x[:, :1]) - F.relu(x[:, :1] - 1), "unknown", (NO, "constant")),
    "matmul non-negative on convex": (lambda x: cvx(x) @ W_POS[:, :1] * 1.0, "convex", (ND, ND)),
    "matmul non-positive on convex": (lambda x: cvx(x) @ (-W_POS[:, :1]), "concave", (NI, NI)),
    "matmul mixed signs on convex": (lambda x: cvx(x) @ torch.tensor([[1.0], [-1.0], [0.5]],
                                                                     dtype=torch.float64), "unknown", (NO, NO)),
    "matmul any sign on affine": (lambda x: lin(x, W_MIX), "affine", (NO, NO)),
    "mul same argument, both relu": (lambda x: F.relu(x[:, :1]) * F.relu(x[:, :1]), "convex", (ND, "constant")),
    "mul same argument, affine": (lambda x: (x[:, :1] + 1) * (2 * x[:, :1] - 3), "convex", (NO, "constant")),
    "mul same argument, opposite monotone": (lambda x: F.relu(x[:, :1]) * F.relu(1 - x[:, :1]), "unknown",
                                             (NO, NO)),  # conservative in x1: a refused product keeps no facts
    "mul different arguments": (lambda x: F.relu(x[:, :1]) * F.relu(x[:, 1:]), "unknown", (NO, NO)),
    "mul constant > 0": (lambda x: 2.5 * cvx(x), "convex", (ND, ND)),
    "mul constant < 0": (lambda x: -2.5 * cvx(x), "concave", (NI, NI)),
    "neg": (lambda x: -cvx(x), "concave", (NI, NI)),
    "div by constant": (lambda x: cvx(x) / 4.0, "convex", (ND, ND)),
    "div by input": (lambda x: cvx(x) / (2.0 + torch.sigmoid(x[:, :1])), "unknown", (NO, NO)),
    "relu": (_act(nn.ReLU()), "convex", (NO, NO)),
    "relu of convex": (_act_of_convex(nn.ReLU()), "convex", (ND, ND)),
    "leaky_relu(0.01) of convex": (_act_of_convex(nn.LeakyReLU(0.01)), "convex", (ND, ND)),
    "leaky_relu(3)": (_act(nn.LeakyReLU(3.0)), "concave", (NO, NO)),
    "leaky_relu(-0.5) of affine": (_act(nn.LeakyReLU(-0.5)), "convex", (NO, NO)),
    "leaky_relu(-0.5) of convex": (_act_of_convex(nn.LeakyReLU(-0.5)), "unknown", (NO, NO)),
    "elu(1) of convex": (_act_of_convex(nn.ELU()), "convex", (ND, ND)),
    "elu(0.5)": (_act(nn.ELU(0.5)), "convex", (NO, NO)),
    "elu(4)": (_act(nn.ELU(4.0)), "unknown", (NO, NO)),
    "celu(2) of convex": (_act_of_convex(nn.CELU(2.0)), "convex", (ND, ND)),
    "softplus(1) of convex": (_act_of_convex(nn.Softplus()), "convex", (ND, ND)),
    "softplus(3)": (_act(nn.Softplus(beta=3.0)), "convex", (NO, NO)),
    "softplus(-1)": (_act(nn.Softplus(beta=-1.0)), "concave", (NO, NO)),
    "tanh": (_act(nn.Tanh()), "unknown", (NO, NO)),
    "sigmoid": (_act(nn.Sigmoid()), "unknown", (NO, NO)),
    "hardtanh": (_act(nn.Hardtanh()), "unknown", (NO, NO)),
    "exp of convex": (lambda x: torch.exp(0.3 * cvx(x)), "convex", (ND, ND)),
    "abs of affine": (lambda x: lin(x, W_MIX).abs(), "convex", (NO, NO)),
    "abs of convex": (lambda x: (cvx(x) - 2.0).abs(), "unknown", (NO, NO)),
    "abs of non-negative convex": (lambda x: cvx(x).abs(), "convex", (ND, ND)),
    "square of affine": (lambda x: lin(x, W_MIX) ** 2, "convex", (NO, NO)),
    "square of convex": (lambda x: (cvx(x) - 2.0) ** 2, "unknown", (NO, NO)),
    "cube": (lambda x: x**3, "unknown", (NO, NO)),
    "clamp_min": (lambda x: cvx(x).clamp_min(1.0), "convex", (ND, ND)),
    "clamp_max": (lambda x: ccv(x).clamp_max(-1.0), "concave", (NI, NI)),
    "clamp both": (lambda x: lin(x).clamp(-1.0, 1.0), "unknown", (ND, ND)),
    "maximum of convex": (lambda x: torch.maximum(cvx(x), -cvx(x) + 3), "unknown", (NO, NO)),
    "maximum convex, convex": (lambda x: torch.maximum(cvx(x), (x[:, :1] - 1) ** 2), "convex", (NO, ND)),
    "minimum of affine": (lambda x: torch.minimum(x[:, :1], -x[:, :1]), "concave", (NO, "constant")),
    "minimum of convex": (lambda x: torch.minimum(cvx(x), F.relu(1 - x[:, :1])), "unknown", (NO, ND)),
    "cat then non-negative sum": (lambda x: torch.cat([cvx(x), F.relu(x)], -1).sum(-1, keepdim=True), "convex",
                                  (ND, ND)),
    "cat convex and concave": (lambda x: torch.cat([cvx(x), -F.relu(x)], -1).sum(-1, keepdim=True), "unknown",
                               (NO, NO)),
    "views keep facts": (lambda x: cvx(x).reshape(-1, 3, 1).transpose(1, 2).flip(-1)[..., 1:].reshape(-1, 2),
                         "convex", (ND, ND)),
    "slice of convex and concave": (lambda x: torch.cat([cvx(x), ccv(x)], -1)[:, 2:4], "unknown", (NO, NO)),
    "mean of convex": (lambda x: cvx(x).mean(-1, keepdim=True), "convex", (ND, ND)),
}


def _points(n, gen):
    return 3 * torch.randn(n, 2, generator=gen, dtype=torch.float64)


def _jensen(fn, concave=False):
    return max(jensen_check(Fn(fn), _points, 2000, seed=s, concave=concave).worst for s in range(2))


@pytest.mark.parametrize("rule", sorted(TABLE))
def test_rule_verdict_and_its_numeric_counterexample_search(rule):
    fn, curvature, mono = TABLE[rule]
    cert = certify(Fn(fn))
    assert cert.curvature == curvature, cert.reasons
    convex_gap, concave_gap = _jensen(fn), _jensen(fn, concave=True)
    if curvature in ("convex", "affine"):
        assert convex_gap <= 1e-9
    if curvature in ("concave", "affine"):
        assert concave_gap <= 1e-9
    if curvature != "affine":  # the search can fail: whatever was not certified is violated somewhere
        assert convex_gap > 1e-6 or curvature == "convex"
        assert concave_gap > 1e-6 or curvature == "concave"
    assert tuple(cert.monotonicity[f"x{i}"] for i in range(2)) == mono
    for i, m in enumerate(mono):
        if m in (ND, NI, "constant"):
            mask = torch.zeros(2, dtype=torch.bool)
            mask[i] = True
            for d in ((1, -1) if m == "constant" else (1 if m == ND else -1,)):
                assert monotonicity_check(Fn(fn), _points, 300, mask=mask, direction=d, step=0.5).passed


def test_a_wrong_activation_fact_is_caught(monkeypatch):
    fn = _act(nn.LeakyReLU(3.0))
    assert not certify(Fn(fn)).convex
    real = _ops.leaky_relu
    monkeypatch.setattr(_ops, "leaky_relu", lambda slope=0.01: real(min(float(slope), 0.5)))  # slope 3 "convex"
    assert certify(Fn(fn)).convex
    assert _jensen(fn) > 1e-3


def test_a_sign_blind_matmul_rule_is_caught(monkeypatch):
    fn = TABLE["matmul mixed signs on convex"][0]
    real = FlagDomain.matmul
    monkeypatch.setattr(FlagDomain, "matmul", lambda self, x, m, node: real(self, x, m.abs(), node))
    assert certify(Fn(fn)).convex
    assert _jensen(fn) > 1e-3


def test_a_product_rule_blind_to_arguments_is_caught(monkeypatch):
    fn = TABLE["mul different arguments"][0]
    real = FlagDomain.mul

    def same_base(self, a, b, node):
        if hasattr(a, "base") and hasattr(b, "base"):
            b.base = a.base  # pretend both factors are functions of one argument
        return real(self, a, b, node)

    monkeypatch.setattr(FlagDomain, "mul", same_base)
    assert certify(Fn(fn)).convex
    assert _jensen(fn) > 1e-3
