"""Worst-case `Controller.step` latency against its `time_limit`, one controller in one process, in both deadline
designs: the back-end stopping itself in the loop's thread (the default for CasADi and RTI back-ends) and the
solve thread the loop stops waiting for (`solve_thread=True`). The CSTR from the papers' first start, `--steps`
closed-loop steps per controller, preparation between steps as a real loop does; the limit is `--share` of the
controller's median solve time without a limit (0.5: most solves cannot finish, as in the soak's time_limit_cut).

    python examples/step_deadline.py --steps 150
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from icctrl.mpc import default_controller
from plants import CSTR

CONTROLLERS = ("first_principles", "iclstm", "lstm", "linear", "convex")


def closed_loop(ctrl, plant, steps: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Step wall times (ms), solve times (ms) and the number of time-limited fallbacks of one episode."""
    x = plant.from_deviation(np.array([-1.5, 70.0]))
    times, solves, late = [], [], 0
    for _ in range(steps):
        ctrl.prepare()
        t0 = time.perf_counter()
        u, info = ctrl.step(x)
        times.append((time.perf_counter() - t0) * 1e3)
        solves.append(info["solve_time"] * 1e3)
        late += str(info["solver_status"]).startswith("time_limit")
        x = plant.step(x, u)
    return np.array(times), np.array(solves), late


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=150, help="closed-loop steps per controller and design")
    ap.add_argument("--share", type=float, default=0.5, help="time_limit as a share of the median solve time")
    ap.add_argument("--controllers", default=",".join(CONTROLLERS), help="comma-separated demo controllers")
    args = ap.parse_args()
    plant = CSTR()
    print("| controller | deadline | time_limit ms | step p50 ms | p99 ms | max ms | max − limit ms | time-limited |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.controllers.split(","):
        _, solves, _ = closed_loop(default_controller("cstr", name), plant, 30)
        limit = args.share * float(np.median(solves)) / 1e3
        for threaded in (False, True):
            ctrl = default_controller("cstr", name, time_limit=limit, solve_thread=threaded)
            t, _, late = closed_loop(ctrl, plant, args.steps)
            design = "solve thread" if ctrl._thread is not None else "in the loop's thread"
            print(f"| {name} | {design} | {limit * 1e3:.2f} | {np.median(t):.2f} | {np.percentile(t, 99):.2f} | "
                  f"{t.max():.2f} | {t.max() - limit * 1e3:+.2f} | {late}/{args.steps} |")


if __name__ == "__main__":
    main()
