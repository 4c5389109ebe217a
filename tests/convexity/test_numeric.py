"""The numeric convexity checks pass on convex/monotone functions and FAIL on functions that are not."""

import json
import math

import pytest
import torch
from torch.autograd.functional import hessian

from icctrl.convexity._numeric import (
    CheckResult,
    hessian_check,
    jensen_check,
    lipschitz_estimate,
    monotonicity_check,
)
from icctrl.errors import InvalidValueError, ShapeError, UnknownNameError

F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run much faster on one thread than on two contended ones; restore afterwards."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def normal(*shape, scale=1.0):
    """Sampler of N(0, scale²) points of the given shape."""
    return lambda n, gen: scale * torch.randn(n, *shape, generator=gen, dtype=F64)


class TinyICNN(torch.nn.Module):
    """Softplus ICNN: z_{k+1} = softplus(softplus(P_k) z_k + W_k x + b_k), non-negative weights on z."""

    def __init__(self, n_in=3, width=16, depth=3):
        super().__init__()
        self.wx = torch.nn.ModuleList(torch.nn.Linear(n_in, width) for _ in range(depth))
        self.pz = torch.nn.ParameterList(torch.nn.Parameter(torch.randn(width, width)) for _ in range(depth - 1))
        self.p_out = torch.nn.Parameter(torch.randn(1, width))
        self.skip = torch.nn.Linear(n_in, 1)

    def forward(self, x):
        sp = torch.nn.functional.softplus
        z = sp(self.wx[0](x))
        for p, wx in zip(self.pz, self.wx[1:]):
            z = sp(z @ sp(p).T + wx(x))
        return z @ sp(self.p_out).T + self.skip(x)


@pytest.fixture(scope="module")
def icnn():
    torch.manual_seed(1)
    return TinyICNN().double().eval()


@pytest.fixture(scope="module")
def lstm():
    torch.manual_seed(0)
    model = torch.nn.LSTM(2, 8, batch_first=True).double().eval()
    return lambda x: model(x)[0]


# ------------------------------------------------------------------------------------------------ jensen


@pytest.mark.parametrize(
    "f, shape",
    [(lambda x: x**2, (3,)), (lambda x: torch.logsumexp(x, dim=1), (5,)), (lambda x: x.abs().sum(1), (4,))],
    ids=["square", "logsumexp", "l1"],
)
def test_jensen_passes_on_convex_functions(f, shape):
    res = jensen_check(f, normal(*shape, scale=2.0), 512)
    assert res.passed and res.name == "jensen" and res.n == 512
    assert res.worst <= 1e-9


def test_jensen_passes_on_nonnegative_softplus_icnn(icnn):
    for thetas in ("random", "midpoint"):
        res = jensen_check(icnn, normal(3, scale=3.0), 512, thetas=thetas)
        assert res.passed, res.to_dict()


@pytest.mark.parametrize("f", [lambda x: -(x**2), torch.sin], ids=["neg_square", "sin"])
def test_jensen_fails_on_nonconvex_functions(f):
    res = jensen_check(f, normal(3, scale=2.0), 256)
    assert not res.passed and res.worst > 0.1


def test_jensen_fails_on_random_lstm(lstm):
    res = jensen_check(lstm, normal(4, 2, scale=2.0), 512)
    assert not res.passed
    assert res.worst > 0.05, f"worst LSTM Jensen gap only {res.worst}"
    assert len(res.where["output_index"]) == 2  # (time step, hidden unit)


def test_jensen_concave_flag_flips_the_inequality():
    assert jensen_check(lambda x: -(x**2), normal(3), concave=True).passed
    assert not jensen_check(lambda x: x**2, normal(3), concave=True).passed


def test_jensen_where_reproduces_the_violation(lstm):
    res = jensen_check(lstm, normal(4, 2, scale=2.0), 256, seed=3)
    w = res.where
    a, b, x = (torch.tensor([w[k]], dtype=F64) for k in ("a", "b", "x"))
    theta = w["theta"]
    assert torch.allclose(x, theta * a + (1 - theta) * b, atol=1e-15)
    t, h = w["output_index"]
    with torch.no_grad():
        fa, fb, fx = (lstm(v)[0, t, h].item() for v in (a, b, x))
    assert fx - theta * fa - (1 - theta) * fb == pytest.approx(res.worst, abs=1e-12)


def test_masked_jensen_checks_convexity_in_a_subset_of_inputs():
    # x² (2 + sin 3y): convex in x for every y, curvature in y changes sign.
    def f(v):
        return v[:, 0] ** 2 * (2 + torch.sin(3 * v[:, 1]))

    sampler = normal(2, scale=2.0)
    in_x, in_y = torch.tensor([True, False]), torch.tensor([False, True])
    assert jensen_check(f, sampler, mask=in_x).passed
    assert not jensen_check(f, sampler, mask=in_y).passed
    assert not jensen_check(f, sampler).passed
    res = jensen_check(f, sampler, mask=in_x)
    assert res.where["a"][1] == res.where["b"][1]  # the unmasked input is shared by both ends


def test_masked_jensen_product_of_different_arguments_is_convex_per_step_only():
    # softplus(x_0)·softplus(x_1): convex nondecreasing in each step's input, not jointly (the IC-LSTM trap).
    def f(v):
        sp = torch.nn.functional.softplus
        return sp(v[:, 0, 0]) * sp(v[:, 1, 0])

    sampler = normal(2, 1, scale=3.0)
    step0 = torch.zeros(2, 1, dtype=torch.bool)
    step0[0] = True
    assert jensen_check(f, sampler, mask=step0).passed
    assert jensen_check(f, sampler, mask=~step0).passed
    joint = jensen_check(f, sampler, 1024)
    assert not joint.passed and joint.worst > 0.01


# ------------------------------------------------------------------------------------------ monotonicity


@pytest.mark.parametrize("f", [torch.nn.functional.softplus, torch.exp], ids=["softplus", "exp"])
def test_monotonicity_passes_on_nondecreasing_functions(f):
    res = monotonicity_check(f, normal(3))
    assert res.passed and res.name == "monotonicity"
    assert res.n == 256 * 4  # 3 coordinate rays and one random ray per point


def test_monotonicity_passes_on_icnn_with_nonnegative_weights_when_the_skip_is_too():
    torch.manual_seed(2)
    model = TinyICNN().double().eval()
    with torch.no_grad():
        for lin in [*model.wx, model.skip]:
            lin.weight.abs_()
    assert monotonicity_check(model, normal(3, scale=2.0)).passed


@pytest.mark.parametrize("f", [lambda x: -x, torch.sin], ids=["neg", "sin"])
def test_monotonicity_fails_on_decreasing_parts(f):
    res = monotonicity_check(f, normal(3, scale=2.0))
    assert not res.passed and res.worst > 1e-3


def test_monotonicity_direction_minus_one_checks_nonincreasing():
    assert monotonicity_check(lambda x: -x, normal(3), direction=-1).passed
    assert not monotonicity_check(torch.exp, normal(3), direction=-1).passed


def test_monotonicity_masked_and_where_reproduces():
    def f(v):
        return v[:, 0] - v[:, 1] ** 2  # increasing in x, not monotone in y

    assert monotonicity_check(f, normal(2), mask=torch.tensor([True, False])).passed
    res = monotonicity_check(f, normal(2), mask=torch.tensor([False, True]))
    assert not res.passed
    w = res.where
    x, xs = torch.tensor([w["x"]], dtype=F64), torch.tensor([w["x_step"]], dtype=F64)
    assert x[0, 0] == xs[0, 0]  # the unmasked coordinate did not move
    assert -(f(xs) - f(x)).item() == pytest.approx(res.worst, abs=1e-15)


def test_monotonicity_fails_on_lstm(lstm):
    assert not monotonicity_check(lstm, normal(4, 2, scale=2.0), 64, step=0.5).passed


# ---------------------------------------------------------------------------------------------- hessian


@pytest.mark.parametrize(
    "f", [lambda x: x**2, lambda x: torch.logsumexp(x, dim=1)], ids=["square", "logsumexp"]
)
def test_hessian_passes_on_convex_functions(f):
    res = hessian_check(f, normal(4, scale=2.0))
    assert res.passed and res.name == "hessian" and res.n == 32


def test_hessian_passes_on_softplus_icnn(icnn):
    assert hessian_check(icnn, normal(3, scale=2.0)).passed


def test_hessian_fails_on_negative_square_and_where_reproduces():
    res = hessian_check(lambda x: -(x**2), normal(3))
    assert not res.passed and res.worst == pytest.approx(1.0)  # −λ_min / max(1, ‖H‖₂) = 2 / 2
    w = res.where
    assert w["min_eigenvalue"] == pytest.approx(-2.0)


def test_hessian_masked_and_where_reproduces_on_lstm(lstm):
    mask = torch.zeros(4, 2, dtype=torch.bool)
    mask[3] = True  # inputs of the last step only
    res = hessian_check(lstm, normal(4, 2, scale=2.0), 8, mask=mask)
    assert not res.passed
    w = res.where
    assert w["coordinates"] == [[3, 0], [3, 1]]
    x = torch.tensor(w["x"], dtype=F64)
    t, h = w["output_index"]

    def g(z):
        full = torch.cat([x[:3], z[None]])
        return lstm(full[None])[0, t, h]

    lam = torch.linalg.eigvalsh(hessian(g, x[3]))
    assert lam[0].item() == pytest.approx(w["min_eigenvalue"], rel=1e-9, abs=1e-12)
    assert res.worst == pytest.approx(-lam[0].item() / max(1.0, lam.abs().max().item()), rel=1e-9)


# ------------------------------------------------------------------------------------------- lipschitz


def test_lipschitz_estimate_of_linear_map_is_its_spectral_norm():
    torch.manual_seed(3)
    A = torch.randn(5, 3, dtype=F64)
    norm = torch.linalg.matrix_norm(A, ord=2).item()
    res = lipschitz_estimate(lambda x: x @ A.T, normal(3))
    assert res.passed and res.name == "lipschitz_estimate"
    assert res.worst <= norm * (1 + 1e-12)
    assert res.worst == pytest.approx(norm, rel=1e-3)


def test_lipschitz_estimate_of_tanh_linear_is_below_the_norm_and_where_reproduces():
    torch.manual_seed(4)
    A = 3 * torch.randn(4, 6, dtype=F64)
    norm = torch.linalg.matrix_norm(A, ord=2).item()

    def f(x):
        return torch.tanh(x @ A.T)

    res = lipschitz_estimate(f, normal(6, scale=2.0))
    assert res.worst <= norm * (1 + 1e-12)
    assert res.worst >= 0.5 * norm  # the ascent finds the steep region near Ax = 0
    w = res.where
    if w["kind"] == "jacobian":
        jac = torch.autograd.functional.jacobian(lambda v: f(v[None])[0], torch.tensor(w["x"], dtype=F64))
        assert torch.linalg.matrix_norm(jac, ord=2).item() == pytest.approx(res.worst, rel=1e-9)
    else:
        a, b = torch.tensor([w["a"]], dtype=F64), torch.tensor([w["b"]], dtype=F64)
        assert ((f(a) - f(b)).norm() / (a - b).norm()).item() == pytest.approx(res.worst, rel=1e-9)


def test_lipschitz_estimate_sees_a_jump_through_secants():
    def f(x):
        return (x[:, 0] > 0).to(F64)  # zero Jacobian everywhere, unbounded secants across 0

    res = lipschitz_estimate(f, normal(1))
    w = res.where
    assert w["kind"] == "secant" and w["jacobian_sampled"] == 0.0 and res.worst > 1.0
    a, b = torch.tensor([w["a"]], dtype=F64), torch.tensor([w["b"]], dtype=F64)
    assert ((f(a) - f(b)).abs() / (a - b).norm()).item() == pytest.approx(res.worst, rel=1e-12)


def test_lipschitz_estimate_on_lstm_window_is_positive(lstm):
    res = lipschitz_estimate(lstm, normal(4, 2), 32, ascent_steps=3)
    assert 0 < res.worst < math.inf
    assert res.where["jacobian_ascent"] >= res.where["jacobian_sampled"] - 1e-12 or res.where["kind"] == "secant"


# ---------------------------------------------------------------------------------------- plumbing, errors


def test_results_are_json_serialisable_and_deterministic():
    sampler = normal(3)
    for check in (jensen_check, monotonicity_check, hessian_check, lipschitz_estimate):
        res = check(torch.sin, sampler, 16)
        assert isinstance(res, CheckResult)
        assert json.loads(json.dumps(res.to_dict())) == res.to_dict()
        assert check(torch.sin, sampler, 16).to_dict() == res.to_dict()


def test_sampler_taking_only_n_is_seeded_and_leaves_global_rng_alone():
    def sampler(n):
        return torch.randn(n, 3, dtype=F64)

    state = torch.random.get_rng_state()
    first = jensen_check(torch.sin, sampler, 64, seed=5)
    assert torch.equal(state, torch.random.get_rng_state())
    assert jensen_check(torch.sin, sampler, 64, seed=5) == first
    assert jensen_check(torch.sin, sampler, 64, seed=6).where != first.where


def test_float32_module_runs_with_a_warning():
    torch.manual_seed(5)
    model = torch.nn.Linear(3, 2)
    with pytest.warns(RuntimeWarning, match="float32"):
        res = jensen_check(model, normal(3), tol=1e-5)
    assert res.passed


def test_bad_inputs_raise_named_errors():
    sampler = normal(3)
    with pytest.raises(InvalidValueError, match="n must be"):
        jensen_check(torch.sin, sampler, 0)
    with pytest.raises(InvalidValueError, match="non-finite"):
        jensen_check(lambda x: torch.log(x), sampler)
    with pytest.raises(InvalidValueError, match="non-finite"):
        jensen_check(torch.sin, lambda n, gen: torch.full((n, 3), math.nan))
    with pytest.raises(ShapeError, match=r"sampler\(8\) returned shape \(7, 3\)"):
        jensen_check(torch.sin, lambda n, gen: torch.zeros(n - 1, 3), 8)
    with pytest.raises(ShapeError, match=r"mask has shape \(2,\)"):
        monotonicity_check(torch.sin, sampler, mask=torch.tensor([True, False]))
    with pytest.raises(InvalidValueError, match="boolean"):
        hessian_check(torch.sin, sampler, mask=torch.ones(3))
    with pytest.raises(InvalidValueError, match="no input"):
        jensen_check(torch.sin, sampler, mask=torch.zeros(3, dtype=torch.bool))
    with pytest.raises(UnknownNameError, match="'edges'"):
        jensen_check(torch.sin, sampler, thetas="edges")
    with pytest.raises(InvalidValueError, match="direction"):
        monotonicity_check(torch.sin, sampler, direction=2)
    with pytest.raises(InvalidValueError, match="step"):
        monotonicity_check(torch.sin, sampler, step=-1.0)
    with pytest.raises(InvalidValueError, match="tol"):
        jensen_check(torch.sin, sampler, tol=math.nan)
    with pytest.raises(InvalidValueError, match="ascent_steps"):
        lipschitz_estimate(torch.sin, sampler, ascent_steps=-1)
    with pytest.raises(ShapeError, match="tuple"):
        jensen_check(lambda x: (x, x), sampler)
    with pytest.raises(ShapeError, match=r"f returned shape \(1,\)"):
        jensen_check(lambda x: x.sum().reshape(1), sampler)
