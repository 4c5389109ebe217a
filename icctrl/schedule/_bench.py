"""Re-solve timings of the dispatch problem on realistic instances (forecasts from the microgrid plant)."""

from __future__ import annotations

import time

import numpy as np

from icctrl.errors import InvalidValueError
from icctrl.schedule._battery import Battery
from icctrl.schedule._degradation import fit_degradation
from icctrl.schedule._dispatch import Dispatcher
from icctrl.schedule._forecast import RidgeForecaster

#: (formulation, solver, backend) triples timed by default: the fast path, the same problem through cvxpy's
#: solve, the generic epigraph export, and the plain LP without the learned term.
DEFAULT_CASES = (
    ("pieces", "highs", "compiled"),
    ("pieces", "highs", "cvxpy"),
    ("pieces", "ecos", "cvxpy"),
    ("pieces", "clarabel", "cvxpy"),
    ("epigraph", "highs", "compiled"),
    ("epigraph", "ecos", "cvxpy"),
    ("none", "highs", "compiled"),
    ("none", "ecos", "cvxpy"),
)


def dispatch_timings(
    cases=DEFAULT_CASES, steps: int = 96, seed: int = 0, degradation_steps: int = 800, site: str = "golden"
) -> list[dict]:
    """Median / p99 wall time per re-solve (and the solver's own share) for each (formulation, solver,
    backend), re-solving along one simulated day with the SOC carried forward as the plans dictate."""
    from plants import Microgrid

    if int(steps) != steps or steps < 1:
        raise InvalidValueError(f"steps must be a positive integer, got {steps!r}")
    plant = Microgrid(site=site)
    battery = Battery.from_microgrid(plant)
    frame = plant.profiles(days=6, start="2024-06-14", seed=seed)
    pv, load = frame["pv_kw"].to_numpy(), frame["load_kw"].to_numpy()
    pi, pe = frame["price_import"].to_numpy(), frame["price_export"].to_numpy()
    t0 = 4 * 96
    forecaster = RidgeForecaster().fit(pv[:t0], load[:t0])
    windows = [forecaster.predict(pv[: t0 + k], load[: t0 + k], k % 96) for k in range(int(steps))]
    deg = fit_degradation(
        p_max=battery.p_charge_max, p_min=-battery.p_discharge_max, steps=degradation_steps, seed=seed
    )
    rows = []
    for formulation, solver, backend in cases:
        t = time.perf_counter()
        d = Dispatcher(
            battery,
            deg if formulation != "none" else None,
            solver=solver,
            formulation=formulation,
            backend=backend,
        )
        build_ms = 1e3 * (time.perf_counter() - t)
        soc, total, own, cpu = 0.5 * battery.capacity_kwh, [], [], []
        for k, (pv_fc, load_fc) in enumerate(windows):
            c = time.process_time()
            plan = d.solve(soc, pv_fc, load_fc, pi[t0 + k : t0 + k + 96], pe[t0 + k : t0 + k + 96])
            cpu.append(1e3 * (time.process_time() - c))
            total.append(plan.solve_ms)
            own.append(plan.solver_ms)
            soc = float(plan.soc[1]) if plan.ok else soc
        cert = d.certificate()
        rows.append(
            {
                "formulation": formulation,
                "solver": solver,
                "backend": d.backend,
                "median_ms": float(np.median(total)),
                "p99_ms": float(np.percentile(total, 99)),
                "solver_median_ms": float(np.nanmedian(own)),
                "cpu_median_ms": float(np.median(cpu)),
                "other_median_ms": float(np.nanmedian(np.asarray(total) - np.asarray(own))),
                "build_ms": build_ms,
                "variables": cert["variables"],
                "constraints": cert["constraints"],
                "fallbacks": d.stats.fallbacks,
                "steps": len(total),
            }
        )
    return rows


def timings_table(rows: list[dict]) -> str:
    """Plain-text table of `dispatch_timings` rows."""
    head = (
        f"{'formulation':<12}{'solver':<10}{'backend':<10}{'median ms':>10}{'p99 ms':>9}{'solver ms':>10}"
        f"{'other ms':>9}{'cpu ms':>8}{'vars':>7}{'build ms':>10}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['formulation']:<12}{r['solver']:<10}{r['backend']:<10}{r['median_ms']:>10.2f}"
            f"{r['p99_ms']:>9.2f}{r['solver_median_ms']:>10.2f}"
            f"{r['other_median_ms']:>9.2f}{r['cpu_median_ms']:>8.2f}"
            f"{r['variables']:>7d}{r['build_ms']:>10.0f}"
        )
    return "\n".join(lines)
