"""The ICLRNN paper's CSTR robustness table: RNN, LSTM, LRNN, ICRNN, ICLRNN trained on targets with Gaussian
noise of std 0, 0.3, 0.6, 0.9 (scaled units), tested on clean data; test MSE and empirical Lipschitz estimate.

    nice python examples/robustness_study.py                  # the run recorded in docs/training.md
    python examples/robustness_study.py --quick               # a minute-long smoke version

Writes <out>/robustness.json, robustness.md (table) and robustness.png (plot).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from icctrl._io import atomic_write, write_json
from icctrl.train._robustness import NOISE_LEVELS, STUDY_MODELS, plot, robustness_study, to_markdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="icctrl-out/robustness", help="output folder")
    parser.add_argument("--models", default=",".join(STUDY_MODELS))
    parser.add_argument("--noise", default=",".join(str(s) for s in NOISE_LEVELS))
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--window", type=int, default=5, help="sub-steps of the one-period windows")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--n-traj", type=int, default=300, help="initial states (x 9 constant inputs)")
    parser.add_argument("--lipschitz-n", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: checks the pipeline, not the numbers"
    )
    args = parser.parse_args()
    kw = {
        "hidden": args.hidden,
        "layers": args.layers,
        "window": args.window,
        "epochs": args.epochs,
        "n_traj": args.n_traj,
        "lipschitz_n": args.lipschitz_n,
        "seed": args.seed,
    }
    if args.quick:
        kw.update(hidden=8, epochs=3, n_traj=30, lipschitz_n=16)
    t0 = time.perf_counter()
    result = robustness_study(
        [m for m in args.models.split(",") if m],
        [float(s) for s in args.noise.split(",") if s],
        log=print,
        **kw,
    )
    result["seconds"] = round(time.perf_counter() - t0, 1)
    out = Path(args.out)
    write_json(out / "robustness.json", result)
    table = to_markdown(result)
    atomic_write(out / "robustness.md", lambda p: p.write_text(table + "\n"))
    plot(result, out / "robustness.png")
    print(table)
    print(f"ordering: {result['ordering']}")
    print(f"wrote {out}/robustness.json, .md, .png in {result['seconds']} s")


if __name__ == "__main__":
    main()
