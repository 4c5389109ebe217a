"""`icctrl schedule`: rolling-horizon PV + battery dispatch on the microgrid plant, compared with two
references."""

from __future__ import annotations

import argparse
from pathlib import Path

from icctrl._io import write_json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "schedule",
        help="PV + battery rolling-horizon dispatch with a learned convex degradation cost",
        description="Simulate N days of 15-minute rolling-horizon dispatch (96-step plans re-solved every "
        "step) "
        "against a self-consumption rule and the perfect-foresight optimum; print the table, write "
        "plots and (with --json) the figures.",
    )
    p.add_argument("--days", type=int, default=3, help="simulated days (default 3)")
    p.add_argument(
        "--json", type=Path, default=None, metavar="PATH", help="write the figures as JSON (atomic)"
    )
    p.add_argument("--out", type=Path, default=Path("icctrl-out/schedule"), help="folder for the plots")
    p.add_argument("--solver", default="highs", help="clarabel, ecos, highs or osqp (default highs)")
    p.add_argument("--formulation", default="pieces", help="pieces, epigraph or none (default pieces)")
    p.add_argument(
        "--backend", default="auto", help="auto, compiled (persistent HiGHS) or cvxpy (default auto)"
    )
    p.add_argument("--seed", type=int, default=0, help="weather, load and training seed")
    p.add_argument("--site", default="golden", help="site of the PV system (golden, freiburg, sevilla)")
    p.add_argument("--train-days", type=int, default=14, help="days of history to fit the forecaster on")
    p.add_argument("--steps", type=int, default=None, help="stop after this many re-solves (quick checks)")
    p.add_argument(
        "--degradation-steps", type=int, default=800, help="Adam steps to fit the degradation ICNN"
    )
    p.add_argument(
        "--no-realtime-correction",
        action="store_true",
        help="apply the planned battery power as is instead of also absorbing the current forecast error",
    )
    p.add_argument(
        "--no-surplus-first",
        action="store_true",
        help="let the plan export a measured PV surplus although the battery has room",
    )
    p.add_argument(
        "--forecast",
        default="ridge",
        help="ridge (default), clearsky (PV from the clear-sky profile), perfect (true future: a reference)",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    p.add_argument(
        "--bench",
        action="store_true",
        help="instead of the comparison, time one day of re-solves for each formulation/solver/backend "
        "(--json then writes {'timings': [...]})",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from icctrl.schedule import ScheduleConfig, dispatch_timings, plot_schedule, run_schedule, timings_table

    if args.bench:
        rows = dispatch_timings(
            steps=96 if args.steps is None else args.steps,
            seed=args.seed,
            degradation_steps=args.degradation_steps,
            site=args.site,
        )
        print(timings_table(rows))
        if args.json is not None:
            write_json(args.json, {"timings": rows})
            print(f"figures: {args.json}")
        return 0

    cfg = ScheduleConfig(
        days=args.days,
        train_days=args.train_days,
        site=args.site,
        seed=args.seed,
        solver=args.solver,
        formulation=args.formulation,
        backend=args.backend,
        steps=args.steps,
        degradation_steps=args.degradation_steps,
        realtime_correction=not args.no_realtime_correction,
        store_surplus=not args.no_surplus_first,
        forecast=args.forecast,
    )
    result = run_schedule(cfg)
    print(result.table())
    summary = result.summary()
    if not args.no_plots:
        paths = plot_schedule(result, args.out)
        summary["plots"] = [str(p) for p in paths]
        print("plots: " + ", ".join(str(p) for p in paths))
    if args.json is not None:
        write_json(args.json, summary)
        print(f"figures: {args.json}")
    return 0
