"""µs per CSTR sampling period for the candidate plant integrators, all at rtol 1e-8 / atol 1e-10, and how far
each lands from `solve_ivp` LSODA (the integrator `Plant.step` used before) and from a converged Radau
(rtol 1e-13), on states from the stability region, hot stiff states (T 600–1000 K) and the parameter-drift
fault's plant (k0, ΔH changed); and the PV converter (no analytic Jacobian) on the two LSODA paths.

    python examples/plant_step_timing.py [--n 200] [--repeats 5] [--json /tmp/plant_step.json]

Timings are medians over repeats that take the candidates in turn, so load from other jobs hits all alike.
"""

from __future__ import annotations

import argparse
import copy
import time

import casadi as ca
import numpy as np
from scipy.integrate import ode, odeint, solve_ivp

from icctrl._io import write_json
from icctrl.reliability._faults import FAULTS
from plants import CSTR, PVConverter

PARAMS = ("F", "V", "k0", "E", "R", "T0", "dH", "rho", "Cp")  # what the CSTR's equations read
NO_D = np.zeros(0)


def state_sets(plant: CSTR, n: int, rng: np.random.Generator) -> dict:
    """Name -> (plant, states (n, 2), inputs (n, 2)): the test states each candidate integrates from."""
    def inputs():
        return rng.uniform(plant.u_lb, plant.u_ub, size=(n, 2))

    hot = np.c_[rng.uniform(0.05, 8.0, n), rng.uniform(600.0, 1000.0, n)]
    drifted = FAULTS["parameter_drift"].inject(plant, rng).plant
    mixed = np.concatenate([plant.sample_stability_region(n - n // 2, rng), hot[: n // 2]])
    return {
        "stability region": (plant, plant.sample_stability_region(n, rng), inputs()),
        "hot (T 600-1000 K)": (plant, hot, inputs()),
        "drifted k0, dH (mixed)": (drifted, mixed, inputs()),
    }


def converged(p, x, u):
    jac = (lambda t, y: p._jac(y, u, p.d_nom)) if p._has_jac() else None
    sol = solve_ivp(lambda t, y: p._rhs(y, u, p.d_nom), (0.0, p.dt), x, method="Radau", rtol=1e-13, atol=1e-14,
                    jac=jac)
    return sol.y[:, -1]


def with_odeint(p: CSTR, x, u):
    """odeint's LSODA, stopping exactly at dt (tcrit) as solve_ivp's does."""
    y, info = odeint(lambda y, t: p._rhs(y, u, p.d_nom), x, (0.0, p.dt), Dfun=lambda y, t: p._jac(y, u, p.d_nom),
                     rtol=p.rtol, atol=p.atol, tcrit=(p.dt,), mxstep=100_000, full_output=True)
    if info["message"] != "Integration successful." or info["tcur"][-1] < p.dt * (1 - 1e-12):
        raise RuntimeError(info["message"])
    return y[-1]


_VODE = ode(lambda t, y, p, u: p._rhs(y, u, NO_D), lambda t, y, p, u: p._jac(y, u, NO_D)).set_integrator(
    "vode", method="bdf", with_jacobian=True, rtol=1e-8, atol=1e-10, nsteps=100_000)


def with_vode(p: CSTR, x, u):
    _VODE.set_f_params(p, u).set_jac_params(p, u).set_initial_value(x, 0.0)
    y = _VODE.integrate(p.dt)
    if not _VODE.successful():
        raise RuntimeError(f"vode return code {_VODE.get_return_code()}")
    return y


_CVODES: dict = {}


def with_cvodes(p: CSTR, x, u):
    """A CasADi cvodes integrator built once per parameter set (keyed on the values the equations read)."""
    key = tuple(getattr(p, k) for k in PARAMS) + (p.dt,)
    if key not in _CVODES:
        xs, us = ca.SX.sym("x", 2), ca.SX.sym("u", 2)
        dae = {"x": xs, "p": us, "ode": p._casadi_rhs_expr(xs, us, None)}
        _CVODES[key] = ca.integrator("cstr", "cvodes", dae, 0.0, p.dt, {"reltol": p.rtol, "abstol": p.atol})
    return np.array(_CVODES[key](x0=x, p=u)["xf"]).ravel()


CANDIDATES = {
    "solve_ivp LSODA (before)": lambda p, x, u: p._advance_solve_ivp(x, u, p.dt, p.d_nom),
    "ode LSODA reused (now)": lambda p, x, u: p._advance_lsoda(x, u, p.dt, p.d_nom),
    "odeint LSODA": with_odeint,
    "ode VODE BDF reused": with_vode,
    "CasADi cvodes": with_cvodes,
}


def rel_gap(Y: np.ndarray, R: np.ndarray) -> float:
    """Largest |Y − R| / |R| over states and components (R is never near 0 on these states)."""
    return float(np.max(np.abs(Y - R) / np.abs(R)))


def table(p, X, U, runs: dict, repeats: int) -> dict:
    """Per candidate: µs per period (each repeat, median), speed-up over solve_ivp, gaps to the references."""
    ref = np.array([p._advance_solve_ivp(x, u, p.dt, p.d_nom) for x, u in zip(X, U)])
    conv = np.array([converged(p, x, u) for x, u in zip(X, U)])
    rows = {}
    for k, f in runs.items():
        Y = np.array([f(p, x, u) for x, u in zip(X, U)])
        rows[k] = {"us": [], "vs_solve_ivp": rel_gap(Y, ref), "vs_converged": rel_gap(Y, conv)}
    for _ in range(repeats):
        for k, f in runs.items():
            t = time.perf_counter()
            for x, u in zip(X, U):
                f(p, x, u)
            rows[k]["us"].append(1e6 * (time.perf_counter() - t) / len(X))
    base = float(np.median(rows["solve_ivp LSODA (before)"]["us"]))
    for r in rows.values():
        r["us_median"] = float(np.median(r["us"]))
        r["speedup"] = base / r["us_median"]
    return rows


def step_rows(p) -> dict:
    """The public `step` (validation included) through solve_ivp as before, and as it is now."""
    before = copy.copy(p)
    before._advance = before._advance_solve_ivp
    return {"Plant.step, solve_ivp": lambda q, x, u: before.step(x, u), "Plant.step now": lambda q, x, u: q.step(x, u)}


def measure(n: int, repeats: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    out = {name: table(p, X, U, {**CANDIDATES, **step_rows(p)}, repeats)
           for name, (p, X, U) in state_sets(CSTR(), n, rng).items()}
    pv = PVConverter()  # no analytic Jacobian: LSODA differences it on both paths
    X, U = pv.x_ss * rng.uniform(0.9, 1.1, size=(n, 3)), rng.uniform(pv.u_lb, pv.u_ub, size=(n, 1))
    lsoda = {k: CANDIDATES[k] for k in ("solve_ivp LSODA (before)", "ode LSODA reused (now)")}
    out["pv_converter"] = table(pv, X, U, {**lsoda, **step_rows(pv)}, repeats)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="states per set")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    res = measure(args.n, args.repeats, args.seed)
    for name, rows in res.items():
        print(f"\n{name}: µs per period (median of {args.repeats}), speed-up, max relative gap")
        for k, r in rows.items():
            print(f"  {k:26s} {r['us_median']:8.1f} µs  ×{r['speedup']:5.2f}  vs solve_ivp {r['vs_solve_ivp']:.1e}"
                  f"  vs converged {r['vs_converged']:.1e}")
    if args.json:
        write_json(args.json, {"n": args.n, "repeats": args.repeats, "seed": args.seed, "sets": res})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
