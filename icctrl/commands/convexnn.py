"""`icctrl convexnn`: convex one-hidden-layer ReLU training against SGD (exact mode) and, robust, against FGSM
and PGD adversarial training; prints a summary and writes JSON."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add the `convexnn` sub-command."""
    p = subparsers.add_parser("convexnn", help="evaluate convex (and robust) ReLU network training",
                              description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a smoke run (seconds)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="CPU threads (0: torch's default)")
    p.add_argument("--json", default=None, help="also write the full results as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the comparisons and print them."""
    import torch

    from icctrl._io import write_json
    from icctrl.convexnn._evaluate import evaluate

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    out = evaluate(quick=args.quick, seed=args.seed)
    ex = out["exact_vs_sgd"]
    for loss in ("squared", "hinge"):
        r = ex[loss]
        print(f"exact {loss}: convex optimum {r['convex_objective']:.6g} ({r['patterns']} patterns, "
              f"{r['neurons']} neurons); SGD best {r['sgd_best']:.6g}, median {r['sgd_median']:.6g}")
    for c in out["robust"]:
        print(f"{c['data']} (eps={c['eps']}):")
        for name, r in c["rows"].items():
            print(f"  {name:>15}: clean {r['clean_accuracy']:.3f}  PGD {r['pgd_accuracy']:.3f}  "
                  f"train {r['train_seconds']:.1f} s")
    if args.json:
        write_json(args.json, out)
    return 0
