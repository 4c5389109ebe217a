"""Reliability: soak runs that drive controllers in closed loop from many starts and count every exception,
NaN action, hard-constraint violation and fallback, so that "never a silent wrong action" is measured."""

from icctrl.reliability._episode import soak_episode
from icctrl.reliability._soak import SOAK_CONTROLLERS, soak, summarize

__all__ = ["SOAK_CONTROLLERS", "soak", "soak_episode", "summarize"]
