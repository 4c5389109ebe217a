"""`controller(plant, model, ...)`: a ready `Controller` for any `plants.base.Plant` and any trained model, a
checkpoint path or "first_principles". The CSTR presets of `default_controller` are calls of it."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import casadi as ca
import numpy as np

from icctrl.errors import CheckpointError, InvalidValueError, UnknownNameError
from icctrl.mpc._controller import Controller
from icctrl.mpc._predictors import FirstPrinciples, HorizonModel, OneStepModel
from icctrl.mpc._problem import MPCProblem
from icctrl.mpc._rti import RTISolver
from icctrl.mpc._solvers import CasadiSolver

_PROBLEM_OPTIONS = {n for n in inspect.signature(MPCProblem).parameters} - {"predictor", "horizon", "u_lb", "u_ub"}
_CONTROLLER_OPTIONS = {"warm_start", "state_bounds", "offset_free", "region", "on_extrapolation", "solve_thread"}
_SOLVER_OPTIONS = ({n for n in inspect.signature(CasadiSolver).parameters}
                   | {n for n in inspect.signature(RTISolver).parameters}) - {"problem", "method"}
_STATE_TARGETS = ("state",)
_COST_TARGETS = ("lyapunov", "cost")


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


def _tags(model) -> dict:
    info = getattr(model, "info", {}) or {}
    tags = dict((info.get("train_config") or {}).get("tags") or {})
    meta = (info.get("dataset") or {}).get("meta") or {}
    tags.setdefault("layout", meta.get("layout"))
    if "target" not in tags and meta.get("layout") and meta.get("target_fn") is None:
        tags["target"] = "state"  # trained on the plant's states: the dataset says so
    return tags


def predictor_for(model, plant, horizon: int, kind: str | None = None):
    """The predictor of a trained model: its checkpoint declares the layout and what it predicts (state or
    cost); a model of the whole horizon without that declaration needs `kind`, sizes are never guessed."""
    tags = _tags(model)
    target = kind or tags.get("target")
    layout = tags.get("layout")
    if target is not None and target not in _STATE_TARGETS + _COST_TARGETS:
        raise InvalidValueError(f"model target {target!r} is neither a state nor a cost model")
    if layout in ("multi_step", "horizon_flat") or (layout is None and model.n_in == plant.nx + horizon * plant.nu):
        if target is None:
            raise CheckpointError(f"{getattr(model, 'name', 'model')} is a horizon model whose checkpoint does not "
                                  f"say whether it predicts states or costs; pass kind='state' or kind='cost'")
        return HorizonModel(model, plant.nx, plant.nu, horizon, kind="state" if target == "state" else "cost")
    if target in _COST_TARGETS:
        raise InvalidValueError(f"a one-period cost model cannot be rolled out: {getattr(model, 'name', 'model')}")
    nd = model.n_in - plant.nx - plant.nu
    return OneStepModel(model, plant.nx, plant.nu, window=model_window(model), nd=nd if nd > 0 else 0)


def region_of(model):
    """The training region stored with a model; for a shipped default saved before regions were stored, the
    region of its recipe's dataset (regenerated from the cache); else None with a warning."""
    from icctrl.data import TrainingRegion

    info = getattr(model, "info", {}) or {}
    if info.get("region"):
        return TrainingRegion.from_dict(info["region"])
    tags = _tags(model)
    if tags.get("default") and tags.get("plant"):
        from icctrl.train._defaults import default_dataset, spec

        try:
            return TrainingRegion.from_dataset(default_dataset(spec(tags["plant"], tags["default"])))
        except UnknownNameError:
            pass
    warnings.warn(f"{getattr(model, 'name', 'model')}: no training region stored with the model, so extrapolation "
                  f"cannot be detected (info['extrapolating'] stays False)", stacklevel=3)
    return None


def load_model(plant, model):
    """A trained torch model (physical units) from a model, a checkpoint path or a shipped default name."""
    import icctrl

    if isinstance(model, (str, Path)):
        path = Path(model)
        if path.suffix == ".pt" or path.exists():
            return icctrl.load(path)
        return icctrl.load_default(plant.name, str(model))
    if not hasattr(model, "n_in"):
        raise InvalidValueError(f"model must be a trained icctrl model, a checkpoint path or 'first_principles', "
                                f"got {type(model).__name__}")
    return model


def state_scale(plant) -> np.ndarray:
    """A typical size of each state for normalising: a tenth of its valid range where finite, else |x_ss|."""
    span = np.asarray(plant.x_ub, float) - np.asarray(plant.x_lb, float)
    fallback = np.maximum(np.abs(np.asarray(plant.x_ss, float)), 1.0)
    return np.where(np.isfinite(span) & (span > 0), span / 10, fallback)


def steady_state_correction(problem: MPCProblem, x_ref, u_ref) -> np.ndarray:
    """Linear term −∇_v J(x_ref, v_ref) that makes holding u_ref at x_ref stationary (a convex problem keeps
    it optimal there): removes the offset of a learned cost whose minimum sits off the steady state."""
    p = problem.parameters(x_ref, u_ref, u_ref=u_ref)
    w0 = problem.cold_start(p)
    grad = ca.Function("dJ", [problem.w, problem.p], [ca.gradient(problem.J, problem.w)])
    g = np.array(grad(w0, p)).reshape(-1)[: problem.N * problem.nu] * problem.cost_scale
    return -g.reshape(problem.nu, problem.N).T


def controller(plant, model, *, horizon=10, Q=None, R=None, x_ref=None, u_ref=None, x_lb=None, x_ub=None,
               soft=True, solver=None, **options) -> Controller:
    """A Controller for `plant` on `model` (a trained torch model in physical units, a checkpoint path, a
    shipped default name or "first_principles").

    Defaults: x_ref/u_ref the plant's steady state, Q the plant's `P` when it has one (else the identity on
    states scaled by a tenth of their range), R = 1 on inputs normalised by half their range, no state bounds
    (x_lb/x_ub, soft when `soft`), multiple shooting for one-period models, the offset-free estimate for
    learned one-period state models, the steady-state correction for learned costs. `options` go to
    `MPCProblem` (du_max, lyapunov, terminal_cost, terminal_set, path, …), the `Controller` (offset_free,
    on_extrapolation, region, …) or the solver (tol, max_iter, time_limit, …); an unknown name raises.
    """
    from plants.base import Plant

    if not isinstance(plant, Plant):
        raise InvalidValueError(f"plant must be a plants.base.Plant, got {type(plant).__name__}: {plant!r}")
    unknown = set(options) - _PROBLEM_OPTIONS - _CONTROLLER_OPTIONS - _SOLVER_OPTIONS - {"kind", "steady_state"}
    if unknown:
        raise InvalidValueError(f"unknown options {sorted(unknown)}; problem options: {sorted(_PROBLEM_OPTIONS)}, "
                                f"controller options: {sorted(_CONTROLLER_OPTIONS)}, solver options: "
                                f"{sorted(_SOLVER_OPTIONS)}")
    prob_kw = {k: options.pop(k) for k in list(options) if k in _PROBLEM_OPTIONS}
    ctrl_kw = {k: options.pop(k) for k in list(options) if k in _CONTROLLER_OPTIONS}
    kind, correct = options.pop("kind", None), options.pop("steady_state", True)
    x_ref = plant.x_ss if x_ref is None else x_ref
    u_ref = plant.u_ss if u_ref is None else u_ref
    if isinstance(model, str) and model == "first_principles":
        pred, default_solver, region = FirstPrinciples(plant), "ipopt", None
    else:
        m = load_model(plant, model).double()
        pred = predictor_for(m, plant, horizon, kind)
        default_solver = "ipopt"
        if isinstance(pred, HorizonModel) and pred.kind == "cost":
            default_solver = "clarabel" if m.config.get("activation", "relu") == "relu" else "sqp"
        region = region_of(m)
        if isinstance(pred, OneStepModel):
            ctrl_kw.setdefault("offset_free", 1.0)
            if prob_kw.get("shooting", "multiple") == "multiple":
                default_solver = "rti"  # learned one-period state models: the real-time engine
    ctrl_kw.setdefault("region", region)
    ctrl_kw.setdefault("state_bounds", (plant.x_lb, plant.x_ub))
    x_scale = prob_kw.setdefault("x_scale", state_scale(plant))
    if Q is None:
        Q = getattr(plant, "P", None)
        Q = np.diag(1.0 / np.asarray(x_scale, float) ** 2) if Q is None else Q
    prob_kw.setdefault("shooting", "multiple" if pred.step_function() is not None else "single")
    prob_kw.setdefault("input_names", plant.input_names)

    def build(**extra) -> MPCProblem:
        return MPCProblem(pred, horizon, u_lb=plant.u_lb, u_ub=plant.u_ub, u_ref=u_ref, x_ref=x_ref, Q=Q, R=R,
                          x_lb=x_lb, x_ub=x_ub, soft=soft, **prob_kw, **extra)

    problem = build()
    if pred.kind == "cost" and correct and "linear_cost" not in prob_kw:
        problem = build(linear_cost=steady_state_correction(problem, x_ref, u_ref))
    return Controller(problem, solver or default_solver, **ctrl_kw, **options)
