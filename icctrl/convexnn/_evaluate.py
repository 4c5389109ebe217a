"""The comparisons of docs/convexnn.md: exact convex training against many SGD runs on the same objective, and
robust convex training against FGSM and PGD adversarial training on two moons and digits 0-vs-1."""

from __future__ import annotations

import time

import numpy as np
import torch

from icctrl.convexnn._baselines import adversarial_train, scores, sgd_objectives
from icctrl.convexnn._model import ConvexReLU


def exact_vs_sgd(n: int = 12, beta: float = 1e-2, runs: int = 10, seed: int = 0, steps: int = 1500) -> dict:
    """Every pattern enumerated on n random 2-D points with a non-linear target: convex optimum vs SGD runs."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    y = np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] ** 2
    out = {"samples": n, "beta": beta}
    for loss in ("squared", "hinge"):
        t = y if loss == "squared" else np.where(y > np.median(y), 1.0, -1.0)
        m = ConvexReLU(beta=beta, loss=loss).fit(X, t)
        sgd = sgd_objectives(X, t, beta=beta, loss=loss, width=max(32, 2 * len(m.second_)), runs=runs, steps=steps,
                             seed=seed)
        out[loss] = {"convex_objective": m.objective_, "recovered_network_objective": m.nonconvex_objective(X, t),
                     "patterns": int(len(m.patterns_)), "neurons": int(len(m.second_)),
                     "sgd_best": min(sgd), "sgd_median": float(np.median(sgd)), "sgd_runs": sgd}
    return out


def _data(name: str, seed: int):
    from sklearn.datasets import load_digits, make_moons

    if name == "moons":
        X, y = make_moons(400, noise=0.1, random_state=seed)
    else:  # 8×8 digits 0 and 1 averaged to 4×4 (16 features): the robust program stays a minute-sized solve
        d = load_digits(n_class=2)
        X, y = d.data.reshape(-1, 4, 2, 4, 2).mean((2, 4)).reshape(-1, 16) / 16.0, d.target
    idx = np.random.default_rng(seed).permutation(len(X))
    X, t = X[idx], np.where(y[idx] == 1, 1.0, -1.0)
    k = len(X) // 2
    return X[:k], t[:k], X[k:], t[k:]


def robust_comparison(name: str, eps: float, *, n_patterns=100, width: int = 32, epochs: int = 300,
                      seed: int = 0) -> dict:
    """Convex (plain and robust) against FGSM / PGD adversarial training: clean and PGD accuracy, time."""
    Xtr, ttr, Xte, tte = _data(name, seed)
    rows = {}
    for label, r_eps in (("convex", 0.0), ("convex_robust", eps)):
        t0 = time.perf_counter()
        m = ConvexReLU(beta=1e-3, n_patterns=n_patterns, loss="hinge", robust_eps=r_eps, seed=seed).fit(Xtr, ttr)
        net = m.to_torch()
        rows[label] = {**scores(net, Xte, tte, eps), "train_seconds": time.perf_counter() - t0,
                       "neurons": int(len(m.second_)), "objective": m.objective_,
                       "program_convex": m.certificate_.convex}
    for attack in ("fgsm", "pgd"):
        net, sec = adversarial_train(Xtr, ttr, eps=eps, attack=attack, width=width, epochs=epochs, seed=seed)
        rows[f"{attack}_training"] = {**scores(net, Xte, tte, eps), "train_seconds": sec, "neurons": width}
    return {"data": name, "eps": eps, "train_samples": len(Xtr), "test_samples": len(Xte), "features": Xtr.shape[1],
            "n_patterns": n_patterns, "rows": rows}


def evaluate(quick: bool = False, seed: int = 0) -> dict:
    """Everything docs/convexnn.md quotes; `quick` shrinks it to a smoke run."""
    torch.manual_seed(seed)
    if quick:
        return {"exact_vs_sgd": exact_vs_sgd(n=6, runs=2, steps=200, seed=seed),
                "robust": [robust_comparison("moons", 0.1, n_patterns=20, epochs=5, seed=seed)]}
    return {"exact_vs_sgd": exact_vs_sgd(seed=seed),
            "robust": [robust_comparison("moons", 0.1, seed=seed),
                       robust_comparison("digits01", 0.1, n_patterns=50, seed=seed)]}
