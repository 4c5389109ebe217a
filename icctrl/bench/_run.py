"""Running the grid: per cell, setup timed apart from solving, cold single solves, warm-started closed-loop
episodes from seeded starts, and per-solve profiles (where the time of a solve goes)."""

from __future__ import annotations

import os
import time
from collections import Counter

import numpy as np

from icctrl.bench._build import ModelCache, build_controller
from icctrl.bench._grid import MODELS, BenchConfig, CellSpec
from icctrl.bench._stats import distribution, mean_profile
from icctrl.errors import IcctrlError

_NLP_PARTS = ("nlp_f", "nlp_g", "nlp_grad", "nlp_grad_f", "nlp_jac_g", "nlp_hess_l", "nlp_fg", "nlp_jac_fg")


class _OverBudget(Exception):
    """The cell used up its time budget (raised between solves, never inside one)."""


def _profile(ctrl, solve_ms: float) -> tuple[dict[str, float], dict[str, float]]:
    """Where one solve's time went, in ms, and how many calls: CasADi's per-oracle wall times (function,
    Jacobian, Hessian evaluations) and the rest (the solver's own linear algebra and bookkeeping); for cvxpy,
    the conic solver's own time and cvxpy's parameter mapping and unpacking."""
    backend = ctrl.backend
    out: dict[str, float] = {}
    calls: dict[str, float] = {}
    if hasattr(backend, "solver"):  # CasADi nlpsol
        stats = backend.solver.stats()
        for part, key in [(p, p) for p in _NLP_PARTS] + [("qp", "QP")]:
            t = float(stats.get(f"t_wall_{key}", 0.0) or 0.0) * 1e3
            if t:
                out[part] = t
                calls[part] = float(stats.get(f"n_call_{key}", 0) or 0)
        out["solver_other"] = max(solve_ms - sum(out.values()), 0.0)
    elif hasattr(backend, "prob"):  # cvxpy
        inner = float(getattr(backend, "last_solver_time", 0.0) or 0.0) * 1e3
        out["conic_solver"] = min(inner, solve_ms)
        out["cvxpy_mapping"] = max(solve_ms - inner, 0.0)
    return out, calls


class _Recorder:
    """Stands in for the controller inside `run_episode`: times every step and keeps what the solver said."""

    def __init__(self, ctrl, blackbox=None):
        self.ctrl, self.blackbox, self.problem = ctrl, blackbox, ctrl.problem
        self.records: list[dict] = []
        self.phase = "cold"
        self.deadline: float | None = None

    def reset(self) -> None:
        self.ctrl.reset()
        self._prep = (0.0, 0.0)

    def prepare(self) -> None:
        """The controller's preparation phase between steps; its wall and CPU time count for the next step."""
        t0, c0 = time.perf_counter(), time.process_time()
        self.ctrl.prepare()
        self._prep = ((time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3)

    def step(self, x):
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise _OverBudget
        rollouts = self.blackbox.rollout.calls if self.blackbox is not None else 0
        t0, c0 = time.perf_counter(), time.process_time()
        u, info = self.ctrl.step(x)
        prep_ms, prep_cpu = getattr(self, "_prep", (0.0, 0.0))
        self._prep = (0.0, 0.0)
        step_ms = (time.perf_counter() - t0) * 1e3 + prep_ms  # both phases of a real-time iteration
        cpu_ms = (time.process_time() - c0) * 1e3 + prep_cpu
        solve_ms = float(info["solve_time"]) * 1e3
        failed = str(info["solver_status"]).startswith("solver_error")
        if failed:  # the back end raised and reports no time: count the whole step, not zero
            solve_ms = step_ms
        profile, calls = ({}, {}) if failed else _profile(self.ctrl, solve_ms)
        if "prepare_time" in info:  # real-time iterations: the two phases
            profile = {"prepare": info["prepare_time"] * 1e3, "feedback": info["feedback_time"] * 1e3}
        rec = {
            "phase": self.phase,
            "solve_ms": solve_ms,
            "step_ms": step_ms,
            "step_cpu_ms": cpu_ms,
            "iterations": int(info["iterations"]),
            "success": bool(info["success"]),
            "status": info["status"],
            "solver_status": info["solver_status"],
            "profile": profile,
            "calls": calls,
        }
        if self.blackbox is not None:
            rec["torch_rollouts"] = self.blackbox.rollout.calls - rollouts
        self.records.append(rec)
        return u, info


def cstr_starts(random_starts: int, seed: int) -> np.ndarray:
    """Initial states (absolute units): the papers' three deviations, then seeded draws in the stability
    region."""
    from icctrl.mpc._defaults import CSTR_STARTS
    from plants import CSTR

    plant = CSTR()
    papers = plant.from_deviation(np.asarray(CSTR_STARTS, float))
    if random_starts == 0:
        return papers
    return np.concatenate([papers, plant.sample_stability_region(random_starts, rng=seed)])


def _episodes_summary(episodes: list[dict]) -> dict:
    done = [e for e in episodes if e["complete"]]
    settled = [e["settle_steps"] for e in done if e["settled"]]
    return {
        "episodes": episodes,
        "complete": len(done),
        "settled": len(settled),
        "mean_cost": float(np.mean([e["cost"] for e in done])) if done else None,
        "mean_settle_steps": float(np.mean(settled)) if settled else None,
    }


def _status(cell: CellSpec, recs: list[dict], truncated: bool) -> tuple[str, str | None]:
    if not recs:
        return "failed", "no solve finished within the cell's budget"
    ok = sum(r["success"] for r in recs)
    stats = Counter(r["solver_status"] for r in recs)
    if cell.path == "blackbox":
        capped = sum(
            n
            for s, n in stats.items()
            if any(k in s for k in ("Maximum_Iterations", "WallTime", "time_limit"))
        )
        if capped:
            return "capped", (
                f"{capped}/{len(recs)} solves hit the black-box budget (iterations or wall time): "
                "its times are lower bounds"
            )
    if truncated:
        return "truncated", f"cell budget used up after {len(recs)} solves; later episodes skipped"
    if ok == len(recs):
        return "ok", None
    if ok == 0:
        return "failed", f"no solve succeeded; solver said {dict(stats)}"
    return (
        "partial",
        f"{len(recs) - ok}/{len(recs)} solves failed (safe fallback applied); solver said {dict(stats)}",
    )


def run_cell(cell: CellSpec, config: BenchConfig, starts: np.ndarray, cache: ModelCache) -> dict:
    """Build, then time one cell. Never raises for a solver or model problem: it reports a status."""
    from icctrl.mpc import run_episode
    from icctrl.mpc._defaults import CSTR_R, CSTR_SETTLE
    from plants import CSTR

    plant = CSTR()
    spec = MODELS[cell.model]
    rec: dict = {
        "id": cell.id,
        "plant": "cstr",
        "model": cell.model,
        "formulation": cell.formulation,
        "solver": cell.solver,
        "path": cell.path,
        "horizon": cell.horizon,
        "shooting": cell.shooting,
        "trained": spec.trained,
        "timing_only": not spec.trained,
        "model_note": spec.note,
    }
    try:  # loading (or, once, training) a model is not the controller's setup
        if cell.model != "first_principles":
            cache.get(cell.model)
        meta = cache.meta.get(cell.model, {})
        rec.update(trained=meta.get("trained", spec.trained), model_note=meta.get("note", spec.note))
        rec["timing_only"] = not rec["trained"]
        rec["model_meta"] = {k: v for k, v in meta.items() if k != "note"}
    except Exception as exc:  # noqa: BLE001 - a model that cannot be loaded is reported, the run goes on
        rec.update(status="error", message=f"model: {type(exc).__name__}: {exc}", setup_s={"build": None})
        return rec
    t_start = time.perf_counter()
    try:
        ctrl, blackbox = build_controller(
            cell,
            cache,
            blackbox_max_iter=config.blackbox_max_iter,
            blackbox_time_limit=config.blackbox_time_limit_s,
            lyapunov=config.lyapunov,
        )
    except Exception as exc:  # a cell that cannot be built is reported, the run goes on
        rec.update(status="error", message=f"build: {type(exc).__name__}: {exc}", setup_s={"build": None})
        return rec
    build_s = time.perf_counter() - t_start
    rec["shooting"] = ctrl.problem.shooting
    rec["certified_convex"] = bool(ctrl.certificate.convex)
    rec["solver_detail"] = type(ctrl.backend).__name__
    r = _Recorder(ctrl, blackbox)
    first_s = None
    is_bb = cell.path == "blackbox"
    truncated = False
    episodes: list[dict] = []
    try:
        if not is_bb:  # a first, discarded solve: cvxpy canonicalises and compiles on its first call
            r.phase = "first"
            t0 = time.perf_counter()
            ctrl.reset()
            r.step(starts[0])
            first_s = time.perf_counter() - t0
        is_ref = cell.horizon == config.blackbox_horizon()
        if not is_ref:  # the horizon sweep times the papers' three starts only, shorter episodes
            starts = starts[:3]
        steps = config.steps if is_ref else config.sweep_steps
        r.deadline = time.perf_counter() + (config.cell_budget_s if is_ref else config.sweep_budget_s)
        r.phase = "cold"
        for x in starts[:1] if is_bb else starts:
            ctrl.reset()
            r.step(x)
        r.phase = "closed_loop"
        runs = [(0, starts[0], config.blackbox_steps)] if is_bb and config.blackbox_steps else []
        if not is_bb:
            runs = [(k, x, steps) for _ in range(config.repeat) for k, x in enumerate(starts)]
        for k, x, steps in runs:
            n_before = len(r.records)
            try:
                ep = run_episode(plant, r, x, steps, Q=plant.P, R=CSTR_R, settle_tol=CSTR_SETTLE)
            except IcctrlError as exc:  # e.g. the controller refuses a state outside the model's region
                episodes.append({"start": plant.to_deviation(x).tolist(), "start_index": k,
                                 "steps": len(r.records) - n_before, "complete": False, "settled": False,
                                 "settle_steps": None, "cost": None, "error": f"controller: {exc}"})
                continue
            episodes.append(
                {
                    "start": plant.to_deviation(x).tolist(),
                    "start_index": k,
                    "steps": len(ep.inputs),
                    "complete": ep.error is None,
                    "settled": bool(ep.settled),
                    "settle_steps": ep.settle_step,
                    "cost": float(ep.cost),
                    "error": ep.error,
                }
            )
    except _OverBudget:
        truncated = True
    except Exception as exc:  # noqa: BLE001 - report any failure inside the loop as the cell's status
        rec.update(status="error", message=f"run: {type(exc).__name__}: {exc}")
    first = [x for x in r.records if x["phase"] == "first"]
    recs = [x for x in r.records if x["phase"] != "first"]
    warm = [x for x in recs if x["phase"] == "closed_loop"]
    cold = [x for x in recs if x["phase"] == "cold"]
    head = warm or cold
    rec["setup_s"] = {"build": build_s, "first_solve": first_s}
    rec["first_solve_ok"] = bool(first[0]["success"]) if first else None
    rec["solve_ms_source"] = "closed_loop" if warm else "cold"
    rec["solve_ms"] = distribution([x["solve_ms"] for x in head])
    rec["step_ms"] = distribution([x["step_ms"] for x in head])
    rec["step_cpu_ms"] = distribution([x["step_cpu_ms"] for x in head])
    rec["cold_ms"] = distribution([x["solve_ms"] for x in cold])
    rec["iterations"] = distribution([x["iterations"] for x in head], percentiles=False)
    rec["success_rate"] = float(np.mean([x["success"] for x in head])) if head else 0.0
    rec["cold_success_rate"] = float(np.mean([x["success"] for x in cold])) if cold else None
    rec["solves"] = len(recs)
    rec["solver_statuses"] = dict(Counter(x["solver_status"] for x in recs))
    rec["fallbacks"] = dict(Counter(x["status"] for x in recs if not x["success"]))
    rec["profile_ms"] = mean_profile([x["profile"] for x in head])
    rec["profile_calls"] = mean_profile([x["calls"] for x in head])
    if is_bb:
        rec["torch_rollouts_per_solve"] = (
            float(np.mean([x["torch_rollouts"] for x in recs])) if recs else None
        )
        rec["budget"] = {
            "max_iter": config.blackbox_max_iter,
            "time_limit_s": config.blackbox_time_limit_s,
            "closed_loop_steps": config.blackbox_steps,
            "cold_solves": 1,
        }
    rec["closed_loop"] = _episodes_summary(episodes)
    rec["solve_times_ms"] = [round(x["solve_ms"], 4) for x in warm]
    rec["cold_times_ms"] = [round(x["solve_ms"], 4) for x in cold]
    if "status" not in rec:
        rec["status"], rec["message"] = _status(cell, recs, truncated)
    rec["wall_s"] = time.perf_counter() - t_start
    rec["load_avg_1min"] = round(os.getloadavg()[0], 2)  # other jobs on the machine when the cell ended
    return rec
