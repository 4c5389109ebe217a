"""Offline data of the evaluation: the two-arm spirals of the Net-Trim supplement and scikit-learn's digits."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from icctrl.errors import InvalidValueError


def spirals(n: int = 2000, *, noise: float = 0.05, turns: float = 1.5, seed: int = 0):
    """Two interleaved Archimedean spirals in the plane: X (n, 2) float32, labels (n,) in {0, 1}."""
    if n < 2:
        raise InvalidValueError(f"n must be >= 2, got {n!r}")
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(0, 1, n)) * turns * 2 * np.pi
    label = rng.integers(0, 2, n)
    r = t / (turns * 2 * np.pi)
    ang = t + np.pi * label
    X = np.stack([r * np.cos(ang), r * np.sin(ang)], 1) + noise * rng.standard_normal((n, 2))
    return X.astype(np.float32), label.astype(np.int64)


def digits(seed: int = 0, test_fraction: float = 0.3):
    """scikit-learn's bundled 8×8 digits (no download), scaled to [0, 1] and split: (Xtr, ytr, Xte, yte)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    X, y = (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)
    idx = np.random.default_rng(seed).permutation(len(X))
    n_te = int(round(test_fraction * len(X)))
    te, tr = idx[:n_te], idx[n_te:]
    return X[tr], y[tr], X[te], y[te]


def mlp(sizes: list[int], seed: int = 0) -> nn.Sequential:
    """Linear-ReLU-…-Linear network of the given widths."""
    torch.manual_seed(seed)
    mods: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


def train_classifier(model: nn.Sequential, X, y, *, epochs: int = 200, lr: float = 3e-3, batch_size: int = 128,
                     weight_decay: float = 1e-4, seed: int = 0) -> nn.Sequential:
    """Adam on cross-entropy; returns the trained model (in place)."""
    torch.manual_seed(seed)
    X, y = torch.as_tensor(X), torch.as_tensor(y).long()
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        for idx in torch.randperm(len(X)).split(batch_size):
            opt.zero_grad()
            nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
    return model


def accuracy(model: nn.Module, X, y) -> float:
    """Fraction of correct arg-max predictions."""
    X = torch.as_tensor(X).to(next(model.parameters()).dtype)
    with torch.no_grad():
        return float((model(X).argmax(1) == torch.as_tensor(y)).float().mean())
