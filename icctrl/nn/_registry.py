"""Build a model of the zoo by name: `build("iclstm", n_in=4, n_out=2, hidden=64, layers=2)`."""

from __future__ import annotations

from icctrl.errors import InvalidValueError, UnknownNameError
from icctrl.nn._affine import AffinePlus
from icctrl.nn._base import SequenceModel
from icctrl.nn._iclstm import ICLSTM
from icctrl.nn._icnn import ICNN, PICNN
from icctrl.nn._linear import Linear
from icctrl.nn._recurrent import ICLRNN, ICRNN, LRNN, LSTM, RNN

MODELS: dict[str, type[SequenceModel]] = {
    "icnn": ICNN, "picnn": PICNN, "icrnn": ICRNN, "iclstm": ICLSTM, "iclrnn": ICLRNN,
    "lrnn": LRNN, "rnn": RNN, "lstm": LSTM, "linear": Linear,
}


def build(name: str, n_in: int, n_out: int, hidden: int | None = None, layers: int | None = None,
          affine: int | None = None, **kwargs) -> SequenceModel:
    """A fresh model of the named type; extra keyword arguments go to its constructor. `affine=lags` adds a
    causal affine path of that many taps (`AffinePlus`). "linear" takes `lags`, no hidden size or layers."""
    try:
        cls = MODELS[name.lower()]
    except (KeyError, AttributeError):
        raise UnknownNameError(f"unknown model {name!r}; choose one of {sorted(MODELS)}") from None
    if cls is Linear:
        given = {k: v for k, v in (("hidden", hidden), ("layers", layers), ("affine", affine)) if v is not None}
        if given:
            raise InvalidValueError(f"the linear model takes lags=, not {given}")
        return cls(n_in, n_out, **kwargs)
    model = cls(n_in, n_out, hidden=64 if hidden is None else hidden, layers=2 if layers is None else layers,
                **kwargs)
    return AffinePlus(model, affine) if affine else model


def from_config(config: dict) -> SequenceModel:
    """Rebuild a model from its `.config` (as stored in checkpoints)."""
    cfg = dict(config)
    try:
        name, n_in, n_out = cfg.pop("name"), cfg.pop("n_in"), cfg.pop("n_out")
    except KeyError as exc:
        raise UnknownNameError(f"model config lacks the key {exc.args[0]!r}: {config}") from None
    return build(name, n_in, n_out, **cfg)
