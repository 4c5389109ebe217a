"""Reference policies: the rule-based self-consumption controller and the perfect-foresight optimum."""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from icctrl.errors import InfeasibleError, InvalidValueError, ShapeError
from icctrl.schedule._battery import Battery
from icctrl.schedule._degradation import DegradationTruth
from icctrl.schedule._dispatch import check_prices


def self_consumption_action(battery: Battery, soc: float, pv: float, load: float, dt: float) -> float:
    """Battery power (kW) of the self-consumption rule: store the PV surplus, cover the deficit, within
    limits.

    The rule acts on the measured PV and load of the current step (a local controller balancing the meter).
    """
    lo, hi = battery.power_window(soc, dt)
    return float(np.clip(pv - load, lo, hi))


def oracle_dispatch(
    battery: Battery,
    soc0: float,
    pv,
    load,
    price_import,
    price_export,
    dt: float,
    truth: DegradationTruth,
    terminal_value: float,
    solver: str = "CLARABEL",
) -> np.ndarray:
    """Perfect-foresight battery power (kW) over the whole period: a QP with the true PV, load and
    degradation.

    It minimises exactly the score every policy is judged by — energy cost + true degradation −
    terminal_value· (final SOC − soc0) — so its score is a lower bound on theirs (an upper bound on savings).
    """
    arrays = [np.asarray(a, dtype=float).reshape(-1) for a in (pv, load, price_import, price_export)]
    T = arrays[0].size
    if any(a.size != T for a in arrays) or T == 0:
        raise ShapeError(
            f"oracle inputs must have one common non-zero length, got {[a.size for a in arrays]}"
        )
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise InvalidValueError("oracle inputs must be finite")
    pv, load, pi, pe = arrays
    check_prices(pi, pe)
    b = battery
    pc = cp.Variable(T, bounds=[0.0, b.p_charge_max])
    pd = cp.Variable(T, bounds=[0.0, b.p_discharge_max])
    e = cp.Variable(T, bounds=[b.soc_min, b.soc_max])
    gi, ge = cp.Variable(T, nonneg=True), cp.Variable(T, nonneg=True)
    prev = cp.hstack([np.array([soc0]), e[:-1]])
    cons = [e == prev + dt * (b.eta_charge * pc - pd / b.eta_discharge), gi - ge == load - pv + pc - pd]
    cost = (
        dt * (pi @ gi - pe @ ge) + dt * cp.sum(truth.cvxpy_split(pc, pd)) - terminal_value * (e[T - 1] - soc0)
    )
    prob = cp.Problem(cp.Minimize(cost), cons)
    prob.solve(solver=solver)
    if prob.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise InfeasibleError(f"perfect-foresight problem is {prob.status} (soc0={soc0!r} kWh)")
    return np.asarray(pc.value - pd.value, dtype=float)
