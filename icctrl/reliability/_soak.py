"""`soak`: closed-loop episodes from many seeded starts, counting exceptions, NaN actions, violations and
fallbacks per controller; the figures behind `icctrl soak`."""

from __future__ import annotations

import bisect
import gc
import json
import os
import re
import sys
import time
import warnings
import zlib
from collections import Counter

import numpy as np

from icctrl._io import write_json
from icctrl.errors import IcctrlError, InvalidValueError, UnknownNameError
from icctrl.mpc._controller import ExtrapolationWarning
from icctrl.mpc._defaults import CSTR_SETTLE
from icctrl.reliability._engine import RecordStore, run_tasks
from icctrl.reliability._episode import soak_episode
from icctrl.reliability._faults import FAULTS, fault_names
from icctrl.reliability._progress import Progress

#: Controllers a soak runs by default: the shipped IC-LSTM and the first-principles NMPC of the papers.
SOAK_CONTROLLERS = ("iclstm", "first_principles")
#: Exception records kept in full in the JSON (counts by message are kept for all).
MAX_EXCEPTION_RECORDS = 100
PLANTS = ("cstr",)
CALIBRATION = "calibration.json"
#: Fewest seconds between two progress rewrites of the JSON (running counts, `Progress`).
PROGRESS_S = 30.0

_CACHE: dict = {}  # per process: controllers compiled once, keyed by everything that defines them


def _positive_int(v, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise InvalidValueError(f"{what} must be a positive integer, got {v!r}")
    return int(v)


def _plant(plant: str):
    from plants import CSTR

    if str(plant).lower() not in PLANTS:
        raise UnknownNameError(f"no soak for plant {plant!r}; available: {', '.join(PLANTS)}")
    return CSTR()


def _cost(plant):
    from icctrl.mpc import stage_cost
    from icctrl.mpc._defaults import CSTR_R

    u_scale = (plant.u_ub - plant.u_lb) / 2
    return lambda x, u: stage_cost(plant, x, u, plant.P, CSTR_R, u_scale)


def _controller(plant: str, name: str, horizon: int, options: dict):
    """The controller `name` compiled once per process for these options (the model file's hash in the key)."""
    from icctrl.mpc import _defaults

    file = _model_file(name)
    key = (plant, name, horizon, tuple(sorted(options.items())), file and file["sha256"])
    if key not in _CACHE:
        ctrl = _defaults.default_controller(plant, name, horizon=horizon, **options)
        ctrl.model_file = file
        _CACHE[key] = ctrl
        gc.freeze()  # the controllers live as long as the process: later collections skip their objects
    return _CACHE[key]


def _model_file(name: str) -> dict | None:
    """Path and sha256 of the checkpoint a controller name loads (None for the first-principles NMPC)."""
    import hashlib
    from pathlib import Path

    from icctrl.mpc._defaults import CSTR_CONTROLLERS
    from icctrl.train import asset_paths

    spec = CSTR_CONTROLLERS.get(name, (name, None))[0]
    if spec == "first_principles":
        return None
    try:
        path = Path(spec) if str(spec).endswith(".pt") else asset_paths("cstr", spec)[0]
        return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    except (OSError, IcctrlError):  # default_controller reports a bad name or file with its own error
        return None


def _controller_meta(ctrl) -> dict:
    return {"solver": ctrl.solver_name, "certified_convex": bool(ctrl.certificate.convex),
            "predictor": ctrl.problem.predictor.label, "model_file": getattr(ctrl, "model_file", None)}


def _fault_rng(seed: int, fault: str, index: int) -> np.random.Generator:
    """The same fault realisation for every controller of a start, independent of run order and process."""
    return np.random.default_rng([seed, zlib.crc32(fault.encode()), index])


def episode_task(task: dict) -> dict:
    """One episode (fault × controller × start) as plain data; runs in whichever process the engine picks."""
    import torch

    torch.set_num_threads(1)
    plant = _plant(task["plant"])
    inj = FAULTS[task["fault"]].inject(plant, _fault_rng(task["seed"], task["fault"], task["index"]),
                                       task.get("median_solve_s"))
    options = {**task["options"], **inj.options}
    base = {"key": task["key"], "controller": task["controller"], "fault": task["fault"], "index": task["index"],
            "time_limit_ms": options["time_limit"] * 1e3 if options.get("time_limit") else None}
    try:
        ctrl = _controller(task["plant"], task["controller"], task["horizon"], options)
    except IcctrlError:
        raise
    except Exception as exc:  # a controller that cannot be built is a bug of ours: count it per episode
        return {**base, "start": list(task["x0"]), "unhandled": f"build: {type(exc).__name__}: {exc}"[:240],
                "error": None, "error_kind": "unhandled"}
    with warnings.catch_warnings():  # counted per step in the record instead
        warnings.simplefilter("ignore", ExtrapolationWarning)
        rec = soak_episode(plant, ctrl, np.asarray(task["x0"], dtype=float), task["steps"],
                           settle_tol=CSTR_SETTLE, cost=_cost(plant), injection=inj)
    rec.update(base, meta=_controller_meta(ctrl), pid=os.getpid())
    return rec


def _worker_failure(task: dict, exc: BaseException) -> dict:
    """The record of an episode whose worker raised or died: counted, never a crash of the soak."""
    return {"key": task["key"], "controller": task["controller"], "fault": task["fault"], "index": task["index"],
            "start": list(task["x0"]), "unhandled": f"worker: {type(exc).__name__}: {str(exc).strip()[:200]}",
            "error": None, "error_kind": "unhandled", "time_limit_ms": None}


def _calibrate(plant: str, controllers, horizon: int, options: dict, steps: int, seed: int) -> dict:
    """Median nominal solve time (s) per controller on one seeded start: the base of the time_limit_cut fault."""
    x0 = _plant(plant).sample_stability_region(1, np.random.default_rng([seed, 1]))[0]
    out = {}
    for name in controllers:
        rec = episode_task({"key": "calibration", "plant": plant, "controller": name, "fault": "nominal",
                            "index": 0, "seed": seed + 1, "x0": x0.tolist(), "steps": steps, "horizon": horizon,
                            "options": options})
        times = [t for t in rec.get("solve_times", []) if np.isfinite(t)]
        out[name] = float(np.median(times)) if times else None
    return out


def soak(plant: str = "cstr", starts: int = 20, *, controllers=SOAK_CONTROLLERS, steps: int = 30,
         horizon: int = 10, seed: int = 0, time_limit: float | None = None, max_iter: int | None = None,
         solver: str | None = None, faults="nominal", workers: int | None = None, jobs: int = 1,
         cluster: str | None = None, out=None, json_path=None, plot=None, save_every: int = 10, progress: bool = True,
         command: str | None = None) -> dict:
    """Closed-loop episodes of `steps` periods from `starts` seeded random states of the plant's stability
    region, for each controller and each fault scenario (`faults`: names, a comma-separated string or "all";
    see `FAULTS`); returns (and writes atomically to `json_path`) the counts. `solver` replaces every controller's
    own solver (e.g. "ipopt" for the first-principles reference).

    The JSON holds {"episodes", "unhandled", "nan_actions", "hard_violations", "by_fault", "latency_ms"} and
    the earlier {"unhandled_exceptions", "violations", "fallbacks", "worst_solve_ms"}, the same per
    controller, the fallback reasons and the exception messages. Episodes run in `workers` local processes
    (`jobs` is the older name) or on the Dask cluster at `cluster`. With `out`, each episode's record is
    appended to out/records.jsonl as it finishes, and a rerun with the same arguments resumes where a
    killed run stopped. While it runs, `json_path` holds running counts (`Progress`, "complete": false), rewritten
    every `save_every` starts (all their controllers and faults), at most once every PROGRESS_S seconds; the full
    summary is computed once the workers are done.
    `plot` writes the per-fault figure (settled share, cost against nominal, settle steps, latency) there.
    """
    starts, steps = _positive_int(starts, "starts"), _positive_int(steps, "steps")
    workers = _positive_int(jobs if workers is None else workers, "workers" if workers is not None else "jobs")
    horizon, save_every = _positive_int(horizon, "horizon"), _positive_int(save_every, "save_every")
    controllers = tuple(controllers)
    if not controllers or len(set(controllers)) != len(controllers):
        raise InvalidValueError(f"controllers must be distinct names, got {list(controllers)}")
    _plant(plant)
    if time_limit is not None and not (np.isfinite(time_limit) and time_limit > 0):
        raise InvalidValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
    fault_list = fault_names(faults)
    if solver is not None:
        from icctrl.mpc._solvers import SOLVERS

        if str(solver).lower() not in SOLVERS:
            raise UnknownNameError(f"unknown solver {solver!r}; choose one of {SOLVERS}")
    options = {k: v for k, v in (("time_limit", time_limit), ("max_iter", max_iter),
                                 ("solver", None if solver is None else str(solver).lower())) if v is not None}
    x0s = _plant(plant).sample_stability_region(starts, np.random.default_rng(seed))
    config = {"plant": str(plant).lower(), "starts": starts, "steps": steps, "horizon": horizon, "seed": seed,
              "controllers": list(controllers), "faults": list(fault_list), "solver_options": options,
              "workers": workers, "cluster": cluster,
              "command": command if command is not None else " ".join(sys.argv)}
    store = RecordStore(out, config, volatile=("workers", "cluster", "command", "calibration")) if out else None
    calibration = None
    if "time_limit_cut" in fault_list:
        saved = json.loads((store.dir / CALIBRATION).read_text()) if store and (store.dir / CALIBRATION).exists() \
            else None
        calibration = saved or _calibrate(plant, controllers, horizon, options, steps, seed)
        if store and not saved:
            write_json(store.dir / CALIBRATION, calibration)
    config["calibration_median_solve_s"] = calibration
    tasks = [{"key": f"{f}/{c}/{i}", "plant": config["plant"], "controller": c, "fault": f, "index": i,
              "seed": seed, "x0": x0.tolist(), "steps": steps, "horizon": horizon, "options": options,
              "median_solve_s": (calibration or {}).get(c)}
             for f in fault_list for i, x0 in enumerate(x0s) for c in controllers]
    t0 = time.perf_counter()
    recs: dict[str, dict] = dict(store.records) if store else {}

    per_start = len(controllers) * len(fault_list)
    last_write = [time.perf_counter()]

    progress = Progress(config)
    for rec in recs.values():
        progress.add(rec)

    def on_record(rec):
        recs[rec["key"]] = rec
        progress.add(rec)
        due = len(recs) % (save_every * per_start) == 0 and time.perf_counter() - last_write[0] >= PROGRESS_S
        if json_path and due and len(recs) < len(tasks):
            write_json(json_path, progress.summary(time.perf_counter() - t0))
            last_write[0] = time.perf_counter()

    _CACHE.clear()
    try:
        run_tasks(episode_task, tasks, workers=workers, cluster=cluster, store=store, on_record=on_record,
                  on_error=_worker_failure, progress=progress, desc="soak")
    except KeyboardInterrupt:
        if json_path:
            write_json(json_path, summarize(list(recs.values()), config, time.perf_counter() - t0, False))
        raise
    finally:
        _CACHE.clear()
    ordered = [recs[t["key"]] for t in tasks]
    result = summarize(ordered, config, time.perf_counter() - t0, True)
    if json_path:
        write_json(json_path, result)
    if plot:
        from icctrl.reliability._report import fault_figure

        fault_figure(result, ordered, plot)
    return result


_STEP = re.compile(r"^step \d+: ")


def _latency(recs: list[dict], timeline: Timeline | None = None) -> dict:
    """Worst wall time of a `step` call (ms) against the solver time limit of the same episodes; the CPU time the
    loop's thread spent in the step most over its limit (far less than its wall time: the core was taken away); and,
    with the run's `timeline`, the slowest step of another worker's episode that overlapped it in time."""
    worst = max((r.get("worst_step_ms", 0.0) for r in recs), default=None)
    limited = [r for r in recs if r.get("time_limit_ms") and "worst_step_ms" in r]
    top = max(limited, key=lambda r: r["worst_step_ms"] - r["time_limit_ms"], default=None)
    out = {"max": worst, "limit": max((r["time_limit_ms"] for r in limited), default=None),
           "max_over_limit": None if top is None else top["worst_step_ms"] - top["time_limit_ms"],
           "cpu_at_max_over_limit": None if top is None else top.get("worst_step_cpu_ms")}
    if timeline is not None:
        out["other_worker_at_max"] = None if top is None else timeline.overlapping(top)
    return out


class Timeline:
    """The episodes' slowest steps in time order, to ask whether another worker was held up at the same moment (a
    stall of the whole machine) while one step ran over its limit."""

    #: no `step` call lasts longer than this (s): the window searched before a step's start
    LONGEST_S = 10.0

    def __init__(self, recs: list[dict]):
        self._recs = sorted((r for r in recs if r.get("worst_step_at") is not None and "pid" in r),
                            key=lambda r: r["worst_step_at"])
        self._starts = [r["worst_step_at"] for r in self._recs]

    def overlapping(self, rec: dict) -> dict | None:
        """The slowest step of another process's episode whose time overlaps `rec`'s slowest step, as
        {"wall_ms", "cpu_ms", "controller", "fault"} (the one that waited longest: wall − CPU), or None."""
        at = rec.get("worst_step_at")
        if at is None or "pid" not in rec:
            return None
        end = at + rec["worst_step_ms"] * 1e-3
        lo, hi = bisect.bisect_left(self._starts, at - self.LONGEST_S), bisect.bisect_right(self._starts, end)
        hits = [r for r in self._recs[lo:hi] if r["pid"] != rec["pid"]
                and r["worst_step_at"] + r["worst_step_ms"] * 1e-3 > at]
        best = max(hits, key=lambda r: r["worst_step_ms"] - r.get("worst_step_cpu_ms", 0.0), default=None)
        return None if best is None else {"wall_ms": best["worst_step_ms"], "cpu_ms": best.get("worst_step_cpu_ms"),
                                          "controller": best["controller"], "fault": best.get("fault")}


def _add(acc: Counter, counts: dict | None) -> None:
    """acc += counts (Counter.update checks types per call, which dominates a summary of 50 000 records)."""
    for k, c in (counts or {}).items():
        acc[k] = acc.get(k, 0) + c


def _totals(recs: list[dict], timeline: Timeline | None = None) -> dict:
    """The counts of a list of episode records (one pass over them); `timeline` (all the run's records) places the
    worst step over its limit beside the other workers' steps."""
    viol, status, reasons = Counter(), Counter(), Counter()
    times: list[float] = []
    settle, costs = [], []
    n = dict.fromkeys(("unhandled", "errors", "nan_actions", "fallbacks", "extrapolating", "with_fallbacks",
                       "successes", "steps", "completed", "valid", "settled", "settled_valid", "lyap"), 0)
    for r in recs:
        get = r.get
        v = get("violations") or {}
        _add(viol, v)
        _add(status, get("statuses"))
        _add(reasons, get("fallback_reasons"))
        st = get("solve_times") or ()
        times.extend(st)
        n["steps"] += len(st)
        fb = get("fallbacks", 0)
        n["fallbacks"] += fb
        n["with_fallbacks"] += fb > 0
        n["nan_actions"] += get("nan_actions", 0)
        n["extrapolating"] += get("extrapolating", 0)
        n["successes"] += get("successes", 0)
        n["unhandled"] += get("unhandled") is not None
        n["errors"] += get("error_kind") == "icctrl_error"
        settled = bool(get("settled"))
        n["settled"] += settled
        if get("error") is None and get("unhandled") is None:
            n["completed"] += 1
            costs.append(r["cost"])
            if not v:
                n["valid"] += 1
                n["settled_valid"] += settled
        if get("settle_step") is not None:
            settle.append(r["settle_step"])
        if get("v_start") is not None and get("v_end") is not None:
            n["lyap"] += r["v_end"] < r["v_start"]
    t = np.array(times, dtype=float)
    t = t[np.isfinite(t)] * 1e3
    count = len(recs)
    return {
        "episodes": count,
        "unhandled": n["unhandled"],
        "unhandled_exceptions": n["unhandled"],
        "errors": n["errors"],
        "nan_actions": n["nan_actions"],
        "hard_violations": int(viol.get("input_bounds", 0)),
        "violations": int(sum(viol.values())),
        "violation_kinds": dict(viol),
        "fallbacks": n["fallbacks"],
        "extrapolating_steps": n["extrapolating"],
        "episodes_with_fallbacks": n["with_fallbacks"],
        "fallback_statuses": {k: v for k, v in status.items() if k != "success"},
        "fallback_reasons": dict(reasons.most_common()),
        "successes": n["successes"],
        "steps": n["steps"],
        "completed_episodes": n["completed"],
        "valid_region_share": n["valid"] / count if count else None,
        "settled": n["settled"],
        "settled_share": n["settled_valid"] / count if count else None,
        "settle_steps": {"median": float(np.median(settle)), "p90": float(np.percentile(settle, 90)),
                         "max": int(max(settle))} if settle else None,
        "lyapunov_decreased": n["lyap"],
        "worst_solve_ms": float(t.max()) if t.size else None,
        "solve_ms": {"median": float(np.median(t)), "p99": float(np.percentile(t, 99)),
                     "max": float(t.max())} if t.size else None,
        "worst_step_ms": max((r.get("worst_step_ms", 0.0) for r in recs), default=None),
        "latency_ms": _latency(recs, timeline),
        "mean_cost": float(np.mean(costs)) if costs else None,
    }


def _cost_degradation(recs: list[dict], nominal: list[dict]) -> float | None:
    """Mean cost under the fault over mean nominal cost, on the starts that completed in both."""
    base = {r["index"]: r["cost"] for r in nominal if r.get("error_kind") is None}
    pairs = [(r["cost"], base[r["index"]]) for r in recs if r.get("error_kind") is None and r["index"] in base]
    if not pairs:
        return None
    f, n = np.mean(pairs, axis=0)
    return float(f / n) if n > 0 else None


def summarize(recs: list[dict], config: dict, wall_s: float, complete: bool) -> dict:
    """The soak JSON: totals, totals per controller and per fault, exception messages, configuration and
    machine."""
    from icctrl.mpc._demo import machine

    recs = sorted(recs, key=lambda r: (config["faults"].index(r.get("fault", "nominal")), r["index"],
                                       config["controllers"].index(r["controller"])))
    timeline = Timeline(recs)
    out = _totals(recs, timeline)
    meta = {r["controller"]: r["meta"] for r in recs if r.get("meta")}
    cells: dict[tuple[str, str], list[dict]] = {}
    for r in recs:  # grouped in one pass: a soak of 1000 starts holds 50 000 records
        cells.setdefault((r.get("fault", "nominal"), r["controller"]), []).append(r)
    out["per_controller"] = {
        name: {**meta.get(name, {}),
               **_totals([r for f in config["faults"] for r in cells.get((f, name), [])], timeline)}
        for name in config["controllers"]}
    out["by_fault"] = {}
    for fault in config["faults"]:
        out["by_fault"][fault] = {}
        for name in config["controllers"]:
            sub, nominal = cells.get((fault, name), []), cells.get(("nominal", name), [])
            row = _totals(sub, timeline)
            row["cost_degradation"] = _cost_degradation(sub, nominal) if "nominal" in config["faults"] else None
            out["by_fault"][fault][name] = row
    exc = [{"controller": r["controller"], "fault": r.get("fault", "nominal"), "start_index": r["index"],
            "start": r["start"], "kind": r.get("error_kind"), "message": r.get("unhandled") or r["error"]}
           for r in recs if r.get("unhandled") or r.get("error")]
    out["exception_counts"] = dict(Counter(_STEP.sub("", e["message"]) for e in exc).most_common())
    out["exceptions"] = exc[:MAX_EXCEPTION_RECORDS]
    starts_done = len({r["index"] for r in recs})
    out.update(starts_done=starts_done, complete=complete, wall_s=round(wall_s, 1),
               seconds_per_start=round(wall_s / max(starts_done, 1), 2), config=config, machine=machine())
    return out
