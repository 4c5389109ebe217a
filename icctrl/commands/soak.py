"""`icctrl soak --plant cstr --starts N --json PATH`: closed-loop episodes from N seeded starts in the
stability region; counts unhandled exceptions, NaN actions, hard-constraint violations and fallbacks."""

from __future__ import annotations

import argparse

# Keys the soak JSON always holds (a public contract).
CONTRACT_KEYS = ("episodes", "unhandled_exceptions", "nan_actions", "violations", "fallbacks",
                 "worst_solve_ms")


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
                   help="comma-separated: iclstm, first_principles, convex, lstm, iclrnn or a .pt file")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial states")
    p.add_argument("--time-limit", type=float, default=None,
                   help="seconds per solve (a later result is refused: fallback)")
    p.add_argument("--max-iter", type=int, default=None, help="solver iteration limit")
    p.add_argument("--jobs", type=int, default=1, help="processes (each compiles its own controllers)")
    p.add_argument("--json", metavar="PATH", default=None,
                   help="write the figures as JSON (atomic; rewritten as the soak runs)")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when any unhandled exception, NaN action or violation occurred")
    p.add_argument("--quiet", action="store_true", help="no progress bar or table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Soak, print the table, write the JSON."""
    import sys

    from icctrl.reliability import soak
    from icctrl.reliability._report import soak_table

    names = tuple(n.strip() for n in args.controllers.split(",") if n.strip())
    out = soak(args.plant, args.starts, controllers=names, steps=args.steps, horizon=args.horizon,
               seed=args.seed, time_limit=args.time_limit, max_iter=args.max_iter, jobs=args.jobs,
               json_path=args.json, progress=not args.quiet, command="icctrl " + " ".join(sys.argv[1:]))
    if not args.quiet:
        print(soak_table(out))
        if args.json:
            print(f"figures: {args.json}")
    bad = out["unhandled_exceptions"] + out["nan_actions"] + out["violations"]
    return 1 if (args.strict and bad) else 0
