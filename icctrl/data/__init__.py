"""Datasets for sequence models: generated from plants or read from logged tables, windowed and scaled."""

from icctrl.data._cache import cache_dir
from icctrl.data._dataset import SequenceDataset
from icctrl.data._designs import DESIGNS
from icctrl.data._generate import REGION_MARGIN, cstr_dataset, generate
from icctrl.data._scaler import Scaler
from icctrl.data._table import FILLS, from_table
from icctrl.data._windows import LAYOUTS, window_trajectories

__all__ = [
    "DESIGNS",
    "FILLS",
    "LAYOUTS",
    "REGION_MARGIN",
    "Scaler",
    "SequenceDataset",
    "cache_dir",
    "cstr_dataset",
    "from_table",
    "generate",
    "window_trajectories",
]
