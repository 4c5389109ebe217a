"""Closed-loop CSTR comparison of controllers: the table, plots and JSON of `icctrl demo` / `icctrl mpc`."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import numpy as np

from icctrl._io import write_json
from icctrl.mpc._closed_loop import plot_episodes, run_episode
from icctrl.mpc._defaults import CSTR_CONTROLLERS, CSTR_R, CSTR_SETTLE, CSTR_STARTS, default_controller


def machine() -> dict:
    import os

    import casadi
    import torch

    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "casadi": casadi.__version__, "processor": platform.processor()}


def compare(controllers: dict, *, starts=CSTR_STARTS, steps: int = 40, out: str | Path = "icctrl-out",
            json_path=None, quiet: bool = False) -> dict:
    """Run every controller from every start; print a table, write `cstr_closed_loop.png` and the JSON."""
    from tqdm import tqdm

    from plants import CSTR

    plant = CSTR()
    runs, rows = {}, []
    bar = tqdm(total=len(controllers) * len(starts) * steps, desc="closed loop", disable=quiet, unit="step")
    for name, (model_label, ctrl) in controllers.items():
        eps = [run_episode(plant, ctrl, plant.from_deviation(np.asarray(s, float)), steps, Q=plant.P, R=CSTR_R,
                           settle_tol=CSTR_SETTLE, progress=bar) for s in starts]
        runs[name] = eps
        times = np.concatenate([e.solve_times for e in eps]) * 1e3
        cert = ctrl.certificate
        rows.append({
            "name": name, "model": model_label, "solver": ctrl.solver_name, "certified_convex": bool(cert.convex),
            "solve_ms": {"median": float(np.median(times)), "p99": float(np.percentile(times, 99)),
                         "max": float(times.max())},
            "failures": int(sum(not i["success"] for e in eps for i in e.infos)),
            "fallbacks": {k: int(v) for k, v in ctrl.stats.items() if k.startswith("fallback")},
            "episodes": [{"start": list(map(float, s)), "settled": e.settled, "steps": e.settle_step,
                          "cost": e.cost, "error": e.error} for s, e in zip(starts, eps)],
            "certificate": cert.to_dict(),
        })
    bar.close()
    out = Path(out)
    plot = out / "cstr_closed_loop.png"
    plot_episodes(plant, runs, plot, lyapunov=plant.lyapunov)
    result = {"plant": "cstr", "steps": steps, "dt_h": plant.dt, "settle_tolerance": list(CSTR_SETTLE),
              "controllers": rows, "plots": [str(plot)], "machine": machine(), "command": " ".join(sys.argv)}
    if not quiet:
        print(table(rows))
        print(f"plots: {plot}")
    if json_path:
        write_json(json_path, result)
    return result


def table(rows: list[dict]) -> str:
    """Markdown table of a comparison."""
    head = ("| controller | model | solver | certified convex | settled | mean settle steps | mean cost | "
            "median ms | p99 ms | failures |\n|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        eps = r["episodes"]
        settled = [e["steps"] for e in eps if e["settled"]]
        lines.append(f"| {r['name']} | {r['model']} | {r['solver']} | {'yes' if r['certified_convex'] else 'no'} | "
                     f"{len(settled)}/{len(eps)} | {np.mean(settled) if settled else float('nan'):.1f} | "
                     f"{np.mean([e['cost'] for e in eps]):.1f} | {r['solve_ms']['median']:.1f} | "
                     f"{r['solve_ms']['p99']:.1f} | {r['failures']} |")
    return "\n".join(lines)


def demo(json_path=None, out="icctrl-out", steps: int = 40, horizon: int = 10, quiet: bool = False) -> dict:
    """The main job: the shipped defaults against the first-principles NMPC from the papers' starts."""
    ctrls = {}
    for name, (spec, solver) in CSTR_CONTROLLERS.items():
        ctrls[name] = (spec, default_controller("cstr", spec, solver=solver, horizon=horizon))
    return compare(ctrls, steps=steps, out=out, json_path=json_path, quiet=quiet)
