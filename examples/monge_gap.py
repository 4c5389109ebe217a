"""Monge gap: ≈ 0 for optimal maps, > 0 for a rotation; a MongeGapMap fitted on a 2-D Gaussian pair.

    python examples/monge_gap.py [--iters 300] [--out icctrl-out/ot]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import icctrl.ot as O  # noqa: E402
from icctrl._io import atomic_write  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--out", default="icctrl-out/ot")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = O.gaussian_pair(2, seed=0)
    x = g.sample(1000, 5)
    rot = np.array([[0.0, -1.0], [1.0, 0.0]])
    iso = np.random.default_rng(0).standard_normal((1000, 2))
    print(f"Monge gap (epsilon = 0.01): identity {O.monge_gap(lambda z: z, x):+.4f}, "
          f"true Gaussian map {O.monge_gap(g.true_map, x):+.4f}, "
          f"90° rotation of N(0, I) {O.monge_gap(lambda z: z @ rot.T, iso):+.4f}")
    xs, ys = g.sample(20000, 1), g.sample_q(20000, 2)
    model = O.MongeGapMap(2, lam=1.0, lr=3e-3).fit(xs, ys, iters=args.iters)
    xt = g.sample(4096, 3)
    yt = g.true_map(xt)
    tx = model.transport(xt)
    print(f"MongeGapMap: L2-UVP {O.l2_uvp(tx, yt, yt):.2f} %, Monge gap of the fit "
          f"{O.monge_gap(model.transport, xt[:1000]):+.4f}")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    for key in ("divergence", "monge_gap", "loss"):
        a1.plot(model.history_[key], lw=0.8, label=key)
    a1.set_xlabel("step")
    a1.set_title("training curves (data units, c = ½‖x−y‖²)")
    a1.legend()
    a2.scatter(*yt[:500].T, s=4, label="T*(x)")
    a2.scatter(*tx[:500].T, s=4, label="T̂(x)")
    a2.legend()
    a2.set_aspect("equal")
    path = Path(args.out) / "monge_gap.png"
    atomic_write(path, lambda p: fig.savefig(p, dpi=120, format="png"))
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
