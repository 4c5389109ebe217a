"""The long solve that came once every few thousand solves, with and without `keep_keys`.

Each conversion of a CasADi dictionary (solver stats, nlpsol results) interns its key strings; keys that nothing
else holds were interned and freed again on every solve. The dummies this leaves in Python's table of interned
strings make it rebuild the whole table once they fill it: one solve then allocates and touches a new table of
several MB. Each mode runs in a fresh process: the convex controller's time-limited SQP back-end, `--solves`
solves from the soak's starts, each stopped by its deadline; a solve that faulted in more than 300 new pages is
listed with its wall time.

    python examples/interned_key_stall.py --solves 3000

Short timing run: at normal priority, nothing else running.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np


def run(keep: bool, solves: int, limit: float) -> dict:
    """Solves with page faults over 300, in this process, with `keep_keys` on or off."""
    import torch

    from icctrl.mpc import _derivatives, _solvers
    from icctrl.reliability import _soak
    from plants import CSTR

    torch.set_num_threads(1)
    if not keep:
        _solvers.keep_keys = _derivatives.keep_keys = lambda d: d
    ctrl = _soak._controller("cstr", "convex", 10, {"time_limit": limit})
    be, pb = ctrl.backend, ctrl.problem
    xs = CSTR().sample_stability_region(200, np.random.default_rng(0))
    events, times = [], []
    for n in range(solves):
        p = pb.parameters(xs[n % len(xs)])
        be.reset()
        v0 = pb.cold_start(p)
        faults0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        be.solve(p, v0, deadline=t0 + 0.75 * limit)
        ms = (time.perf_counter() - t0) * 1e3
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
        times.append(ms)
        if faults > 300:
            events.append({"solve": n, "ms": round(ms, 2), "page_faults": faults})
    return {"keep_keys": keep, "solves": solves, "median_ms": float(np.median(times)), "max_ms": float(max(times)),
            "events": events}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--solves", type=int, default=3000)
    ap.add_argument("--limit", type=float, default=0.0024, help="the controller's time_limit, s")
    args = ap.parse_args()
    for keep in (False, True):
        with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
            r = pool.submit(run, keep, args.solves, args.limit).result()
        print(f"keep_keys={r['keep_keys']}: {r['solves']} solves, median {r['median_ms']:.2f} ms, "
              f"max {r['max_ms']:.2f} ms; solves with > 300 new pages: {r['events'] or 'none'}")


if __name__ == "__main__":
    main()
