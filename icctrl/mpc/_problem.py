"""A finite-horizon MPC problem assembled once: condensed single (or multiple) shooting in normalised inputs,
everything that changes between solves kept as symbolic parameters, and its convexity certificate.

What the problem *is* lives in plain dataclasses (`Lyapunov`, `Ellipsoid`, `PathConstraint`) and the fields of
`MPCProblem`; `_build` is one reading of it as a CasADi NLP, the cvxpy epigraph another.

Decision vector w = [vec(V) (N·nu normalised inputs), lifted states (multiple shooting), slacks ≥ 0].
Parameter vector p, blocks in `MPCProblem.layout` (name → (start, shape)):
  x0 (nx), u_prev (nu), x_ref (N × nx), u_ref (N × nu), lyap_bound (1), bias (nx, offset-free output
  disturbance estimate), d (N × nd, measured disturbances or forecasts per step).
Soft constraints c ≤ s with s ≥ 0 add soft_l1·Σs + soft_l2·Σs² (an exact ℓ1 penalty plus a small quadratic);
slack blocks are in `MPCProblem.slack_blocks` (name → (start, rows, cols, physical scale per column)).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import casadi as ca
import numpy as np

from icctrl.convexity import Certificate, Tracer, summarize
from icctrl.convexity._lattice import S, is_convex
from icctrl.errors import InfeasibleError, InvalidValueError, ShapeError
from icctrl.mpc._predictors import Predictor, call_period, predict


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


@dataclass
class Ellipsoid:
    """Terminal set {x : (x − x_ref,N)ᵀ P (x − x_ref,N) ≤ level}, e.g. the LMPC level set {V ≤ ρ}."""

    P: np.ndarray
    level: float
    soft: bool = True


@dataclass
class PathConstraint:
    """g(x̂_(k+1), u_k) ≤ 0 at every step k, `fn` a CasADi Function (x, u) → column vector, physical units.

    `scale` (one positive number per row of g) normalises the rows for the solver and the slack penalty;
    the slacks are reported back in the units of g.
    """

    fn: ca.Function
    soft: bool = False
    scale: np.ndarray | None = None
    name: str = "path constraint g(x, u) ≤ 0"


def _vec(v, n, what) -> np.ndarray:
    a = np.asarray(v, dtype=float).reshape(-1)
    if a.size != n:
        raise ShapeError(f"{what} must have {n} entries, got {a.size}: {v!r}")
    if not np.all(np.isfinite(a)):
        raise InvalidValueError(f"{what} contains non-finite values: {a.tolist()}")
    return a


def _rows(v, n_rows: int, n: int, what: str) -> np.ndarray:
    """One vector held over the horizon (n,) or one per step (n_rows × n)."""
    a = np.asarray(v, dtype=float)
    if a.ndim == 2:
        if a.shape != (n_rows, n):
            raise ShapeError(f"{what} per step must have shape ({n_rows}, {n}), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise InvalidValueError(f"{what} contains non-finite values: {a.tolist()}")
        return a
    return np.tile(_vec(a, n, what), (n_rows, 1))


def _bound(v, n, what) -> np.ndarray | None:
    """A state bound: None, or n entries of which ±inf means 'no bound on this state'."""
    if v is None:
        return None
    a = np.asarray(v, dtype=float).reshape(-1)
    if a.size != n:
        raise ShapeError(f"{what} must have {n} entries, got {a.size}: {v!r}")
    if np.any(np.isnan(a)):
        raise InvalidValueError(f"{what} contains NaN: {a.tolist()}")
    return a


def _psd(Q, n: int, what: str = "Q") -> np.ndarray:
    """A finite, symmetric positive semidefinite n × n weight (the tracking cost must be convex in x̂)."""
    q = np.asarray(Q, dtype=float)
    if q.ndim == 1 and q.size == n:
        q = np.diag(q)
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
    """min Σ stage(x̂_k, u_k) + terminal over normalised inputs v ∈ [−1, 1]^(N×nu), u = u_mid + u_half·v.

    Stage cost: (x̂_k−x_ref,k)ᵀQ(x̂_k−x_ref,k) for a state predictor, or the predicted cost for a cost
    predictor, plus (u_k−u_ref,k)ᵀ R (u_k−u_ref,k) and an optional fixed `linear_cost` Σ c_kᵀv_k in normalised
    units v; `terminal_cost` P_f adds
    (x̂_N−x_ref,N)ᵀP_f(x̂_N−x_ref,N). Constraints: rate limits |u_k − u_(k−1)| ≤ du_max, state bounds
    x_lb ≤ x̂_k ≤ x_ub (soft by default), `path` constraints g(x̂, u) ≤ 0, a `terminal_set` ellipsoid and the
    LMPC contraction. References and disturbances are parameters: one compiled problem serves them all.
    """

    def __init__(self, predictor: Predictor, horizon: int, *, u_lb, u_ub, u_ref=None, x_ref=None, Q=None,
                 R=None, du_max=None, lyapunov: Lyapunov | None = None, cost_scale: float = 1.0,
                 input_names=None, shooting: str = "single", x_scale=None, x_lb=None, x_ub=None,
                 soft: bool = True, soft_l1: float = 1e4, soft_l2: float = 1e2, path=(),
                 terminal_cost=None, terminal_set: Ellipsoid | None = None, linear_cost=None):
        if not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise InvalidValueError(f"horizon must be an integer >= 1, got {horizon!r}")
        nx, nu = predictor.nx, predictor.nu
        self.predictor, self.N, self.nx, self.nu = predictor, int(horizon), nx, nu
        self.nd = int(getattr(predictor, "nd", 0))
        self.u_lb, self.u_ub = _vec(u_lb, nu, "u_lb"), _vec(u_ub, nu, "u_ub")
        if np.any(self.u_lb >= self.u_ub):
            raise InfeasibleError(f"input bounds are empty: u_lb={self.u_lb.tolist()} >= u_ub={self.u_ub.tolist()}")
        self.u_mid, self.u_half = (self.u_ub + self.u_lb) / 2, (self.u_ub - self.u_lb) / 2
        self.u_ref = self.u_mid.copy() if u_ref is None else _vec(u_ref, nu, "u_ref")
        self._check_u_ref(self.u_ref)
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
        self.x_lb, self.x_ub = _bound(x_lb, nx, "x_lb"), _bound(x_ub, nx, "x_ub")
        if self.x_lb is not None and self.x_ub is not None and np.any(self.x_lb > self.x_ub):
            raise InfeasibleError(f"state bounds are empty: x_lb={self.x_lb.tolist()} > x_ub={self.x_ub.tolist()}")
        self.soft = bool(soft)
        for name, val in (("soft_l1", soft_l1), ("soft_l2", soft_l2)):
            if not (np.isfinite(val) and val >= 0):
                raise InvalidValueError(f"{name} must be a finite number >= 0, got {val!r}")
        self.soft_l1, self.soft_l2 = float(soft_l1), float(soft_l2)
        self.path = tuple([path] if isinstance(path, PathConstraint) else path)
        for c in self.path:
            if not isinstance(c, PathConstraint):
                raise InvalidValueError(f"path constraints must be PathConstraint objects, got {c!r}")
        self.terminal_cost = None if terminal_cost is None else _psd(terminal_cost, nx, "terminal_cost")
        self.terminal_set = terminal_set
        self.linear_cost = None if linear_cost is None else _rows(linear_cost, self.N, nu, "linear_cost")
        if terminal_set is not None:
            terminal_set.P = _psd(terminal_set.P, nx, "terminal_set.P")
            if not (np.isfinite(terminal_set.level) and terminal_set.level > 0):
                raise InvalidValueError(f"terminal_set.level must be positive, got {terminal_set.level!r}")
        if predictor.kind != "state":
            asked = [n for n, v in (("x_lb", self.x_lb), ("x_ub", self.x_ub), ("path", self.path or None),
                                    ("terminal_cost", self.terminal_cost), ("terminal_set", terminal_set))
                     if v is not None]
            if asked:
                raise InvalidValueError(f"{predictor.label} predicts stage costs, not states: {asked} need a state "
                                        f"predictor")
        self._certificate: Certificate | None = None
        self._build()

    def _check_u_ref(self, u_ref: np.ndarray) -> None:
        """Reference inputs (nu,) or one row per step, all within the input bounds; the error names a bad row."""
        out = (u_ref < self.u_lb) | (u_ref > self.u_ub)
        if out.any():
            bad = u_ref[np.argmax(out.any(axis=1))] if u_ref.ndim == 2 else u_ref
            raise InvalidValueError(f"u_ref={bad.tolist()} is outside the input bounds "
                                    f"[{self.u_lb.tolist()}, {self.u_ub.tolist()}]")

    @property
    def bounded_states(self) -> list[int]:
        """Indices of states with a finite lower or upper bound."""
        lb = np.full(self.nx, -np.inf) if self.x_lb is None else self.x_lb
        ub = np.full(self.nx, np.inf) if self.x_ub is None else self.x_ub
        return [i for i in range(self.nx) if np.isfinite(lb[i]) or np.isfinite(ub[i])]

    # -- the NLP -----------------------------------------------------------------------------------
    def _build(self) -> None:
        N, nx, nu, nd = self.N, self.nx, self.nu, self.nd
        V = ca.MX.sym("v", N, nu)  # normalised inputs
        x0, u_prev = ca.MX.sym("x0", nx), ca.MX.sym("u_prev", nu)
        X_ref, U_ref = ca.MX.sym("x_ref", N, nx), ca.MX.sym("u_ref", N, nu)
        lyap_bound, bias, D = ca.MX.sym("lyap_bound"), ca.MX.sym("bias", nx), ca.MX.sym("d", N, nd)
        U = ca.repmat(ca.DM(self.u_mid).T, N, 1) + V * ca.repmat(ca.DM(self.u_half).T, N, 1)
        w, g, lbg, ubg = [ca.vec(V)], [], [], []
        self._w_size = N * nu
        self.dynamics = self.prediction = None
        if self.shooting == "multiple":
            # lifted states: one period per block, so derivatives stay block-sparse (N small Hessians instead of
            # one dense Hessian through the whole chained rollout)
            Xs = ca.MX.sym("xs", N, nx)
            scale = ca.repmat(ca.DM(self.x_scale).T, N, 1)
            Y = ca.repmat(ca.DM(self.x_ref).T, N, 1) + Xs * scale
            X_prev = ca.horzcat(x0, Y[:-1, :].T)
            F = self.predictor.step_function().map(N)
            X_next = call_period(F, X_prev, U.T, D.T)
            # the mapped period call and its inputs, for solvers that linearise the intervals themselves
            self.dynamics = (X_prev, U.T, D.T, X_next)
            g.append(ca.vec((X_next.T + ca.repmat(bias.T, N, 1) - Y) / scale))
            lbg += [0.0] * (N * nx)
            ubg += [0.0] * (N * nx)
            w.append(ca.vec(Xs))
            self._w_size += N * nx
        else:
            Y = predict(self.predictor, x0, U, D)
            self.prediction = (Y, U, x0)  # for a Hessian from the predictor's layers (`structured_hessian`)
            if self.predictor.kind == "state":
                Y = Y + ca.repmat(bias.T, N, 1)
        self.n_states = N * nx if self.shooting == "multiple" else 0
        dv = (U - U_ref) / ca.repmat(ca.DM(self.u_half).T, N, 1)
        J = ca.sum1(ca.sum2(dv * dv * ca.repmat(ca.DM(self.R).T, N, 1)))
        if self.linear_cost is not None:
            J += ca.sum1(ca.sum2(ca.DM(self.linear_cost) * V))
        if self.predictor.kind == "state":
            E = Y - X_ref
            J += ca.sum1(ca.sum2(ca.mtimes(E, ca.DM(self.Q)) * E))
            if self.terminal_cost is not None:
                eN = E[N - 1, :].T
                J += ca.mtimes([eN.T, ca.DM(self.terminal_cost), eN])
        else:
            J += ca.sum1(ca.sum2(Y))
        if self.du_max is not None:
            dU = ca.vertcat(U[0, :] - u_prev.T, U[1:, :] - U[:-1, :])
            lim = ca.repmat(ca.DM(self.du_max).T, N, 1)
            g.append(ca.vec(dU / lim))
            lbg += [-1.0] * (N * nu)
            ubg += [1.0] * (N * nu)
        self.slack_blocks: dict[str, tuple[int, int, int, np.ndarray]] = {}
        penalty = []

        def constrain(name: str, c: ca.MX, rows: int, cols: int, soft: bool, scale: np.ndarray,
                      weight: tuple[float, float] | None = None) -> None:
            """c ≤ 0 (rows × cols, already normalised); soft: c ≤ s, s ≥ 0, penalised and reported."""
            if soft:
                s = ca.MX.sym(f"s_{name}", rows, cols)
                self.slack_blocks[name] = (self._w_size, rows, cols, np.asarray(scale, float))
                w.append(ca.vec(s))
                self._w_size += rows * cols
                c = c - s
                l1, l2 = weight or (self.soft_l1, self.soft_l2)
                penalty.append(l1 * ca.sum1(ca.vec(s)) + l2 * ca.sumsqr(s))
            g.append(ca.vec(c))
            lbg.extend([-np.inf] * (rows * cols))
            ubg.extend([0.0] * (rows * cols))

        idx = self.bounded_states
        if idx:
            sc = ca.DM(self.x_scale[idx]).T
            Yb = Y[:, idx]
            lb = np.full(len(idx), -1e20) if self.x_lb is None else np.maximum(self.x_lb[idx], -1e20)
            ub = np.full(len(idx), 1e20) if self.x_ub is None else np.minimum(self.x_ub[idx], 1e20)
            # one slack per bounded state and step serves both sides (they cannot both be violated)
            if self.soft:
                s = ca.MX.sym("s_state", N, len(idx))
                self.slack_blocks["state"] = (self._w_size, N, len(idx), self.x_scale[idx])
                w.append(ca.vec(s))
                self._w_size += N * len(idx)
                for sgn, val in ((1.0, ub), (-1.0, lb)):
                    cols = [j for j in range(len(idx)) if abs(val[j]) < 1e20]  # the sides that are bounded
                    if not cols:
                        continue
                    c = sgn * (Yb[:, cols] - ca.repmat(ca.DM(val[cols]).T, N, 1)) / ca.repmat(sc[:, cols], N, 1)
                    g.append(ca.vec(c - s[:, cols]))
                    lbg.extend([-np.inf] * (N * len(cols)))
                    ubg.extend([0.0] * (N * len(cols)))
                penalty.append(self.soft_l1 * ca.sum1(ca.vec(s)) + self.soft_l2 * ca.sumsqr(s))
            else:
                g.append(ca.vec(Yb / ca.repmat(sc, N, 1)))
                lbg.extend(np.repeat(lb / self.x_scale[idx], N).tolist())
                ubg.extend(np.repeat(ub / self.x_scale[idx], N).tolist())
        for j, pc in enumerate(self.path):
            rows = []
            for k in range(N):
                rows.append(ca.vec(pc.fn(Y[k, :].T, U[k, :].T)).T)
            G = ca.vertcat(*rows)
            m = G.shape[1]
            scale = np.ones(m) if pc.scale is None else _vec(pc.scale, m, f"scale of {pc.name}")
            if np.any(scale <= 0):
                raise InvalidValueError(f"scale of {pc.name} must be positive, got {scale.tolist()}")
            constrain(f"path{j}", G / ca.repmat(ca.DM(scale).T, N, 1), N, m, pc.soft, scale)
        if self.terminal_set is not None:
            ts = self.terminal_set
            eN = (Y[N - 1, :] - X_ref[N - 1, :]).T
            vN = ca.mtimes([eN.T, ca.DM(ts.P), eN])
            constrain("terminal", (vN - ts.level) / ts.level, 1, 1, ts.soft, np.array([ts.level]))
        if self.lyapunov is not None:
            if self.predictor.kind == "state":
                e1 = Y[0, :].T - X_ref[0, :].T
                v1 = ca.mtimes([e1.T, ca.DM(self.lyapunov.P), e1])
            else:
                v1 = Y[0, 0]
            constrain("lyapunov", v1 - lyap_bound, 1, 1, True, np.ones(1), (self.lyapunov.penalty, 0.0))
        for term in penalty:
            J += term
        self.n_slack = self._w_size - N * nu - self.n_states
        self.w = ca.vertcat(*w)
        blocks = (("x0", x0, (nx,)), ("u_prev", u_prev, (nu,)), ("x_ref", X_ref, (N, nx)),
                  ("u_ref", U_ref, (N, nu)), ("lyap_bound", lyap_bound, (1,)), ("bias", bias, (nx,)),
                  ("d", D, (N, nd)))
        self.layout: dict[str, tuple[int, tuple[int, ...]]] = {}
        start = 0
        for name, _sym, shape in blocks:
            self.layout[name] = (start, shape)
            start += int(np.prod(shape))
        self.p = ca.vertcat(*[ca.vec(sym) for _, sym, _ in blocks])
        period = self.predictor.step_function()
        self.period_fn = None if period is None else period.expand() if self.predictor.label.startswith(
            "first-principles") else period
        self.J = J / self.cost_scale
        self.g = ca.vertcat(*g) if g else ca.MX(0, 1)
        self.lbg, self.ubg = np.array(lbg, dtype=float), np.array(ubg, dtype=float)
        self.lbw = np.concatenate([-np.ones(N * nu), np.full(self.n_states, -np.inf), np.zeros(self.n_slack)])
        self.ubw = np.concatenate([np.ones(N * nu), np.full(self.n_states, np.inf), np.full(self.n_slack, np.inf)])
        self.predict_fn = ca.Function("predict", [self.w, self.p], [Y, U])

    # -- values ------------------------------------------------------------------------------------
    def parameters(self, x0, u_prev=None, x_ref=None, d=None, *, u_ref=None, bias=None) -> np.ndarray:
        """Numeric parameter vector for a solve; checks shapes and finiteness and names the bad value.

        x_ref (nx,) or (N, nx), u_ref (nu,) or (N, nu), d (nd,) or (N, nd) are held over the horizon or
        given per step; d defaults to the predictor's nominal disturbance, bias to zero."""
        N = self.N
        x0 = _vec(x0, self.nx, "state x")
        u_prev = self.u_ref if u_prev is None else _vec(u_prev, self.nu, "previous input u_prev")
        nominal = self._nominal_blocks
        if x_ref is None:
            X_ref, x_ref0 = nominal["x_ref"], self.x_ref
        else:
            X_ref = _rows(x_ref, N, self.nx, "reference x_ref")
            x_ref0, X_ref = X_ref[0], X_ref.T.reshape(-1)
        if u_ref is None:
            U_ref = nominal["u_ref"]
        else:
            U_ref = _rows(u_ref, N, self.nu, "reference u_ref")
            self._check_u_ref(U_ref)
            U_ref = U_ref.T.reshape(-1)
        bound = 0.0
        if self.lyapunov is not None:
            e = x0 - x_ref0
            bound = max(self.lyapunov.decay * float(e @ self.lyapunov.P @ e), self.lyapunov.rho_min)
        bias = nominal["bias"] if bias is None else _vec(bias, self.nx, "disturbance estimate bias")
        D = nominal["d"] if d is None else _rows(d, N, self.nd, "measured disturbance d").T.reshape(-1)
        # CasADi vec() stacks column-major: the per-step blocks are transposed to match
        return np.concatenate([x0, u_prev, X_ref, U_ref, [bound], bias, D])

    @cached_property
    def _nominal_blocks(self) -> dict[str, np.ndarray]:
        """The parameter blocks of the problem's own references, checked once (flat, column-major)."""
        U_ref = _rows(self.u_ref, self.N, self.nu, "reference u_ref")
        self._check_u_ref(U_ref)
        d_nom = getattr(self.predictor, "d_nom", np.zeros(self.nd))
        return {"x_ref": _rows(self.x_ref, self.N, self.nx, "reference x_ref").T.reshape(-1),
                "u_ref": U_ref.T.reshape(-1), "bias": np.zeros(self.nx),
                "d": _rows(d_nom, self.N, self.nd, "measured disturbance d").T.reshape(-1)}

    def block(self, p: np.ndarray, name: str) -> np.ndarray:
        """One named block of a parameter vector, in its shape (per-step blocks as N × n)."""
        start, shape = self.layout[name]
        flat = np.asarray(p)[start:start + int(np.prod(shape))]
        return flat.reshape(shape[::-1]).T if len(shape) == 2 else flat

    def slacks(self, w: np.ndarray) -> dict[str, np.ndarray]:
        """Soft-constraint slacks of a solution, per block (rows × cols), in physical units."""
        out = {}
        for name, (start, rows, cols, scale) in self.slack_blocks.items():
            s = np.maximum(np.asarray(w)[start:start + rows * cols].reshape(cols, rows).T, 0.0)
            out[name] = s * scale
        return out

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
        out = [self.normalised(self.block(p, "u_ref"))]
        if self.n_states:
            xs = (p[: self.nx] - self.x_ref) / self.x_scale
            out.append(np.tile(xs[:, None], (1, self.N)).reshape(-1))
        return np.concatenate([*out, np.zeros(self.n_slack)])

    def predictions(self, w: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Predictions (N × n_out) of a solution: under multiple shooting the lifted states themselves (no model
        call), else the prediction function."""
        if self.n_states:
            nv = self.N * self.nu
            return self.x_ref + np.asarray(w)[nv: nv + self.n_states].reshape(self.nx, self.N).T * self.x_scale
        return np.array(self.predict_fn(w, p)[0])

    def inputs(self, v: np.ndarray) -> np.ndarray:
        """Physical inputs (N × nu) from normalised ones."""
        return self.u_mid + self.u_half * np.asarray(v).reshape(self.nu, self.N).T

    def normalised(self, U: np.ndarray) -> np.ndarray:
        return ((np.asarray(U) - self.u_mid) / self.u_half).T.reshape(-1)

    # -- certificate -------------------------------------------------------------------------------
    def certificate(self) -> Certificate:
        """Is this problem a convex program in the planned inputs? Composes the predictor's facts with the
        cost and every constraint; the reasons name the layer, the horizon step and the rule that fails."""
        if self._certificate is not None:
            return self._certificate
        names = self.input_names
        tr = Tracer(names)
        x0 = [tr.constant(f"x0[{i}]") for i in range(self.nx)]
        us = [[tr.input(n, f"u_{k}[{n}]") for n in names] for k in range(self.N)]
        outs = self.predictor.trace(tr, x0, us)
        terms = [tr.square_norm(tr.concat(*u, label=f"u_{k}"), f"input cost (k={k})") for k, u in enumerate(us)]
        state = self.predictor.kind == "state"

        def deviation(k: int, what: str):
            shifted = tr.add(outs[k], tr.constant("x_ref"), label=f"x̂_{k + 1} − x_ref")
            return tr.square_norm(shifted, what)

        if state:
            terms += [deviation(k, f"tracking cost (x̂−x_ref)ᵀQ(x̂−x_ref) at step {k + 1}") for k in range(self.N)]
            if self.terminal_cost is not None:
                terms.append(deviation(self.N - 1, "terminal cost (x̂_N−x_ref)ᵀP_f(x̂_N−x_ref)"))
        else:
            terms += [tr.linear(y, S.NONNEG, f"predicted stage cost at step {k + 1}") for k, y in enumerate(outs)]
        if self.linear_cost is not None:
            terms.append(tr.linear(tr.concat(*[s for u in us for s in u], label="v"), S.UNKNOWN,
                                   "linear cost term Σ c_kᵀv_k"))
        objective = tr.add(*terms, label="objective")
        constraints = []  # (function that must be convex for {f ≤ 0} to be a convex set, what it is)
        if self.lyapunov is not None:
            c = deviation(0, "Lyapunov constraint V(x̂_1) ≤ bound") if state else outs[0]
            constraints.append((c, "Lyapunov constraint V(x̂_1) ≤ bound", "bounded above"))
        if state and self.x_ub is not None and np.any(np.isfinite(self.x_ub)):
            constraints += [(outs[k], f"state upper bound x̂_{k + 1} ≤ x_ub", "bounded above") for k in range(self.N)]
        if state and self.x_lb is not None and np.any(np.isfinite(self.x_lb)):
            constraints += [(tr.neg(outs[k], f"−x̂_{k + 1}"), f"state lower bound x̂_{k + 1} ≥ x_lb",
                             "bounded below") for k in range(self.N)]
        if self.terminal_set is not None:
            constraints.append((deviation(self.N - 1, "terminal set (x̂_N−x_ref)ᵀP(x̂_N−x_ref) ≤ level"),
                                "terminal set (x̂_N−x_ref)ᵀP(x̂_N−x_ref) ≤ level", "bounded above"))
        for pc in self.path:
            tr.reasons.append(f"{pc.name}: a CasADi expression carries no curvature facts, so the constraint set "
                              f"is not known to be convex")
        for c, what, side in constraints:
            if not is_convex(c.curvature):
                kind = {"bounded above": "convex", "bounded below": "concave"}[side]
                tr.reasons.append(f"{what}: the constrained function is {c.curvature.value} in the inputs; only a "
                                  f"{kind} prediction {side} gives a convex set")
        outs_all = [objective, *[c for c, _, _ in constraints]]
        cert = summarize(tr, outs_all, names, f"over a horizon of {self.N} steps",
                         f"MPC problem ({self.predictor.label})")
        if self.path and cert.convex:
            cert.convex = False
            cert.reasons = [r for r in tr.reasons if "CasADi expression" in r]
        self._certificate = cert
        return cert
