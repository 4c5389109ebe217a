"""What this machine does to a computation of fixed length: the same numpy work (about half a millisecond) timed many
times in W processes at once, as the soak's workers run. Its slowest repeat, over its median, is the floor below
which no controller's latency bound can be measured here: the step did not change, the machine did.

    python examples/machine_jitter.py --seconds 60 --workers 2 --json icctrl-out/jitter.json

Per process: wall and CPU time (the thread's own clock) of each repeat, in ms; median, p99.9 and max.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time

import numpy as np

from icctrl._io import write_json


def _work(a: np.ndarray, reps: int) -> None:
    for _ in range(reps):
        a @ a


def probe(seconds: float, size: int = 120, reps: int = 6) -> dict:
    """Time `reps` products of a size × size matrix, again and again for `seconds`; the figures in ms."""
    a = np.random.default_rng(0).random((size, size))
    _work(a, 50)  # warm caches and the BLAS thread
    wall, cpu = [], []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0, c0 = time.perf_counter(), time.thread_time()
        _work(a, reps)
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.thread_time() - c0) * 1e3)
    w, c = np.array(wall), np.array(cpu)
    stats = {name: {"median": float(np.median(v)), "p99.9": float(np.percentile(v, 99.9)), "max": float(v.max())}
             for name, v in (("wall_ms", w), ("cpu_ms", c))}
    return {"pid": os.getpid(), "repeats": int(w.size), **stats,
            "max_over_median_ms": float(w.max() - np.median(w)),
            "repeats_over_2ms_late": int((w > np.median(w) + 2.0).sum())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if not args.seconds > 0 or args.workers < 1:
        ap.error(f"--seconds must be > 0 and --workers >= 1, got {args.seconds} and {args.workers}")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core per process
        os.environ.setdefault(var, "1")
    with mp.get_context("spawn").Pool(args.workers) as pool:
        runs = pool.map(probe, [args.seconds] * args.workers)
    load = os.getloadavg()[0]
    for r in runs:
        print(f"pid {r['pid']}: {r['repeats']} repeats, wall median {r['wall_ms']['median']:.3f} ms, "
              f"p99.9 {r['wall_ms']['p99.9']:.3f}, max {r['wall_ms']['max']:.3f} (CPU max {r['cpu_ms']['max']:.3f}); "
              f"{r['repeats_over_2ms_late']} repeats more than 2 ms over the median")
    if args.json:
        write_json(args.json, {"seconds": args.seconds, "workers": args.workers, "load_at_end": load,
                               "utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "runs": runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
