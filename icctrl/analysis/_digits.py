"""The space-folds study on offline data: ReLU MLPs of several depths and widths trained on scikit-learn's 8×8
digits, with χ along straight paths between test images of one class, trained against the same nets at init."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from icctrl.analysis._folds import fold_summary, sample_pairs
from icctrl.errors import InvalidValueError


def digits_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): the 1797 digits (shipped with scikit-learn), pixels in [0, 1], 75/25."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError("the digits study needs scikit-learn: pip install 'icctrl[analysis]'") from exc

    d = load_digits()
    xtr, xte, ytr, yte = train_test_split(d.data / 16.0, d.target, test_size=0.25, stratify=d.target,
                                          random_state=seed)
    return xtr, ytr, xte, yte


def relu_mlp(d_in: int, n_out: int, width: int, depth: int) -> nn.Sequential:
    """`depth` hidden Linear+ReLU layers of `width` units and a linear readout."""
    if depth < 1 or width < 1:
        raise InvalidValueError(f"an MLP needs depth >= 1 and width >= 1, got depth={depth}, width={width}")
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(d_in if i == 0 else width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, n_out))


def train_classifier(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int = 60, lr: float = 1e-3,
                     batch_size: int = 64, seed: int = 0) -> nn.Module:
    """Adam on the cross-entropy, shuffled mini-batches."""
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(batch_size):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model


def digits_fold_study(depths: Sequence[int] = (1, 2, 3, 4, 6), widths: Sequence[int] = (16, 32, 64, 128),
                      seeds: Sequence[int] = (0, 1, 2), n_paths: int = 100, n_points: int = 1001,
                      epochs: int = 60, verbose: bool = True) -> dict:
    """χ of trained and untrained MLPs on the digits: one row per (depth, width, seed)."""
    xtr, ytr, xte, yte = digits_data()
    x0, x1 = sample_pairs(xte, yte, n_pairs=n_paths, seed=0)
    rows = []
    grid = [(d, w, s) for d in depths for w in widths for s in seeds]
    for depth, width, seed in tqdm(grid, desc="digits folds", disable=not verbose):
        torch.manual_seed(seed)
        model = relu_mlp(xtr.shape[1], 10, width, depth)
        init = fold_summary(model, x0, x1, n_points)
        train_classifier(model, xtr, ytr, epochs=epochs, seed=seed)
        with torch.no_grad():
            acc = float((model(torch.as_tensor(xte, dtype=torch.float32)).argmax(1).numpy() == yte).mean())
        trained = fold_summary(model, x0, x1, n_points)
        rows.append({"depth": depth, "width": width, "seed": seed, "test_accuracy": acc,
                     "chi_mean": trained.mean, "chi_max": trained.max, "share_folding": trained.share_folding,
                     "init_chi_mean": init.mean, "init_chi_max": init.max, "init_share_folding": init.share_folding})
    return {"data": "scikit-learn digits (8x8), 75/25 split", "paths": "straight, between test images of one class",
            "n_paths": n_paths, "n_points": n_points, "epochs": epochs, "rows": rows}
