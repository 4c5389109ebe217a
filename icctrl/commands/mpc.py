"""`icctrl mpc --model m.pt`: the demo's closed loop (regulation, setpoint step, soft temperature ceiling) for any
saved model, beside the first-principles NMPC."""


def register(sub) -> None:
    p = sub.add_parser("mpc", help="closed-loop CSTR MPC with a saved model, beside the first-principles NMPC")
    p.add_argument("--model", required=True, help="checkpoint file (from `icctrl train`) or a shipped default name")
    p.add_argument("--solver", default=None,
                   help="rti, sqp-gn, ipopt, sqp, clarabel, osqp, ecos, scs (default: by model)")
    p.add_argument("--horizon", type=int, default=10)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--time-limit", type=float, default=None, help="seconds per solve (fallback when exceeded)")
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--out", default="icctrl-out")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from icctrl.mpc._defaults import default_controller
    from icctrl.mpc._demo import ceiling_controller, compare

    opts = {"time_limit": args.time_limit} if args.time_limit else {}
    ctrls = {
        "first_principles": ("first_principles", default_controller("cstr", "first_principles", horizon=args.horizon)),
        "model": (args.model, default_controller("cstr", args.model, solver=args.solver, horizon=args.horizon,
                                                 **opts)),
    }
    ceilings = {"first_principles": ceiling_controller("first_principles", None, args.horizon),
                "model": ceiling_controller(args.model, args.solver, args.horizon, **opts)}
    compare(ctrls, steps=args.steps, out=args.out, json_path=args.json, quiet=args.quiet, ceilings=ceilings)
    return 0
