"""Per-feature affine scaling z = (v - offset) / scale, usable on numpy arrays and torch tensors."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from icctrl.errors import DataError, InvalidValueError, ShapeError

# A feature whose spread is below this fraction of (1 + |mean|) counts as constant and gets scale 1.
STD_FLOOR_REL = 1e-12


@dataclass
class Scaler:
    """Affine map per feature (last axis); `scale` is positive so monotonicity survives the map."""

    offset: np.ndarray
    scale: np.ndarray

    def __post_init__(self) -> None:
        self.offset = _as_vector(self.offset, "offset")
        self.scale = _as_vector(self.scale, "scale")
        if self.offset.shape != self.scale.shape:
            raise ShapeError(
                f"Scaler: offset shape {self.offset.shape} and scale shape {self.scale.shape} differ"
            )
        if np.any(self.scale <= 0):
            raise InvalidValueError(f"Scaler: scale must be > 0, got {self.scale.tolist()}")

    @property
    def size(self) -> int:
        """Number of features."""
        return int(self.offset.shape[0])

    @classmethod
    def fit(cls, values: Any, axis: int | tuple[int, ...] | None = None) -> Scaler:
        """Mean and std over every axis but the last (or `axis`); constant features get scale 1."""
        v = np.asarray(values, dtype=float)
        if v.ndim < 1 or v.shape[-1] == 0:
            raise ShapeError(f"Scaler.fit: values need a feature axis, got shape {v.shape}")
        if v.size == 0:
            raise ShapeError(f"Scaler.fit: no samples to fit, got shape {v.shape}")
        if not np.all(np.isfinite(v)):
            bad = np.argwhere(~np.isfinite(v))[0].tolist()
            raise InvalidValueError(f"Scaler.fit: values must be finite, got {v[tuple(bad)]} at index {bad}")
        if axis is not None:
            reduced = {a % v.ndim for a in np.atleast_1d(axis).tolist()}
            kept = [a for a in range(v.ndim) if a not in reduced]
            if len(kept) != 1:
                raise ShapeError(f"Scaler.fit: axis={axis!r} must leave exactly one feature axis of {v.shape}")
            v = np.moveaxis(v, kept[0], -1)
        flat = v.reshape(-1, v.shape[-1])
        # math.fsum: exactly rounded sums, so the statistics (and dataset hashes) never depend on memory layout
        mean = np.array([math.fsum(col) / len(col) for col in flat.T])
        std = np.sqrt([math.fsum(d * d) / len(d) for d in (flat - mean).T])
        floor = STD_FLOOR_REL * (1.0 + np.abs(mean))
        scale = np.where(std > floor, std, 1.0)
        return cls(offset=mean, scale=scale)

    def _params_like(self, v: Any) -> tuple[Any, Any]:
        """Offset and scale as the same kind (numpy or torch, dtype, device) as `v`."""
        if type(v).__module__.startswith("torch"):
            import torch

            dtype = v.dtype if v.is_floating_point() else torch.get_default_dtype()
            return (
                torch.as_tensor(self.offset, dtype=dtype, device=v.device),
                torch.as_tensor(self.scale, dtype=dtype, device=v.device),
            )
        return self.offset, self.scale

    def _check_features(self, v: Any) -> Any:
        if not type(v).__module__.startswith("torch"):
            v = np.asarray(v, dtype=float)
        if v.ndim < 1 or v.shape[-1] != self.size:
            raise ShapeError(f"Scaler: last axis must have {self.size} features, got shape {tuple(v.shape)}")
        return v

    def transform(self, v: Any) -> Any:
        """Physical units -> scaled units, broadcasting over the last axis."""
        v = self._check_features(v)
        offset, scale = self._params_like(v)
        return (v - offset) / scale

    def inverse(self, z: Any) -> Any:
        """Scaled units -> physical units, broadcasting over the last axis."""
        z = self._check_features(z)
        offset, scale = self._params_like(z)
        return z * scale + offset

    def to_dict(self) -> dict[str, list[float]]:
        """Plain JSON-able form (travels inside checkpoints)."""
        return {"offset": self.offset.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: Any) -> Scaler:
        """Rebuild from `to_dict` output; a malformed dict raises DataError naming it."""
        if not isinstance(d, dict) or set(d) != {"offset", "scale"}:
            raise DataError(f"Scaler.from_dict: expected a dict with keys 'offset' and 'scale', got {d!r}")
        return cls(offset=d["offset"], scale=d["scale"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Scaler):
            return NotImplemented
        return np.array_equal(self.offset, other.offset) and np.array_equal(self.scale, other.scale)


def _as_vector(v: Any, what: str) -> np.ndarray:
    try:
        arr = np.array(v, dtype=float).reshape(-1) if np.ndim(v) == 0 else np.array(v, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(f"Scaler: {what} must be numeric, got {v!r}") from exc
    if arr.ndim != 1:
        raise ShapeError(f"Scaler: {what} must be 1-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidValueError(f"Scaler: {what} must be finite, got {arr.tolist()}")
    return arr
