"""NTK in a few lines: the analytic kernel of a ReLU MLP, the empirical kernel of one wide network, and the closed-
form prediction of gradient descent (kernel regression at t = ∞), against the network trained by GD.

    python examples/ntk_regression.py [--width 2048] [--steps 300]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

from icctrl.analysis.ntk import NTKMLP, analytic_ntk, circle_points, empirical_ntk, gd_predict


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    x, xs = circle_points(10, 2), circle_points(50, 2, offset=0.03)
    y = np.sin(2 * np.arctan2(x[:, 1], x[:, 0]))[:, None]
    _, k = analytic_ntk(x, None, args.depth, math.sqrt(2), 0.1)
    _, ks = analytic_ntk(xs, x, args.depth, math.sqrt(2), 0.1)
    net = NTKMLP(2, args.width, args.depth, math.sqrt(2), 0.1, seed=0, dtype=torch.float64)
    k_emp = empirical_ntk(net, x)
    print(f"‖Θ_emp − Θ‖/‖Θ‖ at width {args.width}: {np.linalg.norm(k_emp - k) / np.linalg.norm(k):.4f}")
    lr = len(x) / np.linalg.eigvalsh(k).max()
    with torch.no_grad():
        f0, g0 = net(torch.as_tensor(x)).numpy(), net(torch.as_tensor(xs)).numpy()
    pred = gd_predict(k_emp, y, empirical_ntk(net, xs, x), t=args.steps, learning_rate=lr, f0_train=f0,
                      f0_test=g0, steps=True)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    for _ in range(args.steps):
        opt.zero_grad()
        (0.5 * ((net(xt) - yt) ** 2).sum(1).mean()).backward()
        opt.step()
    with torch.no_grad():
        fs = net(torch.as_tensor(xs)).numpy()
    mean = gd_predict(k, y, ks).test[0]  # t = ∞, f0 = 0: the infinite-width mean predictor
    target = np.sin(2 * np.arctan2(xs[:, 1], xs[:, 0]))[:, None]
    dev = np.linalg.norm(fs - pred.test[0]) / np.linalg.norm(pred.test[0])
    print(f"test: network vs its NTK prediction after {args.steps} steps, relative deviation {dev:.4f}")
    print(f"test RMSE against sin 2γ: network {np.sqrt(np.mean((fs - target) ** 2)):.4f}, "
          f"kernel regression (t = ∞, f0 = 0) {np.sqrt(np.mean((mean - target) ** 2)):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
