"""Build a model of the zoo by name: `build("iclstm", n_in=4, n_out=2, hidden=64, layers=2)`."""

from __future__ import annotations

from icctrl.errors import UnknownNameError
from icctrl.nn._base import SequenceModel
from icctrl.nn._iclstm import ICLSTM
from icctrl.nn._icnn import ICNN, PICNN
from icctrl.nn._recurrent import ICLRNN, ICRNN, LRNN, LSTM, RNN

MODELS: dict[str, type[SequenceModel]] = {
    "icnn": ICNN, "picnn": PICNN, "icrnn": ICRNN, "iclstm": ICLSTM, "iclrnn": ICLRNN,
    "lrnn": LRNN, "rnn": RNN, "lstm": LSTM,
}


def build(name: str, n_in: int, n_out: int, hidden: int = 64, layers: int = 2, **kwargs) -> SequenceModel:
    """A fresh model of the named type; extra keyword arguments go to its constructor."""
    try:
        cls = MODELS[name.lower()]
    except (KeyError, AttributeError):
        raise UnknownNameError(f"unknown model {name!r}; choose one of {sorted(MODELS)}") from None
    return cls(n_in, n_out, hidden=hidden, layers=layers, **kwargs)


def from_config(config: dict) -> SequenceModel:
    """Rebuild a model from its `.config` (as stored in checkpoints)."""
    cfg = dict(config)
    try:
        name, n_in, n_out = cfg.pop("name"), cfg.pop("n_in"), cfg.pop("n_out")
    except KeyError as exc:
        raise UnknownNameError(f"model config lacks the key {exc.args[0]!r}: {config}") from None
    return build(name, n_in, n_out, **cfg)
