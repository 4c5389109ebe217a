"""Reliability: soak runs that drive controllers in closed loop from many starts, under named fault scenarios,
on local processes or a Dask cluster, and count every exception, NaN action, hard-constraint violation,
fallback and late step, so that "never a silent wrong action" is measured."""

from icctrl.reliability._engine import RecordStore, run_tasks
from icctrl.reliability._episode import soak_episode
from icctrl.reliability._faults import FAULTS, Fault, Injection, fault_names
from icctrl.reliability._soak import SOAK_CONTROLLERS, soak, summarize

__all__ = ["FAULTS", "SOAK_CONTROLLERS", "Fault", "Injection", "RecordStore", "fault_names", "run_tasks", "soak",
           "soak_episode", "summarize"]
