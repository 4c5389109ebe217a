"""Train the shipped default CSTR models into icctrl/assets/ (deterministic: seeded, one CPU thread).

    python examples/train_defaults.py                 # all defaults
    python examples/train_defaults.py iclstm lstm     # some of them
    python examples/train_defaults.py --out /tmp/a    # somewhere else

Each model gets `<plant>_<name>.pt` (weights + metadata, read with icctrl.load_default) and `.json`
(metrics, certificate, sha256 of the .pt, timing).
"""

from __future__ import annotations

import argparse
import time

from icctrl.train import default_names, train_default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", help=f"defaults to train (all: {', '.join(default_names('cstr'))})"
    )
    parser.add_argument("--out", default=None, help="folder (default: icctrl/assets)")
    parser.add_argument(
        "--epochs", type=int, default=None, help="override the recipe's epochs (quick checks)"
    )
    parser.add_argument("--progress", action="store_true", help="show the progress bar")
    args = parser.parse_args()
    for name in args.names or default_names("cstr"):
        t0 = time.perf_counter()
        res = train_default("cstr", name, folder=args.out, quiet=not args.progress, epochs=args.epochs)
        m = res.metrics
        print(
            f"cstr/{name}: test MSE (scaled) {m['test_mse']:.3e}, last step {m['test_mse_last_step']:.3e}, "
            f"relative error {m['test_rel_error']:.3e}, {m['epochs_run']} epochs, "
            f"certified convex: {res.certificate.convex} ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
