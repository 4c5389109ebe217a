"""`icctrl train`: train a zoo model on plant data (or a logged table), write a checkpoint, print the test MSE
and the certificate."""

from __future__ import annotations

import argparse
from pathlib import Path

from icctrl.errors import InvalidValueError, UnknownNameError

_REASONS_SHOWN = 3


def register(subparsers) -> None:
    """Add the `train` sub-command."""
    from icctrl.nn import MODELS, WEIGHTS

    p = subparsers.add_parser(
        "train",
        help="train a model and write a checkpoint",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d = p.add_argument_group("data")
    d.add_argument("--plant", default="cstr", help="plant to generate data from")
    d.add_argument(
        "--layout",
        default="one_step",
        choices=("one_step", "multi_step"),
        help="one_step: sub-steps of one sampling period (the papers); multi_step: [x_0, u_k] → x_(k+1) "
        "over `window` periods (rolled like MPC)",
    )
    d.add_argument(
        "--window",
        type=int,
        default=None,
        help="sub-steps (one_step) or periods (multi_step) per window; default: 5 for one_step (as the "
        "shipped defaults), 10 for multi_step (the MPC horizon)",
    )
    d.add_argument(
        "--target",
        default="state",
        choices=("state", "lyapunov"),
        help="targets: the next states, or the plant's Lyapunov value V(x_(k+1))",
    )
    d.add_argument(
        "--noise-std", type=float, default=0.0, help="Gaussian noise on training targets (scaled units)"
    )
    d.add_argument(
        "--n-traj", type=int, default=None, help="initial states / runs to simulate (preset if absent)"
    )
    d.add_argument("--data", default=None, help="CSV or Parquet table instead of a plant")
    d.add_argument("--inputs", default=None, help="comma-separated input columns of --data")
    d.add_argument("--outputs", default=None, help="comma-separated output columns of --data")
    d.add_argument("--time", default=None, help="time column of --data")
    d.add_argument("--dt", type=float, default=None, help="sampling period of --data")
    m = p.add_argument_group("model")
    m.add_argument("--model", default="iclstm", choices=sorted(MODELS), help="model type")
    m.add_argument("--hidden", type=int, default=None, help="hidden units per layer (default: the model's, 64)")
    m.add_argument("--layers", type=int, default=None, help="layers (default: the model's, 2)")
    m.add_argument("--affine", type=int, default=None,
                   help="taps of the affine path started at the least-squares fit (default: the window for the "
                   "input-convex models; 0: none)")
    m.add_argument("--weights", default=None, choices=WEIGHTS,
                   help="non-negative weights of the input-convex models: softplus, exp or projected after each "
                   "step (default: projected)")
    m.add_argument("--activation", default=None, help="activation (model default if absent)")
    m.add_argument(
        "--doubled", default=None, help="input indices fed as [x, −x], e.g. 2,3 (default: model's)"
    )
    m.add_argument(
        "--certify-wrt",
        default=None,
        help="input indices the certificate is about, e.g. 2,3 (default: the model's convex inputs)",
    )
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, default=None, help="passes over the data (default: from --steps)")
    t.add_argument("--steps", type=int, default=None, help="optimiser steps (default: DEFAULT_STEPS, 4000)")
    t.add_argument(
        "--lr",
        type=float,
        default=None,
        help="Adam learning rate; default: 2e-3 for projected non-negative weights (icctrl.train.PROJECTED_LR), "
        "else per model (icctrl.train.MODEL_LR): 1e-2 for input-convex models with softplus or exp weights, "
        "3e-3 for the others",
    )
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--patience", type=int, default=None,
                   help="early stopping patience in epochs (0: off; default: a fifth of the epochs, at least 20)")
    t.add_argument("--clip", type=float, default=1.0, help="gradient norm clip (0: off)")
    t.add_argument("--lr-final", type=float, default=0.02, help="cosine decay of lr to lr * this factor")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    t.add_argument("--amp", action="store_true", help="mixed precision on CUDA")
    t.add_argument("--threads", type=int, default=1, help="CPU threads (0: torch's default)")
    o = p.add_argument_group("output")
    o.add_argument("--out", default="icctrl-out/model.pt", help="checkpoint path")
    o.add_argument("--resume", action="store_true", help="continue from <out>.state after an interruption")
    o.add_argument("--json", default=None, help="also write the metrics and certificate as JSON")
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _size(config: dict) -> str:
    if config.get("name") == "linear":
        return f"{config['lags']} taps"
    affine = f" + affine path ({config['affine']} taps)" if config.get("affine") else ""
    return f"{config.get('layers')}x{config.get('hidden')}{affine}"


def run(args: argparse.Namespace) -> int:
    """Build the dataset and the model, train, save, report."""
    from icctrl._io import write_json
    from icctrl.train import TrainConfig, train

    model_kw = {k: v for k, v in (("hidden", args.hidden), ("layers", args.layers), ("affine", args.affine))
                if v is not None}
    if args.activation:
        model_kw["activation"] = args.activation
    if args.weights:
        model_kw["weights"] = args.weights
    if args.doubled:
        model_kw["doubled"] = _int_list(args.doubled, "--doubled")
    if args.model in ("lstm", "linear") and (args.activation or args.doubled or args.weights):
        raise InvalidValueError(f"--activation, --doubled and --weights do not apply to --model {args.model}")
    wrt = _int_list(args.certify_wrt, "--certify-wrt") if args.certify_wrt else None
    cfg = TrainConfig(
        epochs=args.epochs,
        steps=args.steps,
        lr=args.lr,
        batch_size=args.batch_size,
        patience="auto" if args.patience is None else (args.patience or None),
        clip_norm=args.clip or None,
        lr_final=args.lr_final,
        seed=args.seed,
        device=args.device,
        amp=args.amp,
        threads=args.threads or None,
        quiet=args.quiet,
        certify_wrt=wrt,
        tags={
            "plant": None if args.data else args.plant,
            "layout": args.layout,
            "target": args.target,
            "data": args.data,
        },
    )
    ds = _dataset(args)
    result = train(args.model, ds, cfg, out=args.out, resume=args.resume, **model_kw)
    met = result.metrics
    print(f"dataset: {ds.summary()}")
    print(
        f"model: {args.model} {_size(result.model.config)}, {met['n_params']} parameters, "
        f"{met['epochs_run']} epochs (best {met['best_epoch']}), {met['train_seconds']} s on {met['device']}"
    )
    print(
        f"test MSE (scaled): {_fmt(met['test_mse'])}   last step: {_fmt(met['test_mse_last_step'])}   "
        f"relative error: {_fmt(met['test_rel_error'])}"
    )
    print(_certificate_text(result.certificate))
    per_step = result.extra.get("certificate_per_step")
    if per_step:
        print(f"per step: {'convex' if per_step['convex'] else 'NOT certified convex'} ({per_step['scope']})")
    print(f"checkpoint: {args.out}")
    if args.json:
        write_json(
            args.json,
            {
                "checkpoint": str(args.out),
                "metrics": met,
                "certificate": result.certificate.to_dict(),
                "certificate_per_step": per_step,
            },
        )
    return 0


def _dataset(args: argparse.Namespace):
    """The dataset named by the arguments (plant simulation or logged table)."""
    from icctrl import data

    if args.data:
        if not args.inputs or not args.outputs:
            raise InvalidValueError("--data needs --inputs and --outputs (comma-separated column names)")
        if not Path(args.data).is_file():
            raise InvalidValueError(f"--data file {args.data!r} does not exist")
        if args.target != "state":
            raise InvalidValueError("--target lyapunov needs a plant, not --data")
        kw = {"layout": args.layout, "noise_std": args.noise_std, "seed": args.seed}
        if args.window:
            kw["window"] = args.window
        ds = data.from_table(
            args.data,
            inputs=_names(args.inputs),
            outputs=_names(args.outputs),
            time=args.time,
            dt=args.dt,
            **kw,
        )
        return ds
    plant = _plant(args.plant)
    kw = {"noise_std": args.noise_std, "seed": args.seed}
    kw["window"] = args.window or (5 if args.layout == "one_step" else 10)
    if args.n_traj:
        kw["n_traj"] = args.n_traj
    if args.target == "lyapunov":
        if not hasattr(plant, "lyapunov"):
            raise InvalidValueError(f"plant {args.plant!r} has no Lyapunov function for --target lyapunov")
        kw.update(target_fn=plant.lyapunov, target_names=["V"])
    if getattr(plant, "name", "") == "cstr":
        ds = data.cstr_dataset(layout=args.layout, plant=plant, **kw)
    else:
        ds = data.generate(plant, layout=args.layout, **kw)
    return ds


def _plant(name: str):
    import plants

    for cls_name in getattr(plants, "__all__", ()):
        cls = getattr(plants, cls_name)
        if isinstance(cls, type) and getattr(cls, "name", None) == name:
            return cls()
    known = sorted(
        getattr(getattr(plants, c), "name", "")
        for c in plants.__all__
        if isinstance(getattr(plants, c), type) and getattr(getattr(plants, c), "name", None)
    )
    raise UnknownNameError(f"unknown plant {name!r}; choose one of {known}")


def _names(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise InvalidValueError(f"expected comma-separated column names, got {text!r}")
    return names


def _int_list(text: str, flag: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise InvalidValueError(f"{flag} expects comma-separated integers, got {text!r}") from None


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def _certificate_text(cert) -> str:
    """The certificate, with the first few reasons (the rest counted)."""
    lines = [
        f"certificate: {cert.subject} is {'convex' if cert.convex else 'NOT certified convex'} "
        f"({cert.curvature}) {cert.scope}",
        f"  with respect to: {', '.join(cert.wrt) or '(nothing)'}; nondecreasing: {cert.nondecreasing}",
    ]
    lines += [f"  reason: {r}" for r in cert.reasons[:_REASONS_SHOWN]]
    if len(cert.reasons) > _REASONS_SHOWN:
        lines.append(f"  ... {len(cert.reasons) - _REASONS_SHOWN} more reasons in the checkpoint")
    lines += [f"  note: {n}" for n in cert.notes]
    return "\n".join(lines)
