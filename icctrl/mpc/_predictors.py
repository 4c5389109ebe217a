"""How a horizon of predictions is made from the current state x₀ and the planned inputs U.

- `FirstPrinciples`: the plant's own CasADi dynamics rolled out (the reference NMPC).
- `OneStepModel`: the papers' formulation — a model of one sampling period, inputs [x_k, u_k] held over its
  sub-steps, rolled out by feeding each predicted state back as the next input.
- `HorizonModel`: a model of the whole horizon, inputs [x₀, u_k] at step k, no feedback of predictions. With a
  jointly convex model doubled only on u and a nonnegative cost output it gives a certified convex problem.
"""

from __future__ import annotations

import casadi as ca
import numpy as np

from icctrl.convexity import Sym, Tracer, run_trace
from icctrl.convexity._lattice import C, M, S
from icctrl.errors import ShapeError, UnknownNameError
from icctrl.export import second_order, to_casadi


class Predictor:
    """Common interface: `predict(x0, U)` in CasADi, `trace` for the certificate."""

    kind = "state"  # "state": outputs are the predicted states; "cost": outputs are predicted stage costs
    nx: int
    nu: int
    nd: int = 0  # measured disturbances the predictions take, one row of D per step
    n_out: int
    label: str

    @property
    def d_nom(self) -> np.ndarray:
        """Disturbance assumed when a solve is given none."""
        return np.zeros(self.nd)

    def predict(self, x0: ca.MX, U: ca.MX, D: ca.MX | None = None) -> ca.MX:  # pragma: no cover - abstract
        """(N × n_out) predictions for x0 (nx × 1), U (N × nu) and measured disturbances D (N × nd)."""
        raise NotImplementedError

    def trace(self, tr: Tracer, x0: list[Sym], us: list[list[Sym]]) -> list[Sym]:  # pragma: no cover
        raise NotImplementedError

    def step_function(self) -> ca.Function | None:
        """(x, u, d) → x_next for one sampling period ((x, u) → x_next when nd = 0), when the predictor has
        one (enables multiple shooting)."""
        return None


def _period(args, y) -> ca.Function:
    """The period function (x, u, d) → x_next; (x, u) → x_next when there are no disturbances."""
    return ca.Function("period", args if args[2].numel() else args[:2], [y])


def call_period(fn: ca.Function, x, u, d):
    """One period of a step function, with or without its disturbance argument (x, u[, d])."""
    return fn(x, u, d) if fn.n_in() == 3 else fn(x, u)


def predict(predictor: Predictor, x0, U, D):
    """Predictions of any predictor; one written without disturbances (nd = 0) is called as predict(x0, U)."""
    return predictor.predict(x0, U, D) if getattr(predictor, "nd", 0) else predictor.predict(x0, U)


def _disturbances(D, N: int, nd: int):
    return ca.DM.zeros(N, nd) if D is None else D


def _check_model(model, n_in: int, n_out: int, what: str) -> None:
    if model.n_in != n_in or model.n_out != n_out:
        raise ShapeError(f"{what}: model maps {model.n_in} inputs to {model.n_out} outputs, the plant needs "
                         f"{n_in} inputs (states + inputs) and {n_out} outputs")


class FirstPrinciples(Predictor):
    """The plant's RK4 CasADi step rolled over the horizon."""

    def __init__(self, plant, substeps: int | None = None):
        self.plant, self.nx, self.nu, self.n_out = plant, plant.nx, plant.nu, plant.nx
        self.nd = plant.nd
        self.step = plant.casadi_step(substeps=substeps)
        self.label = f"first-principles {plant.name}"

    @property
    def d_nom(self) -> np.ndarray:
        return np.asarray(self.plant.d_nom, dtype=float).reshape(self.nd)

    def predict(self, x0, U, D=None):
        D = D if D is not None else ca.repmat(ca.DM(self.d_nom).T, U.shape[0], 1)
        x, xs = x0, []
        for k in range(U.shape[0]):
            x = self.step(x, U[k, :].T, D[k, :].T)
            xs.append(x.T)
        return ca.vertcat(*xs)

    def step_function(self):
        x, u, d = ca.MX.sym("x", self.nx), ca.MX.sym("u", self.nu), ca.MX.sym("d", self.nd)
        return _period([x, u, d], self.step(x, u, d))

    def trace(self, tr, x0, us):
        out = Sym(C.UNKNOWN, tuple(M.NONE for _ in tr.groups), S.UNKNOWN, f"{self.plant.name} dynamics")
        tr.reasons.append(f"{self.plant.name} first-principles dynamics: no convexity rule (nonlinear kinetics)")
        return [out] * len(us)


class OneStepModel(Predictor):
    """The papers' formulation: x_(k+1) = last output of model([x_k, u_k(, d_k)] repeated over `window`
    sub-steps); a model trained with `nd` measured disturbances as extra inputs takes them per step."""

    def __init__(self, model, nx: int, nu: int, window: int | None = None, nd: int = 0):
        _check_model(model, nx + nu + nd, nx, "one-step predictor")
        self.model, self.nx, self.nu, self.n_out, self.nd = model, nx, nu, nx, int(nd)
        self.window = int(window or getattr(model, "window", None) or 1)
        self.f = to_casadi(model, window=self.window)
        self.label = f"{getattr(model, 'name', 'model')} one-step, prediction fed back"

    def predict(self, x0, U, D=None):
        period = self.step_function()
        D = _disturbances(D, U.shape[0], self.nd)
        x, xs = x0, []
        for k in range(U.shape[0]):
            x = call_period(period, x, U[k, :].T, D[k, :].T)
            xs.append(x.T)
        return ca.vertcat(*xs)

    def step_function(self):
        x, u, d = ca.MX.sym("x", self.nx), ca.MX.sym("u", self.nu), ca.MX.sym("d", self.nd)
        row = ca.horzcat(x.T, u.T, d.T)
        y = self.f(ca.repmat(row, self.window, 1))[self.window - 1, :].T
        return _period([x, u, d], y)

    def trace(self, tr, x0, us):
        x, outs = x0, []
        ds = [tr.constant(f"d[{i}]") for i in range(self.nd)]
        for k, u in enumerate(us):
            tr.scope = f"horizon step {k + 1}: "
            y = run_trace(self.model, tr, [x + u + ds] * self.window)[-1]
            outs.append(y)
            x = [Sym(y.curvature, y.mono, y.sign, f"x̂_{k + 1}[{i}]") for i in range(self.nx)]
        tr.scope = ""
        return outs


class HorizonModel(Predictor):
    """A model of the whole horizon, no feedback of predictions: either a sequence model with inputs [x₀, u_k]
    at step k, or a flat model of [x₀, u₀, …, u_(N−1)] (n_in = nx + N·nu) giving all N outputs at once."""

    def __init__(self, model, nx: int, nu: int, horizon: int, kind: str = "cost"):
        self.flat = model.n_in == nx + horizon * nu and horizon > 1
        per_step = model.n_out // horizon if self.flat else model.n_out
        n_out = nx if kind == "state" else per_step
        if self.flat:
            _check_model(model, nx + horizon * nu, n_out * horizon, "flat horizon predictor")
        else:
            _check_model(model, nx + nu, n_out, "horizon predictor")
        self.model, self.nx, self.nu, self.n_out, self.kind, self.N = model, nx, nu, n_out, kind, horizon
        self.f = to_casadi(model, window=1 if self.flat else horizon)
        self.label = f"{getattr(model, 'name', 'model')} over the horizon, no feedback ({kind})"

    def predict(self, x0, U, D=None):
        if self.flat:
            y = self.f(ca.horzcat(x0.T, ca.vec(U.T).T))
            return ca.reshape(y, self.n_out, U.shape[0]).T
        return self.f(ca.horzcat(ca.repmat(x0.T, U.shape[0], 1), U))

    def second_order(self) -> ca.Function:
        """(x0, u = vec(Uᵀ), mu) → (y = vec(Yᵀ), ∂y/∂u, ∂²⟨mu, y⟩/∂u²) of a flat model's predictions, read from its
        layers (icctrl.export.second_order)."""
        if not self.flat:
            raise UnknownNameError(f"{self.label}: second_order() reads flat horizon models only")
        N, nx, nu = self.N, self.nx, self.nu
        x0, u, mu = ca.MX.sym("x0", nx), ca.MX.sym("u", N * nu), ca.MX.sym("mu", N * self.n_out)
        so = second_order(self.model, 1, [(0, nx + k) for k in range(N * nu)])
        return ca.Function("prediction_second_order", [x0, u, mu], so(ca.horzcat(x0.T, u.T), mu),
                           ["x0", "u", "mu"], ["y", "A", "H"])

    def trace(self, tr, x0, us):
        if self.flat:
            y = run_trace(self.model, tr, [x0 + [s for u in us for s in u]])[0]
            return [y] * len(us)
        return run_trace(self.model, tr, [x0 + u for u in us])


def rollout(predictor: Predictor, x0, U) -> np.ndarray:
    """Numeric predictions (N × n_out) of a predictor, for plots and tests."""
    X0 = ca.MX.sym("x0", predictor.nx)
    Us = ca.MX.sym("U", *np.shape(U))
    f = ca.Function("rollout", [X0, Us], [predictor.predict(X0, Us)])
    return np.array(f(np.asarray(x0, float), np.asarray(U, float)))
