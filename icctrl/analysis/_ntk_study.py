"""NTK experiments: the empirical kernel's distance to the analytic one against width (slope −1/2 expected on a
log-log plot), and a wide network trained by gradient descent against the closed-form NTK prediction."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from icctrl.analysis._ntk_analytic import analytic_ntk
from icctrl.analysis._ntk_empirical import NTKMLP, empirical_ntk
from icctrl.analysis._ntk_predict import gd_predict


def circle_points(n: int, d: int = 2, offset: float = 0.0) -> np.ndarray:
    """n points at angles 2πi/n + offset on the unit circle in the first two of d coordinates, scaled to ‖x‖² = d."""
    g = 2 * math.pi * np.arange(n) / n + offset
    x = np.zeros((n, d))
    x[:, 0], x[:, 1] = np.cos(g), np.sin(g)
    return x * math.sqrt(d)


def ntk_width_study(widths: Sequence[int] = (64, 128, 256, 512, 1024, 2048, 4096), depth: int = 2,
                    w_std: float = math.sqrt(2.0), b_std: float = 0.1, n_points: int = 8, d_in: int = 4,
                    seeds: Sequence[int] = (0, 1, 2, 3, 4), verbose: bool = True) -> dict:
    """‖Θ_emp − Θ‖_F/‖Θ‖_F per width and seed at `n_points` Gaussian inputs, and the least-squares slope of the
    log median error against log width."""
    x = np.random.default_rng(0).normal(size=(n_points, d_in))
    _, ntk = analytic_ntk(x, None, depth, w_std, b_std)
    errs = {}
    for w in tqdm(widths, desc="NTK widths", disable=not verbose):
        errs[w] = [float(np.linalg.norm(empirical_ntk(NTKMLP(d_in, w, depth, w_std, b_std, seed=s,
                                                            dtype=torch.float64), x) - ntk) / np.linalg.norm(ntk))
                   for s in seeds]
    med = [float(np.median(errs[w])) for w in widths]
    slope = float(np.polyfit(np.log(widths), np.log(med), 1)[0])
    return {"depth": depth, "w_std": w_std, "b_std": b_std, "n_points": n_points, "d_in": d_in, "seeds": list(seeds),
            "widths": list(widths), "rel_error": {str(w): errs[w] for w in widths}, "median_rel_error": med,
            "slope": slope}


def ntk_training_study(widths: Sequence[int] = (64, 4096), depth: int = 2, w_std: float = math.sqrt(2.0),
                       b_std: float = 0.1, n_train: int = 12, n_test: int = 64, steps: int = 500, seed: int = 0,
                       verbose: bool = True) -> dict:
    """Full-batch GD on y = sin(2γ) over points of the circle, network against the NTK prediction from its own
    initial outputs and kernel, and against the analytic kernel's prediction (the infinite-width mean)."""
    xtr, xte = circle_points(n_train, 2), circle_points(n_test, 2, offset=math.pi / n_test)
    ytr = np.sin(2 * np.arctan2(xtr[:, 1], xtr[:, 0]))[:, None]
    _, k_tr = analytic_ntk(xtr, None, depth, w_std, b_std)
    _, k_te = analytic_ntk(xte, xtr, depth, w_std, b_std)
    lr = n_train / float(np.linalg.eigvalsh(k_tr).max())  # η λ_max / n = 1
    ts = np.unique(np.geomspace(1, steps, 40).astype(int))
    analytic = gd_predict(k_tr, ytr, k_te, t=ts, learning_rate=lr, steps=True)
    out = {"depth": depth, "w_std": w_std, "b_std": b_std, "n_train": n_train, "n_test": n_test, "lr": lr,
           "steps": ts.tolist(), "x_test_angle": np.arctan2(xte[:, 1], xte[:, 0]).tolist(),
           "analytic": {"train_loss": _loss(analytic.train, ytr), "test_final": analytic.test[-1, :, 0].tolist()},
           "networks": {}}
    for w in tqdm(widths, desc="NTK training", disable=not verbose):
        net = NTKMLP(2, w, depth, w_std, b_std, seed=seed, dtype=torch.float64)
        xa, xb, ya = (torch.as_tensor(v) for v in (xtr, xte, ytr))
        with torch.no_grad():
            f0, g0 = net(xa).numpy(), net(xb).numpy()
        pred = gd_predict(empirical_ntk(net, xtr), ytr, empirical_ntk(net, xte, xtr), t=ts, learning_rate=lr,
                          f0_train=f0, f0_test=g0, steps=True)
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        train_loss, test_dev, done = [], [], 0
        for s in ts:
            for _ in range(int(s) - done):
                opt.zero_grad()
                (0.5 * ((net(xa) - ya) ** 2).sum(1).mean()).backward()
                opt.step()
            done = int(s)
            with torch.no_grad():
                ftr, fte = net(xa).numpy(), net(xb).numpy()
            i = len(train_loss)
            train_loss.append(float(0.5 * ((ftr - ytr) ** 2).sum(1).mean()))
            test_dev.append(float(np.linalg.norm(fte - pred.test[i]) / np.linalg.norm(pred.test[i] - g0)))
        out["networks"][str(w)] = {"train_loss": train_loss, "ntk_train_loss": _loss(pred.train, ytr),
                                   "test_rel_deviation": test_dev, "test_final": fte[:, 0].tolist(),
                                   "ntk_test_final": pred.test[-1, :, 0].tolist()}
    return out


def _loss(f: np.ndarray, y: np.ndarray) -> list[float]:
    return [float(0.5 * ((fi - y) ** 2).sum(1).mean()) for fi in f]
