"""Convex ReLU network on two moons, plain and robust (ℓ∞, ε = 0.1), scored clean and under PGD.

    python examples/convexnn_moons.py [--eps 0.1]
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.datasets import make_moons

from icctrl.convexnn import ConvexReLU, scores


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eps", type=float, default=0.1)
    args = ap.parse_args(argv)
    X, y = make_moons(400, noise=0.1, random_state=0)
    t = np.where(y == 1, 1.0, -1.0)
    for r_eps in (0.0, args.eps):
        m = ConvexReLU(beta=1e-3, n_patterns=100, loss="hinge", robust_eps=r_eps).fit(X[:200], t[:200])
        s = scores(m.to_torch(), X[200:], t[200:], args.eps)
        print(f"robust_eps={r_eps}: {len(m.second_)} neurons, objective {m.objective_:.4g}, "
              f"clean {s['clean_accuracy']:.3f}, PGD {s['pgd_accuracy']:.3f}")
    print(m.certificate_)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
