"""The affine (ARX) baseline and convex models started at it: exact least squares, certificates, exports."""

import numpy as np
import pytest
import torch

from icctrl.convexity import certify, jensen_check
from icctrl.errors import InvalidValueError, ShapeError
from icctrl.export import to_casadi
from icctrl.nn import AffinePlus, Linear, affine_start_, build, from_config


def _random_linear(n_in=3, n_out=2, lags=4, seed=0):
    torch.manual_seed(seed)
    m = Linear(n_in, n_out, lags=lags)
    with torch.no_grad():
        m.weight.normal_()
        m.bias.normal_()
    return m


def test_fit_recovers_a_causal_affine_map_exactly():
    true = _random_linear()
    x = torch.randn(60, 7, 3, dtype=torch.float64)
    fitted = Linear(3, 2, lags=4).double().fit(x, true.double()(x).detach(), ridge=0.0)
    torch.testing.assert_close(fitted.weight, true.weight.double(), atol=1e-8, rtol=0)
    torch.testing.assert_close(fitted.bias, true.bias.double(), atol=1e-8, rtol=0)


def test_held_inputs_fit_equals_the_whole_window_least_squares():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(200, 3))
    x = np.repeat(z[:, None], 5, axis=1)
    y = np.tanh(z @ rng.normal(size=(3, 10))).reshape(200, 5, 2)  # a nonlinear map of the held input
    pred = Linear(3, 2, lags=5).double().fit(x, y)(torch.as_tensor(x)).detach().numpy()
    design = np.concatenate([z, np.ones((200, 1))], axis=1)
    coef = np.linalg.lstsq(design, y.reshape(200, -1), rcond=None)[0]
    best = ((design @ coef - y.reshape(200, -1)) ** 2).mean()
    assert ((pred - y) ** 2).mean() == pytest.approx(best, rel=1e-6)


def test_output_depends_only_on_the_past():
    m = _random_linear()
    x = torch.randn(2, 6, 3)
    x2 = x.clone()
    x2[:, 4:] += 1.0
    torch.testing.assert_close(m(x)[:, :4], m(x2)[:, :4])
    assert not torch.allclose(m(x)[:, 4:], m(x2)[:, 4:])


def test_bad_arguments_are_named():
    with pytest.raises(InvalidValueError, match="lags"):
        Linear(3, 2, lags=0)
    with pytest.raises(InvalidValueError, match="hidden"):
        build("linear", 3, 2, hidden=8)
    with pytest.raises(ShapeError, match=r"\(n, T, 3\)"):
        Linear(3, 2).fit(np.zeros((4, 5, 2)), np.zeros((4, 5, 2)))
    with pytest.raises(InvalidValueError, match="non-finite"):
        Linear(3, 2).fit(np.full((4, 5, 3), np.nan), np.zeros((4, 5, 2)))


@pytest.mark.parametrize("name", ["icnn", "icrnn", "iclrnn"])
def test_affine_path_keeps_joint_convexity(name):
    torch.manual_seed(0)
    m = build(name, 3, 2, hidden=8, layers=2, affine=3)
    assert isinstance(m, AffinePlus) and m.name == name
    with torch.no_grad():
        m.affine.weight.normal_()
    assert certify(m, window=4).convex
    window = lambda n: torch.randn(n, 4, 3, dtype=torch.float64) * 2  # noqa: E731
    m = m.double()
    assert jensen_check(lambda x: m(x).reshape(len(x), -1), window, 400, tol=1e-9).passed


def test_affine_path_on_a_non_convex_model_is_refused_and_fails_jensen():
    torch.manual_seed(0)
    m = build("lstm", 3, 2, hidden=8, layers=1, affine=3)
    cert = certify(m, window=4)
    assert not cert.convex and cert.reasons
    with torch.no_grad():
        for p in m.convex.parameters():
            p.mul_(4.0)
    window = lambda n: torch.randn(n, 4, 3, dtype=torch.float64) * 2  # noqa: E731
    m = m.double()
    assert not jensen_check(lambda x: m(x).reshape(len(x), -1), window, 400, tol=1e-9).passed


def test_iclstm_with_affine_path_stays_per_step_convex_only():
    m = build("iclstm", 3, 2, hidden=8, layers=2, affine=3)
    assert certify(m, per_step=True).convex
    assert not certify(m, window=3).convex


@pytest.mark.parametrize("name", ["linear", "icrnn", "iclstm", "icnn"])
def test_casadi_export_matches_torch(name):
    torch.manual_seed(2)
    m = _random_linear(lags=3) if name == "linear" else build(name, 3, 2, hidden=6, layers=2, affine=3)
    if name != "linear":
        with torch.no_grad():
            m.affine.weight.normal_()
            m.affine.bias.normal_()
    m = m.double()
    x = torch.randn(6, 3, dtype=torch.float64)
    f = to_casadi(m, window=6)
    np.testing.assert_allclose(np.array(f(x.numpy())), m(x[None])[0].detach().numpy(), atol=1e-9)


def test_config_round_trip_with_affine_path():
    m = build("icrnn", 3, 2, hidden=8, layers=1, affine=4)
    m2 = from_config(m.config)
    m2.load_state_dict(m.state_dict())
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(m(x), m2(x))


def test_affine_start_begins_at_the_affine_fit_and_still_learns():
    torch.manual_seed(0)
    z = torch.randn(300, 3)
    x = z[:, None].expand(300, 4, 3).contiguous()
    y = torch.stack([(z**2).sum(-1), z[:, 0] - z[:, 1]], -1)[:, None].expand(300, 4, 2).contiguous()
    affine_err = float(((Linear(3, 2, lags=4).fit(x, y)(x) - y) ** 2).mean())
    m = affine_start_(build("icrnn", 3, 2, hidden=16, layers=2, affine=4), x, y)
    start_err = float(((m(x) - y) ** 2).mean())
    assert start_err <= affine_err * 1.05
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        loss = ((m(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
    assert float(loss) < 0.5 * affine_err  # the convex part learns the curvature the affine fit misses
    with pytest.raises(InvalidValueError, match="AffinePlus"):
        affine_start_(build("icrnn", 3, 2, hidden=4, layers=1), x, y)
