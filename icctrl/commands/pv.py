"""`icctrl pv`: duty-cycle RTO of the PV converter with learned models vs first principles and P&O MPPT."""

from __future__ import annotations

import argparse
from pathlib import Path

from icctrl._io import write_json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "pv",
        help="real-time duty-cycle optimisation of the PV converter (IC-LSTM, ICLRNN, LSTM, first principles, P&O)",
        description="Train (or load cached) converter models, run each controller in closed loop over a "
        "time-lapsed stretch of a cloudy day, print the table, save a plot and (with --json) the figures.",
    )
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the figures as JSON (atomic)")
    p.add_argument("--out", type=Path, default=Path("icctrl-out/pv"), help="folder for the plot")
    p.add_argument("--quick", action="store_true", help="tiny models and a few periods (seconds)")
    p.add_argument("--steps", type=int, default=None, help="controller periods of 1 ms (default 300, quick 12)")
    p.add_argument("--minutes", type=int, default=None, help="weather minutes time-lapsed into the run")
    p.add_argument("--horizon", type=int, default=None, help="RTO horizon in periods (default 6, quick 3)")
    p.add_argument("--seed", type=int, default=0, help="weather seed")
    p.add_argument("--solver", default="rti", choices=("rti", "ipopt"),
                   help="RTO engine: rti (one Gauss–Newton QP per period, default) or ipopt (converged)")
    p.add_argument("--no-cache", action="store_true", help="retrain the models instead of loading the cache")
    p.add_argument("--no-plots", action="store_true", help="skip the figure")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from icctrl.pv import plot, run_pv, table

    res = run_pv(quick=args.quick, n_steps=args.steps, minutes=args.minutes, seed=args.seed,
                 horizon=args.horizon, cache=not args.no_cache, solver=args.solver)
    print(table(res))
    for name, cert in res["certificates"].items():
        h, one = cert["horizon"], cert["one_step"]
        print(f"certificate {name}: problem convex={h['problem']['convex']}, constraints convex="
              f"{h['constraints']['convex']}; one-step constraints convex={one['constraints']['convex']}")
    if not args.no_plots:
        print(f"plot: {plot(res, args.out / 'pv_closed_loop.png')}")
    if args.json is not None:
        write_json(args.json, {k: v for k, v in res.items() if k != "traces"})
        print(f"json: {args.json}")
    return 0
