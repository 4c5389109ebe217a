"""The model zoo: input-convex networks (ICNN, PICNN, ICRNN, IC-LSTM, ICLRNN), the affine path that starts them
at the least-squares fit (AffinePlus), and baselines (the affine Linear, LRNN, RNN, LSTM)."""

from icctrl.nn._affine import AffinePlus, affine_start_
from icctrl.nn._base import Doubling, SequenceModel
from icctrl.nn._constraints import (
    WEIGHTS,
    ExpNonNegative,
    NonNegative,
    NonNegSpectral,
    SpectralBound,
    constrain,
    project_,
)
from icctrl.nn._iclstm import ICLSTM
from icctrl.nn._icnn import ICNN, PICNN
from icctrl.nn._linear import Linear
from icctrl.nn._recurrent import ICLRNN, ICRNN, LRNN, LSTM, RNN
from icctrl.nn._registry import MODELS, build, from_config
from icctrl.nn._scaled import Scaled

__all__ = ["AffinePlus", "affine_start_", "Linear", "Doubling", "SequenceModel", "NonNegative", "NonNegSpectral",
           "SpectralBound", "ExpNonNegative", "WEIGHTS", "constrain", "project_", "ICLSTM", "ICNN", "PICNN", "ICLRNN",
           "ICRNN", "LRNN", "LSTM", "RNN", "MODELS", "build", "from_config", "Scaled"]
