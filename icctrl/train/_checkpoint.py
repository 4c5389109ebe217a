"""Checkpoints: one torch file of tensors and plain values only, read back with `weights_only=True`.

A checkpoint holds the weights (state_dict of the Scaled wrapper), the architecture config, the scalers,
input/output names, the training config, the dataset hash and meta, metrics, the certificate, the training
region (where the model is valid), the package version and a format version. Nothing in it is an arbitrary
Python object, so the restricted unpickler of `torch.load(..., weights_only=True)` reads it; anything else
(a pickle that would run code, a truncated or corrupt file, another format) is refused with CheckpointError
before any code of the file runs.
"""

from __future__ import annotations

import io
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from icctrl._io import atomic_write, json_default
from icctrl._version import __version__
from icctrl.errors import CheckpointError, IcctrlError

FORMAT = "icctrl.checkpoint"
STATE_FORMAT = "icctrl.train_state"
FORMAT_VERSION = 1
_REQUIRED = (
    "format",
    "format_version",
    "icctrl_version",
    "state_dict",
    "config",
    "scalers",
    "input_names",
    "output_names",
    "train_config",
    "dataset",
    "metrics",
    "certificate",
)


def plain(obj: Any) -> Any:
    """A JSON round trip: only dicts, lists, str, numbers, bools and None survive (safe to unpickle)."""
    try:
        return json.loads(json.dumps(obj, default=json_default, allow_nan=True))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint metadata is not plain data: {exc}") from exc


def training_region(ds) -> dict | None:
    """The plain-data training region of a dataset (box + k-NN test, see `icctrl.data.TrainingRegion`), or None
    when the dataset does not say which inputs are states; old checkpoints without one still load."""
    from icctrl.data import TrainingRegion
    from icctrl.errors import DataError

    try:
        return TrainingRegion.from_dataset(ds).to_dict()
    except DataError:
        return None


def make_checkpoint(
    model, *, train_config: dict, dataset: dict, metrics: dict, certificate: dict, extra: dict | None = None
) -> dict:
    """The checkpoint dict of a trained Scaled model (tensors on the CPU, metadata as plain values)."""
    from icctrl.nn import Scaled

    if not isinstance(model, Scaled):
        raise CheckpointError(
            f"a checkpoint stores a Scaled model (physical units), got {type(model).__name__}"
        )
    state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    scalers = {
        "input": {"offset": model.in_offset.tolist(), "scale": model.in_scale.tolist()},
        "output": {"offset": model.out_offset.tolist(), "scale": model.out_scale.tolist()},
    }
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "icctrl_version": __version__,
        "torch_version": str(torch.__version__),
        "config": model.inner_config,
        "scalers": scalers,
        "input_names": list(model.input_names or ()),
        "output_names": list(model.output_names or ()),
        "train_config": train_config,
        "dataset": dataset,
        "metrics": metrics,
        "certificate": certificate,
        **(extra or {}),
    }
    # one JSON round trip for all metadata: the pickle then depends on the values only, not on which
    # equal strings happened to be one object in memory (pickle memoizes by identity)
    ckpt = {"state_dict": state, **plain(meta)}
    return ckpt


def save_checkpoint(path: str | os.PathLike, ckpt: dict) -> Path:
    """Write a checkpoint dict atomically (temp file + rename)."""

    buf = io.BytesIO()
    torch.save(ckpt, buf)  # in memory: inner archive names then do not depend on the temporary file name
    data = buf.getvalue()

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    return atomic_write(path, write)


def read_file(path: str | os.PathLike, what: str = "checkpoint") -> dict:
    """`torch.load(weights_only=True)` of a file; every failure becomes CheckpointError naming the file."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{what} file {str(p)!r} does not exist")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{what} file {str(p)!r} cannot be read: {exc}") from exc
    if not data:
        raise CheckpointError(f"{what} file {str(p)!r} is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols before refusing or reading
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # the unpickler raises many types; none of them may escape as a traceback
        msg = _reason(exc)
        raise CheckpointError(
            f"{what} file {str(p)!r} was refused: corrupt, truncated or holding objects other than "
            f"tensors and plain data ({type(exc).__name__}: {msg[:200]})"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{what} file {str(p)!r} holds a {type(obj).__name__}, not an icctrl {what}")
    return obj


def _reason(exc: BaseException) -> str:
    """The informative line of a loader error (torch's weights-only message puts it mid-text)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if "WeightsUnpickler error" in ln:
            return ln.split("WeightsUnpickler error:", 1)[-1].strip().split(". Please use")[0]
    return lines[0] if lines else type(exc).__name__


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Read and validate a model checkpoint (format, version, keys, finite tensors)."""
    ckpt = read_file(path)
    p = str(path)
    if ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{p!r} is not an icctrl model checkpoint (format={ckpt.get('format')!r})")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{p!r} has checkpoint format version {ckpt.get('format_version')!r}; this icctrl "
            f"({__version__}) reads version {FORMAT_VERSION}"
        )
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"{p!r} lacks the checkpoint entries {missing}")
    state = ckpt["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{p!r}: state_dict must map names to tensors")
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{p!r}: non-finite weights in {bad[:5]}")
    for key in ("config", "scalers", "train_config", "dataset", "metrics", "certificate"):
        if not isinstance(ckpt[key], dict):
            raise CheckpointError(f"{p!r}: entry {key!r} must be a dict, got {type(ckpt[key]).__name__}")
    return ckpt


def model_from_checkpoint(ckpt: dict, source: str = "checkpoint"):
    """Rebuild the Scaled model of a validated checkpoint dict, in eval mode with names and info set."""
    from icctrl.nn import Scaled, from_config

    try:
        inner = from_config(ckpt["config"])
        sc = ckpt["scalers"]
        model = Scaled(
            inner, sc["input"]["offset"], sc["input"]["scale"], sc["output"]["offset"], sc["output"]["scale"]
        )
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except (IcctrlError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__  # all lines: torch names the keys after the first
        raise CheckpointError(
            f"{source!r}: cannot rebuild the model ({type(exc).__name__}: {msg[:300]})"
        ) from None
    names_in, names_out = ckpt["input_names"], ckpt["output_names"]
    if names_in and len(names_in) != model.n_in or names_out and len(names_out) != model.n_out:
        raise CheckpointError(f"{source!r}: input/output names {names_in}/{names_out} do not fit the model")
    model.input_names = tuple(names_in) or None
    model.output_names = tuple(names_out) or None
    inner.input_names, inner.output_names = model.input_names, model.output_names
    model.info = {k: v for k, v in ckpt.items() if k != "state_dict"}
    model.certificate_dict = ckpt["certificate"]
    return model.eval()


def load(path: str | os.PathLike):
    """The ready model of a checkpoint: Scaled wrapper (physical units), eval mode, names set.

    Raises CheckpointError for a missing, corrupt, truncated, wrong-version or unsafe file; nothing in the
    file is executed (torch.load with weights_only=True only)."""
    return model_from_checkpoint(read_checkpoint(path), str(path))


def checkpoint_info(path: str | os.PathLike) -> dict:
    """The metadata of a checkpoint without building the model (metrics, certificate, configs)."""
    ckpt = read_checkpoint(path)
    return {k: v for k, v in ckpt.items() if k != "state_dict"}


def finite_or_none(v: float) -> float | None:
    """JSON-friendly float: None for inf/NaN."""
    return float(v) if math.isfinite(v) else None
