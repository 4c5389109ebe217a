"""icctrl: real-time convex model predictive control with input-convex neural networks."""

from icctrl._version import __version__
from icctrl.errors import CheckpointError, IcctrlError

__all__ = ["__version__", "CheckpointError", "IcctrlError"]
