"""`icctrl demo`: closed-loop CSTR MPC with the shipped default models, table + plots + JSON."""


def register(sub) -> None:
    p = sub.add_parser("demo", help="closed-loop CSTR MPC with the shipped defaults (table, plots, JSON)")
    p.add_argument("--json", metavar="PATH", help="write the figures and certificates as JSON")
    p.add_argument("--out", default="icctrl-out", help="folder for plots (default: icctrl-out)")
    p.add_argument("--steps", type=int, default=40, help="sampling periods per episode (default 40 = 0.2 h)")
    p.add_argument("--horizon", type=int, default=10, help="MPC horizon N (default 10)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or table")
    p.set_defaults(func=run)


def run(args) -> int:
    from icctrl.mpc._demo import demo

    demo(json_path=args.json, out=args.out, steps=args.steps, horizon=args.horizon, quiet=args.quiet)
    return 0
