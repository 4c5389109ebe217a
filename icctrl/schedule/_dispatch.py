"""Rolling-horizon dispatch LP: built and DPP-compiled once, each re-solve only fills parameter values.

minimise  Δt·Σ_t (π_imp,t·g⁺_t − π_exp,t·g⁻_t) + Δt·Σ_t (c(p⁺_t) + c(−p⁻_t) − c(0))
s.t.      e_0 = SOC₀,  e_(t+1) = e_t + Δt·(η_c·p⁺_t − p⁻_t/η_d),  e_H ≥ soc_terminal,
          soc_min ≤ e_(t+1) ≤ soc_max,  0 ≤ p⁺ ≤ P_c,  0 ≤ p⁻ ≤ P_d,  g⁺, g⁻ ≥ 0,
          g⁺_t − g⁻_t = load_t − pv_t + p⁺_t − p⁻_t,
with c the learned convex cost rate. The complementarity p⁺·p⁻ = 0 (and g⁺·g⁻ = 0) is relaxed; the
relaxation is exact when 0 < π_exp ≤ π_imp and c is minimal at 0, because lowering both p⁺ and p⁻ (keeping
the SOC change) then sends energy to the grid at a positive price and lowers c. Other prices are refused.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np

from icctrl.errors import InvalidValueError, NotConvexError, ShapeError, UnknownNameError
from icctrl.export import to_cvxpy
from icctrl.schedule._battery import Battery
from icctrl.schedule._compiled import CompiledLP, quiet_stdout
from icctrl.schedule._degradation import Degradation

SOLVERS = {"clarabel": cp.CLARABEL, "ecos": cp.ECOS, "highs": cp.HIGHS, "osqp": cp.OSQP}
FORMULATIONS = ("pieces", "epigraph", "none")
BACKENDS = ("auto", "compiled", "cvxpy")
# Tight enough that the power balance of a plan holds to 1e-6 kW; solver defaults elsewhere.
_SOLVER_OPTIONS = {
    "osqp": {"eps_abs": 1e-8, "eps_rel": 1e-8, "max_iter": 50000},
    "ecos": {},
    "clarabel": {},
    # one thread: a 3000-column LP gains nothing from HiGHS's task pool, and on a busy machine it loses
    "highs": {"output_flag": False, "threads": 1, "parallel": "off"},
}
BALANCE_TOL = 1e-6  # kW
SOC_TOL = 1e-6  # kWh


@dataclass
class Plan:
    """One re-solve: the planned trajectories, its status, and how long it took."""

    status: str
    ok: bool
    p_charge: np.ndarray
    p_discharge: np.ndarray
    soc: np.ndarray
    grid_import: np.ndarray
    grid_export: np.ndarray
    objective: float
    solve_ms: float
    solver_ms: float = float("nan")
    balance_residual: float = 0.0

    @property
    def p_battery(self) -> np.ndarray:
        """Net terminal power (kW, + = charging)."""
        return self.p_charge - self.p_discharge

    @property
    def action(self) -> float:
        """The first step's net battery power: what a rolling-horizon controller applies."""
        return float(self.p_charge[0] - self.p_discharge[0])


@dataclass
class DispatchStats:
    """Counters over the life of a Dispatcher."""

    solves: int = 0
    fallbacks: int = 0
    statuses: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        return {"solves": self.solves, "fallbacks": self.fallbacks, "statuses": dict(self.statuses)}


def _vector(x, n: int, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ShapeError(f"{name} must have length {n} (the horizon), got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise InvalidValueError(
            f"{name} has non-finite values at steps {bad[:5].tolist()}: {arr[bad[:5]].tolist()}"
        )
    return arr


def check_prices(price_import: np.ndarray, price_export: np.ndarray) -> None:
    """Refuse prices for which the relaxed LP is not exact (or is unbounded): need 0 < π_exp ≤ π_imp."""
    bad = np.flatnonzero(price_export <= 0)
    if bad.size:
        raise InvalidValueError(
            f"export price must be > 0 €/kWh (with a zero or negative feed-in price the LP would burn energy "
            "by "
            f"charging and discharging at once); got {price_export[bad[0]]!r} at step {bad[0]}"
        )
    bad = np.flatnonzero(price_export > price_import)
    if bad.size:
        t = bad[0]
        raise InvalidValueError(
            f"export price {price_export[t]!r} exceeds import price {price_import[t]!r} €/kWh at step {t}: "
            "importing to export would be unbounded arbitrage"
        )


class Dispatcher:
    """The dispatch LP over `horizon` steps of `dt` hours, compiled once; `solve` re-solves it in place.

    `formulation`: "pieces" (the learned cost through its exact affine pieces: few extra rows), "epigraph"
    (the learned cost through `icctrl.export.to_cvxpy`, one auxiliary variable per hidden unit and step), or
    "none" (no degradation term: the plain LP). Both learned forms give the same optimum (tested)."""

    def __init__(
        self,
        battery: Battery,
        degradation: Degradation | None = None,
        horizon: int = 96,
        dt: float = 0.25,
        solver: str = "highs",
        formulation: str = "pieces",
        solver_options: dict | None = None,
        terminal_value: float = 0.0,
        backend: str = "auto",
    ):
        if not isinstance(battery, Battery):
            raise InvalidValueError(f"battery must be a Battery, got {type(battery).__name__}")
        if int(horizon) != horizon or horizon < 1:
            raise InvalidValueError(f"horizon must be a positive integer, got {horizon!r}")
        if not np.isfinite(dt) or dt <= 0:
            raise InvalidValueError(f"dt must be positive and finite, got {dt!r}")
        if formulation not in FORMULATIONS:
            raise UnknownNameError(f"unknown formulation {formulation!r}; choose one of {list(FORMULATIONS)}")
        if formulation != "none" and degradation is None:
            raise InvalidValueError(f"formulation {formulation!r} needs a trained Degradation model")
        self.solver_name = str(solver).lower()
        if self.solver_name not in SOLVERS:
            raise UnknownNameError(f"unknown solver {solver!r}; choose one of {sorted(SOLVERS)}")
        if SOLVERS[self.solver_name] not in cp.installed_solvers():
            raise UnknownNameError(
                f"solver {solver!r} is not installed (installed: {cp.installed_solvers()})"
            )
        if backend not in BACKENDS:
            raise UnknownNameError(f"unknown backend {backend!r}; choose one of {list(BACKENDS)}")
        if backend == "compiled" and self.solver_name != "highs":
            raise InvalidValueError(f"the compiled backend runs HiGHS; got solver {solver!r}")
        if not np.isfinite(terminal_value) or terminal_value < 0:
            raise InvalidValueError(f"terminal_value must be finite and >= 0 €/kWh, got {terminal_value!r}")
        self.terminal_value = float(terminal_value)
        self.battery, self.degradation, self.horizon, self.dt = battery, degradation, int(horizon), float(dt)
        self.formulation = formulation
        self.solver_options = {**_SOLVER_OPTIONS[self.solver_name], **(solver_options or {})}
        self.stats = DispatchStats()
        with np.errstate(
            invalid="ignore"
        ):  # cvxpy's bound propagation meets inf·0 on unbounded epigraph variables
            self._build()
        if self.solver_name == "osqp" and not self.problem.is_qp():
            raise NotConvexError(f"OSQP solves QPs only; the {formulation!r} formulation is not a QP")
        if formulation != "none":
            self._check_minimum_at_zero()
        t0 = time.perf_counter()
        with np.errstate(invalid="ignore"), quiet_stdout():
            self._warm_up()
        self.compiled = None
        if backend == "compiled" or (backend == "auto" and self.solver_name == "highs"):
            self.compiled = CompiledLP(self.problem, self.solver_options)
            status, _, obj = self.compiled.solve()
            ref = float(self.problem.value)
            if status != "optimal" or abs(obj - ref) > 1e-7 * (1.0 + abs(ref)):
                raise InvalidValueError(
                    f"compiled LP disagrees with cvxpy on the warm-up instance: {status}, "
                    f"objective {obj!r} vs {ref!r}"
                )
        self.backend = "compiled" if self.compiled is not None else "cvxpy"
        self.compile_ms = 1e3 * (time.perf_counter() - t0)

    # ------------------------------------------------------------------ build once
    def _build(self) -> None:
        b, H, dt = self.battery, self.horizon, self.dt
        # Bounds sit on the variables: HiGHS keeps them as column bounds, cvxpy makes rows for other solvers.
        self.e = cp.Variable(H, bounds=[b.soc_min, b.soc_max], name="soc")  # SOC after each step
        self.g_imp = cp.Variable(H, nonneg=True, name="grid_import")
        self.g_exp = cp.Variable(H, nonneg=True, name="grid_export")
        self.soc0 = cp.Parameter(name="soc0")
        self.net_load = cp.Parameter(H, name="net_load")  # load − pv, kW
        self.pi_imp = cp.Parameter(H, nonneg=True, name="price_import")
        self.pi_exp = cp.Parameter(H, nonneg=True, name="price_export")
        self.degradation_const = 0.0
        self.epigraph = None
        deg = 0
        if self.formulation == "pieces":
            (sc, wc), (sd, wd) = (
                self.degradation.segments(b.p_charge_max, 1),
                self.degradation.segments(b.p_discharge_max, -1),
            )
            self.seg_c = cp.Variable(
                (H, len(sc)), bounds=[np.zeros((H, len(sc))), np.tile(wc, (H, 1))], name="seg_c"
            )
            self.seg_d = cp.Variable(
                (H, len(sd)), bounds=[np.zeros((H, len(sd))), np.tile(wd, (H, 1))], name="seg_d"
            )
            self.p_c, self.p_d = cp.sum(self.seg_c, axis=1), cp.sum(self.seg_d, axis=1)
            self.n_pieces = (len(sc), len(sd))
            c0 = float(self.degradation(np.array([0.0]))[0])
            deg = dt * (cp.sum(self.seg_c @ sc) + cp.sum(self.seg_d @ sd))
            self.degradation_const = dt * H * c0
        else:
            self.p_c = cp.Variable(H, bounds=[0.0, b.p_charge_max], name="p_charge")
            self.p_d = cp.Variable(H, bounds=[0.0, b.p_discharge_max], name="p_discharge")
            if self.formulation == "epigraph":
                inputs = [self.p_c[t : t + 1] for t in range(H)] + [-self.p_d[t : t + 1] for t in range(H)]
                self.epigraph = to_cvxpy(self.degradation.model, inputs)
                deg = dt * cp.sum(self.epigraph.outputs)
                self.degradation_const = -dt * H * float(self.degradation(np.array([0.0]))[0])
        prev = cp.hstack([cp.reshape(self.soc0, (1,), order="C"), self.e[:-1]])
        cons = [
            self.e == prev + dt * (b.eta_charge * self.p_c - self.p_d / b.eta_discharge),
            self.e[H - 1] >= b.soc_terminal,
            self.g_imp - self.g_exp == self.net_load + self.p_c - self.p_d,
        ]
        if self.epigraph is not None:
            cons += self.epigraph.constraints
        energy = dt * (self.pi_imp @ self.g_imp - self.pi_exp @ self.g_exp)
        stored = self.terminal_value * (
            self.e[H - 1] - self.soc0
        )  # value of the energy kept past the horizon
        self.problem = cp.Problem(cp.Minimize(energy + deg - stored), cons)
        if not self.problem.is_dcp(dpp=True):
            raise NotConvexError("the assembled dispatch problem is not DCP under DPP rules")

    def _check_minimum_at_zero(self) -> None:
        """The relaxation of p⁺·p⁻ = 0 is exact only if the learned cost does not fall when leaving p = 0."""
        b = self.battery
        for side, length in ((1, b.p_charge_max), (-1, b.p_discharge_max)):
            slopes, _ = self.degradation.segments(length, side)
            if slopes[0] < -1e-9:
                mode = "charging" if side > 0 else "discharging"
                raise InvalidValueError(
                    f"the learned cost decreases away from p = 0 ({mode} slope {slopes[0]:.3g} €/kWh): the "
                    "charge/discharge relaxation would not be exact; fit_degradation "
                    "anchors the minimum at 0"
                )

    def _warm_up(self) -> None:
        """First solve on a neutral instance: compiles the DPP program (the only canonicalisation)."""
        b, H = self.battery, self.horizon
        mid = 0.5 * (b.soc_min + b.soc_max)
        self._fill(mid, np.zeros(H), np.full(H, 0.3), np.full(H, 0.1))
        self.problem.solve(solver=SOLVERS[self.solver_name], **self.solver_options)

    # ------------------------------------------------------------------ certificate
    def certificate(self) -> dict:
        """Convexity evidence: the ICNN's certificate from the core, the problem's DCP-under-DPP check, and
        the exactness condition of the epigraph (objective nondecreasing in the learned outputs: a summed
        cost)."""
        cert = self.degradation.certificate if self.degradation is not None else None
        dpp = bool(self.problem.is_dcp(dpp=True))
        model_ok = cert is None or bool(cert.convex)
        return {
            "certified_convex": dpp and model_ok,
            "problem_is_dcp_dpp": dpp,
            "degradation_certificate": cert.to_dict() if cert is not None else None,
            "epigraph_exact": "objective is a positive sum of the learned outputs (nondecreasing), so the "
            "epigraph relaxation attains the network's value at the optimum",
            "formulation": self.formulation,
            "variables": int(sum(v.size for v in self.problem.variables())),
            "constraints": int(sum(c.size for c in self.problem.constraints)),
        }

    @property
    def certified_convex(self) -> bool:
        return bool(self.certificate()["certified_convex"])

    # ------------------------------------------------------------------ solve
    def _fill(self, soc0, net_load, price_import, price_export) -> None:
        self.soc0.value = float(soc0)
        self.net_load.value = net_load
        self.pi_imp.value = price_import
        self.pi_exp.value = price_export

    def _check(self, soc0, pv, load, price_import, price_export):
        H = self.horizon
        soc0 = float(soc0)
        if not np.isfinite(soc0) or not 0 <= soc0 <= self.battery.capacity_kwh + SOC_TOL:
            raise InvalidValueError(f"soc0 = {soc0!r} kWh is outside [0, {self.battery.capacity_kwh}]")
        pv, load = _vector(pv, H, "pv forecast"), _vector(load, H, "load forecast")
        pi, pe = _vector(price_import, H, "import price"), _vector(price_export, H, "export price")
        for name, arr in (("pv forecast", pv), ("load forecast", load)):
            if np.any(arr < 0):
                t = int(np.argmin(arr))
                raise InvalidValueError(f"{name} must be >= 0 kW, got {arr[t]!r} at step {t}")
        check_prices(pi, pe)
        return soc0, pv, load, pi, pe

    def solve(self, soc0, pv, load, price_import, price_export) -> Plan:
        """Re-solve for the current SOC (kWh), PV and load forecasts (kW) and prices (€/kWh), all of horizon
        length.

        Bad input raises (ShapeError, InvalidValueError); an infeasible or failed solve returns the safe
        fallback plan (hold SOC, import the deficit) with `ok=False`, its reason in `status`, and counts in
        `stats`."""
        t0 = time.perf_counter()
        soc0, pv, load, pi, pe = self._check(soc0, pv, load, price_import, price_export)
        self._fill(soc0, load - pv, pi, pe)
        self.stats.solves += 1
        solver_ms = float("nan")
        try:
            if self.compiled is not None:
                t1 = time.perf_counter()
                status, values, objective = self.compiled.solve()
                solver_ms = 1e3 * (time.perf_counter() - t1)
            else:
                self.problem.solve(solver=SOLVERS[self.solver_name], **self.solver_options)
                status, objective = self.problem.status, self.problem.value
                values = {v.id: v.value for v in self.problem.variables()} if self.e.value is not None else {}
                st = self.problem.solver_stats
                if st is not None and st.solve_time is not None:
                    solver_ms = 1e3 * st.solve_time
        except cp.error.SolverError as exc:
            status, values, objective = f"solver error: {str(exc).splitlines()[0][:120]}", {}, float("nan")
        if status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) and values:
            plan = self._plan(status, soc0, values, objective, solver_ms, t0)
            reason = self._invalid(plan, soc0)
            if reason is None:
                self.stats.statuses[status] += 1
                return plan
            status = f"{status} but {reason}"
        return self._fallback(status, soc0, pv, load, pi, pe, t0)

    def _plan(
        self, status: str, soc0: float, values: dict, objective: float, solver_ms: float, t0: float
    ) -> Plan:
        if self.formulation == "pieces":
            pc, pd = values[self.seg_c.id].sum(axis=1), values[self.seg_d.id].sum(axis=1)
        else:
            pc, pd = values[self.p_c.id], values[self.p_d.id]
        pc, pd = np.asarray(pc, dtype=float).reshape(-1), np.asarray(pd, dtype=float).reshape(-1)
        gi = np.asarray(values[self.g_imp.id], dtype=float).reshape(-1)
        ge = np.asarray(values[self.g_exp.id], dtype=float).reshape(-1)
        resid = float(np.max(np.abs(gi - ge - (self.net_load.value + pc - pd))))
        soc = np.concatenate([[soc0], np.asarray(values[self.e.id], dtype=float).reshape(-1)])
        return Plan(
            status,
            True,
            pc,
            pd,
            soc,
            gi,
            ge,
            float(objective) + self.degradation_const,
            1e3 * (time.perf_counter() - t0),
            solver_ms,
            resid,
        )

    def _invalid(self, plan: Plan, soc0: float) -> str | None:
        b = self.battery
        if plan.balance_residual > BALANCE_TOL:
            return f"power balance residual {plan.balance_residual:.3g} kW > {BALANCE_TOL}"
        e = plan.soc[1:]
        if np.any(e < b.soc_min - SOC_TOL) or np.any(e > b.soc_max + SOC_TOL):
            return f"planned SOC leaves [{b.soc_min}, {b.soc_max}] (min {e.min():.6g}, max {e.max():.6g})"
        return None

    def _fallback(self, status, soc0, pv, load, pi, pe, t0) -> Plan:
        """Hold the SOC (battery idle) and take the whole net load from / give the surplus to the grid."""
        self.stats.fallbacks += 1
        status = f"fallback ({status})"
        self.stats.statuses[status.split(":")[0]] += 1
        H = self.horizon
        net = load - pv
        gi, ge = np.maximum(net, 0.0), np.maximum(-net, 0.0)
        cost = float(self.dt * (pi @ gi - pe @ ge))
        return Plan(
            status,
            False,
            np.zeros(H),
            np.zeros(H),
            np.full(H + 1, soc0),
            gi,
            ge,
            cost,
            1e3 * (time.perf_counter() - t0),
        )
