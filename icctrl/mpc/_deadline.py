"""A step deadline that holds on every solver path: the solve runs in one worker thread (CasADi, Ipopt, torch and
the cvxpy solvers release the GIL while they compute), and the control loop stops waiting at the deadline.
A late solve finishes in the background and its result is dropped; the next solve waits for it only up to its
own deadline, and a back-end reset asked for meanwhile is queued behind it (`when_idle`), so the back-end is
never used by two calls at once. No solve is started once the deadline has
passed, and one that had not begun by then is cancelled. The solve thread keeps the loop's priority: a late
solve demoted to SCHED_IDLE or nice 19 can hold the GIL while starved, and the loop then waits for it (measured
in docs/reliability.md). Python's thread switch interval is lowered to SWITCH_INTERVAL so that the loop gets
the GIL back within a fraction of a millisecond of its deadline."""

from __future__ import annotations

import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

#: Seconds between forced GIL hand-overs while a time-limited controller exists (Python's default is 5 ms).
SWITCH_INTERVAL = 2e-4
#: Keys of the dictionaries CasADi returns on each solve (solver stats, nlpsol results), held for the process's life.
_KEYS: set[str] = set()


def keep_keys(d: dict) -> dict:
    """`d` (a dictionary CasADi built for this call), its key strings kept alive.

    Each conversion of a CasADi dictionary interns its keys, and a key no Python object holds is interned and freed
    again on every call. The dummies that leaves in the interpreter's table of interned strings make it rebuild the
    whole table every few thousand solves, inside one solve (`examples/interned_key_stall.py`: 10.9 ms at solve 1516
    of the convex controller). Holding the keys makes every later conversion find them."""
    if not _KEYS.issuperset(d):
        _KEYS.update(d)
    return d


class LateSolve(Exception):
    """The solve did not return before the step's deadline."""


class SolveThread:
    """Runs `fn()` in a dedicated thread and returns its result, or raises LateSolve at the deadline."""

    def __init__(self):
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="icctrl-solve")
        self._late: Future | None = None
        self._pool.submit(int).result()  # start the thread now, not inside the first step
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))

    @property
    def busy(self) -> bool:
        """Whether a late solve is still running."""
        return self._late is not None and not self._late.done()

    def when_idle(self, fn) -> None:
        """Calls fn now when no late solve runs, else queues it in the solve thread behind the late solve (the
        thread runs one call at a time, in order); the next `run` waits for it as it would for the late solve."""
        if not self.busy:
            fn()
            return
        self._late = self._pool.submit(fn)

    def run(self, fn, timeout: float):
        """fn's result if it arrives within `timeout` seconds (including any wait for a previous late solve)."""
        end = time.perf_counter() + max(timeout, 0.0)
        if self._late is not None:
            try:
                self._late.result(timeout=max(end - time.perf_counter(), 0.0))
            except FutureTimeout as exc:
                raise LateSolve("the previous late solve (or the reset queued behind it) is still running") from exc
            except Exception:  # a late solve's own failure was already answered by a fallback
                pass
            self._late = None
        left = end - time.perf_counter()
        if left <= 0:  # a solve started now could only finish late and compete with the loop for a core
            raise LateSolve("no time left for a solve before the step deadline")
        fut = self._pool.submit(fn)
        try:
            return fut.result(timeout=left)
        except FutureTimeout as exc:
            if fut.cancel():
                raise LateSolve("the solve had not started by the step deadline") from exc
            self._late = fut
            raise LateSolve("the solve did not return before the step deadline") from exc

    def __getstate__(self):  # controllers are copied to worker processes before their first step
        return {}

    def __setstate__(self, state):
        self.__init__()


class Duration:
    """How long a recurring piece of a solve (an iteration, a phase) is expected to take: the larger of the running
    mean of its measured durations and the longest recent one. The longest decays by DECAY per solve, so that one
    preempted measurement does not cut every later solve; the mean keeps the estimate from decaying below the
    typical duration while solves that stop early measure nothing."""

    DECAY = 0.9
    WEIGHT = 0.2  # of the newest measurement in the running mean

    def __init__(self):
        self.mean = self.peak = 0.0

    def add(self, seconds: float) -> None:
        self.mean = seconds if not self.mean else (1 - self.WEIGHT) * self.mean + self.WEIGHT * seconds
        self.peak = max(self.peak, seconds)

    def decay(self) -> None:
        self.peak *= self.DECAY

    @property
    def expected(self) -> float:
        return max(self.mean, self.peak)

