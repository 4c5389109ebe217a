"""Ready controllers on the shipped default models: `default_controller("cstr", model="iclstm")`."""

from __future__ import annotations

import numpy as np

from icctrl.errors import UnknownNameError
from icctrl.mpc._controller import Controller
from icctrl.mpc._predictors import FirstPrinciples, HorizonModel, OneStepModel
from icctrl.mpc._problem import Lyapunov, MPCProblem

#: CSTR figure of merit: V(x) = dxᵀP dx on the deviation state, plus R on inputs normalised by their range.
CSTR_R = np.array([20.0, 20.0])
CSTR_SETTLE = (0.02, 3.0)  # |ΔC_A| < 0.02 kmol/m3 and |ΔT| < 3 K
CSTR_STARTS = ((-1.5, 70.0), (0.75, -40.0), (1.5, -70.0))  # papers' initial deviations (ΔC_A, ΔT)

#: Controllers of the demo: name -> (model spec, default solver).
CSTR_CONTROLLERS = {
    "first_principles": ("first_principles", "ipopt"),
    "iclstm": ("iclstm", "ipopt"),
    "lstm": ("lstm", "ipopt"),
    "linear": ("linear", "sqp"),  # the affine least-squares model: linear MPC
    "convex": ("picnn_cost", "sqp"),
}


def model_window(model, default: int = 1) -> int:
    """The window a model was trained on (stored with its checkpoint), for the one-step predictor."""
    if getattr(model, "window", None):
        return int(model.window)
    info = getattr(model, "info", {}) or {}
    for key in ("dataset", "train_config"):
        section = info.get(key) or {}
        for d in (section, section.get("meta") or {}):
            if isinstance(d, dict) and d.get("window"):
                return int(d["window"])
    return default


def cstr_problem(predictor, horizon: int = 10, *, lyapunov: bool = True, shooting: str | None = None) -> MPCProblem:
    """The CSTR LMPC of the papers in our units: stage cost V(x̂) + R‖Δu‖², LMPC contraction of V."""
    from plants import CSTR

    plant = CSTR()
    return MPCProblem(predictor, horizon, u_lb=plant.u_lb, u_ub=plant.u_ub, u_ref=plant.u_ss, x_ref=plant.x_ss,
                      Q=plant.P, R=CSTR_R, lyapunov=Lyapunov(plant.P, decay=0.95, rho_min=2.0) if lyapunov else None,
                      cost_scale=100.0, input_names=plant.input_names, x_scale=(1.0, 50.0),
                      shooting=shooting or ("multiple" if predictor.step_function() is not None else "single"))


def predictor_for(model, plant, horizon: int):
    """The predictor of a model: a horizon cost model when its checkpoint says so, else the papers' one-step."""
    info = getattr(model, "info", {}) or {}
    tags = (info.get("train_config") or {}).get("tags") or {}
    layout = tags.get("layout") or (info.get("dataset") or {}).get("meta", {}).get("layout")
    if layout in ("multi_step", "horizon_flat") or model.n_in == plant.nx + horizon * plant.nu:
        kind = "cost" if model.n_out in (1, horizon) and model.n_out != plant.nx else "state"
        return HorizonModel(model, plant.nx, plant.nu, horizon, kind=kind)
    return OneStepModel(model, plant.nx, plant.nu, window=model_window(model))


def default_controller(plant: str = "cstr", model: str = "iclstm", *, solver: str | None = None,
                       horizon: int = 10, lyapunov: bool = True, shooting: str | None = None,
                       **solver_options) -> Controller:
    """A ready Controller for the CSTR: "first_principles", a shipped default ("iclstm", "lstm", "iclrnn",
    "linear", "icrnn_cost"), "convex" (the certified-convex controller), a checkpoint path, or a loaded model.
    Its `step` takes the state in absolute units."""
    if str(plant).lower() != "cstr":
        raise UnknownNameError(f"no default controllers for plant {plant!r}; available: 'cstr'")
    import icctrl
    from plants import CSTR

    p = CSTR()
    spec, default_solver = CSTR_CONTROLLERS.get(model, (model, "ipopt")) if isinstance(model, str) else (model,
                                                                                                      "ipopt")
    if spec == "first_principles":
        pred = FirstPrinciples(p)
    else:
        if isinstance(spec, str):
            m = icctrl.load(spec) if spec.endswith(".pt") else icctrl.load_default("cstr", spec)
        else:
            m = spec
        pred = predictor_for(m.double(), p, horizon)
        if isinstance(pred, HorizonModel) and solver is None:
            default_solver = "clarabel" if m.config.get("activation", "relu") == "relu" else "sqp"
    problem = cstr_problem(pred, horizon, lyapunov=lyapunov, shooting=shooting)
    if isinstance(pred, OneStepModel):  # learned one-period state models: remove offset from model error
        solver_options.setdefault("offset_free", 1.0)
    return Controller(problem, solver or default_solver, state_bounds=(p.x_lb, p.x_ub), **solver_options)
