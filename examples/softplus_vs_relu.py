"""Smooth (softplus) against ReLU gates in closed loop: two IC-LSTM 2×32 one-period CSTR models trained with the
same budget, then Gauss–Newton SQP iterations per step and the real-time iteration's cost and time on the
papers' three starts.

    nice -n 19 python examples/softplus_vs_relu.py [--steps 1500] [--episode 30]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import torch

from icctrl.bench._run import cstr_starts
from icctrl.mpc import default_controller, run_episode
from icctrl.mpc._defaults import CSTR_R, CSTR_SETTLE
from icctrl.train import TrainConfig, train
from icctrl.train._defaults import default_dataset, spec
from plants import CSTR


def trained(activation: str, steps: int):
    ds = default_dataset(spec("cstr", "iclstm"))
    cfg = TrainConfig(steps=steps, threads=1, device="cpu", quiet=True, seed=0)
    t0 = time.perf_counter()
    res = train("iclstm", ds, cfg, hidden=32, layers=2, activation=activation)
    return res.model.double().eval(), res.metrics, time.perf_counter() - t0


def closed_loop(model, solver: str, steps: int) -> dict:
    plant = CSTR()
    ctrl = default_controller("cstr", model, solver=solver, horizon=10, lyapunov=False)
    eps = [run_episode(plant, ctrl, x0, steps, Q=plant.P, R=CSTR_R, settle_tol=CSTR_SETTLE)
           for x0 in cstr_starts(0, 0)]
    infos = [i for e in eps for i in e.infos[1:]]  # warm steps
    return {"cost": float(np.mean([e.cost for e in eps])), "settled": sum(e.settled for e in eps),
            "iterations": float(np.mean([i["iterations"] for i in infos])),
            "max_iterations": int(max(i["iterations"] for i in infos)),
            "median_ms": float(np.median([i["solve_time"] for i in infos]) * 1e3),
            "failed": int(sum(not i["success"] for i in infos))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1500, help="optimiser steps per model (the same for both)")
    ap.add_argument("--episode", type=int, default=30, help="closed-loop steps per start")
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*no training region")  # the twins are trained here, without one
    print(f"load {os.getloadavg()[0]:.1f}")
    print("| gates | train s | test rel. error | sqp-gn iterations mean / max | sqp-gn cost | rti cost | rti median ms "
          "| failed steps (sqp-gn / rti) |")
    print("|---|---|---|---|---|---|---|---|")
    import icctrl

    shipped = icctrl.load_default("cstr", "iclstm").double().eval()
    for act in ("relu", "softplus", "shipped"):
        if act == "shipped":  # the deployed 2×64 ReLU model, for scale
            model, metrics, secs = shipped, {"test_rel_error": float("nan")}, 0.0
        else:
            model, metrics, secs = trained(act, args.steps)
        sqp, rti = closed_loop(model, "sqp-gn", args.episode), closed_loop(model, "rti", args.episode)
        print(f"| {act} | {secs:.0f} | {metrics['test_rel_error']:.3g} | "
              f"{sqp['iterations']:.2f} / {sqp['max_iterations']} | "
              f"{sqp['cost']:.1f} | {rti['cost']:.1f} | {rti['median_ms']:.2f} | {sqp['failed']} / {rti['failed']} |",
              flush=True)
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
