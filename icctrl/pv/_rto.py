"""Real-time optimisation of the duty cycle: most energy to the bus over N periods, bus voltage bounded.

    max_U  Σ_k v_b·î_s,k+1·dt + ΔE_N − ρ Σ_k (u_k − u_k−1)²     s.t.  v̂_c,k+1 ≤ v_max,  u_k ∈ [0.05, 0.95]

where ΔE_N = ½C(v̂_pv,N² − v_pv,0²) + ½L(î_s,N² − i_s,0²) is the change of energy stored in the converter
(without it a short horizon drains the input capacitor into the bus and collapses the array voltage),

with the converter predicted either by a learned one-step model (inputs [v_pv, i_s, u, G, T_c], exported by
`to_casadi`, the prediction fed back) or by the plant's RK4 twin. The bus buffer voltage is the charge
balance v̂_c,k+1 = v̂_c,k + dt·(î_s,k+1 − i_L)/C_b (affine in î_s, so it carries the model's curvature).
Solved by the real-time engine of `icctrl.mpc` (solver "rti", the default: one QP per period on the
objective's Hessian with negative eigenvalues clipped, constraints linearised) or by Ipopt ("ipopt", exact
Hessian, the converged reference); both warm-started with the shifted previous plan.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import casadi as ca
import numpy as np

from icctrl.convexity import Certificate, Tracer, run_trace, summarize
from icctrl.convexity._lattice import S
from icctrl.errors import InvalidValueError, ShapeError, UnknownNameError
from icctrl.export import to_casadi

IPOPT = {"ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes", "ipopt.max_iter": 60,
         "ipopt.tol": 1e-6, "ipopt.acceptable_tol": 1e-4, "ipopt.warm_start_init_point": "yes",
         "ipopt.mu_init": 1e-3}


PV_SOLVERS = ("rti", "ipopt")


class _DutyQP:
    """The duty RTO as the real-time engine reads a problem: decision U, parameters (x0, d, u_prev), objective,
    constraints and bounds. The energy objective is no least-squares sum, so the engine takes its exact Hessian
    with the negative eigenvalues clipped (a Gauss–Newton Hessian of the rate penalty alone, damped, lost a
    quarter of the energy and let the array voltage collapse in closed loop)."""

    class predictor:  # noqa: N801 - the engine asks a problem's predictor what it predicts
        kind = "cost"

    def __init__(self, nlp: dict, N: int, lo: float, hi: float, v_max: float):
        self.w, self.p, self.J, self.g = nlp["x"], nlp["p"], nlp["f"], nlp["g"]
        self.N, self.nu, self.n_states, self.shooting = N, 1, 0, "single"
        self.lbw, self.ubw = np.full(N, lo), np.full(N, hi)
        self.lbg, self.ubg = np.full(N, -np.inf), np.full(N, v_max)


@dataclass
class Solve:
    """One RTO solve: the duty to apply, the plan, wall time of the solver call [ms] and Ipopt's status."""

    duty: float
    plan: np.ndarray
    ms: float
    status: str
    success: bool


class DutyRTO:
    """The duty-cycle RTO built once for a predictor (`model`: a learned one-step model, or None: the plant's
    RK4 twin); `solve(x, d, u_prev)` only fills in parameters."""

    def __init__(self, plant, model=None, horizon: int = 8, v_max: float | None = None, rho: float = 2.0,
                 window: int = 2, rk4_substeps: int = 4, label: str | None = None, solver: str = "rti"):
        if isinstance(horizon, bool) or int(horizon) != horizon or horizon < 1:
            raise InvalidValueError(f"horizon must be a positive integer, got {horizon!r}")
        self.plant, self.model, self.N, self.window = plant, model, int(horizon), int(window)
        self.v_max = float(plant.v_b + 0.05 if v_max is None else v_max)
        if not np.isfinite(self.v_max) or self.v_max <= 0:
            raise InvalidValueError(f"v_max must be a positive voltage, got {v_max!r}")
        if not np.isfinite(rho) or rho < 0:
            raise InvalidValueError(f"rho must be >= 0, got {rho!r}")
        if model is not None and (model.n_in != 5 or model.n_out != 2):
            raise ShapeError(f"PV model must map 5 inputs [v_pv, i_s, u, G, T_c] to 2 outputs (v_pv, i_s), "
                             f"got {model.n_in} → {model.n_out}")
        self.rho = float(rho)
        self.label = label or (getattr(model, "name", "model") if model is not None else "first-principles")
        self.i_nom = float(plant.mpp(*plant.d_nom).p_mp) / plant.v_b
        x0, d, up = ca.MX.sym("x0", 3), ca.MX.sym("d", 2), ca.MX.sym("u_prev")
        U = ca.MX.sym("U", self.N)
        step = self._step(rk4_substeps)
        x, J, g, i_prev = x0, 0, [], x0[1]
        dt, cb = plant.dt, plant.C_b
        e_ref = plant.v_b * self.i_nom * dt  # J: one period at the nominal MPP
        for k in range(self.N):
            x2 = step(x, U[k], d)
            v_c = x[2] + dt * (0.5 * (i_prev + x2[1]) - plant.i_L) / cb
            x, i_prev = ca.vertcat(x2[0], x2[1], v_c), x2[1]
            J = J - x2[1] / self.i_nom + self.rho * (U[k] - (up if k == 0 else U[k - 1])) ** 2
            g.append(v_c)
        stored = 0.5 * plant.C * (x[0] ** 2 - x0[0] ** 2) + 0.5 * plant.L * (x[1] ** 2 - x0[1] ** 2)
        J = J - stored / e_ref
        if solver not in PV_SOLVERS:
            raise UnknownNameError(f"unknown PV RTO solver {solver!r}; choose one of {PV_SOLVERS}")
        self.solver_name = solver
        nlp = {"x": U, "p": ca.vertcat(x0, d, up), "f": J, "g": ca.vertcat(*g)}
        if solver == "ipopt":
            self.solver = ca.nlpsol("rto_" + self.label.replace("-", ""), "ipopt", nlp, IPOPT)
        else:
            from icctrl.mpc._rti import RTISolver

            lo, hi = float(plant.u_lb[0]), float(plant.u_ub[0])
            self.qp = _DutyQP(nlp, self.N, lo, hi, self.v_max)
            self.solver = RTISolver(self.qp, "rti", derivatives="sx" if model is None else "mx")
        self.plan = None

    def _step(self, substeps: int):
        """(x (3), u, d) → (v_pv, i_s) one period ahead."""
        x, u, d = ca.MX.sym("x", 3), ca.MX.sym("u"), ca.MX.sym("d", 2)
        if self.model is None:
            f = self.plant.casadi_step(substeps=substeps)
            return ca.Function("period", [x, u, d], [f(x, u, d)[:2]])
        f = to_casadi(self.model, window=self.window)
        row = ca.horzcat(x[0], x[1], u, d[0], d[1])
        return ca.Function("period", [x, u, d], [f(ca.repmat(row, self.window, 1))[self.window - 1, :].T])

    def solve(self, x, d, u_prev: float) -> Solve:
        """Plan from state x = (v_pv, i_s, v_c) under measured d = (G, T_c); apply the first duty."""
        x, d = np.asarray(x, float).reshape(-1), np.asarray(d, float).reshape(-1)
        if x.shape != (3,) or d.shape != (2,):
            raise ShapeError(f"solve needs x of 3 and d of 2 values, got {x.shape} and {d.shape}")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(d)) and np.isfinite(u_prev)):
            raise InvalidValueError(f"solve got non-finite values: x={x.tolist()}, d={d.tolist()}, u={u_prev}")
        lo, hi = float(self.plant.u_lb[0]), float(self.plant.u_ub[0])
        guess = np.full(self.N, u_prev) if self.plan is None else np.r_[self.plan[1:], self.plan[-1]]
        t0 = time.perf_counter()
        if self.solver_name == "ipopt":
            sol = self.solver(x0=np.clip(guess, lo, hi), p=np.r_[x, d, u_prev], lbx=lo, ubx=hi, ubg=self.v_max)
            ms = (time.perf_counter() - t0) * 1e3
            st = self.solver.stats()
            plan = np.array(sol["x"]).reshape(-1)
            ok, status = bool(st.get("success", False)) and np.all(np.isfinite(plan)), str(st.get("return_status"))
        else:
            res = self.solver.solve(np.r_[x, d, u_prev], np.clip(guess, lo, hi))
            ms = (time.perf_counter() - t0) * 1e3
            plan, status = res.v, res.status
            ok = res.ok and np.all(np.isfinite(plan)) and np.all(plan >= lo - 1e-6) and np.all(plan <= hi + 1e-6)
            plan = np.clip(plan, lo, hi)
        if ok:
            self.plan = plan
        else:  # hold the last duty: the plant keeps running while the solver fails
            plan, self.plan = np.full(self.N, u_prev), None
            if self.solver_name == "rti":
                self.solver.reset()
        return Solve(float(np.clip(plan[0], lo, hi)), plan, ms, status, ok)

    def certificate(self) -> dict:
        """Certificates of the objective, the constraints and the whole problem in the duty plan."""
        return rto_certificate(self.model, self.N, self.window, self.plant)


def rto_certificate(model, horizon: int, window: int, plant=None) -> dict:
    """Compose the predictor's facts with the RTO's cost and constraints (`icctrl.convexity` rules)."""
    verdicts = {}
    for part in ("objective", "constraints", "problem"):
        tr = Tracer(("duty",))
        x = [tr.constant("v_pv_0"), tr.constant("i_s_0")]
        d = [tr.constant("G"), tr.constant("T_c")]
        outs = []
        for k in range(horizon):
            u = tr.input("duty", f"u_{k}")
            tr.scope = f"horizon step {k + 1}: "
            if model is None:
                from icctrl.mpc import FirstPrinciples

                y = FirstPrinciples(plant).trace(tr, [], [[u]])[0]
            else:
                y = run_trace(model, tr, [x + [u] + d] * window)[-1]
            outs.append(y)
            x = [y.__class__(y.curvature, y.mono, y.sign, f"v̂_pv,{k + 1}"),
                 y.__class__(y.curvature, y.mono, y.sign, f"î_s,{k + 1}")]
        tr.scope = ""
        us = [tr.input("duty", f"u_{k}") for k in range(horizon)]
        terms = [tr.neg(y, f"−v_b·î_s,{k + 1} (energy to maximise)") for k, y in enumerate(outs)]
        terms += [tr.square_norm(tr.add(u, tr.neg(us[k - 1], "−u"), label=f"Δu_{k}"), f"ρ(Δu_{k})²")
                  for k, u in enumerate(us) if k > 0]
        terms.append(tr.neg(tr.square_norm(outs[-1], "½C v̂_pv,N² + ½L î_s,N²"), "−stored energy at N"))
        objective = tr.add(*terms, label="objective −energy − ΔE_N + ρ‖Δu‖²")
        cons = [tr.linear(y, S.NONNEG, f"v̂_c,{k + 1} − v_max ≤ 0") for k, y in enumerate(outs)]
        for c in cons:
            if c.curvature.value not in ("convex", "affine", "constant"):
                tr.reasons.append(f"{c.label}: a {c.curvature.value} function bounded above is not a convex set")
        chosen = {"objective": [objective], "constraints": cons, "problem": [objective, *cons]}[part]
        name = getattr(model, "name", "first-principles") if model is not None else "first-principles"
        verdicts[part] = summarize(tr, chosen, ("duty",), f"over a horizon of {horizon} periods",
                                   f"PV RTO {part} ({name})")
    verdicts["problem"].notes.append(
        "maximising energy = minimising −î_s: the negative of a convex prediction is concave, so the "
        "objective is not convex even when the model is; only the sublevel constraints v̂_c ≤ v_max can be")
    return verdicts


def summary(verdicts: dict[str, Certificate]) -> dict:
    """JSON-able verdicts: convex flag, curvature and the first reasons per part."""
    return {k: {"convex": c.convex, "curvature": c.curvature, "reasons": c.reasons[:3], "notes": c.notes}
            for k, c in verdicts.items()}
