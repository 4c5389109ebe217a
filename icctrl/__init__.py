"""icctrl: real-time convex model predictive control with input-convex neural networks."""

from icctrl._version import __version__
from icctrl.errors import CheckpointError, IcctrlError

__all__ = ["__version__", "CheckpointError", "IcctrlError", "load", "load_default"]


def load(path):
    """The ready model of a checkpoint file (Scaled wrapper, eval mode, names set); unsafe, corrupt or
    wrong-version files raise CheckpointError and execute nothing (see icctrl.train.load)."""
    from icctrl.train import load as _load

    return _load(path)


def load_default(plant: str = "cstr", name: str = "iclstm"):
    """A shipped default model from icctrl/assets/ ("iclstm", "iclrnn", "lstm", "icrnn_cost" for the CSTR)."""
    from icctrl.train import load_default as _load_default

    return _load_default(plant, name)
