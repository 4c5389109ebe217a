"""One soak episode: a closed loop that records every failure instead of stopping the soak."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np

from icctrl.errors import IcctrlError, IntegrationError
from plants.base import U_BOUND_TOL

#: Longest message kept per exception or fallback reason (the JSON stays readable for 1000 starts).
MESSAGE_CHARS = 240


def _message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:MESSAGE_CHARS]


def _new_record(x0: np.ndarray) -> dict:
    return {"start": x0.tolist(), "steps_run": 0, "settled": False, "cost": 0.0, "successes": 0,
            "fallbacks": 0, "extrapolating": 0, "statuses": Counter(), "fallback_reasons": Counter(), "nan_actions": 0,
            "violations": Counter(), "solve_times": [], "worst_step_ms": 0.0, "worst_step_cpu_ms": 0.0,
            "worst_step_at": None,
            "unhandled": None, "error": None, "error_kind": None, "v_start": None, "v_end": None, "in_band": []}


def _settle_step(in_band: list[bool], ran_all: bool) -> int | None:
    """The first step after which the state stays in the settling band to the end (None when it does not)."""
    if not ran_all or not in_band or not in_band[-1]:
        return None
    k = len(in_band)
    while k > 0 and in_band[k - 1]:
        k -= 1
    return k + 1


def _stop(rec: dict, kind: str, message: str) -> None:
    """End the episode with a reason: "unhandled" (not an IcctrlError: a bug), "icctrl_error" (a clear
    refusal), "nan_action" or "violation"."""
    rec["error_kind"] = kind
    rec["unhandled" if kind == "unhandled" else "error"] = message


def _record_info(rec: dict, info: dict) -> None:
    st = info.get("solve_time")
    rec["solve_times"].append(float(st) if st is not None and np.isfinite(st) else float("nan"))
    rec["statuses"][str(info.get("status"))] += 1
    rec["extrapolating"] += bool(info.get("extrapolating"))
    if info.get("success"):
        rec["successes"] += 1
    else:
        rec["fallbacks"] += 1
        rec["fallback_reasons"][str(info.get("solver_status"))[:MESSAGE_CHARS]] += 1


def _check_action(rec: dict, plant, u, k: int) -> np.ndarray | None:
    """The action as a float vector, or None after recording why it must not reach the plant."""
    u = np.asarray(u, dtype=float)
    if u.shape != (plant.nu,) or not np.all(np.isfinite(u)):
        rec["nan_actions"] += 1
        _stop(rec, "nan_action", f"step {k}: the controller returned the action {u.tolist()}")
        return None
    slack = U_BOUND_TOL * (plant.u_ub - plant.u_lb)
    if np.any(u < plant.u_lb - slack) or np.any(u > plant.u_ub + slack):
        rec["violations"]["input_bounds"] += 1
        _stop(rec, "violation", f"step {k}: action {u.tolist()} outside the hard input bounds "
                                f"[{plant.u_lb.tolist()}, {plant.u_ub.tolist()}]")
        return None
    return u


def _check_state(rec: dict, plant, x: np.ndarray, k: int) -> bool:
    if not np.all(np.isfinite(x)):
        rec["violations"]["nan_state"] += 1
        _stop(rec, "violation", f"step {k}: the plant state became {x.tolist()}")
        return False
    if np.any(x < plant.x_lb) or np.any(x > plant.x_ub):
        rec["violations"]["state_region"] += 1
        _stop(rec, "violation", f"step {k}: state {x.tolist()} left the plant's valid region "
                                f"[{plant.x_lb.tolist()}, {plant.x_ub.tolist()}]")
        return False
    return True


def _measure_and_step(controller, injection, k: int, x: np.ndarray):
    """What the controller sees and answers: a non-finite measurement never reaches `step`; the controller's
    safe action (its failure path) is applied instead, with the reason as the solver status."""
    y = injection.measure(k, x.copy())
    if np.all(np.isfinite(y)):
        return controller.step(y)
    return controller.fallback(f"invalid_measurement: {np.asarray(y).tolist()}")


def soak_episode(plant, controller, x0, steps: int, *, settle_tol=None, cost=None, injection=None) -> dict:
    """Run `controller` on `plant` from `x0` for `steps` periods and return what happened, as plain data.

    Never raises (except KeyboardInterrupt): an exception of the controller or plant ends the episode and
    is recorded — `unhandled` for anything that is not an IcctrlError (a bug), `error` for an IcctrlError.
    Each action is checked before it reaches the plant: a non-finite or wrongly shaped action counts in
    `nan_actions`, one outside the plant's hard input bounds in `violations["input_bounds"]`; a non-finite
    next state counts in `violations["nan_state"]`, one outside the plant's valid region in
    `violations["state_region"]`. `cost(x_next, u)` adds up a figure of merit when given.

    `injection` (a fault's Injection) sets the true plant, what the controller measures and what the
    actuator applies; the hard-bound check is on the controller's action, the state checks on the true plant.
    """
    from icctrl.reliability._faults import Injection

    injection = injection if injection is not None else Injection(plant)
    true_plant = injection.plant
    x = np.asarray(x0, dtype=float)
    rec = _new_record(x)
    lyap = getattr(plant, "lyapunov", None)
    if lyap is not None:
        rec["v_start"] = float(lyap(x))
    k = 0
    try:
        controller.reset()
        for k in range(steps):
            injection.before_step(k)
            t0, cpu0 = time.perf_counter(), time.thread_time()
            u, info = _measure_and_step(controller, injection, k, x)
            wall = (time.perf_counter() - t0) * 1e3
            if wall > rec["worst_step_ms"]:  # its CPU time (less when the core was taken) and when it began (epoch s)
                rec["worst_step_ms"], rec["worst_step_cpu_ms"] = wall, (time.thread_time() - cpu0) * 1e3
                rec["worst_step_at"] = time.time() - wall * 1e-3
            _record_info(rec, info)
            u = _check_action(rec, plant, u, k)
            if u is None:
                break
            try:
                x_next = true_plant.step(x, injection.actuate(k, u))
            except IntegrationError as exc:
                rec["violations"]["nan_state"] += 1
                _stop(rec, "violation", f"step {k}: plant: {_message(exc)}")
                break
            ok = _check_state(rec, plant, x_next, k)
            if not np.all(np.isfinite(x_next)):
                break
            rec["steps_run"] = k + 1
            if settle_tol is not None:
                rec["in_band"].append(bool(np.all(np.abs(x_next - plant.x_ss) <= np.asarray(settle_tol))))
            if cost is not None:
                rec["cost"] += float(cost(x_next, u))
            x = x_next
            if not ok:
                break
    except KeyboardInterrupt:
        raise
    except IcctrlError as exc:
        _stop(rec, "icctrl_error", f"step {k}: {_message(exc)}")
    except Exception as exc:  # the soak's purpose: count bugs, never crash on one
        _stop(rec, "unhandled", f"step {k}: {_message(exc)}")
    if lyap is not None and np.all(np.isfinite(x)):
        rec["v_end"] = float(lyap(x))
    rec["x_end"] = x.tolist()
    in_band = rec.pop("in_band")
    if settle_tol is not None:
        rec["settle_step"] = _settle_step(in_band, rec["steps_run"] == steps)
    if settle_tol is not None and rec["steps_run"] == steps and rec["error_kind"] is None:
        rec["settled"] = bool(np.all(np.abs(x - plant.x_ss) <= np.asarray(settle_tol)))
    for key in ("statuses", "fallback_reasons", "violations"):
        rec[key] = dict(rec[key])
    return rec
