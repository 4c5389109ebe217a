"""TrainConfig: every knob of a training run, validated once, stored in the checkpoint as plain JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from icctrl.errors import InvalidValueError, UnknownNameError

DEVICES = ("auto", "cpu", "cuda")
#: Optimiser steps a run takes when neither `epochs` nor `steps` is given.
DEFAULT_STEPS = 4000
#: Adam learning rate per model when `lr` is None (the affine model is fitted in closed form); for the
#: input-convex models this is the rate of softplus and exp weights, which a step moves by a fraction of their value.
MODEL_LR = {"icnn": 1e-2, "picnn": 1e-2, "icrnn": 1e-2, "iclstm": 1e-2, "iclrnn": 1e-2, "lrnn": 3e-3,
            "rnn": 3e-3, "lstm": 3e-3}
#: Adam learning rate of models with projected non-negative weights (`weights="projected"`, the default of
#: `train(name, dataset)`): a step moves such a weight by about lr whatever its size, so smaller than MODEL_LR.
PROJECTED_LR = 2e-3


@dataclass
class TrainConfig:
    """Settings of one training run (Adam on the mean squared error in scaled units)."""

    #: Passes over the training split; None: as many as `steps` optimiser steps take (the default budget).
    epochs: int | None = None
    #: Budget in optimiser steps (used when `epochs` is None; None: DEFAULT_STEPS). Steps, not epochs, so that
    #: a small data set gets as many updates as a large one.
    steps: int | None = None
    #: Adam learning rate; None: the model's own (PROJECTED_LR, 2e-3, for projected non-negative weights; else
    #: MODEL_LR: 1e-2 for input-convex models with softplus or exp weights, 3e-3 for the others).
    lr: float | None = None
    #: Global batch size (split across processes under DDP, so results do not depend on the process count).
    batch_size: int = 128
    #: Stop after this many epochs without a validation improvement larger than `min_delta`; None: never;
    #: "auto": a third of the epochs, at least 20 (the cosine schedule makes late epochs count).
    patience: int | str | None = "auto"
    #: Restore the weights of the best validation epoch at the end; False keeps the last epoch's weights (for
    #: studies where selecting on the validation split would be an unfair advantage).
    keep_best: bool = True
    #: Smallest decrease of the validation loss that counts as an improvement.
    min_delta: float = 0.0
    #: Clip the global gradient 2-norm to this value; None: no clipping.
    clip_norm: float | None = 1.0
    #: Adam weight decay (L2); 0 for none.
    weight_decay: float = 0.0
    #: Cosine decay of the learning rate to lr * lr_final over `epochs`; 1.0 keeps it constant.
    lr_final: float = 0.02
    #: Seed of the initial weights (when the trainer builds the model) and of the batch order.
    seed: int = 0
    #: "auto" (CUDA when present, else CPU), "cpu", "cuda" or "cuda:N".
    device: str = "auto"
    #: Mixed precision (bfloat16 autocast, float16 with a gradient scaler where bf16 is missing) on CUDA;
    #: ignored on CPU.
    amp: bool = False
    #: CPU threads for torch during training (None: leave torch's setting). One by default: the zoo's small
    #: recurrent models gain nothing from intra-op threads, and on a shared machine they lose up to 20x.
    threads: int | None = 1
    #: No progress bar and no messages.
    quiet: bool = False
    #: Input features the certificate is asked about (None: those the model is built to be convex in).
    certify_wrt: list[int] | None = None
    #: Epochs between resume states written to the state file (when the trainer has one).
    state_every: int = 1
    #: Free-form labels stored with the checkpoint (plant, layout, ...).
    tags: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.epochs is not None and self.steps is not None:
            raise InvalidValueError(f"give epochs={self.epochs!r} or steps={self.steps!r}, not both")
        for name in ("epochs", "steps"):
            if getattr(self, name) is not None:
                _pos_int(self, name)
        _pos_int(self, "batch_size")
        _pos_int(self, "state_every")
        if self.patience is not None and self.patience != "auto":
            _pos_int(self, "patience")
        if self.threads is not None:
            _pos_int(self, "threads")
        if self.lr is not None:
            _pos_float(self, "lr")
        for name in ("min_delta", "weight_decay"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise InvalidValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.clip_norm is not None:
            _pos_float(self, "clip_norm")
        if not isinstance(self.lr_final, (int, float)) or not 0 < self.lr_final <= 1:
            raise InvalidValueError(f"lr_final must be in (0, 1], got {self.lr_final!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise InvalidValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        dev = str(self.device)
        if dev not in DEVICES and not (dev.startswith("cuda:") and dev[5:].isdigit()):
            raise UnknownNameError(
                f"unknown device {self.device!r}; choose one of {list(DEVICES)} or 'cuda:N'"
            )
        if self.certify_wrt is not None:
            self.certify_wrt = [int(i) for i in self.certify_wrt]
        self.tags = dict(self.tags)

    def resolve(self, model_name: str, n_train: int, weights: str | None = None) -> TrainConfig:
        """A copy with every automatic setting made concrete for this model (and its non-negative weights'
        parametrisation) and training-set size."""
        cfg = replace(self)
        if cfg.epochs is None:
            steps = cfg.steps if cfg.steps is not None else DEFAULT_STEPS
            cfg.epochs = max(1, math.ceil(steps / max(1, math.ceil(n_train / cfg.batch_size))))
            cfg.steps = None
        if cfg.lr is None:
            cfg.lr = PROJECTED_LR if weights == "projected" else MODEL_LR.get(str(model_name).lower(), 3e-3)
        if cfg.patience == "auto":
            cfg.patience = max(20, math.ceil(cfg.epochs / 3))
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-able; stored in checkpoints)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of `to_dict`; unknown keys are an error (a typo must not pass silently)."""
        known = {f.name for f in fields(cls)}
        bad = sorted(set(d) - known)
        if bad:
            raise UnknownNameError(f"unknown training settings {bad}; known: {sorted(known)}")
        return cls(**d)


def _pos_int(cfg: TrainConfig, name: str) -> None:
    v = getattr(cfg, name)
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise InvalidValueError(f"{name} must be an integer >= 1, got {v!r}")


def _pos_float(cfg: TrainConfig, name: str) -> None:
    v = getattr(cfg, name)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
        raise InvalidValueError(f"{name} must be a finite number > 0, got {v!r}")
