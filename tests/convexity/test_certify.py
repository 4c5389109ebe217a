"""Property table of the certificate, each verdict backed by a numeric check that can fail."""

import pytest
import torch
from torch import nn

from icctrl.convexity import certify, jensen_check, monotonicity_check
from icctrl.errors import ShapeError, UnknownNameError
from icctrl.nn import Scaled, build

T, N_IN = 4, 2


def _model(name, seed=0, **kw):
    torch.manual_seed(seed)
    m = build(name, N_IN, 1, hidden=8, layers=2, **kw).double()
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(2.0)  # larger weights make the curvature visible to the numeric checks
        for g in getattr(m, "gates", ()):
            g.weight = torch.empty_like(g.weight).uniform_(0.5, 1.5)  # gate scales of order one
    return m


def _windows(n, gen):
    return 2 * torch.randn(n, T, N_IN, generator=gen, dtype=torch.float64)


# name -> (certified convex over the window, a numeric violation exists)
TABLE = {
    "icnn": (True, False),
    "icrnn": (True, False),
    "iclrnn": (True, False),
    "iclstm": (False, True),
    "lstm": (False, True),
    "rnn": (False, True),
    "lrnn": (False, True),
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_certificate_agrees_with_jensen(name):
    certified, violates = TABLE[name]
    cert = certify(_model(name), window=T)
    assert cert.convex is certified
    assert bool(cert.reasons) is not certified  # a refusal always says why
    worst = max(jensen_check(_model(name, seed), _windows, 1500, seed=seed).worst for seed in range(3))
    assert (worst > 1e-6) is violates, f"{name}: worst Jensen gap {worst:.3g}"


def test_picnn_convex_in_its_convex_inputs_only():
    m = _model("picnn", convex_inputs=[0])
    assert certify(m).convex and certify(m).wrt == ("x0",)
    bad = certify(m, wrt=[0, 1])
    assert not bad.convex and any("different arguments" in r for r in bad.reasons)
    mask = torch.zeros(T, N_IN, dtype=torch.bool)
    mask[:, 0] = True
    assert jensen_check(m, _windows, 1500, mask=mask).passed
    assert not jensen_check(m, _windows, 1500, mask=~mask).passed


def test_iclstm_is_convex_per_step_but_not_jointly():
    m = _model("iclstm", seed=1)
    joint = certify(m, window=T)
    assert not joint.convex
    assert any("c = f * c + i * g" in r and "different arguments" in r for r in joint.reasons)
    step = certify(m, per_step=True)
    assert step.convex and "per step" in step.scope
    mask = torch.zeros(T, N_IN, dtype=torch.bool)
    mask[-1] = True  # vary only the last step's input: every output is convex in it
    assert jensen_check(m, _windows, 2000, mask=mask, seed=1).passed
    assert not jensen_check(m, _windows, 2000, seed=1).passed  # jointly: Jensen fails


def test_scaled_model_keeps_the_certificate():
    inner = _model("icrnn")
    m = Scaled(inner, [1.0, 2.0], [0.5, 3.0], [10.0], [4.0]).double()
    assert certify(m).convex
    assert jensen_check(m, _windows, 500).passed


def test_monotonicity_follows_the_doubling():
    plain = _model("icrnn", doubled=False)
    assert certify(plain).nondecreasing
    assert monotonicity_check(plain, _windows, 300).passed
    doubled = _model("icrnn")
    cert = certify(doubled)
    assert cert.convex and not cert.nondecreasing
    assert not monotonicity_check(doubled, _windows, 300).passed


def test_torch_layers_use_their_declared_rules():
    torch.manual_seed(0)
    lin1, lin2 = nn.Linear(2, 8), nn.Linear(8, 1)
    with torch.no_grad():
        lin2.weight.abs_()
    assert certify(nn.Sequential(lin1, nn.ReLU(), lin2)).convex  # nonneg weights after a convex layer
    with torch.no_grad():
        lin2.weight.neg_()
    cert = certify(nn.Sequential(lin1, nn.ReLU(), lin2))
    assert cert.curvature == "concave" and not cert.convex
    cert = certify(nn.Sequential(lin1, nn.Tanh(), lin2))
    assert not cert.convex and any("tanh (neither convex nor concave)" in r for r in cert.reasons)


def test_unknown_modules_are_never_silently_convex():
    cert = certify(nn.Sequential(nn.Linear(2, 4), nn.GELU(), nn.Linear(4, 1)))
    assert not cert.convex
    assert any("no rule is known for the operation aten.gelu" in r for r in cert.reasons)


def test_bad_input_is_named():
    m = _model("icnn")
    with pytest.raises(UnknownNameError, match="'pressure'"):
        certify(m, wrt=["pressure"])
    with pytest.raises(ShapeError, match="wrt index 7"):
        certify(m, wrt=[7])
    with pytest.raises(UnknownNameError, match="str"):
        certify("model.pt")
    with pytest.raises(ShapeError, match="window"):
        certify(_model("icrnn"), window=-1)
