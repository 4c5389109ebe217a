"""The do-mpc anchor solves the very problem icctrl's Ipopt controller solves (same model, costs, bounds)."""

import numpy as np
import pytest

from icctrl.bench._dompc import DoMPCSolver, available
from icctrl.errors import InvalidValueError
from icctrl.mpc import Controller, FirstPrinciples
from icctrl.mpc._defaults import cstr_problem
from plants import CSTR

pytestmark = pytest.mark.skipif(not available(), reason="do-mpc is the optional extra icctrl[bench]")
PLANT = CSTR()


def test_dompc_plan_equals_ipopt_on_the_same_problem():
    pb = cstr_problem(FirstPrinciples(PLANT), horizon=4, lyapunov=False)
    x = PLANT.from_deviation(np.array([0.75, -40.0]))
    _, ref = Controller(pb, "ipopt", tol=1e-9).step(x)
    ctrl = Controller(pb, "ipopt")
    ctrl.backend = DoMPCSolver(pb)
    ctrl.reset()
    u, info = ctrl.step(x)
    assert info["success"], info["solver_status"]
    np.testing.assert_allclose(info["plan"], ref["plan"], rtol=1e-3, atol=1e-3 * np.abs(PLANT.u_ub).max())
    np.testing.assert_allclose(info["prediction"], ref["prediction"], rtol=1e-4, atol=1e-3)


def test_dompc_refuses_what_it_cannot_state():
    with pytest.raises(InvalidValueError, match="LMPC contraction"):
        DoMPCSolver(cstr_problem(FirstPrinciples(PLANT), horizon=3, lyapunov=True))
