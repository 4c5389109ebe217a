"""Linearisations of an MPCProblem for real-time iterations: values and first derivatives of the constraints
and the objective (its Hessian too where it is not constant).

- `IntervalLinearisation` (multiple shooting): the model's one-period Jacobians (x, u) → x_next of all N
  intervals in one call, chained with the affine rest of the problem (whose derivatives hold no model). The
  call is CasADi (mapped MX, SX or compiled C) or, for a learned model, batched forward-mode tangents read from
  its graph ("tangent") or forward differences through its batched values ("differences"), which may refresh
  only some intervals' Jacobians per call (multi-level iterations).
- `GenericLinearisation`: CasADi AD of the whole problem (single-shooting cost models).
"""

from __future__ import annotations

from functools import partial

import casadi as ca
import numpy as np

from icctrl.errors import InvalidValueError
from icctrl.mpc._derivatives import Buffered, evaluator

#: Derivative modes that read the learned model's graph (and so allow multi-level `refresh`).
GRAPH_MODES = ("tangent", "differences")
#: Forward-difference step of "differences", relative to each input's scale (x_scale, u_half).
DIFFERENCE_STEP = 1e-6


def _dense(f: ca.Function, *args) -> list[np.ndarray]:
    return [np.array(ca.DM(o).full()) for o in f(*args)]


class GenericLinearisation:
    """J, g, ∂g/∂w, ∂g/∂p, ∇J (and ∇²J, ∂∇J/∂p unless constant) of the whole problem by CasADi AD."""

    def reset(self) -> None:
        """Nothing is kept between calls."""

    def __init__(self, problem, derivatives: str, hessian: bool):
        w, p = problem.w, problem.p
        grad = ca.gradient(problem.J, w)
        outs = {"J": problem.J, "g": problem.g, "G": ca.jacobian(problem.g, w), "Gp": ca.jacobian(problem.g, p),
                "grad": grad}
        if hessian:
            outs.update(H=ca.jacobian(grad, w), Hp=ca.jacobian(grad, p))
        f = ca.Function("rti_lin", [w, p], [ca.densify(o) for o in outs.values()], ["w", "p"], list(outs))
        self.call = Buffered(evaluator(f, derivatives))
        self.ng, self.nw, self.np = int(problem.g.numel()), int(w.numel()), int(p.numel())

    def __call__(self, w, p) -> dict[str, np.ndarray]:
        r = self.call(w=w, p=p)
        out = {"J": float(r["J"][0]), "g": r["g"].copy(), "grad": r["grad"].copy(),
               "G": r["G"].reshape((self.ng, self.nw), order="F").copy(),
               "Gp": r["Gp"].reshape((self.ng, self.np), order="F").copy()}
        if "H" in r:
            out["H"] = r["H"].reshape((self.nw, self.nw), order="F").copy()
            out["Hp"] = r["Hp"].reshape((self.nw, self.np), order="F").copy()
        return out


class IntervalLinearisation:
    """The same outputs for a multiple-shooting problem, with the model differentiated one period at a time.

    The problem's mapped call X_next = F(X_prev, U) is replaced by a symbol Z; what remains is the model-free
    part g(w, p, Z), J(w, p). The chain rule ∂g/∂w = ∂g/∂w|_Z + ∂g/∂Z · blockdiag(∂F/∂(x, u)) · ∂(X_prev, U)/∂w
    then needs only the N one-period Jacobians, computed in one call ("derivatives": mx, sx, codegen, tangent).

    refresh (tangent or differences): how many intervals get new Jacobians per call; None: all (exact). Otherwise the
    first interval and those whose point moved most since their Jacobian was taken (the stored ones follow the
    plan's shift); values, and so the constraint residuals, are always exact.
    """

    def __init__(self, problem, derivatives: str, hessian: bool, refresh: int | None = None):
        X_prev, U_t, D_t, X_next = problem.dynamics
        w, p = problem.w, problem.p
        nx, nu, N = problem.nx, problem.nu, problem.N
        step = problem.period_fn
        with_d = step.n_in() == 3  # (x, u, d): measured disturbances enter the period as parameters
        nd = int(D_t.size1()) if with_d else 0
        self.nx, self.nu, self.nxu, self.N = nx, nu, nx + nu + nd, N
        self.ng, self.nw, self.np = int(problem.g.numel()), int(w.numel()), int(p.numel())
        Z = ca.MX.sym("Z", nx, N)
        g, J = ca.graph_substitute([problem.g, problem.J], [X_next], [Z])
        grad = ca.gradient(J, w)
        z = ca.vec(Z)
        outs = {"J": J, "g": g, "G": ca.jacobian(g, w), "Gp": ca.jacobian(g, p), "Gz": ca.jacobian(g, z),
                "grad": grad}
        if hessian:
            outs.update(H=ca.jacobian(grad, w), Hp=ca.jacobian(grad, p))
        rest = ca.Function("rti_rest", [w, p, z], [ca.densify(o) for o in outs.values()], ["w", "p", "z"],
                           list(outs))
        self.rest = Buffered(rest)
        xin = ca.vec(ca.vertcat(X_prev, U_t, *([D_t] if with_d else [])))  # interval inputs, affine in (w, p)
        aff = ca.Function("rti_inputs", [w, p], [ca.densify(ca.jacobian(xin, w)), ca.densify(ca.jacobian(xin, p)),
                                               xin])
        self.Ew, self.Ep, c0 = _dense(aff, np.zeros(self.nw), np.zeros(self.np))
        self.c0 = c0.reshape(-1)
        graph = derivatives in GRAPH_MODES
        if refresh is not None and (not graph or not 1 <= int(refresh) <= N):
            raise InvalidValueError(f"refresh must be None or an interval count in [1, {N}] with derivatives "
                                    f"{' or '.join(map(repr, GRAPH_MODES))}, got {refresh!r} with {derivatives!r}")
        self.refresh = None if refresh is None or int(refresh) == N else int(refresh)
        self.tangents = None
        if graph:
            from icctrl.export import PeriodTangents

            model, window = getattr(problem.predictor, "model", None), getattr(problem.predictor, "window", None)
            if model is None or window is None:
                raise InvalidValueError(f"derivatives={derivatives!r} needs a learned one-period model, not "
                                        f"{problem.predictor.label}")
            self.tangents = PeriodTangents(model, window)
            self.scale = np.concatenate([problem.x_scale, problem.u_half, np.ones(nd)])
            self.use(derivatives)
            self.points = self.jac = None  # where each interval's stored Jacobian was taken, and it
        else:
            x, u, d = ca.MX.sym("x", nx), ca.MX.sym("u", nu), ca.MX.sym("d", nd)
            y = step(x, u, d) if with_d else step(x, u)
            jac = ca.jtimes(y, ca.vertcat(x, u, d), ca.DM.eye(nx), True).T  # nx adjoint sweeps (nx < nx + nu)
            period = ca.Function("period_lin", [x, u, d], [y, jac], ["x", "u", "d"], ["y", "jac"])
            self.period = Buffered(evaluator(period.map(N), derivatives))
        self.refreshed = N  # intervals whose Jacobians the last call computed
        cols = np.arange(self.nxu * N)
        self._rows = (cols[None, :] // self.nxu) * nx + np.arange(nx)[:, None]
        self._cols = np.broadcast_to(cols, self._rows.shape)

    def __call__(self, w, p) -> dict[str, np.ndarray]:
        w, p = np.asarray(w, float).reshape(-1), np.asarray(p, float).reshape(-1)
        xin = (self.Ew @ w + self.Ep @ p + self.c0).reshape((self.nxu, self.N), order="F")
        if self.tangents is not None:
            y, jac = self._tangent(xin.T)
        else:
            nxu = self.nx + self.nu
            r = self.period(x=xin[: self.nx], u=xin[self.nx: nxu], d=xin[nxu:])
            y, jac = r["y"], r["jac"].reshape((self.nx, self.nxu * self.N), order="F")
        BD = np.zeros((self.nx * self.N, self.nxu * self.N))
        BD[self._rows, self._cols] = jac
        a = self.rest(w=w, p=p, z=y)
        Gz = a["Gz"].reshape((self.ng, self.nx * self.N), order="F")
        chain = Gz @ BD
        out = {"J": float(a["J"][0]), "g": a["g"].copy(), "grad": a["grad"].copy(),
               "G": a["G"].reshape((self.ng, self.nw), order="F") + chain @ self.Ew,
               "Gp": a["Gp"].reshape((self.ng, self.np), order="F") + chain @ self.Ep}
        if "H" in a:
            out["H"] = a["H"].reshape((self.nw, self.nw), order="F").copy()
            out["Hp"] = a["Hp"].reshape((self.nw, self.np), order="F").copy()
        return out

    def use(self, derivatives: str) -> str:
        """Switch the graph's Jacobians between "tangent" (exact forward mode) and "differences"."""
        if derivatives not in GRAPH_MODES or self.tangents is None:
            raise InvalidValueError(f"cannot switch to derivatives={derivatives!r} on this linearisation")
        self._derive = (partial(self.tangents.differences, step=DIFFERENCE_STEP * self.scale)
                        if derivatives == "differences" else self.tangents)
        return derivatives

    def reset(self) -> None:
        """Forget the stored Jacobians: the next call computes all of them (a new episode, after a failure)."""
        if self.tangents is not None:
            self.points = self.jac = None

    def _tangent(self, XU: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(y as vec(X_next), [J_0 … J_(N−1)]) by tangents, refreshing `refresh` intervals' Jacobians or all."""
        N, m = self.N, self.refresh
        if m is None or self.jac is None:
            Y, J = self._derive(XU, N)
            self.points, self.jac, self.refreshed = XU.copy(), J, N
        else:
            P, J = self.points, self.jac
            if np.abs(XU[:-1] - P[1:]).sum() < np.abs(XU[:-1] - P[:-1]).sum():  # the plan moved on one interval:
                P[:-1], J[:-1] = P[1:].copy(), J[1:].copy()  # so do the stored Jacobians
            moved = (np.abs(XU - P) / self.scale).max(axis=1)
            moved[0] = np.inf  # the first interval decides the applied input: always refreshed
            order = np.argsort(-moved, kind="stable")
            Yo, Jo = self._derive(XU[order], m)
            Y = np.empty((N, self.nx))
            Y[order] = Yo
            sel = order[:m]
            J[sel], P[sel] = Jo, XU[sel]
            self.refreshed = m
        return Y.reshape(-1), J.transpose(1, 0, 2).reshape(self.nx, N * self.nxu)
