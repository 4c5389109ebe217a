"""Fixtures for the training tests: a private dataset cache and a tiny synthetic sequence dataset."""

from __future__ import annotations

import numpy as np
import pytest

from icctrl.data import Scaler, SequenceDataset


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    """Every test caches datasets in its own temporary folder."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("ICCTRL_CACHE_DIR", str(folder))
    return folder


def make_dataset(n: int = 96, T: int = 4, seed: int = 0) -> SequenceDataset:
    """Windows of a smooth map in physical-looking units: 4 inputs (2 'states', 2 'inputs') → 2 outputs."""
    rng = np.random.default_rng(seed)
    x0 = rng.uniform([0.5, 350.0], [3.5, 450.0], size=(n, 2))
    u = rng.uniform([1.0, -1e5], [7.0, 1e5], size=(n, 2))
    inputs = np.repeat(np.concatenate([x0, u], axis=1)[:, None, :], T, axis=1)
    frac = (np.arange(1, T + 1) / T)[None, :, None]
    drift = np.stack([0.3 * (u[:, 0] - x0[:, 0]), 1e-4 * u[:, 1] - 0.05 * (x0[:, 1] - 400.0)], axis=1)
    targets = x0[:, None, :] + frac * drift[:, None, :] + 0.01 * np.sin(inputs[..., :2])
    idx = rng.permutation(n)
    n_val = n_test = n // 6
    splits = {
        "train": np.sort(idx[n_val + n_test :]),
        "val": np.sort(idx[:n_val]),
        "test": np.sort(idx[n_val : n_val + n_test]),
    }
    tr = splits["train"]
    return SequenceDataset(
        inputs,
        targets,
        np.arange(n),
        ("C_A", "T", "C_A0", "Q"),
        ("C_A", "T"),
        splits,
        Scaler.fit(inputs[tr]),
        Scaler.fit(targets[tr]),
        {"source": "synthetic", "seed": seed},
    )


@pytest.fixture
def tiny_dataset() -> SequenceDataset:
    return make_dataset()


@pytest.fixture
def dataset_factory():
    """`make_dataset(n, T, seed)` for tests that need several datasets."""
    return make_dataset
