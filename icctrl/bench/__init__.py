"""Solve-time benchmark harness: models × formulations × solver paths × horizons, with the black-box reference
path (torch + finite differences + limited-memory Ipopt) in the same run, and the ratios of issue 6."""

from icctrl.bench._bench import SCHEMA_VERSION, machine_info, run_bench
from icctrl.bench._blackbox import BLACKBOX_IPOPT, BlackBoxPredictor, TorchRollout
from icctrl.bench._derivs import time_derivatives
from icctrl.bench._dompc import DOMPC_SOLVER, DoMPCSolver
from icctrl.bench._grid import (
    BLACKBOX_SOLVER,
    FORMULATIONS,
    MODELS,
    PATHS,
    BenchConfig,
    CellSpec,
    ModelSpec,
    cells,
)
from icctrl.bench._ratios import GOALS, RATIO_NAMES, RTI_GOALS, compute_ratios
from icctrl.bench._report import cells_table, markdown, ratios_table, write_report
from icctrl.bench._run import cstr_starts, run_cell

__all__ = [
    "SCHEMA_VERSION",
    "machine_info",
    "run_bench",
    "BLACKBOX_IPOPT",
    "BlackBoxPredictor",
    "TorchRollout",
    "BLACKBOX_SOLVER",
    "FORMULATIONS",
    "MODELS",
    "PATHS",
    "BenchConfig",
    "CellSpec",
    "ModelSpec",
    "cells",
    "GOALS",
    "RTI_GOALS",
    "time_derivatives",
    "DOMPC_SOLVER",
    "DoMPCSolver",
    "RATIO_NAMES",
    "compute_ratios",
    "cells_table",
    "markdown",
    "ratios_table",
    "write_report",
    "cstr_starts",
    "run_cell",
]
