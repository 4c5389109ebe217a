"""Space folds: CantorNet's output and the Hamming distance of its activation patterns along (0, ¾) → (1, ¾).

    python examples/space_folds.py [--k 3] [--out docs/analysis/cantornet.png]

The distance from the start rises and falls back each time the path crosses a fold; χ = 1 − r₁/r₂ measures how much.
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from icctrl._io import atomic_write  # noqa: E402
from icctrl.analysis.folds import cantornet, chi_of_patterns, path_patterns  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=3, help="CantorNet recursion depth")
    ap.add_argument("--points", type=int, default=10_001)
    ap.add_argument("--out", default="icctrl-out/cantornet.png")
    args = ap.parse_args(argv)
    net = cantornet(args.k)
    g = torch.linspace(0, 1, 401, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="xy")
    with torch.no_grad():
        z = net(torch.stack([xx.flatten(), yy.flatten()], 1)).reshape(xx.shape)
    bits = path_patterns(net, (0.0, 0.75), (1.0, 0.75), args.points)
    dist = (bits != bits[0]).sum(1)
    chi = chi_of_patterns(bits)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    axes[0].contourf(xx, yy, z > 0, levels=[-0.5, 0.5, 1.5], cmap="Greys")
    axes[0].axhline(0.75, color="C1", label="path (0, ¾) → (1, ¾)")
    axes[0].set_title(f"CantorNet k = {args.k}: output > 0 (black)", fontsize=9)
    axes[0].legend(fontsize=8, loc="lower right")
    axes[1].plot(torch.linspace(0, 1, args.points), dist)
    axes[1].set_xlabel("t")
    axes[1].set_ylabel("Hamming distance to the pattern at t = 0")
    axes[1].set_title(f"χ = {chi:.4f} ({args.points} points)", fontsize=9)
    fig.tight_layout()
    atomic_write(args.out, lambda p: fig.savefig(p, dpi=110, format="png"))
    print(f"χ = {chi:.4f}; figure: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
