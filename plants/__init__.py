"""Physics of the plants icctrl learns and controls: CSTR, solar-PV converter, PV + battery microgrid.

pvlib and pandas are imported lazily, inside the PV classes, so `import plants` stays light.
"""

from plants._weather import SITES, Site
from plants.base import Plant
from plants.cstr import CSTR
from plants.microgrid import Microgrid
from plants.pv_converter import MPP, PVConverter

__all__ = ["Plant", "CSTR", "PVConverter", "Microgrid", "MPP", "SITES", "Site"]
