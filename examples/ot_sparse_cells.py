"""Displacement-sparse OT at scale (the DisNOT study): support recovery and displacement error vs λ and penalty.

2000 samples in R^2000, U[0,1) source; the target is a fresh U[0,1) draw shifted by U(0, 100) on 100 coordinates
and by U(0, 1) on the 1900 others (`sparse_pair` in `ot_benchmark.py`). The true map is that translation.
    python examples/ot_sparse_cells.py --json icctrl-out/ot/sparse.json --study adaptive [--penalties l0 l1 stvs]
    python examples/ot_sparse_cells.py --json icctrl-out/ot/sparse_sweep.json --study sweep --penalties l0 \\
        --lams 0.1 1 10 100 1000
    python examples/ot_sparse_cells.py --json icctrl-out/ot/sparse_bare.json --study bare --iters 200 --dim 200 \\
        --big 10 [--set gauss]
`adaptive`: λ adapted (`target_dim=100`, the dimension budget; the controller's defaults) for each penalty,
from `--lam0` (default 1); `sweep`: fixed λ values (`target_dim=None`); `bare`: the bare call
`SparseW2Dual(d).fit(x, y)` with `--iters` as the only setting, on `--set uniform` (the construction above at
`--dim`, `--big`) or `--set gauss` (`gauss_sparse_pair`: N(0, I) source, `--big` coordinates shifted by
±U(2, 10), the others by N(0, 0.15²)). Reported: displaced coordinates per sample (|Δᵢ| > 0.1), precision and
recall of the true coordinates, the displacement error 100·E‖Δ̂ − Δ*‖²/‖Δ*‖², the final λ, the λ trajectory (every
10 f steps, with the controller's events) and the wall time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

import icctrl.ot as O
from icctrl._io import write_json

sys.path.insert(0, str(Path(__file__).parent))
from ot_benchmark import sparse_pair  # noqa: E402

THRESHOLD = 0.1
#: settings of the study (the penalty's ε / γ between the shifts to suppress, < 1, and those to keep, up to 100)
SETTINGS = dict(epsilon=1.0, gamma=1.0, threshold=THRESHOLD, hidden=64, layers=2, lr=1e-2,
                inner_iters=3, batch_size=128, pretrain_iters=50, verbose=False)


def gauss_sparse_pair(n: int = 2000, dim: int = 500, big: int = 25, seed: int = 0):
    """Source N(0, I); target = fresh N(0, I) draws + a shift of ±U(2, 10) on `big` coordinates and N(0, 0.15²)
    on the others (other shapes and scales than `sparse_pair`). Returns x, y, the big indices and the shift."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    big_idx = np.sort(rng.permutation(dim)[:big])
    shift = rng.normal(0, 0.15, size=dim)
    shift[big_idx] = rng.choice([-1.0, 1.0], size=big) * rng.uniform(2, 10, size=big)
    y = (rng.standard_normal((n, dim)) + shift).astype(np.float32)
    return x, y, big_idx, shift.astype(np.float32)


def trajectory(model, every: int = 10) -> dict:
    """λ and the batch-mean count of displaced coordinates every `every` f steps, and the controller's events."""
    lam, dims = model.history_["lam"], model.history_["dims"]
    steps = sorted(set(range(0, len(lam), every)) | {len(lam) - 1})
    out = {"step": [s + 1 for s in steps], "lambda": [lam[s] for s in steps], "dims": [dims[s] for s in steps]}
    if model.lambda_ is not None:
        out["events"] = [[e, lam_, d] for e, lam_, d in model.lambda_.history]
    return out


def run_one(x, y, big_idx, shift, penalty: str, iters: int, bare: bool = False, **extra) -> dict:
    """Fit one SparseW2Dual and score its support and displacement on 500 source samples; `bare`: only the
    penalty is given, every other setting at its default."""
    kw = {} if bare else {**SETTINGS, **extra}
    model = O.SparseW2Dual(x.shape[1], penalty, verbose=False) if bare else O.SparseW2Dual(x.shape[1], penalty, **kw)
    t0 = time.perf_counter()
    model.fit(x, y, iters=iters)
    wall = time.perf_counter() - t0
    xs = x[:500]
    delta = model.transport(xs) - xs
    dims = O.displacement_dims(xs, xs + delta, threshold=THRESHOLD)
    rec = O.support_recovery(xs, xs + delta, big_idx, threshold=THRESHOLD)
    err = float(100 * ((delta - shift) ** 2).sum(1).mean() / (shift**2).sum())
    out = {"penalty": penalty or model.penalty, "iters": model.iters_, "wall_s": round(wall, 1), "settings": kw,
           "dims_mean": float(dims.mean()), "dims_p75": float(np.percentile(dims, 75)),
           "precision": rec["precision"], "recall": rec["recall"], "found": rec["found"],
           "displacement_error_pct": err, "final_lambda": model.lam_, "stop": model.stop_reason_,
           "restored": model.restored_, "budget_met": model.budget_met_,
           "resolved": {"target_dim": model.target_dim_, "epsilon": model.epsilon_, "threshold": model.threshold_,
                        "moved_read": int(model.moved_["moved"].size), "tau": model.moved_["tau"]},
           "trajectory": trajectory(model)}
    print(f"{penalty} {extra}: precision {rec['precision']:.2f} recall {rec['recall']:.2f} dims "
          f"{dims.mean():.0f} error {err:.1f} % λ {model.lam_:.3g} ({wall:.0f} s)", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--study", default="adaptive", choices=["adaptive", "sweep", "bare"])
    ap.add_argument("--penalties", nargs="+", default=list(O.PENALTIES), choices=list(O.PENALTIES))
    ap.add_argument("--bare-penalty", default="l0", choices=list(O.PENALTIES), help="penalty of the bare study")
    ap.add_argument("--lams", nargs="+", type=float, default=[0.1, 1.0, 10.0, 100.0, 1000.0])
    ap.add_argument("--lam0", type=float, default=1.0, help="starting λ of the adaptive study")
    ap.add_argument("--warmup", type=int, default=0, help="f steps before λ adapts (adaptive study)")
    ap.add_argument("--gamma", type=float, default=SETTINGS["gamma"], help="STVS scale γ (data units)")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--dim", type=int, default=2000, help="dimension of the pair (2000 in the study)")
    ap.add_argument("--big", type=int, default=100, help="coordinates with a large shift (the budget)")
    ap.add_argument("--set", default="uniform", choices=["uniform", "gauss"], help="the pair of the bare study")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--baseline", action="store_true", help="also fit the same dual without penalty (λ = 1e-9)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    make = gauss_sparse_pair if args.set == "gauss" else sparse_pair
    x, y, big_idx, shift = make(dim=args.dim, big=args.big)
    result = {"study": args.study, "set": args.set, "n": x.shape[0], "dim": x.shape[1], "true_support": len(big_idx),
              "threshold": THRESHOLD, "runs": []}
    if args.study == "bare":
        result["runs"].append(run_one(x, y, big_idx, shift, args.bare_penalty, args.iters, bare=True))
        write_json(args.json, result)
        return 0
    for penalty in args.penalties:
        if args.study == "adaptive":
            runs = [run_one(x, y, big_idx, shift, penalty, args.iters, lam=args.lam0, target_dim=args.big,
                            warmup=args.warmup, gamma=args.gamma)]
        else:
            runs = [dict(lam=lam, **run_one(x, y, big_idx, shift, penalty, args.iters, lam=lam, gamma=args.gamma,
                                            target_dim=None)) for lam in args.lams]
        result["runs"].extend(runs)
        write_json(args.json, result)
    if args.baseline:
        base = run_one(x, y, big_idx, shift, "l0", args.iters, lam=1e-9, target_dim=None)
        result["runs"].append(dict(baseline=True, **base))
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
