"""`icctrl prune`: the Net-Trim evaluation (digits and spirals against magnitude pruning, parallel and cascade,
sparse recovery, ADMM scaling) printed as a summary and written as JSON."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add the `prune` sub-command."""
    p = subparsers.add_parser("prune", help="evaluate Net-Trim pruning", description=__doc__,
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a smoke run of every part (seconds)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="CPU threads (0: torch's default)")
    p.add_argument("--spiral-epsilon", default="0.01,0.015,0.02",
                   help="relative ε of the spiral cascade runs (comma-separated; parallel at the middle one)")
    p.add_argument("--digits-epsilons", default="0.1,0.15,0.2,0.3,0.2:0.5:0",
                   help="relative ε of the digits runs (comma-separated; a:b:c gives one ε per layer)")
    p.add_argument("--tune-epochs", type=int, default=300, help="most epochs of masked fine-tuning (digits)")
    p.add_argument("--tune-validation", type=float, default=0.15,
                   help="share of the training images held out to stop fine-tuning early (0: fixed epochs)")
    p.add_argument("--tune-patience", type=int, default=20, help="epochs without a better held-out loss")
    p.add_argument("--scaling-sizes", default="250x2500,500x5000,1000x10000",
                   help="layer width x samples of the scaling runs (comma-separated)")
    p.add_argument("--scaling-max-iter", type=int, default=1000, help="ADMM iteration cap of the scaling runs")
    p.add_argument("--parts", default="spirals,digits,sparse_recovery,scaling", help="comma-separated parts to run")
    p.add_argument("--json", default=None, help="also write the results as JSON (rewritten after each part)")
    p.set_defaults(func=run)


def _sizes(text: str) -> list[tuple[int, int]]:
    from icctrl.errors import InvalidValueError

    try:
        return [tuple(int(v) for v in item.split("x")) for item in text.split(",") if item]
    except ValueError:
        raise InvalidValueError(f"--scaling-sizes must look like 250x2500,1000x10000, got {text!r}") from None


def _epsilons(text: str) -> list:
    from icctrl.errors import InvalidValueError

    try:
        items = [[float(v) for v in item.split(":")] for item in text.split(",") if item]
    except ValueError:
        raise InvalidValueError(f"--digits-epsilons must look like 0.1,0.2:0.3:0, got {text!r}") from None
    return [e[0] if len(e) == 1 else e for e in items]


def run(args: argparse.Namespace) -> int:
    """Run the evaluation and print one line per comparison."""
    import torch

    from icctrl._io import write_json
    from icctrl.prune._evaluate import evaluate

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    save = (lambda o: write_json(args.json, o)) if args.json else None
    out = evaluate(quick=args.quick, seed=args.seed, parts=[p for p in args.parts.split(",") if p], on_part=save,
                   spiral_epsilon=[float(e) for e in args.spiral_epsilon.split(",")],
                   digits_epsilons=_epsilons(args.digits_epsilons),
                   digits_tune={"tune_epochs": args.tune_epochs, "validation": args.tune_validation,
                                "patience": args.tune_patience},
                   scaling_sizes=_sizes(args.scaling_sizes), scaling_max_iter=args.scaling_max_iter)
    for data in ("digits", "spirals"):
        if data not in out:
            continue
        d = out[data]
        print(f"{data}: unpruned test accuracy {d['test_accuracy']:.4f}")
        for r in d["runs"]:
            nt, mg = r["net_trim"], r["magnitude"]
            print(f"  {r['scheme']:>8} eps={r['epsilon']} kept {r['nonzeros']} of {r['total']} "
                  f"({100 * r['kept_fraction']:.1f}%), discrepancy {r['relative_discrepancy']:.3f}; "
                  f"accuracy Net-Trim {nt['test_accuracy']:.4f} magnitude {mg['test_accuracy']:.4f}")
    sr = out.get("sparse_recovery", {"N": 0, "s": 0, "samples": [], "recovery_rate": []})
    print(f"sparse recovery N={sr['N']} s={sr['s']}: " + ", ".join(
        f"P={p}: {r:.1f}" for p, r in zip(sr["samples"], sr["recovery_rate"])))
    for row in out.get("scaling", {"rows": []})["rows"]:
        print(f"scaling {row['n']}x{row['n']}, {row['samples']} samples: {row['seconds_per_iteration']:.3f} s/iter "
              f"({row['cpu_seconds_per_iteration']:.3f} CPU s), "
              f"{row['iterations']} iterations (converged {row['converged']}), {row['seconds']:.1f} s in all "
              f"({row['cpu_seconds']:.1f} CPU s)")
    return 0
