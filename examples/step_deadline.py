"""Worst-case `Controller.step` latency against its `time_limit`, one controller in one process: the CSTR from the
papers' first start, `--steps` closed-loop steps per controller, preparation between steps as a real loop does.

    python examples/step_deadline.py --steps 150
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from icctrl.mpc import default_controller
from plants import CSTR

#: (controller, time limit in seconds): roughly the controller's median solve time, so the limit binds often.
CASES = (("linear", 0.0005), ("iclstm", 0.004), ("first_principles", 0.004))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=150, help="closed-loop steps per controller")
    args = ap.parse_args()
    plant = CSTR()
    print("| controller | time_limit ms | step p50 ms | p99 ms | max ms | max − limit ms | late solves |")
    print("|---|---|---|---|---|---|---|")
    for name, limit in CASES:
        ctrl = default_controller("cstr", name, time_limit=limit)
        x = plant.from_deviation(np.array([-1.5, 70.0]))
        times, late = [], 0
        for _ in range(args.steps):
            ctrl.prepare()
            t0 = time.perf_counter()
            u, info = ctrl.step(x)
            times.append((time.perf_counter() - t0) * 1e3)
            late += "step deadline" in str(info["solver_status"])
            x = plant.step(x, u)
        t = np.array(times)
        print(f"| {name} | {limit * 1e3:.1f} | {np.median(t):.2f} | {np.percentile(t, 99):.2f} | {t.max():.2f} | "
              f"{t.max() - limit * 1e3:+.2f} | {late}/{args.steps} |")


if __name__ == "__main__":
    main()
