"""Real-time iterations ("rti") and Gauss–Newton SQP ("sqp-gn") on an assembled MPCProblem.

One iteration: linearise every shooting interval, the constraints and the objective around the shifted plan in
one CasADi call (the mapped period model inside it), then solve one QP. The Hessian is Gauss–Newton: the
objective's own Hessian, the constraints' curvature dropped. With multiple shooting the tracking and input costs
are quadratic in the lifted variables, so it is constant; a learned convex cost contributes its own Hessian
(eigenvalues clipped at zero where the model is not convex). The Lyapunov contraction and any soft constraints
are linearised with their slacks.

Preparation (`prepare`) does the linearisation and the condensing before the new state is known, around a
predicted parameter vector; feedback (`feedback`) corrects for the measured state, which enters the linearised
problem affinely, and solves the QP.
"""

from __future__ import annotations

import time

import casadi as ca
import numpy as np
from scipy.linalg.lapack import dgesv

from icctrl.errors import InvalidValueError, UnknownNameError
from icctrl.mpc._deadline import Duration
from icctrl.mpc._derivatives import Buffered
from icctrl.mpc._linearise import GRAPH_MODES, GenericLinearisation, IntervalLinearisation
from icctrl.mpc._predictors import FirstPrinciples
from icctrl.mpc._qp import QP, QP_FORMS, dense

#: Linearisation terms that must be finite before a QP is built from them (those of the chosen QP form).
FINITE = ("g", "grad", "A", "Sp", "Hqp", "q0", "qp")
RTI_METHODS = ("rti", "sqp-gn")


def _np(a) -> np.ndarray:
    return np.array(ca.DM(a).full())


class RTISolver:
    """Real-time iteration back end: `solve(p, w0)` (prepare if needed, then feedback), or the two phases apart.

    qp: "condensed" (states eliminated, dense QP; default up to N = 20) or "sparse" (all lifted variables).
    qp_solver: a CasADi conic plugin (default "daqp" condensed, "piqp" sparse). derivatives: "mx", "sx",
    "codegen", "tangent" or "differences" (default "sx" for first principles; for learned one-period models whose
    graph it reads, "differences" where the graph multiplies gates, the faster there, else "tangent"; "sqp-gn"
    always "tangent", exact; else "mx"). refresh ("rti" on the graph): intervals whose Jacobians are recomputed per
    step (multi-level iterations; default a quarter of them, at least one; N: all, exact; values and residuals
    are always exact). consistency_tol: the largest
    accepted gap, in the problem's scaled state units, between the QP's first predicted state and the model
    itself. cold_iterations: Gauss–Newton iterations on a cold start (no plan to shift; default 1, one QP per
    step from the first).
    """

    def __init__(self, problem, method: str = "rti", *, qp: str | None = None, qp_solver: str | None = None,
                 derivatives: str | None = None, tol: float = 1e-6, max_iter: int = 50,
                 time_limit: float | None = None, consistency_tol: float = 0.5, cold_iterations: int = 1,
                 refresh: int | None = None):
        if method not in RTI_METHODS:
            raise UnknownNameError(f"unknown real-time method {method!r}; choose one of {RTI_METHODS}")
        pb = problem
        gn = getattr(pb, "gn_hessian", None)  # a problem may state its own Gauss–Newton Hessian (constant)
        if gn is None and pb.predictor.kind == "state" and pb.shooting != "multiple":
            raise InvalidValueError(f"solver {method!r} needs multiple shooting for a state model (its Gauss–Newton "
                                    f"Hessian is the objective's in the lifted states); got shooting={pb.shooting!r}")
        qp = qp or ("condensed" if pb.N <= 20 else "sparse")
        if qp not in QP_FORMS:
            raise UnknownNameError(f"unknown QP form {qp!r}; choose one of {QP_FORMS}")
        for name, v in (("tol", tol), ("consistency_tol", consistency_tol)):
            if not (np.isfinite(v) and v > 0):
                raise InvalidValueError(f"{name} must be a positive number, got {v!r}")
        if int(max_iter) < 1 or int(cold_iterations) < 1:
            raise InvalidValueError(f"max_iter and cold_iterations must be >= 1, got {max_iter!r}, {cold_iterations!r}")
        self.problem, self.method, self.qp_form = pb, method, qp
        self.tol, self.max_iter, self.time_limit = float(tol), int(max_iter), time_limit
        self.consistency_tol, self.cold_iterations = float(consistency_tol), int(cold_iterations)
        w, p = pb.w, pb.p
        grad = ca.gradient(pb.J, w)
        hess = ca.jacobian(grad, w)
        self.hess_constant = gn is not None or not ca.depends_on(hess, w)
        interval = getattr(pb, "dynamics", None) is not None
        learned = interval and getattr(pb.predictor, "model", None) is not None
        # SX for first principles (a few scalar equations); tangents for a learned one-period model whose graph
        # they read (several times faster than the MX VM, docs/benchmarks.md), else MX
        self.derivatives = derivatives or ("sx" if isinstance(pb.predictor, FirstPrinciples) else
                                           "tangent" if learned else "mx")
        if self.derivatives in GRAPH_MODES and not interval:
            raise InvalidValueError(f"derivatives={self.derivatives!r} linearises one-period models under multiple "
                                    f"shooting; this problem ({pb.predictor.label}, shooting={pb.shooting!r}) has none")
        if refresh is None and method == "rti" and self.derivatives in GRAPH_MODES:
            refresh = max(1, -(-pb.N // 4))
        if refresh is not None and method != "rti" and refresh != pb.N:
            raise InvalidValueError(f"refresh={refresh!r} (reused Jacobians) is for 'rti' only; {method!r} is the "
                                    "converged reference and always uses exact Jacobians")
        if gn is not None:
            self._H, self._Hp = self._psd(np.asarray(gn, float)), np.zeros((int(w.numel()), int(p.numel())))
        elif self.hess_constant:  # quadratic objective: its Hessians are computed once, not every step
            const = ca.Function("rti_hess", [w, p], [ca.densify(hess), ca.densify(ca.jacobian(grad, p))])
            H0, Hp0 = const(np.zeros(w.numel()), np.zeros(p.numel()))
            self._H, self._Hp = self._psd(_np(H0)), _np(Hp0)
        self.refresh = refresh
        if interval:
            try:
                self.lin = IntervalLinearisation(pb, self.derivatives, hessian=not self.hess_constant,
                                                 refresh=refresh)
            except UnknownNameError:  # an op without a tangent form: the default falls back to MX
                if derivatives is not None:
                    raise
                self.derivatives, self.refresh = "mx", None
                self.lin = IntervalLinearisation(pb, "mx", hessian=not self.hess_constant)
            if derivatives is None and method == "rti" and self.derivatives == "tangent" and \
                    self.lin.tangents.products:  # gated models: differences skip the product rule's calls
                self.derivatives = self.lin.use("differences")
        else:
            self.lin = GenericLinearisation(pb, self.derivatives, hessian=not self.hess_constant)
        self.n_w, self.n_g = int(w.numel()), int(pb.g.numel())
        nv = pb.N * pb.nu
        self.n_dyn = pb.n_states if getattr(pb, "dynamics", None) is not None else 0
        self.x_idx = np.arange(nv, nv + self.n_dyn)
        self.z_idx = np.setdiff1d(np.arange(self.n_w), self.x_idx)
        self.o_idx = np.arange(self.n_dyn, self.n_g)  # constraint rows other than the dynamics
        # lifted states are never bounded in w (MPCProblem puts state bounds in constraint rows), so the
        # condensed QP's rows are the other constraint rows only
        assert not np.isfinite(pb.lbw[self.x_idx]).any() and not np.isfinite(pb.ubw[self.x_idx]).any()
        if qp == "condensed":
            h, a = dense(len(self.z_idx), len(self.o_idx))
            self._rhs = np.zeros((self.n_dyn, len(self.z_idx) + 1 + int(p.numel())), order="F")
            self._T0 = np.zeros((self.n_w, len(self.z_idx)))  # δw's free part: z itself
            self._T0[self.z_idx, np.arange(len(self.z_idx))] = 1.0
            self._lo, self._hi = pb.lbg[self.o_idx], pb.ubg[self.o_idx]
        else:
            h = (ca.sparsify(ca.DM(self._H)).sparsity() if self.hess_constant
                 else ca.Sparsity.dense(self.n_w, self.n_w))
            a = ca.jacobian(pb.g, w).sparsity()
        self.qp_solver = qp_solver or ("daqp" if qp == "condensed" else "piqp")
        self.qp = QP(f"rti_qp_{qp}", self.qp_solver, h, a)
        period = getattr(pb, "period_fn", None)
        self._period = Buffered(period) if period is not None and pb.predictor.kind == "state" else None
        self._took = {"prepare": Duration(), "feedback": Duration()}  # how long each phase is expected to take
        self.reset()

    # -- phases ------------------------------------------------------------------------------------
    def reset(self) -> None:
        self._lin: dict | None = None  # the prepared linearisation
        self.model_step: tuple | None = None  # (x₀, u₀, d₀, f(x₀, u₀, d₀)) of the last consistency check
        self._cold = True
        self.qp.reset()
        self.lin.reset()

    @property
    def prepared(self) -> bool:
        return self._lin is not None

    @staticmethod
    def _psd(H: np.ndarray) -> np.ndarray:
        """The Gauss–Newton Hessian made positive definite: eigenvalues clipped at a small floor (a learned
        cost's Hessian may not be convex; a constant one is checked once)."""
        H = (H + H.T) / 2
        lam, V = np.linalg.eigh(H)
        floor = 1e-8 * max(1.0, float(np.abs(lam).max()))
        return H if lam.min() >= floor else (V * np.maximum(lam, floor)) @ V.T

    def prepare(self, w_bar, p_bar) -> float:
        """Linearise around (w_bar, p_bar) and condense; returns the seconds it took."""
        t0 = time.perf_counter()
        pb = self.problem
        r = self.lin(w_bar, p_bar)
        w_bar, p_bar = np.asarray(w_bar, float).reshape(-1), np.asarray(p_bar, float).reshape(-1)
        g, grad, G, Gp = r["g"], r["grad"], r["G"], r["Gp"]
        Hd, Hp = (self._H, self._Hp) if self.hess_constant else (self._psd(r["H"]), r["Hp"])
        lin = {"w": w_bar, "p": p_bar, "J": r["J"], "g": g, "grad": grad, "H": Hd, "Hp": Hp}
        if self.qp_form == "sparse":
            lin.update(Hqp=Hd.ravel(order="F")[self.qp.h_index], A=G.ravel(order="F")[self.qp.a_index],
                       lba=pb.lbg - g, uba=pb.ubg - g, Sp=Gp, lbz=pb.lbw - w_bar, ubz=pb.ubw - w_bar)
        else:
            with np.errstate(over="ignore", invalid="ignore"):  # a near-singular linearisation: checked in `solve`
                lin.update(self._condense(G, g, Gp, grad, Hd, Hp, w_bar, p_bar))
        lin["time"] = time.perf_counter() - t0
        self._lin = lin
        return lin["time"]

    def _condense(self, G, g, Gp, grad, H, Hp, w_bar, p_bar) -> dict:
        """Eliminate the lifted states: δw = T z + t0 + Tp δp from the linearised dynamics rows, then the dense
        QP in z = (inputs, slacks) with its data affine in δp."""
        pb = self.problem
        xi, zi, oi, d = self.x_idx, self.z_idx, self.o_idx, self.n_dyn
        nz = len(zi)
        T = self._T0.copy()
        t0 = np.zeros(self.n_w)
        Tp = np.zeros((self.n_w, len(p_bar)))
        if d:
            Gd, B = G[:d], self._rhs
            B[:, :nz], B[:, nz], B[:, nz + 1:] = Gd[:, zi], g[:d], Gp[:d]
            _, _, rhs, info = dgesv(Gd[:, xi], B)  # LAPACK directly, without numpy.linalg.solve's wrapper
            if info != 0:
                raise np.linalg.LinAlgError(f"linearised dynamics are singular in the lifted states (dgesv {info})")
            T[xi], t0[xi], Tp[xi] = -rhs[:, :nz], -rhs[:, nz], -rhs[:, nz + 1:]
        Go = G[oi]
        shift = g[oi] + Go @ t0
        return {"T": T, "t0": t0, "Tp": Tp, "Hqp": (T.T @ H @ T).ravel(order="F"), "q0": T.T @ (grad + H @ t0),
                "qp": T.T @ (H @ Tp + Hp), "A": (Go @ T).ravel(order="F"),
                "lba": self._lo - shift, "uba": self._hi - shift, "Sp": Go @ Tp + Gp[oi],
                "lbz": pb.lbw[zi] - w_bar[zi], "ubz": pb.ubw[zi] - w_bar[zi]}

    def feedback(self, p) -> tuple[np.ndarray, bool, str, int, float, float]:
        """Solve the prepared QP for the measured parameters p: (w, ok, status, QP iterations, objective of the
        QP model, seconds)."""
        t0 = time.perf_counter()
        L = self._lin
        dp = np.asarray(p, float) - L["p"]
        with np.errstate(over="ignore", invalid="ignore"):
            s = L["Sp"] @ dp
            q = L["grad"] + L["Hp"] @ dp if self.qp_form == "sparse" else L["q0"] + L["qp"] @ dp
        if not (np.all(np.isfinite(q)) and np.all(np.isfinite(s))):
            self._lin = None
            return L["w"], False, "non_finite_linearisation (QP data for the measured state)", 0, np.nan, \
                time.perf_counter() - t0
        z, ok, status, it = self.qp.solve(L["Hqp"], q, L["A"], L["lba"] - s, L["uba"] - s, L["lbz"], L["ubz"])
        with np.errstate(over="ignore", invalid="ignore"):
            dw = z if self.qp_form == "sparse" else L["T"] @ z + L["t0"] + L["Tp"] @ dp
            obj = L["J"] + float((L["grad"] + L["Hp"] @ dp) @ dw + 0.5 * dw @ L["H"] @ dw)
        self._lin = None
        if ok and not np.all(np.isfinite(dw)):
            ok, status = False, "non_finite_linearisation (the lifted states of the QP's solution)"
        return L["w"] + dw, ok, status, it, obj, time.perf_counter() - t0

    # -- checks ------------------------------------------------------------------------------------
    def consistency(self, w: np.ndarray, p: np.ndarray) -> float | None:
        """max |model(x₀, u₀) + d − x̂₁| in scaled state units: how far the QP's first predicted state is from
        the model itself (None for a cost model, whose predictions are not states)."""
        pb = self.problem
        if self._period is None or pb.predictor.kind != "state":
            return None
        nx, nv = pb.nx, pb.N * pb.nu
        x0, bias, d0 = p[:nx], pb.block(p, "bias"), pb.block(p, "d")[0]
        u0 = pb.u_mid + pb.u_half * w[0: nv: pb.N]
        if pb.shooting == "multiple":  # the first lifted state
            x1 = pb.x_ref + w[nv + np.arange(nx) * pb.N] * pb.x_scale
        else:
            x1 = np.array(pb.predict_fn(w, p)[0])[0]
        args = {"i0": x0, "i1": u0, **({"i2": d0} if "i2" in self._period.args else {})}
        f = self._period(**args)["o0"].copy()
        self.model_step = (x0.copy(), u0, np.asarray(d0, float).reshape(-1), f)  # the point and f(x₀, u₀, d₀)
        return float(np.max(np.abs(f + bias - x1) / pb.x_scale))

    # -- the back-end interface of Controller ------------------------------------------------------
    def _no_time(self, deadline, phases) -> bool:
        """Whether the phases, at their expected durations, would end past the deadline."""
        return deadline is not None and time.perf_counter() + sum(self._took[k].expected for k in phases) > deadline

    def solve(self, p, w0, deadline: float | None = None):
        """One real-time iteration (several on a cold start), or Gauss–Newton SQP to `tol` for "sqp-gn". With a
        time limit, a linearisation or QP that would end past `deadline` (time.perf_counter; default: the limit from
        now) is not started: the solve stops there with a time_limit status."""
        from icctrl.mpc._solvers import SolveResult

        t_start = time.perf_counter()
        if self.time_limit and deadline is None:
            deadline = t_start + self.time_limit
        for d in self._took.values():
            d.decay()
        p = np.asarray(p, float)
        iterative = self.method == "sqp-gn" or self._cold
        limit = self.max_iter if self.method == "sqp-gn" else self.cold_iterations
        prep = fb = 0.0
        w, ok, status, iters, obj, step = np.asarray(w0, float), False, "not_run", 0, np.nan, np.inf
        for k in range(limit if iterative else 1):
            fresh = not self.prepared or k > 0
            if self._no_time(deadline, ("prepare", "feedback") if fresh else ("feedback",)):
                ok, status, self._lin = False, f"time_limit (no time for {'a linearisation and ' * fresh}a QP " \
                                                f"before the deadline)", None
                break
            try:
                if fresh:
                    took = self.prepare(w, p)
                    self._took["prepare"].add(took)
                    prep += took
                else:
                    prep += self._lin["time"]
                if not all(np.all(np.isfinite(self._lin[key])) for key in FINITE if key in self._lin):
                    ok, status, self._lin = False, "non_finite_linearisation", None
                    break
                w_new, ok, status, _, obj, t_fb = self.feedback(p)
            except RuntimeError as exc:  # CasADi evaluation or QP set-up errors: a failed step, not a crash
                ok, status, self._lin = False, f"solver_error: {exc}".splitlines()[0], None
                break
            fb += t_fb
            self._took["feedback"].add(t_fb)
            iters += 1  # Gauss–Newton iterations (QPs); daqp reports no inner count
            step = float(np.max(np.abs(w_new - w)))
            w = w_new
            if not ok or not np.all(np.isfinite(w)) or step <= self.tol:
                break
        if ok and self.method == "sqp-gn" and not step <= self.tol:
            ok, status = False, f"max_iter ({status}, last step {step:.2g})"
        t_check = time.perf_counter()
        gap = self.consistency(w, p) if ok and np.all(np.isfinite(w)) else None
        fb += time.perf_counter() - t_check
        if ok and gap is not None and not gap <= self.consistency_tol:
            ok, status = False, f"model_inconsistent (gap {gap:.3g} > {self.consistency_tol:g})"
        if ok and deadline is not None and time.perf_counter() > deadline:
            ok, status = False, f"time_limit ({status})"
        if ok:
            self._cold = False
        return SolveResult(w, ok, status, iters, obj, prep + fb, prepare_time=prep, feedback_time=fb,
                           model_gap=gap)
