"""Step overrun (step wall time − time_limit) of two controllers' processes side by side, as two soak workers run:
each process runs `--steps` closed-loop steps of one controller from the papers' first start under a
`--limit` tight enough that most solves are late, with the late solve's thread at the loop's priority (what
icctrl/mpc/_deadline.py does).

    python examples/late_solve_overrun.py --controllers lstm,first_principles --steps 120 --limit 0.002 --runs 2
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np


def overruns(name: str, steps: int, limit: float) -> list[float]:
    """Overrun in ms of each step of one controller in this process (the worker pins one BLAS thread)."""
    import torch

    from icctrl.mpc import default_controller
    from plants import CSTR

    torch.set_num_threads(1)
    plant = CSTR()
    ctrl = default_controller("cstr", name, time_limit=limit)
    x = plant.from_deviation(np.array([-1.5, 70.0]))
    out = []
    for _ in range(steps):
        ctrl.prepare()
        t0 = time.perf_counter()
        u, _ = ctrl.step(x)
        out.append((time.perf_counter() - t0 - limit) * 1e3)
        x = plant.step(x, u)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--controllers", default="lstm,first_principles", help="comma-separated demo controllers")
    ap.add_argument("--steps", type=int, default=120, help="closed-loop steps per process")
    ap.add_argument("--limit", type=float, default=0.002, help="time_limit in seconds")
    ap.add_argument("--runs", type=int, default=2, help="runs per controller, two processes each")
    args = ap.parse_args()
    print("| controller | overrun p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|")
    for name in args.controllers.split(","):
        cells = []
        for _ in range(args.runs):
            with ProcessPoolExecutor(2) as pool:
                cells += [np.array(f.result()) for f in [pool.submit(overruns, name, args.steps, args.limit)
                                                         for _ in range(2)]]
        lo_hi = {q: (min(np.percentile(c, q) for c in cells), max(np.percentile(c, q) for c in cells))
                 for q in (50, 99, 100)}
        print(f"| {name} | " + " | ".join(f"{lo:+.1f} … {hi:+.1f}" for lo, hi in lo_hi.values()) + " |")


if __name__ == "__main__":
    main()
