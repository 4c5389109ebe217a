"""A step deadline that holds on every solver path: the solve runs in one worker thread (CasADi, Ipopt, torch
and the cvxpy solvers release the GIL while they compute), and the control loop stops waiting at the deadline.
A late solve finishes in the background and its result is dropped; the next solve waits for it only up to
its own deadline. Python's thread switch interval is lowered to SWITCH_INTERVAL so that the loop gets the GIL
back within a fraction of a millisecond of its deadline."""

from __future__ import annotations

import sys
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

#: Seconds between forced GIL hand-overs while a time-limited controller exists (Python's default is 5 ms).
SWITCH_INTERVAL = 2e-4
#: Nice increment of the solve thread: a late solve still running must not delay the loop's return on a busy core.
SOLVE_NICE = 5


def _lower_priority() -> None:
    """Raise this thread's nice value (Linux: per thread); elsewhere a no-op."""
    import os
    import threading

    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + SOLVE_NICE)
    except (AttributeError, OSError):
        pass


class LateSolve(Exception):
    """The solve did not return before the step's deadline."""


class SolveThread:
    """Runs `fn()` in a dedicated thread and returns its result, or raises LateSolve at the deadline."""

    def __init__(self):
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="icctrl-solve")
        self._late: Future | None = None
        self._pool.submit(_lower_priority).result()  # start the thread now, not inside the first step
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))

    @property
    def busy(self) -> bool:
        """Whether a late solve is still running."""
        return self._late is not None and not self._late.done()

    def run(self, fn, timeout: float):
        """fn's result if it arrives within `timeout` seconds (including any wait for a previous late solve)."""
        import time

        end = time.perf_counter() + max(timeout, 0.0)
        if self._late is not None:
            try:
                self._late.result(timeout=max(end - time.perf_counter(), 0.0))
            except FutureTimeout as exc:
                raise LateSolve("the previous late solve is still running") from exc
            except Exception:  # a late solve's own failure was already answered by a fallback
                pass
            self._late = None
        fut = self._pool.submit(fn)
        try:
            return fut.result(timeout=max(end - time.perf_counter(), 0.0))
        except FutureTimeout as exc:
            self._late = fut
            raise LateSolve("the solve did not return before the step deadline") from exc

    def __getstate__(self):  # controllers are copied to worker processes before their first step
        return {}

    def __setstate__(self, state):
        self.__init__()
