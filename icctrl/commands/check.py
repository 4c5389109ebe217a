"""`icctrl check MODEL`: certificate, numeric checks and Lipschitz figures of a saved model."""

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("check", help="certify a saved model: convexity, numeric checks, Lipschitz figures")
    p.add_argument("model", help="checkpoint file, or plant/name of a shipped default (e.g. cstr/iclstm)")
    p.add_argument("--json", metavar="PATH", help="write the report as JSON")
    p.add_argument("--window", type=int, default=None, help="window length to certify over (default: training)")
    p.add_argument("-n", type=int, default=512, help="samples for the numeric checks")
    p.set_defaults(func=run)


def run(args) -> int:
    import icctrl
    from icctrl._io import write_json
    from icctrl.convexity._report import check_model, format_report
    from icctrl.errors import CheckpointError

    src = args.model
    if not Path(src).exists() and "/" in src and not src.endswith(".pt"):
        plant, name = src.split("/", 1)
        model = icctrl.load_default(plant, name)
    elif not Path(src).exists():
        raise CheckpointError(f"no such model file: {src!r}")
    else:
        model = icctrl.load(src)
    from icctrl.mpc._defaults import model_window

    report = check_model(model, window=args.window or model_window(model, 0) or None, n=args.n)
    report["source"] = src
    print(format_report(report))
    if args.json:
        write_json(args.json, report)
    return 0
