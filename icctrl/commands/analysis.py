"""`icctrl analysis`: space folds (CantorNet table, χ of a saved model, the digits study) and the NTK experiments
(width convergence, wide-network training against the NTK prediction)."""

from __future__ import annotations

import argparse

# Lewandowski et al., CantorNet along (0, 3/4) → (1, 3/4), k = 1…5
PUBLISHED_CHI = {10_001: (0.50, 0.69, 0.81, 0.88, 0.93), 11: (0.50, 0.69, 0.75, 0.81, 0.83)}


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def register(subparsers) -> None:
    """Add the `analysis` sub-command and its actions."""
    p = subparsers.add_parser("analysis", help="space folds and neural tangent kernels of ReLU networks",
                              description=__doc__)
    acts = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter

    c = acts.add_parser("cantor", help="χ of CantorNet against the published values", formatter_class=fmt)
    c.add_argument("--k", type=int, default=5, help="largest recursion depth")
    c.add_argument("--points", type=_ints, default=[10_001, 11], help="path resolutions, comma separated")

    f = acts.add_parser("folds", help="χ of a saved model along random straight paths", formatter_class=fmt)
    f.add_argument("model", help="checkpoint file, or plant/name of a shipped default (e.g. cstr/iclrnn)")
    f.add_argument("--paths", type=int, default=100, help="number of random paths")
    f.add_argument("--points", type=int, default=1001, help="points per path")
    f.add_argument("--window", type=int, default=None, help="window length of each endpoint (default: training)")
    f.add_argument("--seed", type=int, default=0)

    d = acts.add_parser("digits", help="χ against depth and width of MLPs on the scikit-learn digits",
                        formatter_class=fmt)
    d.add_argument("--depths", type=_ints, default=[1, 2, 3, 4, 6])
    d.add_argument("--widths", type=_ints, default=[16, 32, 64, 128])
    d.add_argument("--seeds", type=_ints, default=[0, 1, 2])
    d.add_argument("--paths", type=int, default=100, help="same-class test paths")
    d.add_argument("--points", type=int, default=1001, help="points per path")
    d.add_argument("--epochs", type=int, default=60)
    d.add_argument("--plot", default=None, help="write the figure (PNG)")

    n = acts.add_parser("ntk", help="empirical NTK against the analytic one; wide-network training",
                        formatter_class=fmt)
    n.add_argument("--widths", type=_ints, default=[64, 128, 256, 512, 1024, 2048, 4096])
    n.add_argument("--depth", type=int, default=2, help="hidden Dense+ReLU pairs")
    n.add_argument("--w-std", type=float, default=2**0.5)
    n.add_argument("--b-std", type=float, default=0.1)
    n.add_argument("--seeds", type=_ints, default=[0, 1, 2, 3, 4])
    n.add_argument("--train-widths", type=_ints, default=[64, 4096], help="networks trained by GD")
    n.add_argument("--steps", type=int, default=500, help="GD steps")
    n.add_argument("--plot", default=None, help="write the figure (PNG)")

    for a in (c, f, d, n):
        a.add_argument("--json", default=None, help="also write the results as JSON")
        a.add_argument("--threads", type=int, default=1, help="CPU threads (0: torch's default)")
        a.add_argument("--quiet", action="store_true", help="no progress bar")
        a.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the chosen action, print its table, write JSON and the figure when asked."""
    import torch

    from icctrl._io import write_json

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    out = {"cantor": _cantor, "folds": _folds, "digits": _digits, "ntk": _ntk}[args.action](args)
    if args.json:
        write_json(args.json, out)
    return 0


def _cantor(args) -> dict:
    from icctrl.analysis.folds import cantornet, chi

    rows = []
    print(f"{'k':>2} " + " ".join(f"{'χ @' + str(n):>10} {'published':>9}" for n in args.points))
    for k in range(1, args.k + 1):
        vals = {n: chi(cantornet(k), (0.0, 0.75), (1.0, 0.75), n) for n in args.points}
        pub = {n: (PUBLISHED_CHI.get(n, ())[k - 1] if k <= len(PUBLISHED_CHI.get(n, ())) else None)
               for n in args.points}
        print(f"{k:>2} " + " ".join(f"{vals[n]:>10.4f} {'' if pub[n] is None else pub[n]:>9}" for n in args.points))
        rows.append({"k": k, "chi": {str(n): vals[n] for n in args.points},
                     "published": {str(n): pub[n] for n in args.points}})
    return {"path": [[0.0, 0.75], [1.0, 0.75]], "rows": rows}


def _folds(args) -> dict:
    from pathlib import Path

    import numpy as np

    import icctrl
    from icctrl.analysis.folds import fold_summary
    from icctrl.errors import CheckpointError
    from icctrl.mpc._defaults import model_window

    src = args.model
    if Path(src).exists():
        model = icctrl.load(src)
    elif "/" in src and not src.endswith(".pt"):
        model = icctrl.load_default(*src.split("/", 1))
    else:
        raise CheckpointError(f"no such model file: {src!r}")
    window = args.window or model_window(model, 1)
    rng = np.random.default_rng(args.seed)
    n_in = model.n_in
    offset = model.in_offset.double().numpy() if hasattr(model, "in_offset") else np.zeros(n_in)
    scale = model.in_scale.double().numpy() if hasattr(model, "in_scale") else np.ones(n_in)
    shape = (args.paths, window, n_in)
    x0, x1 = (offset + scale * rng.normal(size=shape) for _ in range(2))
    s = fold_summary(model, x0, x1, args.points).as_dict()
    s.update(model=args.model, window=window, endpoints="in_offset + in_scale·N(0, 1) per input")
    for k in ("max", "mean", "share_folding"):
        print(f"{k:>14}: {s[k]:.4f}")
    return s


def _digits(args) -> dict:
    from icctrl.analysis.folds import digits_fold_study

    res = digits_fold_study(args.depths, args.widths, args.seeds, args.paths, args.points, args.epochs,
                            verbose=not args.quiet)
    print(f"{'depth':>5} {'width':>5} {'accuracy':>8} {'mean χ':>8} {'max χ':>7} {'folding':>7} "
          f"{'init mean χ':>11} {'init folding':>12}")
    for d in args.depths:
        for w in args.widths:
            rs = [r for r in res["rows"] if r["depth"] == d and r["width"] == w]
            m = {k: sum(r[k] for r in rs) / len(rs) for k in rs[0] if k not in ("depth", "width", "seed")}
            print(f"{d:>5} {w:>5} {m['test_accuracy']:>8.3f} {m['chi_mean']:>8.4f} {m['chi_max']:>7.3f} "
                  f"{m['share_folding']:>7.2f} {m['init_chi_mean']:>11.4f} {m['init_share_folding']:>12.2f}")
    if args.plot:
        from icctrl.analysis._plots import plot_digits_folds

        plot_digits_folds(res, args.plot)
    return res


def _ntk(args) -> dict:
    from icctrl.analysis.ntk import ntk_training_study, ntk_width_study

    wres = ntk_width_study(args.widths, args.depth, args.w_std, args.b_std, seeds=args.seeds, verbose=not args.quiet)
    print(f"{'width':>6} {'median ‖Θ_emp − Θ‖/‖Θ‖':>24}")
    for w, e in zip(wres["widths"], wres["median_rel_error"]):
        print(f"{w:>6} {e:>24.4f}")
    print(f"log-log slope: {wres['slope']:.3f} (theory −0.5)")
    tres = ntk_training_study(args.train_widths, args.depth, args.w_std, args.b_std, steps=args.steps,
                              verbose=not args.quiet)
    print(f"{'width':>6} {'loss':>10} {'NTK loss':>10} {'test deviation':>14}  (after {tres['steps'][-1]} GD steps)")
    for w, r in tres["networks"].items():
        print(f"{w:>6} {r['train_loss'][-1]:>10.3g} {r['ntk_train_loss'][-1]:>10.3g} "
              f"{r['test_rel_deviation'][-1]:>14.4f}")
    if args.plot:
        from icctrl.analysis._plots import plot_ntk

        plot_ntk(wres, tres, args.plot)
    return {"width": wres, "training": tres}
