"""`icctrl ot`: fit a neural OT map on a Gaussian pair or the W2 benchmark and print L2-UVP, cosine and the
Monge gap of the fit (and the convexity certificate of the potentials for the ICNN dual)."""

from __future__ import annotations

import argparse
import sys
import time


def register(subparsers) -> None:
    """Add the `ot` sub-command."""
    p = subparsers.add_parser("ot", help="fit a neural optimal transport map and score it",
                              description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--pair", default="gaussian", choices=("gaussian", "w2bench"), help="benchmark pair")
    p.add_argument("--dim", type=int, default=2, help="dimension d")
    p.add_argument("--method", default="w2dual", choices=("w2dual", "monge"), help="estimator")
    p.add_argument("--iters", type=int, default=None,
                   help="cap on training iterations (default: the estimator's budget, with early stopping)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (0: torch's default)")
    p.add_argument("--w2bench-root", default=None, help="folder of the W2 benchmark (default: $ICCTRL_W2BENCH)")
    p.add_argument("--json", default=None, help="also write the scores as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fit, score and report."""
    import torch

    import icctrl.ot as O
    from icctrl._io import write_json

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.pair == "gaussian":
        g = O.gaussian_pair(args.dim, seed=args.seed)
        sample, true_map = g.sample, g.true_map
        y = g.sample_q(20000, 2)
    else:
        b = O.w2bench(args.dim, root=args.w2bench_root)
        sample, true_map = b.sample, b.true_map
        y = true_map(sample(20000, 2))
    x = sample(20000, 1)
    cls = O.W2Dual if args.method == "w2dual" else O.MongeGapMap
    model = cls(args.dim, seed=args.seed, device=args.device, verbose=not args.quiet)
    t0 = time.perf_counter()
    try:
        model.fit(x, y, iters=args.iters)
    except O.DivergenceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    wall = time.perf_counter() - t0
    xt = sample(2**14, 3)
    yt = true_map(xt)
    tx = model.transport(xt)
    out = {"pair": args.pair, "dim": args.dim, "method": args.method, "iters": model.iters_,
           "stop": model.stop_reason_, "wall_s": round(wall, 1),
           "device": str(model.device), "l2_uvp_fwd": O.l2_uvp(tx, yt, yt), "cos_fwd": O.cosine(xt, tx, yt),
           "monge_gap": O.monge_gap(model.transport, xt[:1024])}
    if args.method == "w2dual":
        out["l2_uvp_inv"] = O.l2_uvp(model.inverse(yt), xt, xt)
        out["certified_convex"] = bool(model.certificates["f"].convex and model.certificates["g"].convex)
    for k, v in out.items():
        print(f"{k:>16}: {v:.4g}" if isinstance(v, float) else f"{k:>16}: {v}")
    if args.json:
        write_json(args.json, out)
    return 0
