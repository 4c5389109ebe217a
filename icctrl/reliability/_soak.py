"""`soak`: closed-loop episodes from many seeded starts, counting exceptions, NaN actions, violations and
fallbacks per controller; the figures behind `icctrl soak`."""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np

from icctrl._io import write_json
from icctrl.errors import IcctrlError, InvalidValueError, UnknownNameError
from icctrl.reliability._episode import soak_episode

#: Controllers a soak runs by default: the shipped IC-LSTM and the first-principles NMPC of the papers.
SOAK_CONTROLLERS = ("iclstm", "first_principles")
#: Exception records kept in full in the JSON (counts by message are kept for all).
MAX_EXCEPTION_RECORDS = 100
PLANTS = ("cstr",)

_WORKER: dict = {}  # per-process plant and controllers when the soak runs in several processes


def _positive_int(v, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise InvalidValueError(f"{what} must be a positive integer, got {v!r}")
    return int(v)


def _setup(plant: str, controllers, horizon: int, options: dict):
    """The plant, the controllers (compiled once) and the figure of merit of a soak."""
    from icctrl.mpc import stage_cost
    from icctrl.mpc._defaults import CSTR_R, CSTR_SETTLE, default_controller
    from plants import CSTR

    if str(plant).lower() not in PLANTS:
        raise UnknownNameError(f"no soak for plant {plant!r}; available: {', '.join(PLANTS)}")
    p = CSTR()
    files = {name: _model_file(name) for name in controllers}
    ctrls = {name: default_controller("cstr", name, horizon=horizon, **options) for name in controllers}
    for name, c in ctrls.items():
        c.model_file = files[name]
    u_scale = (p.u_ub - p.u_lb) / 2

    def cost(x, u):
        return stage_cost(p, x, u, p.P, CSTR_R, u_scale)

    return p, ctrls, cost, CSTR_SETTLE


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


def _controller_meta(ctrls: dict) -> dict:
    return {name: {"solver": c.solver_name, "certified_convex": bool(c.certificate.convex),
                   "predictor": c.problem.predictor.label, "model_file": getattr(c, "model_file", None)}
            for name, c in ctrls.items()}


def _run_start(ctrls, plant, cost, settle, index: int, x0, steps: int) -> list[dict]:
    out = []
    for name, ctrl in ctrls.items():
        rec = soak_episode(plant, ctrl, x0, steps, settle_tol=settle, cost=cost)
        rec.update(controller=name, index=index)
        out.append(rec)
    return out


def _worker_init(plant, controllers, horizon, options) -> None:
    import torch

    torch.set_num_threads(1)
    p, ctrls, cost, settle = _setup(plant, controllers, horizon, options)
    _WORKER.update(plant=p, ctrls=ctrls, cost=cost, settle=settle)


def _worker_run(index: int, x0, steps: int):
    w = _WORKER
    return index, _run_start(w["ctrls"], w["plant"], w["cost"], w["settle"], index, x0, steps), \
        _controller_meta(w["ctrls"])


def soak(plant: str = "cstr", starts: int = 20, *, controllers=SOAK_CONTROLLERS, steps: int = 30,
         horizon: int = 10, seed: int = 0, time_limit: float | None = None, max_iter: int | None = None,
         jobs: int = 1, json_path=None, save_every: int = 10, progress: bool = True,
         command: str | None = None) -> dict:
    """Closed-loop episodes of `steps` periods from `starts` seeded random states of the plant's stability
    region, for each controller; returns (and writes atomically to `json_path`) the counts.

    The JSON holds at least {"episodes", "unhandled_exceptions", "nan_actions", "violations",
    "fallbacks", "worst_solve_ms"}, the same per controller, the fallback reasons and the exception
    messages. While it runs, the file is rewritten every `save_every` starts with "complete": false, so an
    interrupted soak keeps its figures. `jobs` > 1 runs starts in that many processes (each compiles its
    own controllers).
    """
    from tqdm import tqdm

    from plants import CSTR

    starts, steps = _positive_int(starts, "starts"), _positive_int(steps, "steps")
    jobs, horizon = _positive_int(jobs, "jobs"), _positive_int(horizon, "horizon")
    save_every = _positive_int(save_every, "save_every")
    controllers = tuple(controllers)
    if not controllers or len(set(controllers)) != len(controllers):
        raise InvalidValueError(f"controllers must be distinct names, got {list(controllers)}")
    if str(plant).lower() not in PLANTS:
        raise UnknownNameError(f"no soak for plant {plant!r}; available: {', '.join(PLANTS)}")
    if time_limit is not None and not (np.isfinite(time_limit) and time_limit > 0):
        raise InvalidValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
    options = {k: v for k, v in (("time_limit", time_limit), ("max_iter", max_iter)) if v is not None}
    x0s = CSTR().sample_stability_region(starts, np.random.default_rng(seed))
    config = {"plant": str(plant).lower(), "starts": starts, "steps": steps, "horizon": horizon, "seed": seed,
              "controllers": list(controllers), "solver_options": options, "jobs": jobs,
              "command": command if command is not None else " ".join(sys.argv)}
    results: dict[int, list[dict]] = {}
    meta: dict = {}
    t0 = time.perf_counter()
    bar = tqdm(total=starts * len(controllers), desc="soak", unit="episode", disable=not progress)

    def done(index, recs, m=None):
        results[index] = recs
        meta.update(m or {})
        bar.update(len(recs))
        if json_path and len(results) % save_every == 0 and len(results) < starts:
            write_json(json_path, summarize(results, config, meta, time.perf_counter() - t0, complete=False))

    try:
        if jobs == 1:
            p, ctrls, cost, settle = _setup(plant, controllers, horizon, options)
            meta.update(_controller_meta(ctrls))
            for i, x0 in enumerate(x0s):
                done(i, _run_start(ctrls, p, cost, settle, i, x0, steps))
        else:
            import multiprocessing as mp

            with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                                     initargs=(plant, controllers, horizon, options)) as pool:
                futures = {pool.submit(_worker_run, i, x0, steps): i for i, x0 in enumerate(x0s)}
                for fut in as_completed(futures):
                    i = futures[fut]
                    try:
                        done(*fut.result())
                    except Exception as exc:  # a worker died or could not start: count, never crash
                        msg = f"worker: {type(exc).__name__}: {str(exc).strip()[:200]}"
                        done(i, [{"controller": c, "index": i, "start": x0s[i].tolist(), "unhandled": msg,
                                  "error": None, "error_kind": "unhandled"} for c in controllers])
    except KeyboardInterrupt:
        bar.close()
        if json_path:
            write_json(json_path, summarize(results, config, meta, time.perf_counter() - t0, complete=False))
        raise
    bar.close()
    out = summarize(results, config, meta, time.perf_counter() - t0, complete=True)
    if json_path:
        write_json(json_path, out)
    return out


_STEP = re.compile(r"^step \d+: ")


def _totals(recs: list[dict]) -> dict:
    """The counts of a list of episode records."""
    times = np.array([t for r in recs for t in r.get("solve_times", [])], dtype=float)
    times = times[np.isfinite(times)] * 1e3
    viol = Counter()
    status, reasons = Counter(), Counter()
    for r in recs:
        viol.update(r.get("violations", {}))
        status.update(r.get("statuses", {}))
        reasons.update(r.get("fallback_reasons", {}))
    ran = [r for r in recs if r.get("v_start") is not None and r.get("v_end") is not None]
    return {
        "episodes": len(recs),
        "unhandled_exceptions": sum(r.get("unhandled") is not None for r in recs),
        "errors": sum(r.get("error_kind") == "icctrl_error" for r in recs),
        "nan_actions": sum(r.get("nan_actions", 0) for r in recs),
        "violations": int(sum(viol.values())),
        "violation_kinds": dict(viol),
        "fallbacks": sum(r.get("fallbacks", 0) for r in recs),
        "episodes_with_fallbacks": sum(r.get("fallbacks", 0) > 0 for r in recs),
        "fallback_statuses": {k: v for k, v in status.items() if k != "success"},
        "fallback_reasons": dict(reasons.most_common()),
        "successes": sum(r.get("successes", 0) for r in recs),
        "steps": sum(len(r.get("solve_times", [])) for r in recs),
        "completed_episodes": sum(r.get("error") is None and r.get("unhandled") is None for r in recs),
        "settled": sum(bool(r.get("settled")) for r in recs),
        "lyapunov_decreased": sum(r["v_end"] < r["v_start"] for r in ran),
        "worst_solve_ms": float(times.max()) if times.size else None,
        "solve_ms": {"median": float(np.median(times)), "p99": float(np.percentile(times, 99)),
                     "max": float(times.max())} if times.size else None,
        "worst_step_ms": max((r.get("worst_step_ms", 0.0) for r in recs), default=None),
        "mean_cost": float(np.mean([r["cost"] for r in recs if "cost" in r])) if recs else None,
    }


def summarize(results: dict[int, list[dict]], config: dict, meta: dict, wall_s: float,
              complete: bool) -> dict:
    """The soak JSON: totals, totals per controller, exception messages, configuration and machine."""
    from icctrl.mpc._demo import machine

    recs = [r for i in sorted(results) for r in results[i]]
    out = _totals(recs)
    out["per_controller"] = {}
    for name in config["controllers"]:
        sub = _totals([r for r in recs if r["controller"] == name])
        out["per_controller"][name] = {**meta.get(name, {}), **sub}
    exc = [{"controller": r["controller"], "start_index": r["index"], "start": r["start"],
            "kind": r.get("error_kind"), "message": r.get("unhandled") or r["error"]}
           for r in recs if r.get("unhandled") or r.get("error")]
    out["exception_counts"] = dict(Counter(_STEP.sub("", e["message"]) for e in exc).most_common())
    out["exceptions"] = exc[:MAX_EXCEPTION_RECORDS]
    out.update(starts_done=len(results), complete=complete, wall_s=round(wall_s, 1),
               seconds_per_start=round(wall_s / max(len(results), 1), 2), config=config, machine=machine())
    return out
