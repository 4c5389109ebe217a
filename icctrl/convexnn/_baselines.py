"""Non-convex baselines of the same architecture: SGD on the same regularised objective, and FGSM / PGD
adversarial training; PGD is also the attack that scores every model."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from icctrl.convexnn._model import _torch_objective


def _net(d: int, width: int, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, width), nn.ReLU(), nn.Linear(width, 1, bias=False)).double()


def sgd_objectives(X, t, *, beta: float, loss: str = "squared", width: int = 32, runs: int = 20,
                   steps: int = 3000, lr: float = 1e-2, seed: int = 0) -> list[float]:
    """Final regularised objective of `runs` full-batch Adam runs from random starts (as `ConvexReLU` scores it)."""
    X = torch.as_tensor(np.asarray(X, float))
    t = torch.as_tensor(np.asarray(t, float))
    out = []
    for r in range(runs):
        net = _net(X.shape[1], width, seed + r)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        for _ in range(steps):
            opt.zero_grad()
            _torch_objective(net, X, t, beta, loss).backward()
            opt.step()
            sched.step()
        with torch.no_grad():
            out.append(float(_torch_objective(net, X, t, beta, loss)))
    return out


def pgd_attack(f, X: torch.Tensor, t: torch.Tensor, eps: float, steps: int = 20) -> torch.Tensor:
    """ℓ∞ PGD on the hinge margin: the perturbed inputs that push t·f(x) down, within ‖δ‖∞ ≤ eps."""
    if eps == 0:
        return X
    step = 2.5 * eps / steps
    delta = torch.zeros_like(X, requires_grad=True)
    for _ in range(steps):
        margin = (t * f(X + delta).squeeze(-1)).sum()
        (g,) = torch.autograd.grad(margin, delta)
        with torch.no_grad():
            delta -= step * g.sign()
            delta.clamp_(-eps, eps)
    return (X + delta).detach()


def adversarial_train(X, t, *, eps: float, attack: str = "pgd", width: int = 32, epochs: int = 300,
                      lr: float = 1e-2, beta: float = 1e-4, seed: int = 0) -> tuple[nn.Sequential, float]:
    """Hinge-loss training of the d-width-1 ReLU network on FGSM or PGD examples; returns (net, seconds)."""
    X = torch.as_tensor(np.asarray(X, float))
    t = torch.as_tensor(np.asarray(t, float))
    net = _net(X.shape[1], width, seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    t0 = time.perf_counter()
    for _ in range(epochs):
        Xadv = _fgsm(net, X, t, eps) if attack == "fgsm" else pgd_attack(net, X, t, eps, steps=10)
        opt.zero_grad()
        _torch_objective(net, Xadv, t, beta, "hinge").backward()
        opt.step()
    return net, time.perf_counter() - t0


def _fgsm(f, X: torch.Tensor, t: torch.Tensor, eps: float) -> torch.Tensor:
    Xr = X.clone().requires_grad_(True)
    (g,) = torch.autograd.grad((t * f(Xr).squeeze(-1)).sum(), Xr)
    return (X - eps * g.sign()).detach()


def scores(f, X, t, eps: float) -> dict:
    """Clean and PGD (ℓ∞, radius eps) accuracy of the sign of f against labels t in {−1, +1}."""
    X = torch.as_tensor(np.asarray(X, float))
    t = torch.as_tensor(np.asarray(t, float))
    with torch.no_grad():
        clean = float(((f(X).squeeze(-1) > 0).double() * 2 - 1 == t).double().mean())
    Xa = pgd_attack(f, X, t, eps)
    with torch.no_grad():
        robust = float(((f(Xa).squeeze(-1) > 0).double() * 2 - 1 == t).double().mean())
    return {"clean_accuracy": clean, "pgd_accuracy": robust}
