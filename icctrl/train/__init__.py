"""Training: Trainer (device auto, AMP, DDP under torchrun, early stopping, resume), safe checkpoints,
shipped default models, and the training benchmarks (throughput, robustness study)."""

from icctrl.train._checkpoint import (
    FORMAT_VERSION,
    checkpoint_info,
    load,
    make_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from icctrl.train._config import DEFAULT_STEPS, MODEL_LR, PROJECTED_LR, TrainConfig
from icctrl.train._ddp import DistInfo, dist_info
from icctrl.train._defaults import (
    DEFAULTS,
    DefaultSpec,
    asset_paths,
    default_names,
    load_default,
    train_default,
)
from icctrl.train._robustness import NOISE_LEVELS, STUDY_MODELS, robustness_study
from icctrl.train._throughput import benchmark_training, throughput
from icctrl.train._trainer import (
    AFFINE_START,
    DEFAULT_WEIGHTS,
    Trainer,
    TrainResult,
    default_model_kw,
    evaluate,
    resolve_device,
    train,
)

__all__ = [
    "FORMAT_VERSION",
    "checkpoint_info",
    "load",
    "make_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
    "TrainConfig",
    "DEFAULT_STEPS",
    "MODEL_LR",
    "PROJECTED_LR",
    "AFFINE_START",
    "DEFAULT_WEIGHTS",
    "default_model_kw",
    "DistInfo",
    "dist_info",
    "DEFAULTS",
    "DefaultSpec",
    "asset_paths",
    "default_names",
    "load_default",
    "train_default",
    "Trainer",
    "TrainResult",
    "evaluate",
    "resolve_device",
    "train",
    "NOISE_LEVELS",
    "STUDY_MODELS",
    "robustness_study",
    "benchmark_training",
    "throughput",
]
