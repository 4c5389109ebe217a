"""SequenceDataset: (batch, time, features) windows in physical units, splits, scalers, hash, save/load."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from icctrl._io import atomic_write, json_default
from icctrl.data._scaler import Scaler
from icctrl.errors import DataError, InvalidValueError, ShapeError, UnknownNameError

SPLITS = ("train", "val", "test")
# Bump when the on-disk layout changes; files of another format are refused.
FORMAT_VERSION = 1


@dataclass
class SequenceDataset:
    """Windows for sequence models: inputs (n, T, n_in) and targets (n, T, n_out) in physical units."""

    inputs: np.ndarray
    targets: np.ndarray
    traj_id: np.ndarray
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    splits: dict[str, np.ndarray]
    input_scaler: Scaler
    output_scaler: Scaler
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.inputs = np.ascontiguousarray(self.inputs, dtype=np.float64)
        self.targets = np.ascontiguousarray(self.targets, dtype=np.float64)
        self.traj_id = np.ascontiguousarray(self.traj_id, dtype=np.int64)
        self.input_names = tuple(str(s) for s in self.input_names)
        self.output_names = tuple(str(s) for s in self.output_names)
        if self.inputs.ndim != 3 or self.targets.ndim != 3:
            raise ShapeError(
                f"SequenceDataset: inputs and targets must be (n, T, features), got {self.inputs.shape} "
                f"and {self.targets.shape}"
            )
        if self.inputs.shape[:2] != self.targets.shape[:2]:
            raise ShapeError(
                f"SequenceDataset: inputs {self.inputs.shape} and targets {self.targets.shape} "
                "disagree on (n, T)"
            )
        n = self.inputs.shape[0]
        if self.traj_id.shape != (n,):
            raise ShapeError(f"SequenceDataset: traj_id must have shape ({n},), got {self.traj_id.shape}")
        if len(self.input_names) != self.inputs.shape[2]:
            raise ShapeError(
                f"SequenceDataset: {len(self.input_names)} input names {self.input_names} for "
                f"{self.inputs.shape[2]} input features"
            )
        if len(self.output_names) != self.targets.shape[2]:
            raise ShapeError(
                f"SequenceDataset: {len(self.output_names)} output names {self.output_names} for "
                f"{self.targets.shape[2]} output features"
            )
        for what, arr in (("inputs", self.inputs), ("targets", self.targets)):
            if not np.all(np.isfinite(arr)):
                bad = np.argwhere(~np.isfinite(arr))[0].tolist()
                raise InvalidValueError(
                    f"SequenceDataset: {what} must be finite, got {arr[tuple(bad)]} at {bad}"
                )
        self.splits = _check_splits(self.splits, n)
        if self.input_scaler.size != self.inputs.shape[2] or self.output_scaler.size != self.targets.shape[2]:
            raise ShapeError(
                f"SequenceDataset: scaler sizes ({self.input_scaler.size}, {self.output_scaler.size}) do not "
                f"match features ({self.inputs.shape[2]}, {self.targets.shape[2]})"
            )
        self.meta = _canonical(self.meta)

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def window(self) -> int:
        """Time steps per window."""
        return int(self.inputs.shape[1])

    def indices(self, split: str) -> np.ndarray:
        """Window indices of a split ("train", "val", "test") or of everything ("all")."""
        if split == "all":
            return np.arange(len(self))
        if split not in self.splits:
            raise UnknownNameError(f"unknown split {split!r}; known: {', '.join((*SPLITS, 'all'))}")
        return self.splits[split]

    def arrays(self, split: str = "train", scaled: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, targets) of a split, scaled by the train-fitted scalers unless scaled=False."""
        idx = self.indices(split)
        x, y = self.inputs[idx], self.targets[idx]
        if scaled:
            x, y = self.input_scaler.transform(x), self.output_scaler.transform(y)
        return x, y

    def tensors(self, split: str = "train", scaled: bool = True, dtype: Any = None, device: Any = "cpu"):
        """(inputs, targets) of a split as torch tensors (float32 on CPU unless told otherwise)."""
        import torch

        x, y = self.arrays(split, scaled=scaled)
        dtype = torch.float32 if dtype is None else dtype
        return torch.as_tensor(x, dtype=dtype, device=device), torch.as_tensor(y, dtype=dtype, device=device)

    # ------------------------------------------------------------------ identity
    def _header(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "input_names": list(self.input_names),
            "output_names": list(self.output_names),
            "input_scaler": self.input_scaler.to_dict(),
            "output_scaler": self.output_scaler.to_dict(),
            "meta": self.meta,
        }

    def _arrays_to_store(self) -> dict[str, np.ndarray]:
        out = {"inputs": self.inputs, "targets": self.targets, "traj_id": self.traj_id}
        for name in SPLITS:
            out[f"split_{name}"] = self.splits[name]
        return out

    @property
    def content_hash(self) -> str:
        """sha256 over arrays (dtype, shape, little-endian bytes), names, scalers and meta."""
        h = hashlib.sha256()
        for name, arr in sorted(self._arrays_to_store().items()):
            a = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
            h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
            h.update(a.tobytes())
        h.update(json.dumps(self._header(), sort_keys=True, separators=(",", ":")).encode())
        return h.hexdigest()

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write an .npz (no pickles) with a JSON header holding names, scalers, meta and the hash."""
        header = self._header()
        header["content_hash"] = self.content_hash
        arrays = dict(self._arrays_to_store())
        arrays["header"] = np.array(json.dumps(header, sort_keys=True))

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

        return atomic_write(path, write)

    @classmethod
    def load(cls, path: str | Path) -> SequenceDataset:
        """Read a file written by `save`; a missing, corrupt or tampered file raises DataError naming it."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"dataset file {str(path)!r} does not exist")
        try:
            with np.load(path, allow_pickle=False) as z:
                stored = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, io.UnsupportedOperation) as exc:
            raise DataError(f"dataset file {str(path)!r} is corrupt or not an .npz dataset: {exc}") from exc
        needed = {"header", "inputs", "targets", "traj_id", *(f"split_{s}" for s in SPLITS)}
        if not needed <= set(stored):
            raise DataError(f"dataset file {str(path)!r} lacks arrays {sorted(needed - set(stored))}")
        try:
            header = json.loads(str(stored["header"]))
        except (json.JSONDecodeError, TypeError) as exc:
            raise DataError(f"dataset file {str(path)!r} has an unreadable header: {exc}") from exc
        if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION:
            fmt = header.get("format") if isinstance(header, dict) else header
            raise DataError(f"dataset file {str(path)!r} has format {fmt!r}, expected {FORMAT_VERSION}")
        try:
            ds = cls(
                inputs=stored["inputs"],
                targets=stored["targets"],
                traj_id=stored["traj_id"],
                input_names=tuple(header["input_names"]),
                output_names=tuple(header["output_names"]),
                splits={s: stored[f"split_{s}"] for s in SPLITS},
                input_scaler=Scaler.from_dict(header["input_scaler"]),
                output_scaler=Scaler.from_dict(header["output_scaler"]),
                meta=header["meta"],
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise DataError(f"dataset file {str(path)!r} is inconsistent: {exc}") from exc
        if ds.content_hash != header.get("content_hash"):
            raise DataError(
                f"dataset file {str(path)!r}: content hash {ds.content_hash[:12]}… does not match the stored "
                f"{str(header.get('content_hash'))[:12]}… (file modified or corrupt)"
            )
        return ds

    def summary(self) -> str:
        """One line: sizes per split, window, features."""
        sizes = ", ".join(f"{s}={len(self.splits[s])}" for s in SPLITS)
        return (
            f"SequenceDataset({len(self)} windows of {self.window} steps; {sizes}; "
            f"inputs {self.input_names} -> outputs {self.output_names})"
        )

    def __repr__(self) -> str:
        return self.summary()


def _check_splits(splits: Any, n: int) -> dict[str, np.ndarray]:
    """Every split present, integer indices in range, no window in two splits."""
    if not isinstance(splits, dict) or set(splits) != set(SPLITS):
        keys = sorted(splits) if isinstance(splits, dict) else splits
        raise DataError(f"SequenceDataset: splits must have exactly keys {SPLITS}, got {keys!r}")
    out: dict[str, np.ndarray] = {}
    seen = np.zeros(n, dtype=bool)
    for name in SPLITS:
        idx = np.asarray(splits[name])
        if idx.size == 0:
            idx = idx.reshape(0).astype(np.int64)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise DataError(
                f"SequenceDataset: split {name!r} must be 1-D integer indices, got {idx.dtype} {idx.shape}"
            )
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise DataError(
                f"SequenceDataset: split {name!r} has indices outside [0, {n}): {idx.min()}..{idx.max()}"
            )
        if np.any(seen[idx]) or len(np.unique(idx)) != len(idx):
            raise DataError(f"SequenceDataset: split {name!r} repeats windows or overlaps another split")
        seen[idx] = True
        out[name] = np.ascontiguousarray(idx, dtype=np.int64)
    return out


def _canonical(meta: Any) -> dict:
    """Meta as plain JSON types (so a saved and reloaded dataset hashes the same)."""
    if not isinstance(meta, dict):
        raise DataError(f"SequenceDataset: meta must be a dict, got {type(meta).__name__}")
    try:
        return json.loads(json.dumps(meta, sort_keys=True, default=json_default))
    except (TypeError, ValueError) as exc:
        raise DataError(f"SequenceDataset: meta must be JSON-able: {exc}") from exc
