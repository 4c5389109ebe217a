"""How long a CasADi solve takes to return once the deadline's iteration callback has said stop, with nlpsol's
default `calc_lam_p=True` (it then computes the parameters' multipliers: a reverse pass through the model) and with
icctrl's `calc_lam_p=False`. Everything a solve does after that callback is past the deadline's last check.

    python examples/after_stop.py --controller convex --steps 400

Each round builds the controller both ways and runs the same seeded states; the callback is made to stop every solve
at its first call. Figures in ms: median, p99 and max over all rounds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import icctrl.mpc._solvers as S
from icctrl.mpc._defaults import default_controller
from plants import CSTR

_MARK: dict[str, float] = {}
_wall_clock_eval = S.WallClock.eval


def _stopping_eval(self, arg):
    _wall_clock_eval(self, arg)
    _MARK["stop"] = time.perf_counter()
    return [1.0]


class _Timed:
    """The nlpsol function, its return time noted."""

    def __init__(self, fn):
        self._fn = fn

    def __call__(self, **kw):
        out = self._fn(**kw)
        _MARK["returned"] = time.perf_counter()
        return out

    def stats(self):
        return self._fn.stats()


def after_stop_ms(name: str, calc_lam_p: bool, states: np.ndarray) -> list[float]:
    ctrl = default_controller("cstr", name, horizon=10, time_limit=0.05, options={"calc_lam_p": calc_lam_p})
    ctrl.backend.solver = _Timed(ctrl.backend.solver)
    out = []
    for x in states:
        _MARK.clear()
        ctrl.step(x)
        if "stop" in _MARK and "returned" in _MARK:
            out.append((_MARK["returned"] - _MARK["stop"]) * 1e3)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--controller", default="convex", choices=["convex", "first_principles"])
    ap.add_argument("--steps", type=int, default=400, help="solves per setting")
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args(argv)
    S.WallClock.eval = _stopping_eval
    states = CSTR().sample_stability_region(max(args.steps // args.rounds, 1), np.random.default_rng(0))
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.rounds):
        for flag in (True, False):
            times[flag] += after_stop_ms(args.controller, flag, states)
    for flag, t in times.items():
        t = np.array(t)
        print(f"{args.controller}, calc_lam_p={flag}: {t.size} solves, callback stop -> solver return median "
              f"{np.median(t):.3f} ms, p99 {np.percentile(t, 99):.3f}, max {t.max():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
