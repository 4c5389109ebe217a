"""A finite-horizon MPC problem assembled once: condensed single shooting in normalised inputs, parameters
(current state, previous input, reference, Lyapunov bound) kept symbolic, and its convexity certificate."""

from __future__ import annotations

from dataclasses import dataclass

import casadi as ca
import numpy as np

from icctrl.convexity import Certificate, Tracer, summarize
from icctrl.convexity._lattice import C, S, is_convex
from icctrl.errors import InfeasibleError, InvalidValueError, ShapeError
from icctrl.mpc._predictors import Predictor


@dataclass
class Lyapunov:
    """LMPC contraction (Wu et al.): V(x̂₁) ≤ max(decay·V(x₀), rho_min), soft with a heavy penalty.

    V(x) = (x − x_ref)ᵀ P (x − x_ref). For a cost predictor the first predicted cost plays V(x̂₁).
    """

    P: np.ndarray
    decay: float = 0.9
    rho_min: float = 1.0
    penalty: float = 1e3

    def __post_init__(self):
        """P positive semidefinite (V convex), decay in (0, 1], rho_min ≥ 0 and penalty > 0, finite."""
        p = np.asarray(self.P, dtype=float)
        if p.ndim != 2 or p.shape[0] != p.shape[1]:
            raise ShapeError(f"Lyapunov P must be a square matrix, got shape {p.shape}")
        self.P = _psd(p, p.shape[0], "Lyapunov P")
        for name, v, ok in (("decay", self.decay, lambda v: 0 < v <= 1), ("rho_min", self.rho_min, lambda v: v >= 0),
                            ("penalty", self.penalty, lambda v: v > 0)):
            if not np.isfinite(v) or not ok(v):
                raise InvalidValueError(f"Lyapunov {name} is out of range, got {v!r} (decay in (0, 1], "
                                        "rho_min >= 0, penalty > 0)")


def _vec(v, n, what) -> np.ndarray:
    a = np.asarray(v, dtype=float).reshape(-1)
    if a.size != n:
        raise ShapeError(f"{what} must have {n} entries, got {a.size}: {v!r}")
    if not np.all(np.isfinite(a)):
        raise InvalidValueError(f"{what} contains non-finite values: {a.tolist()}")
    return a


def _psd(Q, n: int, what: str = "Q") -> np.ndarray:
    """A finite, symmetric positive semidefinite n × n weight (the tracking cost must be convex in x̂)."""
    q = np.asarray(Q, dtype=float)
    if q.shape != (n, n):
        raise ShapeError(f"{what} must be {n} × {n}, got shape {q.shape}")
    if not np.all(np.isfinite(q)):
        raise InvalidValueError(f"{what} contains non-finite values: {q.tolist()}")
    q = (q + q.T) / 2
    low = float(np.linalg.eigvalsh(q).min())
    if low < -1e-9 * max(1.0, float(np.abs(q).max())):
        raise InvalidValueError(f"{what} must be positive semidefinite, its smallest eigenvalue is {low:.3g}: "
                                f"{q.tolist()}")
    return q


class MPCProblem:
    """min Σ stage(x̂_k, u_k) over normalised inputs v ∈ [−1, 1]^(N×nu), u = u_mid + u_half·v.

    Stage cost: (x̂−x_ref)ᵀQ(x̂−x_ref) for a state predictor, or the predicted cost for a cost predictor,
    plus (u−u_ref)ᵀ R (u−u_ref) in normalised units. Optional rate limits |u_k − u_(k−1)| ≤ du_max and the LMPC
    contraction constraint.
    """

    def __init__(self, predictor: Predictor, horizon: int, *, u_lb, u_ub, u_ref=None, x_ref=None, Q=None,
                 R=None, du_max=None, lyapunov: Lyapunov | None = None, cost_scale: float = 1.0,
                 input_names=None, shooting: str = "single", x_scale=None):
        if not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise InvalidValueError(f"horizon must be an integer >= 1, got {horizon!r}")
        nx, nu = predictor.nx, predictor.nu
        self.predictor, self.N, self.nx, self.nu = predictor, int(horizon), nx, nu
        self.u_lb, self.u_ub = _vec(u_lb, nu, "u_lb"), _vec(u_ub, nu, "u_ub")
        if np.any(self.u_lb >= self.u_ub):
            raise InfeasibleError(f"input bounds are empty: u_lb={self.u_lb.tolist()} >= u_ub={self.u_ub.tolist()}")
        self.u_mid, self.u_half = (self.u_ub + self.u_lb) / 2, (self.u_ub - self.u_lb) / 2
        self.u_ref = self.u_mid.copy() if u_ref is None else _vec(u_ref, nu, "u_ref")
        if np.any(self.u_ref < self.u_lb) or np.any(self.u_ref > self.u_ub):
            raise InvalidValueError(f"u_ref={self.u_ref.tolist()} is outside the input bounds "
                                    f"[{self.u_lb.tolist()}, {self.u_ub.tolist()}]")
        self.x_ref = np.zeros(nx) if x_ref is None else _vec(x_ref, nx, "x_ref")
        self.Q = np.eye(nx) if Q is None else _psd(Q, nx)
        self.R = np.ones(nu) if R is None else _vec(R, nu, "R")
        if np.any(self.R < 0):
            raise InvalidValueError(f"input weights R must be >= 0, got {self.R.tolist()}")
        if not (np.isfinite(cost_scale) and cost_scale > 0):
            raise InvalidValueError(f"cost_scale must be a positive number, got {cost_scale!r}")
        self.du_max = None if du_max is None else _vec(du_max, nu, "du_max")
        if self.du_max is not None and np.any(self.du_max <= 0):
            raise InfeasibleError(f"rate limits must be positive, got du_max={self.du_max.tolist()}")
        self.lyapunov = lyapunov
        self.cost_scale = float(cost_scale)
        self.input_names = tuple(input_names) if input_names else tuple(f"u{i}" for i in range(nu))
        if shooting not in ("single", "multiple"):
            raise InvalidValueError(f"shooting must be 'single' or 'multiple', got {shooting!r}")
        if shooting == "multiple" and predictor.step_function() is None:
            raise InvalidValueError(f"multiple shooting needs a one-period predictor, got {predictor.label}")
        self.shooting = shooting
        self.x_scale = np.ones(nx) if x_scale is None else _vec(x_scale, nx, "x_scale")
        if np.any(self.x_scale <= 0):
            raise InvalidValueError(f"x_scale must be positive, got {self.x_scale.tolist()}")
        self._certificate: Certificate | None = None
        self._build()

    # -- the NLP -----------------------------------------------------------------------------------
    def _build(self) -> None:
        N, nx, nu = self.N, self.nx, self.nu
        V = ca.MX.sym("v", N, nu)  # normalised inputs
        x0, u_prev, x_ref = ca.MX.sym("x0", nx), ca.MX.sym("u_prev", nu), ca.MX.sym("x_ref", nx)
        lyap_bound = ca.MX.sym("lyap_bound")
        d = ca.MX.sym("d", nx)  # output disturbance estimate (offset-free MPC); zero unless the controller sets it
        U = ca.repmat(ca.DM(self.u_mid).T, N, 1) + V * ca.repmat(ca.DM(self.u_half).T, N, 1)
        w, g, lbg, ubg = [ca.vec(V)], [], [], []
        if self.shooting == "multiple":
            # lifted states: one period per block, so derivatives stay block-sparse (N small Hessians instead of
            # one dense Hessian through the whole chained rollout)
            Xs = ca.MX.sym("xs", N, nx)
            scale = ca.repmat(ca.DM(self.x_scale).T, N, 1)
            Y = ca.repmat(ca.DM(self.x_ref).T, N, 1) + Xs * scale
            X_prev = ca.horzcat(x0, Y[:-1, :].T)
            F = self.predictor.step_function().map(N)
            g.append(ca.vec((F(X_prev, U.T).T + ca.repmat(d.T, N, 1) - Y) / scale))
            lbg += [0.0] * (N * nx)
            ubg += [0.0] * (N * nx)
            w.append(ca.vec(Xs))
        else:
            Y = self.predictor.predict(x0, U)
            if self.predictor.kind == "state":
                Y = Y + ca.repmat(d.T, N, 1)
        dv = (U - ca.repmat(ca.DM(self.u_ref).T, N, 1)) / ca.repmat(ca.DM(self.u_half).T, N, 1)
        J = ca.sum1(ca.sum2(dv * dv * ca.repmat(ca.DM(self.R).T, N, 1)))
        if self.predictor.kind == "state":
            E = Y - ca.repmat(x_ref.T, N, 1)
            J += ca.sum1(ca.sum2(ca.mtimes(E, ca.DM(self.Q)) * E))
        else:
            J += ca.sum1(ca.sum2(Y))
        if self.du_max is not None:
            dU = ca.vertcat(U[0, :] - u_prev.T, U[1:, :] - U[:-1, :])
            lim = ca.repmat(ca.DM(self.du_max).T, N, 1)
            g.append(ca.vec(dU / lim))
            lbg += [-1.0] * (N * nu)
            ubg += [1.0] * (N * nu)
        if self.lyapunov is not None:
            s = ca.MX.sym("s_lyap")
            w.append(s)
            if self.predictor.kind == "state":
                e1 = Y[0, :].T - x_ref
                v1 = ca.mtimes([e1.T, ca.DM(self.lyapunov.P), e1])
            else:
                v1 = Y[0, 0]
            g.append(v1 - lyap_bound - s)
            lbg.append(-ca.inf)
            ubg.append(0.0)
            J += self.lyapunov.penalty * s
        self.n_states = N * nx if self.shooting == "multiple" else 0
        self.n_slack = len(w) - 1 - (self.shooting == "multiple")
        self.w = ca.vertcat(*w)
        self.p = ca.vertcat(x0, u_prev, x_ref, lyap_bound, d)
        period = self.predictor.step_function()
        self.period_fn = None if period is None else period.expand() if self.predictor.label.startswith(
            "first-principles") else period
        self.J = J / self.cost_scale
        self.g = ca.vertcat(*g) if g else ca.MX(0, 1)
        self.lbg, self.ubg = np.array(lbg), np.array(ubg)
        self.lbw = np.concatenate([-np.ones(N * nu), np.full(self.n_states, -np.inf), np.zeros(self.n_slack)])
        self.ubw = np.concatenate([np.ones(N * nu), np.full(self.n_states, np.inf), np.full(self.n_slack, np.inf)])
        self.predict_fn = ca.Function("predict", [self.w, self.p], [Y, U])

    # -- values ------------------------------------------------------------------------------------
    def parameters(self, x0, u_prev=None, x_ref=None, d=None) -> np.ndarray:
        """Numeric parameter vector for a solve; checks shapes and finiteness and names the bad value."""
        x0 = _vec(x0, self.nx, "state x")
        u_prev = self.u_ref if u_prev is None else _vec(u_prev, self.nu, "previous input u_prev")
        x_ref = self.x_ref if x_ref is None else _vec(x_ref, self.nx, "reference x_ref")
        bound = 0.0
        if self.lyapunov is not None:
            e = x0 - x_ref
            bound = max(self.lyapunov.decay * float(e @ self.lyapunov.P @ e), self.lyapunov.rho_min)
        d = np.zeros(self.nx) if d is None else _vec(d, self.nx, "disturbance estimate d")
        return np.concatenate([x0, u_prev, x_ref, [bound], d])

    def shift(self, w: np.ndarray) -> np.ndarray:
        """Warm start: the previous solution moved one step ahead (last step repeated), slacks reset."""
        N, nu, nx = self.N, self.nu, self.nx
        V = w[: N * nu].reshape(nu, N)
        out = [np.concatenate([V[:, 1:], V[:, -1:]], axis=1).reshape(-1)]
        if self.n_states:
            Xs = w[N * nu: N * nu + self.n_states].reshape(nx, N)
            out.append(np.concatenate([Xs[:, 1:], Xs[:, -1:]], axis=1).reshape(-1))
        return np.concatenate([*out, np.zeros(self.n_slack)])

    def cold_start(self, p: np.ndarray) -> np.ndarray:
        """First guess: the reference input held, lifted states at the current state."""
        out = [self.normalised(np.tile(self.u_ref, (self.N, 1)))]
        if self.n_states:
            xs = (p[: self.nx] - self.x_ref) / self.x_scale
            out.append(np.tile(xs[:, None], (1, self.N)).reshape(-1))
        return np.concatenate([*out, np.zeros(self.n_slack)])

    def inputs(self, v: np.ndarray) -> np.ndarray:
        """Physical inputs (N × nu) from normalised ones."""
        return self.u_mid + self.u_half * np.asarray(v).reshape(self.nu, self.N).T

    def normalised(self, U: np.ndarray) -> np.ndarray:
        return ((np.asarray(U) - self.u_mid) / self.u_half).T.reshape(-1)

    # -- certificate -------------------------------------------------------------------------------
    def certificate(self) -> Certificate:
        """Is this problem a convex program in the planned inputs? Composes the predictor's facts with the
        cost and constraints; the reasons name the layer, the horizon step and the rule that fails."""
        if self._certificate is not None:
            return self._certificate
        names = self.input_names
        tr = Tracer(names)
        x0 = [tr.constant(f"x0[{i}]") for i in range(self.nx)]
        us = [[tr.input(n, f"u_{k}[{n}]") for n in names] for k in range(self.N)]
        outs = self.predictor.trace(tr, x0, us)
        terms = [tr.square_norm(tr.concat(*u, label=f"u_{k}"), f"input cost (k={k})") for k, u in enumerate(us)]
        if self.predictor.kind == "state":
            for k, y in enumerate(outs):
                shifted = tr.add(y, tr.constant("x_ref"), label=f"x̂_{k + 1} − x_ref")
                terms.append(tr.square_norm(shifted, f"tracking cost (x̂−x_ref)ᵀQ(x̂−x_ref) at step {k + 1}"))
        else:
            terms += [tr.linear(y, S.NONNEG, f"predicted stage cost at step {k + 1}") for k, y in enumerate(outs)]
        objective = tr.add(*terms, label="objective")
        constraints = []
        if self.lyapunov is not None:
            if self.predictor.kind == "state":
                shifted = tr.add(outs[0], tr.constant("x_ref"), label="x̂_1 − x_ref")
                constraints.append(tr.square_norm(shifted, "Lyapunov constraint V(x̂_1) ≤ bound"))
            else:
                constraints.append(outs[0])
        for c in constraints:
            if not is_convex(c.curvature) and c.curvature != C.UNKNOWN:
                tr.reasons.append(f"{c.label}: a {c.curvature.value} function bounded above is not a convex set")
        cert = summarize(tr, [objective, *constraints], names, f"over a horizon of {self.N} steps",
                         f"MPC problem ({self.predictor.label})")
        self._certificate = cert
        return cert
