"""Input checks and numpy/torch round trips shared by the OT estimators and metrics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from icctrl.errors import InvalidValueError, ShapeError, UnknownNameError


@dataclass(frozen=True)
class ArrayKind:
    """How an input array arrived, so the output can go back in the same family, shape and dtype."""

    is_torch: bool
    shape: tuple[int, ...]
    dtype: object
    device: torch.device | None


def resolve_device(device: str | torch.device) -> torch.device:
    """Map "auto" to CUDA when available (else CPU); check any other name."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise UnknownNameError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda[:n]'") from exc


def to_points(
    a, name: str, dim: int | None = None, device: torch.device | None = None, dtype=torch.float32
) -> tuple[torch.Tensor, ArrayKind]:
    """Check a (..., dim) array of finite points and return it as an (n, dim) tensor plus its kind."""
    if isinstance(a, torch.Tensor):
        kind = ArrayKind(True, tuple(a.shape), a.dtype, a.device)
        t = a.detach()
    else:
        try:
            arr = np.asarray(a)
        except (TypeError, ValueError) as exc:
            raise InvalidValueError(f"{name} is not an array: {type(a).__name__}") from exc
        if arr.dtype.kind not in "fiub":
            raise InvalidValueError(f"{name} must be numeric, got dtype {arr.dtype}")
        kind = ArrayKind(False, tuple(arr.shape), arr.dtype if arr.dtype.kind == "f" else np.float64, None)
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.ndim == 0:
        raise ShapeError(f"{name} must have shape (n, d), got a scalar")
    d = t.shape[-1]
    if dim is not None and d != dim:
        raise ShapeError(f"{name} has dimension {d} in its last axis, expected {dim} (shape {tuple(t.shape)})")
    t = t.reshape(-1, d) if t.ndim != 2 else t
    if t.shape[0] == 0:
        raise ShapeError(f"{name} is empty (shape {kind.shape})")
    t = t.to(device=device or torch.device("cpu"), dtype=dtype)
    if not torch.isfinite(t).all():
        bad = int((~torch.isfinite(t)).any(dim=1).nonzero()[0, 0])
        raise InvalidValueError(f"{name} has non-finite values (first at row {bad}: {t[bad].tolist()[:6]})")
    return t, kind


def from_points(t: torch.Tensor, kind: ArrayKind):
    """Return an (n, d) tensor in the family, shape and dtype recorded in `kind`."""
    t = t.detach().reshape(kind.shape[:-1] + (t.shape[-1],))
    if kind.is_torch:
        return t.to(device=kind.device, dtype=kind.dtype)
    return t.cpu().numpy().astype(kind.dtype, copy=False)


def as_float64(a, name: str, dim: int | None = None) -> np.ndarray:
    """Check a (n, d) array of finite values and return it as float64 numpy (metrics work in float64)."""
    t, _ = to_points(a, name, dim=dim, dtype=torch.float64)
    return t.numpy()
