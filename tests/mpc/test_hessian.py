"""The Lagrangian's Hessian from the predictor's layers equals CasADi's own, and the SQP solver uses it."""

import casadi as ca
import numpy as np
import pytest

from icctrl.mpc._defaults import default_controller
from icctrl.mpc._hessian import structured_hessian


@pytest.fixture(scope="module")
def convex():
    return default_controller("cstr", "convex")


def test_the_convex_controllers_hessian_equals_casadis(convex):
    pb = convex.problem
    H = structured_hessian(pb)
    assert H is not None
    ref = ca.nlpsol("ref", "sqpmethod", {"x": pb.w, "p": pb.p, "f": pb.J, "g": pb.g},
                    {"print_time": False, "print_header": False, "print_iteration": False,
                     "print_status": False}).get_function("nlp_hess_l")
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.uniform(-1, 1, pb.w.numel())
        p = pb.parameters(pb.x_ref + np.array([rng.uniform(-1, 1), rng.uniform(-40, 40)]))
        lf, lg = rng.uniform(0.1, 2.0), rng.uniform(0.0, 3.0, pb.g.numel())
        a, b = np.array(ca.densify(H(x, p, lf, lg))), np.array(ca.densify(ref(x, p, lf, lg)))
        np.testing.assert_allclose(a, b, atol=1e-10 * np.abs(b).max())
        assert np.abs(b).max() > 1e-3  # a Hessian that is there, not two zeros


def test_the_sqp_back_end_is_given_it(convex):
    h = convex.backend.solver.get_function("nlp_hess_l")
    assert h.name() == "nlp_hess_l" and h.n_instructions() < 100  # the structured one: a few calls, not AD of AD


def test_problems_without_the_structure_keep_casadis_hessian():
    for name in ("lstm", "first_principles", "icrnn_cost"):  # multiple shooting, or a sequence model per step
        assert structured_hessian(default_controller("cstr", name, solver="sqp").problem) is None


def test_the_closed_loop_is_the_same_with_either_hessian(convex, monkeypatch):
    import icctrl.mpc._solvers as S
    from plants import CSTR

    plant = CSTR()
    x0 = plant.x_ss + np.array([0.8, -30.0])

    def run(ctrl):
        x, us = x0, []
        for _ in range(8):
            u, _ = ctrl.step(x)
            us.append(u)
            x = plant.step(x, u)
        return np.array(us)

    ours = run(default_controller("cstr", "convex"))
    monkeypatch.setattr(S, "structured_hessian", lambda problem: None)
    theirs = run(default_controller("cstr", "convex"))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6 * np.abs(theirs).max())
