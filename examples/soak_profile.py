"""Where a soak episode's CPU goes, per demo controller, in one process: the soak's own episodes (same seeded starts
and fault realisations as `icctrl soak`) under cProfile, split into the controller's solve, the plant's
integration and the rest; with the closed-loop cost, solver iterations and statuses of the same episodes, so two
solver settings can be compared on the same starts.

    python examples/soak_profile.py --starts 4 --json /tmp/profile.json
    python examples/soak_profile.py --controllers convex --options '{"options": {"min_step_size": 1e-10}}'
    python examples/soak_profile.py --controllers convex --starts 8 --no-profile --casadi-hessian 1e-13

`--casadi-hessian EPS` gives the SQP back-ends CasADi's own AD Hessian of the Lagrangian times (1 + EPS) instead of
the one read from the predictor's layers (`icctrl.mpc._hessian`): EPS = 0 is the code before it, and a rounding-level
EPS shows how far the closed loop moves when only the last digits of the Hessian do.

`time_limit_cut` is left out of the default faults: its limit comes from the soak's calibration run.
CPU figures include cProfile's overhead (`--no-profile` measures without it).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
import warnings
from collections import Counter

import casadi as ca
import numpy as np
import torch

import icctrl.mpc._solvers as solvers
from icctrl._io import write_json
from icctrl.mpc._defaults import CSTR_CONTROLLERS, CSTR_SETTLE, default_controller
from icctrl.reliability._episode import soak_episode
from icctrl.reliability._faults import FAULTS
from icctrl.reliability._soak import _cost, _fault_rng, _plant

DEFAULT_FAULTS = tuple(f for f in FAULTS if f != "time_limit_cut")


def _seconds(stats: pstats.Stats, where: str, name: str) -> float:
    """Cumulative seconds of the functions called `name` defined in a file whose path contains `where`."""
    return sum(v[3] for (file, _, fn), v in stats.stats.items() if fn == name and where in file.replace("\\", "/"))


def profile(name: str, starts: int, faults, options: dict, steps: int, use_profile: bool) -> dict:
    """Closed-loop episodes of one controller over `faults` × `starts`, timed (and profiled) in this process."""
    plant = _plant("cstr")
    x0s = plant.sample_stability_region(starts, np.random.default_rng(0))  # the soak's starts for seed 0
    ctrl = default_controller("cstr", name, horizon=10, **options)
    backend_solve, iters, statuses = ctrl.backend.solve, [], Counter()

    nlpsol = getattr(ctrl.backend, "solver", None)  # the CasADi back-ends: their Hessian's wall time per solve
    hessian_s = []

    def solve(p, v0):
        res = backend_solve(p, v0)
        iters.append(res.iterations)
        statuses[res.status.split(":")[0]] += 1
        if hasattr(nlpsol, "stats"):
            hessian_s.append(nlpsol.stats().get("t_wall_nlp_hess_l", 0.0))
        return res

    ctrl.backend.solve = solve
    prof = cProfile.Profile() if use_profile else None
    costs, settled, cpu = [], 0, 0.0
    for fault in faults:
        for i, x0 in enumerate(x0s):
            inj = FAULTS[fault].inject(plant, _fault_rng(0, fault, i), None)
            t0 = time.process_time()
            if prof:
                prof.enable()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rec = soak_episode(plant, ctrl, np.asarray(x0), steps, settle_tol=CSTR_SETTLE, cost=_cost(plant),
                                   injection=inj)
            if prof:
                prof.disable()
            cpu += time.process_time() - t0
            costs.append(rec["cost"])
            settled += bool(rec.get("settled"))
    n = len(costs)
    out = {"controller": name, "solver": ctrl.solver_name, "episodes": n, "cpu_ms_per_episode": 1e3 * cpu / n,
           "cost": float(np.sum(costs)), "episode_costs": [float(c) for c in costs], "settled": settled,
           "iterations_mean": float(np.mean(iters)), "iterations_max": int(max(iters)), "statuses": dict(statuses),
           "hessian_ms_per_solve": 1e3 * float(np.mean(hessian_s)) if hessian_s else None}
    if prof:
        st = pstats.Stats(prof)
        total = sum(v[2] for v in st.stats.values())  # internal times add up to the profiled total
        solver = _seconds(st, "icctrl/mpc/_controller.py", "_solve") + _seconds(st, "icctrl/mpc/_controller.py",
                                                                               "prepare")
        plant_s = _seconds(st, "plants/", "step")
        out.update(profiled_s=total, solver_share=solver / total, plant_share=plant_s / total,
                   rest_share=1 - (solver + plant_s) / total)
    return out


def casadi_hessian(eps: float):
    """A stand-in for `structured_hessian`: CasADi's own nlp_hess_l of the problem, times (1 + eps)."""

    def build(pb):
        ref = ca.nlpsol("ref", "sqpmethod", {"x": pb.w, "p": pb.p, "f": pb.J, "g": pb.g},
                        {"print_time": False, "print_header": False, "print_iteration": False,
                         "print_status": False}).get_function("nlp_hess_l")
        w, p = ca.MX.sym("x", pb.w.numel()), ca.MX.sym("p", pb.p.numel())
        lf, lg = ca.MX.sym("lam_f"), ca.MX.sym("lam_g", pb.g.numel())
        return ca.Function("nlp_hess_l", [w, p, lf, lg], [ref(w, p, lf, lg) * (1.0 + eps)],
                           ["x", "p", "lam_f", "lam_g"], ["hess_gamma_x_x"])

    return build


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--controllers", default=",".join(CSTR_CONTROLLERS), help="comma-separated demo controllers")
    ap.add_argument("--faults", default=",".join(DEFAULT_FAULTS), help="comma-separated fault names")
    ap.add_argument("--starts", type=int, default=3, help="seeded starts per fault")
    ap.add_argument("--steps", type=int, default=30, help="closed-loop steps per episode")
    ap.add_argument("--options", default="{}", help="JSON of controller options, e.g. solver options")
    ap.add_argument("--no-profile", action="store_true", help="time without cProfile")
    ap.add_argument("--casadi-hessian", type=float, default=None, metavar="EPS",
                    help="SQP on CasADi's AD Hessian times (1 + EPS) instead of the layers' one")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.casadi_hessian is not None:
        solvers.structured_hessian = casadi_hessian(args.casadi_hessian)
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    rows = [profile(c.strip(), args.starts, faults, json.loads(args.options), args.steps, not args.no_profile)
            for c in args.controllers.split(",")]
    print("| controller | episodes | CPU ms per episode | solve | plant | rest | iterations mean / max | "
          "closed-loop cost |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        shares = " | ".join(f"{100 * r[k]:.0f} %" if k in r else "–" for k in ("solver_share", "plant_share",
                                                                                "rest_share"))
        print(f"| {r['controller']} ({r['solver']}) | {r['episodes']} | {r['cpu_ms_per_episode']:.0f} | {shares} | "
              f"{r['iterations_mean']:.1f} / {r['iterations_max']} | {r['cost']:.2f} |")
    for r in rows:
        hess = r["hessian_ms_per_solve"]
        print(f"{r['controller']}: statuses {r['statuses']}" + ("" if hess is None else
                                                              f"; Hessian of the Lagrangian {hess:.3f} ms per solve"))
    if args.json:
        write_json(args.json, {"command": "python examples/soak_profile.py " + " ".join(
            f"--{k.replace('_', '-')} {v!r}" for k, v in vars(args).items() if v not in (None, False)),
            "rows": rows})


if __name__ == "__main__":
    main()
