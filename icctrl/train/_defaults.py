"""The shipped default models (icctrl/assets/): how each is trained, and loading them with a hash check.

`examples/train_defaults.py` calls `train_default` for each entry of DEFAULTS; the weights are bit-identical
when re-run on the same machine and torch version (seeded, one CPU thread, timing left out of the file).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from icctrl._io import write_json
from icctrl._version import __version__
from icctrl.errors import CheckpointError, UnknownNameError
from icctrl.train._config import TrainConfig

ASSETS = Path(__file__).resolve().parent.parent / "assets"
_TIMING = ("train_seconds", "samples_per_second")


@dataclass(frozen=True)
class DefaultSpec:
    """Recipe of one shipped model: data, architecture, training settings, certificate question."""

    plant: str
    name: str
    model: str
    layout: str
    window: int
    hidden: int | None
    layers: int | None
    model_kw: dict = field(default_factory=dict)
    data_kw: dict = field(default_factory=dict)
    config_kw: dict = field(default_factory=dict)
    #: "state": targets are the plant states; "lyapunov": targets are V(x_(k+1)) of the plant.
    target: str = "state"
    certify_wrt: tuple[int, ...] | None = None
    purpose: str = ""


_ONE_STEP = {"epochs": 80, "lr": 1e-2, "batch_size": 64, "patience": 20, "lr_final": 0.02, "seed": 0}
DEFAULTS: dict[tuple[str, str], DefaultSpec] = {
    ("cstr", s.name): s
    for s in (
        DefaultSpec(
            "cstr",
            "iclstm",
            "iclstm",
            "one_step",
            5,
            64,
            2,
            # softplus weights: with projected ones the IC-LSTM's gate products explode outside the training
            # region (T = 4e7 K predicted from T_k = 300 K), which the MPC defaults must survive
            {"weights": "softplus"},
            purpose="the papers' IC-LSTM 2x64 one-period model, all inputs doubled, softplus weights, affine path "
            "started at the least-squares fit; otherwise trained with train(name, dataset) defaults",
        ),
        DefaultSpec(
            "cstr",
            "iclrnn",
            "iclrnn",
            "one_step",
            5,
            64,
            2,
            purpose="ICLRNN 2x64 one-period model (jointly convex, Lipschitz), affine path started at the "
            "least-squares fit; trained with train(name, dataset) defaults",
        ),
        DefaultSpec(
            "cstr",
            "linear",
            "linear",
            "one_step",
            5,
            None,
            None,
            purpose="the affine (ARX) least-squares baseline, closed form; the linear-MPC controller's model",
        ),
        DefaultSpec(
            "cstr",
            "lstm",
            "lstm",
            "one_step",
            5,
            32,
            2,
            config_kw={**_ONE_STEP, "lr": 3e-3},
            purpose="unconstrained LSTM baseline, same data",
        ),
        DefaultSpec(
            "cstr",
            "icrnn_cost",
            "icrnn",
            "multi_step",
            10,
            32,
            2,
            {"activation": "relu", "doubled": [2, 3], "affine": 0, "weights": "softplus"},
            config_kw={**_ONE_STEP, "epochs": 120},
            target="lyapunov",
            certify_wrt=(2, 3),
            purpose="convex-in-U predictor of V(x_(k+1)) over the MPC horizon (N = 10), inputs "
            "[x_0, u_k], doubled on u only",
        ),
        DefaultSpec(
            "cstr",
            "picnn_cost",
            "picnn",
            "horizon_flat",
            10,
            64,
            2,
            {"activation": "softplus", "convex_inputs": list(range(2, 22))},
            config_kw={**_ONE_STEP, "epochs": 150, "lr": 3e-3, "patience": 30},
            target="lyapunov",
            certify_wrt=tuple(range(2, 22)),
            purpose="the certified-convex MPC model: V(x_(k+1)), k = 1..10, from [x_0, u_0..u_9] in one step; "
            "convex in the 20 planned inputs (softplus: smooth for Newton solvers), free in x_0",
        ),
    )
}


def default_names(plant: str = "cstr") -> list[str]:
    """Names of the shipped defaults of a plant."""
    return [n for p, n in DEFAULTS if p == plant]


def spec(plant: str, name: str) -> DefaultSpec:
    """The recipe of a shipped default; UnknownNameError lists the known ones."""
    try:
        return DEFAULTS[(str(plant).lower(), str(name).lower())]
    except KeyError:
        known = ", ".join(f"{p}/{n}" for p, n in DEFAULTS)
        raise UnknownNameError(f"no shipped default {plant!r}/{name!r}; known: {known}") from None


def asset_paths(plant: str, name: str, folder: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """(checkpoint, JSON metadata) paths of a shipped default."""
    s = spec(plant, name)
    base = Path(folder) if folder is not None else ASSETS
    return base / f"{s.plant}_{s.name}.pt", base / f"{s.plant}_{s.name}.json"


def load_default(plant: str = "cstr", name: str = "iclstm", folder: str | os.PathLike | None = None):
    """A shipped default model, ready (Scaled, eval mode, names set); its file is checked against the sha256
    recorded in its JSON metadata, so a damaged asset is refused (CheckpointError)."""
    from icctrl.train._checkpoint import load

    pt, meta = asset_paths(plant, name, folder)
    if not pt.is_file():
        raise CheckpointError(
            f"shipped default {plant}/{name} is missing ({pt}); run examples/train_defaults.py"
        )
    if meta.is_file():
        try:
            want = json.loads(meta.read_text()).get("sha256")
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"metadata {str(meta)!r} of {plant}/{name} is unreadable: {exc}") from None
        got = sha256(pt)
        if want and got != want:
            raise CheckpointError(
                f"shipped default {str(pt)!r} has sha256 {got[:12]}…, its metadata says "
                f"{str(want)[:12]}… (file damaged or replaced)"
            )
    return load(pt)


def default_dataset(s: DefaultSpec):
    """The dataset a default is trained on (cached by icctrl.data)."""
    if s.plant != "cstr":
        raise UnknownNameError(f"no dataset recipe for plant {s.plant!r}")
    from icctrl.data import cstr_dataset

    kw: dict[str, Any] = {"window": s.window, **s.data_kw}
    if s.target == "lyapunov":
        from plants import CSTR

        plant = CSTR()
        kw.update(plant=plant, target_fn=plant.lyapunov, target_names=["V"])
    if s.layout == "horizon_flat":
        from icctrl.data import horizon_flat

        return horizon_flat(cstr_dataset(layout="multi_step", **kw), nx=2)
    return cstr_dataset(layout=s.layout, **kw)


def train_default(
    plant: str,
    name: str,
    *,
    folder: str | os.PathLike | None = None,
    quiet: bool = True,
    epochs: int | None = None,
):
    """Train one shipped default from its recipe and write `<plant>_<name>.pt` and `.json` into `folder`."""
    from icctrl.train._trainer import train

    s = spec(plant, name)
    ds = default_dataset(s)
    cfg_kw = {
        **s.config_kw,
        "quiet": quiet,
        "device": "cpu",
        "threads": 1,
        "certify_wrt": list(s.certify_wrt) if s.certify_wrt else None,
        "tags": {"plant": s.plant, "default": s.name, "layout": s.layout, "target": s.target},
    }
    if epochs is not None:
        cfg_kw["epochs"] = epochs
    size = {k: v for k, v in (("hidden", s.hidden), ("layers", s.layers)) if v is not None}
    result = train(s.model, ds, TrainConfig(**cfg_kw), **size, **s.model_kw)
    timing = {k: result.metrics.pop(k, None) for k in _TIMING}
    timing["epoch_seconds"] = [h.pop("seconds", None) for h in result.history]
    pt, meta = asset_paths(plant, name, folder)
    result.save(pt)
    pt.chmod(0o644)  # package data: readable by everyone
    write_json(
        meta,
        {
            "plant": s.plant,
            "name": s.name,
            "file": pt.name,
            "sha256": sha256(pt),
            "size_bytes": pt.stat().st_size,
            "icctrl_version": __version__,
            "recipe": asdict(s),
            "metrics": result.metrics,
            "timing": timing,
            "certificate": result.certificate.to_dict(),
            "certificate_per_step": result.extra.get("certificate_per_step"),
            "dataset": {k: result.dataset[k] for k in ("hash", "sizes", "input_names", "output_names")},
            "command": "python examples/train_defaults.py",
        },
    )
    meta.chmod(0o644)
    return result


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
