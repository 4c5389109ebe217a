"""The benchmark's DenseICNN potential: certified convex, and both opinions fail once a weight breaks convexity."""

import torch
from torch import nn

import icctrl.ot as O
from icctrl.convexity import certify, jensen_check


def _sampler(d):
    return lambda n: 2.0 * torch.randn(n, d, dtype=torch.float64)


def test_dense_icnn_is_certified_and_passes_jensen():
    net = O.DenseICNN(3, quadratic=0.1).double()
    assert certify(net).convex
    assert jensen_check(lambda u: net(u), _sampler(3), n=512).passed


def test_a_negative_output_weight_fails_certificate_and_jensen():
    torch.manual_seed(0)
    net = O.DenseICNN(3, widths=(16, 16), quadratic=0.0).double()
    net.final = nn.Linear(16, 1, bias=False).double()
    with torch.no_grad():
        net.final.weight.copy_(-torch.rand(1, 16) * 10)  # a concave head: −(convex)
    cert = certify(net)
    assert not cert.convex and any("mixed sign" in r or "output" in r for r in cert.reasons)
    assert not jensen_check(lambda u: net(u), _sampler(3), n=512).passed


def test_quadratic_form_start_gives_the_linear_map():
    a = torch.tensor([[2.0, 0.3], [0.3, 0.7]], dtype=torch.float64)
    net = O.DenseICNN(2, quadratic=0.2).double()
    with torch.no_grad():
        net.final.weight = torch.zeros_like(net.final.weight) + 1e-6  # (almost) switch the network part off
    net.set_quadratic_form(a)
    u = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(net(u).sum(), u)
    torch.testing.assert_close(grad, u.detach() @ a, atol=1e-3, rtol=1e-3)
