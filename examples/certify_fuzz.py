"""Soundness of the certificate over a fuzzed corpus of small modules (the figures in docs/convexity.md).

    nice python examples/certify_fuzz.py                          # 10 000 modules, seed 0
    nice python examples/certify_fuzz.py --count 500 --seed 3 --out fuzz.json

Module i is drawn from `np.random.default_rng([seed, i])` by `icctrl.convexity.fuzz_module` (programs of
dense layers with sign patterns, activations with parameters, products, max/min, views, hooks, subclass
forwards, custom autograd functions, value-dependent control flow; one in ten a small zoo model with the
issue's edits) and checked by `check_module`: certified convex or concave ⇒ no Jensen violation found,
certified monotone ⇒ no monotonicity violation found, certified Lipschitz bound ≥ the measured estimate.
Prints and writes (atomically) the counts; a false verdict lists the module index to reproduce it.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter

import numpy as np
import torch
from tqdm import tqdm

from icctrl._io import write_json
from icctrl.convexity import check_module, fuzz_module


def run(count: int, seed: int) -> dict:
    torch.set_num_threads(1)
    tally, bad, errors = Counter(), [], []
    start = time.perf_counter()
    for i in tqdm(range(count), desc="modules", mininterval=5):
        m, shape = fuzz_module(np.random.default_rng([seed, i]))
        kind = "zoo" if len(shape) == 2 else "program"
        try:
            v = check_module(m, shape, seed=i)
        except Exception as exc:  # a check that cannot run is reported, never counted as a pass
            errors.append({"index": i, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
            continue
        tally[kind] += 1
        tally["certified_convex"] += v.convex
        tally["certified_concave"] += v.concave
        tally["certified_monotone"] += v.monotone
        tally["finite_lipschitz_bound"] += math.isfinite(v.bound)
        tally["refused_and_jensen_violated"] += (not v.convex) and v.violated
        tally["refused"] += not v.convex
        tally["false_convex_or_concave"] += v.false_curvature > 0
        tally["false_monotone"] += v.false_monotone > 0
        tally["unsound_bound"] += v.unsound_bound
        if v.false_curvature > 0 or v.false_monotone > 0 or v.unsound_bound:
            bad.append({"index": i, "kind": kind, "module": repr(m)[:2000], "jensen": v.false_curvature,
                        "monotone": v.false_monotone, "bound": v.bound, "estimate": v.estimate})
    seconds = time.perf_counter() - start
    return {"count": count, "seed": seed, "checked": count - len(errors), "seconds": round(seconds, 1),
            "ms_per_module": round(1000 * seconds / max(count, 1), 1), **dict(tally), "errors": errors,
            "false_verdicts": bad}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="certify_fuzz.json")
    args = p.parse_args()
    res = run(args.count, args.seed)
    write_json(args.out, res)
    keys = ("count", "seed", "checked", "certified_convex", "certified_concave", "certified_monotone",
            "finite_lipschitz_bound", "refused", "refused_and_jensen_violated", "false_convex_or_concave",
            "false_monotone", "unsound_bound", "seconds", "ms_per_module")
    for k in keys:
        print(f"{k:28s} {res.get(k, 0)}")
    print(f"errors {len(res['errors'])}; written to {args.out}")


if __name__ == "__main__":
    main()
