"""Physics of the plants icctrl learns and controls: CSTR, solar-PV converter, PV + battery microgrid."""

from plants.base import Plant
from plants.cstr import CSTR

__all__ = ["Plant", "CSTR"]
