"""`icctrl soak --plant cstr --starts N --workers W --faults NAME[,NAME…]|all --json PATH --out DIR`:
closed-loop episodes from N seeded starts in the stability region under fault scenarios, on local processes or
a Dask cluster; counts unhandled exceptions, NaN actions, hard-input violations, fallbacks and late steps.
`--out DIR` keeps one record per episode and resumes a killed run."""

from __future__ import annotations

import argparse

# Keys the soak JSON always holds (a public contract).
CONTRACT_KEYS = ("episodes", "unhandled", "nan_actions", "hard_violations", "by_fault", "latency_ms",
                 "unhandled_exceptions", "violations", "fallbacks", "worst_solve_ms")


def register(subparsers) -> None:
    """Add the `soak` sub-command."""
    p = subparsers.add_parser(
        "soak", description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        help="closed-loop soak from many seeded starts: exceptions, NaN actions, violations, fallbacks")
    p.add_argument("--plant", default="cstr", help="plant (cstr)")
    p.add_argument("--starts", type=int, default=20,
                   help="seeded random initial states in the stability region")
    p.add_argument("--steps", type=int, default=30, help="sampling periods per episode")
    p.add_argument("--horizon", type=int, default=10, help="MPC horizon N")
    p.add_argument("--controllers", default="iclstm,first_principles",
                   help="comma-separated: iclstm, first_principles, convex, lstm, linear, iclrnn or a .pt file; "
                        "demo for every controller of the demo")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial states")
    p.add_argument("--time-limit", type=float, default=None,
                   help="seconds per solve (a later result is refused: fallback)")
    p.add_argument("--max-iter", type=int, default=None, help="solver iteration limit")
    p.add_argument("--solver", default=None,
                   help="solver for every controller (default: each controller's own, e.g. ipopt for the "
                        "first-principles reference)")
    p.add_argument("--faults", default="nominal",
                   help="comma-separated fault scenarios, or all: " + ", ".join(_fault_names()))
    p.add_argument("--workers", "--jobs", dest="workers", type=int, default=1,
                   help="local processes (each compiles its own controllers)")
    p.add_argument("--cluster", metavar="ADDRESS", default=None,
                   help="run on the Dask distributed scheduler at ADDRESS (e.g. tcp://host:8786)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="episode records as JSON lines in DIR; rerunning with the same DIR resumes")
    p.add_argument("--json", metavar="PATH", default=None,
                   help="write the figures as JSON (atomic; rewritten as the soak runs)")
    p.add_argument("--plot", metavar="PNG", default=None,
                   help="per-fault figure: settled share, cost against nominal, settle steps, latency")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when any unhandled exception, NaN action or violation occurred")
    p.add_argument("--quiet", action="store_true", help="no progress bar or table")
    p.set_defaults(func=run)


def _fault_names():
    from icctrl.reliability._faults import FAULTS

    return list(FAULTS)


def run(args: argparse.Namespace) -> int:
    """Soak, print the table, write the JSON."""
    import sys

    from icctrl.reliability import soak
    from icctrl.reliability._report import fault_table, soak_table

    names = tuple(n.strip() for n in args.controllers.split(",") if n.strip())
    if names == ("demo",):
        from icctrl.mpc._defaults import CSTR_CONTROLLERS

        names = tuple(CSTR_CONTROLLERS)
    out = soak(args.plant, args.starts, controllers=names, steps=args.steps, horizon=args.horizon,
               seed=args.seed, time_limit=args.time_limit, max_iter=args.max_iter, solver=args.solver,
               faults=args.faults,
               workers=args.workers, cluster=args.cluster, out=args.out, json_path=args.json, plot=args.plot,
               progress=not args.quiet, command="icctrl " + " ".join(sys.argv[1:]))
    if not args.quiet:
        print(soak_table(out))
        if len(out["by_fault"]) > 1:
            print(fault_table(out))
        if args.json:
            print(f"figures: {args.json}")
    bad = out["unhandled"] + out["nan_actions"] + out["hard_violations"]
    return 1 if (args.strict and bad) else 0
