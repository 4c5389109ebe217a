"""The three learned converter models (IC-LSTM, ICLRNN, LSTM), trained at first use and cached on disk."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from icctrl.errors import UnknownNameError
from icctrl.pv._data import pv_dataset

PV_MODELS = ("iclstm", "iclrnn", "lstm")
# softplus for the input-convex models: ReLU kinks stall Ipopt (ARCHITECTURE.md, trap 3)
ACTIVATION = {"iclstm": "softplus", "iclrnn": "softplus", "lstm": None}


@dataclass(frozen=True)
class ModelSpec:
    """Size and training budget of the PV models (small on purpose: real time on a CPU)."""

    hidden: int = 16
    layers: int = 1
    epochs: int = 40
    n_traj: int = 160
    steps: int = 40
    window: int = 2
    seed: int = 0


QUICK = ModelSpec(hidden=8, epochs=3, n_traj=24, steps=12)


def pv_cache_dir() -> Path:
    """`$ICCTRL_CACHE_DIR/pv`, else ~/.cache/icctrl/pv."""
    env = os.environ.get("ICCTRL_CACHE_DIR")
    return (Path(env).expanduser() if env else Path.home() / ".cache" / "icctrl") / "pv"


def _key(name: str, spec: ModelSpec, plant) -> str:
    blob = json.dumps({"name": name, "spec": spec.__dict__, "plant": [plant.module, plant.n_series,
                       plant.n_parallel, plant.C, plant.L, plant.v_b, plant.dt], "v": 1}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def pv_models(plant, names=PV_MODELS, spec: ModelSpec = ModelSpec(), cache: bool = True,
              quiet: bool = True) -> dict:
    """{name: model in physical units} mapping [v_pv, i_s, u, G, T_c] (window sub-steps) to (v_pv, i_s).

    Trained with `icctrl.train.train` on `pv_dataset` and saved as checkpoints under `pv_cache_dir()`;
    a cached checkpoint with the same spec and plant is loaded instead (weights only).
    """
    from icctrl.train import AFFINE_START, TrainConfig, load, train

    bad = [n for n in names if n not in PV_MODELS]
    if bad:
        raise UnknownNameError(f"unknown PV model {bad[0]!r}; choose from {list(PV_MODELS)}")
    out, ds = {}, None
    for name in names:
        path = pv_cache_dir() / f"pv_{name}_{_key(name, spec, plant)}.pt"
        if cache and path.exists():
            out[name] = load(path)
            continue
        if ds is None:
            ds = pv_dataset(plant, spec.n_traj, spec.steps, spec.window, seed=spec.seed)
        kw = {"activation": ACTIVATION[name]} if ACTIVATION[name] else {}
        # the recipe of docs/pv.md: no affine path, softplus weights
        kw.update({"affine": 0, "weights": "softplus"} if name in AFFINE_START else {})
        cfg = TrainConfig(epochs=spec.epochs, lr=3e-3, batch_size=64, patience=None, seed=spec.seed,
                          device="cpu", quiet=quiet, tags={"plant": plant.name, "use": "pv rto"})
        res = train(name, ds, cfg, hidden=spec.hidden, layers=spec.layers, **kw)
        res.model.window = spec.window
        if cache:
            res.save(path)
        out[name] = res.model
    return out
