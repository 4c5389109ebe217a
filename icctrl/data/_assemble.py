"""Shared last steps of every dataset: split, fit scalers on the train split, add training-target noise."""

from __future__ import annotations

from typing import Any

import numpy as np

from icctrl._version import __version__
from icctrl.data._dataset import SequenceDataset
from icctrl.data._scaler import Scaler
from icctrl.errors import DataError, InvalidValueError


def check_fractions(val_frac: Any, test_frac: Any) -> tuple[float, float]:
    """Validation and test fractions in [0, 1) with room left for training."""
    out = []
    for what, v in (("val_frac", val_frac), ("test_frac", test_frac)):
        try:
            f = float(v)
        except (TypeError, ValueError) as exc:
            raise InvalidValueError(f"{what} must be a number in [0, 1), got {v!r}") from exc
        if not (0.0 <= f < 1.0):
            raise InvalidValueError(f"{what} must be in [0, 1), got {v!r}")
        out.append(f)
    if out[0] + out[1] >= 1.0:
        raise InvalidValueError(f"val_frac + test_frac must be < 1, got {out[0]} + {out[1]}")
    return out[0], out[1]


def check_noise(noise_std: Any) -> float:
    """A finite, non-negative noise std (scaled units)."""
    try:
        s = float(noise_std)
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(f"noise_std must be a number >= 0, got {noise_std!r}") from exc
    if not np.isfinite(s) or s < 0:
        raise InvalidValueError(f"noise_std must be finite and >= 0, got {noise_std!r}")
    return s


def split_counts(n: int, val_frac: float, test_frac: float) -> tuple[int, int, int]:
    """(train, val, test) group counts: rounded fractions, at least one per non-zero fraction when n >= 3."""
    n_val = int(round(val_frac * n))
    n_test = int(round(test_frac * n))
    if n >= 3:
        n_val = max(n_val, 1 if val_frac > 0 else 0)
        n_test = max(n_test, 1 if test_frac > 0 else 0)
    n_train = n - n_val - n_test
    if n_train < 1:
        raise DataError(
            f"cannot split {n} trajectories/blocks into train/val/test with val_frac={val_frac}, "
            f"test_frac={test_frac}: no training data would be left"
        )
    return n_train, n_val, n_test


def split_by_group(
    traj_id: np.ndarray, val_frac: float, test_frac: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Window indices per split; whole trajectories go to one split, drawn at random."""
    groups = np.unique(traj_id)
    n_train, n_val, _ = split_counts(len(groups), val_frac, test_frac)
    order = rng.permutation(groups)
    cut = (n_train, n_train + n_val)
    parts = {"train": order[: cut[0]], "val": order[cut[0] : cut[1]], "test": order[cut[1] :]}
    return {k: np.flatnonzero(np.isin(traj_id, np.sort(v))) for k, v in parts.items()}


def finish(
    inputs: np.ndarray,
    targets: np.ndarray,
    traj_id: np.ndarray,
    splits: dict[str, np.ndarray],
    input_names: tuple[str, ...],
    output_names: tuple[str, ...],
    meta: dict[str, Any],
    noise_std: float,
    noise_rng: np.random.Generator,
) -> SequenceDataset:
    """Fit scalers on the clean train split, then add N(0, noise_std * scale) to the train targets only."""
    train = splits["train"]
    if len(train) == 0:
        raise DataError("no training windows: the train split is empty")
    input_scaler = Scaler.fit(inputs[train])
    output_scaler = Scaler.fit(targets[train])
    targets = np.array(targets, dtype=float)
    if noise_std > 0:
        noise = noise_rng.standard_normal(targets[train].shape) * (noise_std * output_scaler.scale)
        targets[train] += noise
    sizes = {k: int(len(v)) for k, v in splits.items()}
    meta = {
        **meta,
        "noise_std": noise_std,
        "noise_on": "train targets" if noise_std > 0 else None,
        "n_windows": int(len(inputs)),
        "sizes": sizes,
        "version": __version__,
    }
    return SequenceDataset(
        inputs=inputs,
        targets=targets,
        traj_id=traj_id,
        input_names=input_names,
        output_names=output_names,
        splits=splits,
        input_scaler=input_scaler,
        output_scaler=output_scaler,
        meta=meta,
    )
