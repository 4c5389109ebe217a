"""Where a real-time iteration step goes: median ms of each part of `Controller.step` and `prepare` for the
shipped IC-LSTM 2×64, N = 10, papers' three starts (a warm-up pass, then one timed pass).

    python examples/rti_breakdown.py [--model iclstm] [--steps 30]

Short timing run: at normal priority, with `uptime` beside the figures.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict

import numpy as np
import torch

import icctrl
from icctrl.bench._run import cstr_starts
from icctrl.mpc import default_controller
from plants import CSTR


def timed(obj, name: str, key: str, into: dict) -> None:
    """Wrap obj.name so that each call's wall time is appended to into[key]."""
    f = getattr(obj, name)

    def g(*a, **k):
        t0 = time.perf_counter()
        r = f(*a, **k)
        into[key].append(time.perf_counter() - t0)
        return r

    setattr(obj, name, g)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="iclstm")
    ap.add_argument("--steps", type=int, default=30, help="closed-loop steps per start")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ctrl = default_controller("cstr", icctrl.load_default("cstr", args.model).double().eval(), solver="rti",
                              horizon=10, lyapunov=False)
    be, pb, T = ctrl.backend, ctrl.problem, defaultdict(list)
    parts = [(be.lin, "_derive", "model values and Jacobians (graph)"), (be.lin, "rest", "rest of the linearisation"),
             (be, "_condense", "condensing"), (be.qp, "solve", "QP"), (be, "consistency", "consistency check"),
             (be, "prepare", "prepare phase"), (be, "feedback", "feedback phase"), (be, "solve", "back-end solve"),
             (pb, "parameters", "parameters (per call)"), (ctrl, "extrapolating", "region test"),
             (ctrl, "step", "Controller.step"),
             (ctrl, "prepare", "Controller.prepare")]
    for obj, name, key in parts:
        if hasattr(obj, name):
            timed(obj, name, key, T)
    plant, solve = CSTR(), []
    for _pass in range(2):  # warm-up, then the timed pass
        T.clear()
        solve.clear()
        for x0 in cstr_starts(0, 0):
            ctrl.reset()
            x = np.asarray(x0, float)
            for _ in range(args.steps):
                u, info = ctrl.step(x)
                x = plant.step(x, u)
                ctrl.prepare()
                solve.append(info["solve_time"])
    print(f"load {os.getloadavg()[0]:.1f}; info['solve_time'] median {np.median(solve) * 1e3:.3f} ms, "
          f"p99 {np.percentile(solve, 99) * 1e3:.2f} ms over {len(solve)} steps")
    for key, v in T.items():
        print(f"| {key} | {len(v)} | {np.median(v) * 1e3:.3f} |")


if __name__ == "__main__":
    main()
