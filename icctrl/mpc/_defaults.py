"""Ready controllers on the shipped default models: `default_controller("cstr", model="iclstm")`, a preset of
`controller(plant, model, ...)` with the papers' CSTR weights and LMPC contraction."""

from __future__ import annotations

import numpy as np

from icctrl.errors import UnknownNameError
from icctrl.mpc._controller import Controller
from icctrl.mpc._factory import controller, model_window, predictor_for  # noqa: F401  (re-exported here)
from icctrl.mpc._problem import Lyapunov, MPCProblem

#: CSTR figure of merit: V(x) = dxᵀP dx on the deviation state, plus R on inputs normalised by their range.
CSTR_R = np.array([20.0, 20.0])
CSTR_SETTLE = (0.02, 3.0)  # |ΔC_A| < 0.02 kmol/m3 and |ΔT| < 3 K
CSTR_OFFSET = (0.005, 0.5)  # final offset goal: |ΔC_A| < 0.005 kmol/m3 and |ΔT| < 0.5 K
CSTR_STARTS = ((-1.5, 70.0), (0.75, -40.0), (1.5, -70.0))  # papers' initial deviations (ΔC_A, ΔT)
CSTR_X_SCALE = (1.0, 50.0)

#: Controllers of the demo: name -> (model spec, default solver). The first-principles NMPC runs on exact-Hessian SQP:
#: the closed-loop cost of converged Ipopt at under half its CPU time per step, and it stops itself at a deadline
#: (docs/reliability.md); solver="ipopt" gives the Ipopt reference.
CSTR_CONTROLLERS = {
    "first_principles": ("first_principles", "sqp"),
    "iclstm": ("iclstm", "rti"),
    "lstm": ("lstm", "rti"),
    "linear": ("linear", "rti"),  # the affine least-squares model: linear MPC, one QP per step
    "convex": ("picnn_cost", "sqp"),
}


def cstr_lyapunov():
    from plants import CSTR

    return Lyapunov(CSTR().P, decay=0.95, rho_min=2.0)


def cstr_problem(predictor, horizon: int = 10, *, lyapunov: bool = True, shooting: str | None = None,
                 **kw) -> MPCProblem:
    """The CSTR LMPC of the papers in our units: stage cost V(x̂) + R‖Δu‖², LMPC contraction of V."""
    from plants import CSTR

    plant = CSTR()
    return MPCProblem(predictor, horizon, u_lb=plant.u_lb, u_ub=plant.u_ub, u_ref=plant.u_ss, x_ref=plant.x_ss,
                      Q=plant.P, R=CSTR_R, lyapunov=cstr_lyapunov() if lyapunov else None,
                      cost_scale=100.0, input_names=plant.input_names, x_scale=CSTR_X_SCALE,
                      shooting=shooting or ("multiple" if predictor.step_function() is not None else "single"), **kw)


def default_controller(plant: str = "cstr", model: str = "iclstm", *, solver: str | None = None,
                       horizon: int = 10, lyapunov: bool = True, shooting: str | None = None,
                       **options) -> Controller:
    """A ready Controller for the CSTR: "first_principles", a shipped default ("iclstm", "lstm", "iclrnn",
    "linear", "icrnn_cost"), "convex" (the certified-convex controller), a checkpoint path, or a loaded model.
    Its `step` takes the state in absolute units; `options` go to `controller` (x_ub, soft, x_ref, …)."""
    if str(plant).lower() != "cstr":
        raise UnknownNameError(f"no default controllers for plant {plant!r}; available: 'cstr' (any other plant: "
                               f"icctrl.mpc.controller(plant, model))")
    from plants import CSTR

    spec, default_solver = CSTR_CONTROLLERS.get(model, (model, None)) if isinstance(model, str) else (model, None)
    if shooting is not None:
        options["shooting"] = shooting
    return controller(CSTR(), spec, horizon=horizon, Q=CSTR().P, R=CSTR_R, solver=solver or default_solver,
                      lyapunov=cstr_lyapunov() if lyapunov else None, cost_scale=100.0, x_scale=CSTR_X_SCALE,
                      **options)
