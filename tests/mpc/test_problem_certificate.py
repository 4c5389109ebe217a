"""The certificate of assembled MPC problems: the papers' formulation is refused with the right reason, the
horizon formulation with a partially convex model is certified and its objective passes a Jensen check."""

import casadi as ca
import numpy as np
import pytest
import torch

from icctrl.convexity import jensen_check
from icctrl.errors import InfeasibleError, InvalidValueError, ShapeError
from icctrl.mpc import FirstPrinciples, HorizonModel, MPCProblem, OneStepModel
from icctrl.nn import Scaled, build
from plants import CSTR

PLANT = CSTR()
N = 4


def _scaled(model):
    return Scaled(model, np.r_[PLANT.x_ss, PLANT.u_ss, np.tile(PLANT.u_ss, N - 1)][: model.n_in],
                  np.r_[1.0, 50.0, np.tile([1.0, 2.5e5], N)][: model.n_in],
                  np.zeros(model.n_out), np.ones(model.n_out)).double()


def _problem(pred, **kw):
    return MPCProblem(pred, N, u_lb=PLANT.u_lb, u_ub=PLANT.u_ub, u_ref=PLANT.u_ss, x_ref=PLANT.x_ss, Q=PLANT.P,
                      R=[1.0, 1.0], input_names=PLANT.input_names, **kw)


def test_papers_formulation_with_iclrnn_is_refused_for_the_fed_back_prediction():
    torch.manual_seed(0)
    model = _scaled(build("iclrnn", 4, 2, hidden=8, layers=1))
    cert = _problem(OneStepModel(model, 2, 2, window=1)).certificate()
    assert not cert.convex
    assert any("horizon step 2" in r and "weights of mixed sign applied to a convex and concave input" in r
               for r in cert.reasons), cert.reasons


def test_papers_formulation_with_iclstm_names_the_gate_product():
    torch.manual_seed(0)
    model = _scaled(build("iclstm", 4, 2, hidden=8, layers=1))
    cert = _problem(OneStepModel(model, 2, 2, window=3)).certificate()
    assert not cert.convex
    assert any("c = f * c + i * g" in r for r in cert.reasons)


def test_tracking_cost_of_a_convex_prediction_is_not_certified():
    """Even without feedback, (x̂ − r)ᵀQ(x̂ − r) of a convex non-affine x̂ is not a convex function."""
    torch.manual_seed(0)
    model = _scaled(build("icrnn", 4, 2, hidden=8, layers=1, doubled=[2, 3]))
    cert = _problem(HorizonModel(model, 2, 2, N, kind="state")).certificate()
    assert not cert.convex and any("square" in r for r in cert.reasons)


def test_first_principles_problem_is_not_certified():
    cert = _problem(FirstPrinciples(PLANT)).certificate()
    assert not cert.convex and "first-principles" in cert.reasons[0]


@pytest.fixture(scope="module")
def convex_problem():
    torch.manual_seed(0)
    n_in = 2 + 2 * N
    model = build("picnn", n_in, N, hidden=8, layers=2, activation="softplus", convex_inputs=list(range(2, n_in)))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)
    return _problem(HorizonModel(_scaled(model), 2, 2, N, kind="cost"))


def test_horizon_cost_formulation_is_certified(convex_problem):
    cert = convex_problem.certificate()
    assert cert.convex, cert.reasons
    assert cert.wrt == ("C_A0", "Q")


def test_certified_objective_passes_jensen_and_a_refused_one_fails(convex_problem):
    def objective(pb):
        f = ca.Function("J", [pb.w, pb.p], [pb.J])
        p = pb.parameters(PLANT.x_ss + np.array([0.5, -20.0]))

        def batch(v):
            return torch.tensor([float(f(np.r_[vi.numpy(), np.zeros(pb.n_states + pb.n_slack)], p))
                                 for vi in v], dtype=torch.float64)[:, None]

        return batch

    def sampler(n, gen):
        return 2 * torch.rand(n, N * 2, generator=gen, dtype=torch.float64) - 1

    assert jensen_check(objective(convex_problem), sampler, 300, tol=1e-7).passed
    torch.manual_seed(1)
    lstm = _scaled(build("lstm", 4, 2, hidden=8, layers=1))
    refused = _problem(OneStepModel(lstm, 2, 2, window=1), shooting="single")
    assert not refused.certificate().convex
    assert not jensen_check(objective(refused), sampler, 300, tol=1e-7).passed


def test_bad_problem_input_is_named():
    pred = FirstPrinciples(PLANT)
    with pytest.raises(InvalidValueError, match="horizon"):
        MPCProblem(pred, 0, u_lb=PLANT.u_lb, u_ub=PLANT.u_ub)
    with pytest.raises(InfeasibleError, match="empty"):
        MPCProblem(pred, 3, u_lb=PLANT.u_ub, u_ub=PLANT.u_lb)
    with pytest.raises(InfeasibleError, match="rate limits"):
        MPCProblem(pred, 3, u_lb=PLANT.u_lb, u_ub=PLANT.u_ub, du_max=[0.0, 1.0])
    with pytest.raises(ShapeError, match="u_lb"):
        MPCProblem(pred, 3, u_lb=[0.0], u_ub=PLANT.u_ub)
    torch.manual_seed(0)
    with pytest.raises(ShapeError, match="3 inputs"):
        OneStepModel(build("icnn", 3, 2, hidden=4, layers=1), 2, 2)
