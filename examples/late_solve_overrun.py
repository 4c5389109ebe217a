"""Step overrun (step wall time − time_limit) under a tight limit, and where it comes from.

Default mode: two controllers' processes side by side, as two soak workers run: each process runs `--steps`
closed-loop steps of one controller from the papers' first start under a `--limit` tight enough that most solves
are late, with the late solve's thread at the loop's priority (what icctrl/mpc/_deadline.py does).

    python examples/late_solve_overrun.py --controllers lstm,first_principles --steps 120 --limit 0.002 --runs 2

`--parts CALIBRATION.json --starts N`: the soak's own `time_limit_cut` episodes (limits from a soak's
calibration file, `DIR/calibration.json`) in two processes, each step's overrun split into the work before the
solve, the wait's lateness past the deadline, the work after it, and garbage collection inside the step.

    python examples/late_solve_overrun.py --parts icctrl-out/soak/calibration.json --starts 20

`--gil`: whether CasADi calls release the GIL: the longest gap of a main thread that ticks every 0.2 ms while
another thread runs each call (a call that held the GIL would show a gap as long as itself).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import threading
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


def step_parts(args: tuple) -> list[dict]:
    """One worker's share of the soak's time_limit_cut episodes, each step split into its parts (ms)."""
    calibration, starts, worker, workers = args
    import torch

    import icctrl.mpc._controller as controller_module
    from icctrl.reliability import _soak
    from plants import CSTR

    torch.set_num_threads(1)
    rows, cur = [], {"name": None}
    solve, step = controller_module.Controller._solve, controller_module.Controller.step

    def timed_solve(self, p, t_step):
        t0 = time.perf_counter()
        res = solve(self, p, t_step)
        cur.update(pre=t0 - t_step, late=time.perf_counter() - t_step - self.time_limit, t1=time.perf_counter(),
                   limit=self.time_limit)
        return res

    def timed_step(self, x, **kw):
        name = cur["name"]
        cur.clear()
        cur["name"], cur["gc"], t0 = name, 0.0, time.perf_counter()
        out = step(self, x, **kw)
        if "t1" in cur:
            t2 = time.perf_counter()
            rows.append({"name": cur["name"], "pre": cur["pre"] * 1e3, "late": cur["late"] * 1e3,
                         "post": (t2 - cur["t1"]) * 1e3, "gc": cur["gc"] * 1e3,
                         "over": (t2 - t0 - cur["limit"]) * 1e3, "limit": cur["limit"] * 1e3})
        return out

    def on_gc(phase, info):
        if phase == "start":
            on_gc.t = time.perf_counter()
        elif "gc" in cur:
            cur["gc"] += time.perf_counter() - on_gc.t

    controller_module.Controller._solve, controller_module.Controller.step = timed_solve, timed_step
    gc.callbacks.append(on_gc)
    x0s = CSTR().sample_stability_region(starts, np.random.default_rng(0))  # the soak's starts for seed 0
    for i, x0 in enumerate(x0s):
        if i % workers == worker:
            for name, med in calibration.items():
                cur["name"] = name
                _soak.episode_task({"key": "parts", "plant": "cstr", "controller": name, "fault": "time_limit_cut",
                                    "index": i, "seed": 0, "x0": x0.tolist(), "steps": 30, "horizon": 10,
                                    "options": {}, "median_solve_s": med})
    return rows


def parts(calibration_path: str, starts: int) -> None:
    import multiprocessing as mp

    calibration = json.loads(open(calibration_path).read())
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        rows = [r for part in pool.map(step_parts, [(calibration, starts, w, 2) for w in (0, 1)]) for r in part]
    print("| controller | limit ms | steps | overrun p50 ms | p99 | max | before the solve p99 / max | wait past "
          "the deadline p99 / max | after the solve p99 / max | gc in the step max |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in calibration:
        sub = [r for r in rows if r["name"] == name]
        a = {k: np.array([r[k] for r in sub]) for k in ("over", "pre", "late", "post", "gc")}
        pq = {k: f"{np.percentile(v, 99):.2f} / {v.max():.2f}" for k, v in a.items()}
        print(f"| {name} | {sub[0]['limit']:.2f} | {len(sub)} | {np.median(a['over']):+.2f} | "
              f"{np.percentile(a['over'], 99):+.2f} | {a['over'].max():+.2f} | {pq['pre']} | {pq['late']} | "
              f"{pq['post']} | {a['gc'].max():.2f} |")


def gil() -> None:
    """The main thread's longest gap while each CasADi call runs in another thread."""
    import casadi as ca

    sys.setswitchinterval(2e-4)
    rng = np.random.default_rng(0)
    a = ca.DM(rng.random((100, 100)))
    w = ca.MX.sym("w", 100)
    J = sum(ca.sumsqr(ca.sin(ca.mtimes(a, w) * 0.01 * k) - 0.3) for k in range(100))
    f = ca.Function("f", [w], [J, ca.gradient(J, w)])
    quiet = {"print_time": False}
    ipopt = ca.nlpsol("ipopt", "ipopt", {"x": w, "f": J}, {**quiet, "ipopt.print_level": 0, "ipopt.sb": "yes"})
    sqp = ca.nlpsol("sqp", "sqpmethod", {"x": w, "f": J}, {**quiet, "qpsol": "qrqp", "print_header": False,
                                                           "print_iteration": False, "print_status": False,
                                                           "qpsol_options": {"print_iter": False,
                                                                             "print_header": False}})
    calls = {"Function call": lambda: [f(np.ones(100)) for _ in range(20)],
             "nlpsol ipopt": lambda: ipopt(x0=np.zeros(100)), "nlpsol sqpmethod": lambda: sqp(x0=np.zeros(100))}
    print("| call | call ms | longest main-thread gap ms |")
    print("|---|---|---|")
    for label, call in calls.items():
        done = threading.Event()
        thread = threading.Thread(target=lambda call=call, done=done: (call(), done.set()))
        worst, last = 0.0, time.perf_counter()
        t0 = last
        thread.start()
        while not done.is_set():
            time.sleep(2e-4)
            now = time.perf_counter()
            worst, last = max(worst, now - last), now
        thread.join()
        print(f"| {label} | {(time.perf_counter() - t0) * 1e3:.0f} | {worst * 1e3:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--controllers", default="lstm,first_principles", help="comma-separated demo controllers")
    ap.add_argument("--steps", type=int, default=120, help="closed-loop steps per process")
    ap.add_argument("--limit", type=float, default=0.002, help="time_limit in seconds")
    ap.add_argument("--runs", type=int, default=2, help="runs per controller, two processes each")
    ap.add_argument("--parts", metavar="CALIBRATION", help="split the soak's time_limit_cut overruns into parts")
    ap.add_argument("--starts", type=int, default=20, help="soak starts for --parts")
    ap.add_argument("--gil", action="store_true", help="whether CasADi calls release the GIL")
    args = ap.parse_args()
    if args.gil:
        gil()
        return
    if args.parts:
        parts(args.parts, args.starts)
        return
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
