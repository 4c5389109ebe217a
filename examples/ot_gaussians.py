"""W2Dual on a 2-D Gaussian pair: transport arrows, training curve, L2-UVP against the closed-form map.

    python examples/ot_gaussians.py [--iters N] [--out icctrl-out/ot]   (the bare call; --iters caps the budget)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import icctrl.ot as O  # noqa: E402
from icctrl._io import atomic_write  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=None)
    ap.add_argument("--out", default="icctrl-out/ot")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = O.gaussian_pair(2, seed=0)
    x, y = g.sample(20000, 1), g.sample_q(20000, 2)
    model = O.W2Dual(2).fit(x, y, iters=args.iters)
    xt = g.sample(4096, 3)
    yt = g.true_map(xt)
    tx = model.transport(xt)
    uvp, inv = O.l2_uvp(tx, yt, yt), O.l2_uvp(model.inverse(yt), xt, xt)
    print(f"L2-UVP forward {uvp:.2f} %, inverse {inv:.2f} %; W2² estimate {model.w2_squared_:.3f}"
          f" (exact {g.w2_squared():.3f}); potentials certified convex: "
          f"{model.certificates['f'].convex and model.certificates['g'].convex}")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    a1.scatter(*xt[:400].T, s=4, c="tab:blue", label="P")
    a1.scatter(*yt[:400].T, s=4, c="tab:orange", label="Q = T*#P")
    for p, q in zip(xt[:60], tx[:60]):
        a1.annotate("", q, p, arrowprops=dict(arrowstyle="->", lw=0.6, color="k"))
    a1.set_title(f"∇f: P→Q (arrows), L2-UVP {uvp:.2f} %")
    a1.legend()
    a1.set_aspect("equal")
    a2.plot(model.history_["heldout_iter"], model.history_["heldout_w2"], lw=0.8, label="held-out dual W2² estimate")
    a2.axhline(g.w2_squared(), color="k", ls="--", label="exact W2²")
    a2.set_xlabel("f step")
    a2.legend()
    path = Path(args.out) / "gaussians.png"
    atomic_write(path, lambda p: fig.savefig(p, dpi=120, format="png"))
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
