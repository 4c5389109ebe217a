"""Closed-loop CSTR comparison of controllers (regulation from the papers' starts, a setpoint step, a soft
temperature ceiling): the table, plots and JSON of `icctrl demo` / `icctrl mpc`."""

from __future__ import annotations

import platform
import sys
import warnings
from pathlib import Path

import numpy as np

from icctrl._io import write_json
from icctrl.errors import IcctrlError
from icctrl.mpc._closed_loop import plot_episodes, run_episode
from icctrl.mpc._controller import ExtrapolationWarning
from icctrl.mpc._defaults import CSTR_CONTROLLERS, CSTR_OFFSET, CSTR_R, CSTR_SETTLE, CSTR_STARTS, default_controller


def machine() -> dict:
    import os

    import casadi
    import torch

    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "casadi": casadi.__version__, "processor": platform.processor()}


#: The setpoint-step episode: from x_ss, the reference moves at step STEP_AT to the steady state of
#: u_ss + STEP_DU (ΔC_A ≈ +0.56 kmol/m3, ΔT ≈ −17.8 K, inside the training region of the shipped models).
STEP_DU = (0.2, 0.0)
STEP_AT = 10
#: The ceiling episode: T ≤ T_ss + CEILING_DT (soft), from the papers' start 70 K above T_ss, so it binds.
CEILING_DT = 30.0
CEILING_START = (-1.5, 70.0)


def step_setpoint(plant) -> np.ndarray:
    """The new setpoint of the step episode: the plant's steady state at u_ss + STEP_DU."""
    return plant._solve_steady_state(plant.x_ss, plant.u_ss + np.asarray(STEP_DU))


def compare(controllers: dict, *, starts=CSTR_STARTS, steps: int = 40, out: str | Path = "icctrl-out",
            json_path=None, quiet: bool = False, ceilings: dict | None = None) -> dict:
    """Run every controller from every start, then the setpoint-step episode and (with `ceilings`, name →
    controller with the soft T ceiling) the ceiling episode; print a table, write the plot and the JSON."""
    from tqdm import tqdm

    from plants import CSTR

    plant = CSTR()
    x_new = step_setpoint(plant)
    x_ub = np.array([np.inf, plant.x_ss[1] + CEILING_DT])
    runs, rows = {}, []
    n_eps = len(starts) + 1 + (1 if ceilings else 0)
    bar = tqdm(total=len(controllers) * n_eps * steps, desc="closed loop", disable=quiet, unit="step")
    kw = {"Q": plant.P, "R": CSTR_R, "settle_tol": CSTR_SETTLE, "progress": bar}
    for name, (model_label, ctrl) in controllers.items():
        eps = [run_episode(plant, ctrl, plant.from_deviation(np.asarray(s, float)), steps, **kw) for s in starts]
        runs[name] = eps
        row = {"name": name, "model": model_label, "solver": ctrl.solver_name,
               "certified_convex": bool(ctrl.certificate.convex),
               "episodes": [_episode(s, e) for s, e in zip(starts, eps)]}
        if ctrl.takes_reference:
            ep = run_episode(plant, ctrl, plant.x_ss, steps + STEP_AT,
                             setpoint=lambda k: None if k < STEP_AT else x_new, **kw)
            row["setpoint_step"] = _episode(None, ep)
            eps.append(ep)
        else:
            bar.update(steps)
            try:
                ctrl.step(plant.x_ss, x_ref=x_new)
            except IcctrlError as exc:
                row["setpoint_step"] = {"refused": str(exc)}
        if ceilings and name in ceilings:
            cc = ceilings[name]
            if isinstance(cc, Exception):
                row["ceiling"] = {"refused": str(cc)}
                bar.update(steps)
            else:
                ep = run_episode(plant, cc, plant.from_deviation(np.asarray(CEILING_START)), steps, x_ub=x_ub, **kw)
                row["ceiling"] = _episode(CEILING_START, ep)
                eps.append(ep)
        times = np.concatenate([e.solve_times for e in eps]) * 1e3
        row.update({
            "solve_ms": {"median": float(np.median(times)), "p99": float(np.percentile(times, 99)),
                         "max": float(times.max())},
            "failures": int(sum(not i["success"] for e in eps for i in e.infos)),
            "fallbacks": {k: int(v) for k, v in ctrl.stats.items() if k.startswith("fallback")},
            "certificate": ctrl.certificate.to_dict(),
        })
        rows.append(row)
    bar.close()
    fp = next((r["ceiling"] for r in rows if r["name"] == "first_principles" and "ceiling" in r), None)
    for r in rows:
        c = r.get("ceiling") or {}
        if fp and "violation" in c and fp["violation"] > 0:
            c["violation_vs_first_principles"] = c["violation"] / fp["violation"]
    out = Path(out)
    plot = out / "cstr_closed_loop.png"
    plot_episodes(plant, runs, plot, lyapunov=plant.lyapunov)
    result = {"plant": "cstr", "steps": steps, "dt_h": plant.dt, "settle_tolerance": list(CSTR_SETTLE),
              "offset_goal": list(CSTR_OFFSET), "setpoint_step": {"at": STEP_AT, "x_ref": x_new.tolist()},
              "ceiling": {"T_max": float(x_ub[1]), "start": list(CEILING_START)},
              "controllers": rows, "plots": [str(plot)], "machine": machine(), "command": " ".join(sys.argv)}
    if not quiet:
        print(table(rows))
        print(f"plots: {plot}")
    if json_path:
        write_json(json_path, result)
    return result


def _episode(start, e) -> dict:
    return {"start": None if start is None else list(map(float, start)), "settled": e.settled,
            "steps": e.settle_step, "cost": e.cost, "error": e.error, "violation": e.violation,
            "offset": None if e.offset is None else e.offset.tolist(),
            "extrapolating_steps": int(sum(bool(i.get("extrapolating")) for i in e.infos))}


def _offset(eps: list[dict]) -> str:
    offs = np.array([e["offset"] for e in eps if e.get("offset") is not None])
    return "–" if not len(offs) else f"{offs[:, 0].max():.4f} / {offs[:, 1].max():.2f}"


def table(rows: list[dict]) -> str:
    """Markdown table of a comparison."""
    head = ("| controller | model | solver | certified convex | settled | mean settle steps | mean cost | "
            "final offset ΔC_A / ΔT | step: settle steps | step: final offset | ceiling violation K·h | "
            "vs first-principles | extrapolating steps | median ms | p99 ms | failures |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        eps = r["episodes"]
        settled = [e["steps"] for e in eps if e["settled"]]
        st, ce = r.get("setpoint_step") or {}, r.get("ceiling") or {}
        if "refused" in st:
            st_settle = st_off = "refused"
        elif st:
            st_settle = str(st["steps"]) if st["settled"] else "no"
            st_off = _offset([st])
        else:
            st_settle = st_off = "–"
        viol = "refused" if "refused" in ce else f"{ce['violation']:.3f}" if ce else "–"
        ratio = f"{ce['violation_vs_first_principles']:.2f}" if "violation_vs_first_principles" in ce else "–"
        all_offsets = _offset([*eps, *([st] if "offset" in st else [])])
        extra = sum(e["extrapolating_steps"] for e in [*eps, st, ce] if "extrapolating_steps" in e)
        lines.append(f"| {r['name']} | {r['model']} | {r['solver']} | {'yes' if r['certified_convex'] else 'no'} | "
                     f"{len(settled)}/{len(eps)} | {np.mean(settled) if settled else float('nan'):.1f} | "
                     f"{np.mean([e['cost'] for e in eps]):.1f} | {all_offsets} | "
                     f"{st_settle} | {st_off} | {viol} | {ratio} | {extra} | {r['solve_ms']['median']:.1f} | "
                     f"{r['solve_ms']['p99']:.1f} | {r['failures']} |")
    return "\n".join(lines)


def ceiling_controller(spec, solver, horizon, **options):
    """The demo's controller with the soft temperature ceiling, or the error that refuses it."""
    from plants import CSTR

    try:
        return default_controller("cstr", spec, solver=solver, horizon=horizon,
                                  x_ub=[np.inf, CSTR().x_ss[1] + CEILING_DT], soft=True, **options)
    except IcctrlError as exc:
        return exc


def demo(json_path=None, out="icctrl-out", steps: int = 40, horizon: int = 10, quiet: bool = False) -> dict:
    """The main job: the shipped defaults against the first-principles NMPC from the papers' starts, a setpoint
    step and a soft temperature ceiling."""
    ctrls, ceilings = {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)  # counted in the table instead
        for name, (spec, solver) in CSTR_CONTROLLERS.items():
            ctrls[name] = (spec, default_controller("cstr", spec, solver=solver, horizon=horizon))
            ceilings[name] = ceiling_controller(spec, solver, horizon)
        return compare(ctrls, steps=steps, out=out, json_path=json_path, quiet=quiet, ceilings=ceilings)
