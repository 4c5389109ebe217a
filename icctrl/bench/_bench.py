"""`run_bench`: the whole grid in one run, so every ratio compares cells timed on the same machine state."""

from __future__ import annotations

import os
import time
from pathlib import Path

from icctrl._io import write_json
from icctrl.bench._build import ModelCache
from icctrl.bench._grid import BenchConfig, cells
from icctrl.bench._ratios import compute_ratios, reference_horizon
from icctrl.bench._report import markdown, write_report
from icctrl.bench._run import cstr_starts, run_cell
from icctrl.errors import InvalidValueError

SCHEMA_VERSION = 1
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine_info(threads: int) -> dict:
    """The demo's machine record plus CPU model, load average, cvxpy version and the thread setting."""
    import cvxpy

    from icctrl.mpc._demo import machine

    info = machine()
    info.update(
        cpu_model=_cpu_model(),
        cvxpy=cvxpy.__version__,
        threads=threads,
        load_avg_start=[round(v, 2) for v in os.getloadavg()],
    )
    return info


def set_threads(threads: int) -> None:
    """torch intra-op threads, BLAS/OpenMP threads of the libraries already loaded (threadpoolctl) and of
    those loaded later (environment). On a busy machine, BLAS threads waiting for each other stall the
    engine's small dense algebra (measured: 116 ms instead of 2.3 ms per N = 50 linearisation)."""
    import torch
    from threadpoolctl import threadpool_limits

    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    torch.set_num_threads(threads)
    threadpool_limits(threads)


def _derivatives(cache: ModelCache, config: BenchConfig, folder: Path) -> list[dict]:
    """One-period Jacobian timings of the shipped one-period models, ReLU beside softplus stand-ins."""
    from icctrl.bench._derivs import smooth_variant, time_derivatives
    from icctrl.mpc._defaults import model_window

    models = {}
    for name in ("iclstm", "iclrnn", "lstm"):
        if name not in config.models:
            continue
        m = cache.get(name)
        models[name] = (m, model_window(m), f"shipped {m.model.config.get('activation', 'tanh')} model")
        if name != "lstm":
            models[f"{name}_softplus"] = (smooth_variant(m, "softplus", config.seed), model_window(m),
                                          "untrained softplus variant of the same size (timing only)")
    return time_derivatives(models, N=config.reference_horizon, seed=config.seed, folder=folder)


_CACHES: dict = {}  # per worker process: one ModelCache per (seed, folder, train_missing)


def cell_task(task: dict) -> dict:
    """One cell timed in whichever process the engine picks (the models loaded once per process)."""
    config = task["config"]
    set_threads(config.threads)
    ckey = (config.seed, task["models"], config.train_smooth)
    if ckey not in _CACHES:
        _CACHES[ckey] = ModelCache(config.seed, folder=task["models"], train_missing=config.train_smooth)
    return {"key": task["key"], **run_cell(task["cell"], config, task["starts"], _CACHES[ckey])}


def _run_spread(grid, config, starts, out: Path, cache: ModelCache, workers: int, cluster, quiet) -> list[dict]:
    """The cells through the engine, in grid order; a model trained on first use is trained here first, once."""
    from icctrl.bench._build import SMOOTH_COST
    from icctrl.reliability import run_tasks

    if SMOOTH_COST in {c.model for c in grid}:
        cache.get(SMOOTH_COST)
    tasks = [{"key": c.id, "cell": c, "config": config, "starts": starts, "models": str(out / "models")}
             for c in grid]
    recs = run_tasks(cell_task, tasks, workers=workers, cluster=cluster, progress=not quiet, desc="bench cells")
    return [{k: v for k, v in r.items() if k != "key"} for r in recs]


def run_bench(
    config: BenchConfig | None = None,
    *,
    out="icctrl-out/bench",
    json_path=None,
    command: str = "",
    quiet: bool = False,
    workers: int = 1,
    cluster: str | None = None,
) -> dict:
    """Time every cell of the grid; write the JSON (atomically), bench.md and the plots under `out`.

    By default the cells run one after another in this process, so no cell's timing includes another's load.
    `workers` > 1 local processes or the Dask scheduler at `cluster` run them side by side through the soak
    engine (`icctrl.reliability.run_tasks`): faster, but then each figure includes the contention of the cells
    running beside it. Returns `{"cells": [...], "ratios": {...}, "machine": {...}, "command": str, ...}`."""
    from tqdm import tqdm

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidValueError(f"workers must be a positive integer, got {workers!r}")
    config = config or BenchConfig()
    set_threads(config.threads)
    mach = machine_info(config.threads)
    starts = cstr_starts(config.random_starts, config.seed)
    out = Path(out)
    cache = ModelCache(config.seed, folder=out / "models", train_missing=config.train_smooth)
    grid = cells(config)
    t0 = time.perf_counter()
    if workers == 1 and cluster is None:
        results = []
        bar = tqdm(grid, desc="bench cells", unit="cell", disable=quiet)
        for cell in bar:
            bar.set_postfix_str(cell.id, refresh=True)
            results.append(run_cell(cell, config, starts, cache))
        bar.close()
    else:
        results = _run_spread(grid, config, starts, out, cache, workers, cluster, quiet)
    derivs = _derivatives(cache, config, out / "codegen") if config.derivatives else None
    mach["load_avg_end"] = [round(v, 2) for v in os.getloadavg()]
    ratios, details = compute_ratios(results, config)
    from plants import CSTR

    result = {
        "schema_version": SCHEMA_VERSION,
        "plant": "cstr",
        "cells": results,
        "ratios": ratios,
        "ratio_details": details,
        "machine": mach,
        "command": command or "icctrl bench",
        "config": config.to_dict(),
        "reference_horizon": reference_horizon(config),
        "starts": [CSTR().to_deviation(x).tolist() for x in starts],
        "wall_s": time.perf_counter() - t0,
    }
    if derivs is not None:
        result["derivatives"] = derivs
    json_path = Path(json_path) if json_path else out / "bench.json"
    result["outputs"] = {**write_report(result, out), "json": str(json_path)}
    write_json(json_path, result)
    if not quiet:
        print(markdown(result))
        print(f"wrote {json_path}, {result['outputs']['table']} and plots under {out}")
    return result
