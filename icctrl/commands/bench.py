"""`icctrl bench`: MPC solve-time benchmark (models × formulations × solvers × horizons, black-box reference
path in the same run), JSON + Markdown table + plots; `icctrl bench train`: training throughput."""

from __future__ import annotations

import argparse

from icctrl.errors import InvalidValueError

#: Grid options: (flag, BenchConfig field, type, help). None leaves the full or --quick default.
_GRID = (
    ("--repeat", "repeat", int, "repetitions of the closed-loop episodes per cell (default 1)"),
    ("--horizons", "horizons", "ints", "comma-separated horizons (default 10,20,50; quick 2,10)"),
    ("--models", "models", "strs", "comma-separated models of the grid (default: all)"),
    ("--solvers", "solvers", "strs", "comma-separated solvers, e.g. ipopt,sqp,clarabel,ipopt-lbfgs-fd"),
    ("--steps", "steps", int, "closed-loop steps per episode at the reference N = 10 (default 30; quick 6)"),
    ("--sweep-steps", "sweep_steps", int, "episode length at the other horizons (default 15; quick 4)"),
    ("--random-starts", "random_starts", int, "seeded starts in the stability region beside the papers' "
     "three, at the reference horizon (default 3; quick 1)"),
    ("--cell-budget", "cell_budget_s", float, "seconds per cell at the reference horizon before it is "
     "truncated (default 90; quick 20)"),
    ("--blackbox-iters", "blackbox_max_iter", int, "Ipopt iteration cap of the black box (default 100; "
     "quick 5)"),
    ("--blackbox-time", "blackbox_time_limit_s", float, "wall-time cap per black-box solve [s] (default 60)"),
    ("--blackbox-steps", "blackbox_steps", int, "closed-loop steps of the black box (default 3; quick 0)"),
)


def _csv(text: str, cast):
    try:
        return tuple(cast(t.strip()) for t in text.split(",") if t.strip())
    except ValueError:
        raise InvalidValueError(f"cannot read {text!r} as a comma-separated list") from None


def register(subparsers) -> None:
    """Add the `bench` sub-command."""
    p = subparsers.add_parser("bench", help="solve-time benchmark of the MPC controllers (or: bench train)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", nargs="?", default="mpc", choices=("mpc", "train"),
                   help="mpc (default): the MPC solve-time grid; train: training throughput (icctrl.train)")
    p.add_argument("--quick", action="store_true", help="a subset that finishes in about a minute")
    p.add_argument("--json", metavar="PATH", default=None, help="JSON result (default: OUT/bench.json)")
    p.add_argument("--out", default="icctrl-out/bench", help="output folder; nothing is written elsewhere "
                   "(default icctrl-out/bench)")
    p.add_argument("--threads", type=int, default=1, help="torch / BLAS threads (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random starts and untrained stand-ins")
    for flag, _, kind, text in _GRID:
        p.add_argument(flag, type=kind if callable(kind) else str, default=None, help=text)
    p.add_argument("--no-train", action="store_true",
                   help="do not train the softplus cost model when OUT/models lacks it (untrained stand-in)")
    p.add_argument("--setting", default="small", help="bench train: 'small' (2×64) or 'large' (2×256)")
    p.add_argument("--workers", type=int, default=1,
                   help="local processes running cells side by side (default 1: one after another, so that no "
                        "cell's timing includes another's load; with more, figures include that contention)")
    p.add_argument("--cluster", metavar="ADDRESS", default=None,
                   help="run the cells on the Dask distributed scheduler at ADDRESS (same caveat as --workers)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or table")
    p.set_defaults(func=run)


def _config(args):
    from icctrl.bench import BenchConfig

    over: dict = {"seed": args.seed, "threads": args.threads}
    for flag, field, kind, _ in _GRID:
        v = getattr(args, flag[2:].replace("-", "_"))
        if v is not None:
            over[field] = _csv(v, int) if kind == "ints" else _csv(v, str) if kind == "strs" else v
    if args.no_train:
        over["train_smooth"] = False
    return BenchConfig.quick_config(**over) if args.quick else BenchConfig(**over)


def _command(args) -> str:
    """The command line that reproduces this run (the options given, and any non-default thread or seed)."""
    parts = ["icctrl", "bench"] + ([args.what] if args.what != "mpc" else [])
    parts += [f for f, on in (("--quick", args.quick), ("--no-train", args.no_train)) if on]
    if args.json:
        parts += ["--json", args.json]
    if args.out != "icctrl-out/bench":
        parts += ["--out", args.out]
    for name, default in (("threads", 1), ("seed", 0), ("workers", 1), ("cluster", None)):
        if getattr(args, name) != default:
            parts += [f"--{name}", str(getattr(args, name))]
    for flag, *_ in _GRID:
        v = getattr(args, flag[2:].replace("-", "_"))
        if v is not None:
            parts += [flag, str(v)]
    return " ".join(parts)


def _train(args) -> int:
    from pathlib import Path

    from icctrl._io import write_json
    from icctrl.bench import machine_info
    from icctrl.train import benchmark_training

    res = benchmark_training(args.setting, repeats=args.repeat or 3, threads=args.threads)
    res.update(machine=machine_info(args.threads), command=_command(args))
    path = Path(args.json) if args.json else Path(args.out) / "train.json"
    write_json(path, res)
    if not args.quiet:
        for dev, r in res["per_device"].items():
            rates = ", ".join(f"{m} {v:.0f}" for m, v in r["samples_per_s"].items())
            ratio = f"; ratio {r['ratio_name']} = {r['ratio']:.2f}" if "ratio" in r else ""
            print(f"{dev}: samples/s {rates}{ratio}")
        print(f"wrote {path}")
    return 0


def run(args) -> int:
    if args.what == "train":
        return _train(args)
    from icctrl.bench import run_bench

    run_bench(_config(args), out=args.out, json_path=args.json, command=_command(args), quiet=args.quiet,
              workers=args.workers, cluster=args.cluster)
    return 0
