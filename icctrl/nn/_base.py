"""What every icctrl model shares: (batch, time, n_in) windows, a config to rebuild it, [x, −x] doubling,
and the named activations. Certificates, exports and Lipschitz bounds are read from the graph each forward runs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from icctrl.errors import InvalidValueError, ShapeError, UnknownNameError

ACTIVATIONS = {
    "relu": F.relu,
    "softplus": F.softplus,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.01),
    "celu": F.celu,
    "elu": F.elu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


def activation(name: str) -> callable:
    """The torch function of a named activation (its facts are read from the graph it runs)."""
    if name not in ACTIVATIONS:
        raise UnknownNameError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def spectral_norm(w: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(w.detach().double(), ord=2))


class SequenceModel(nn.Module):
    """Base of the zoo: maps (batch, time, n_in) float tensors to (batch, time, n_out)."""

    recurrent: bool = False
    #: Which inputs the model is built to be convex in (indices); certify() uses this by default.
    convex_inputs: tuple[int, ...] = ()
    convexity_notes: tuple[str, ...] = ()

    def __init__(self, n_in: int, n_out: int, **config):
        super().__init__()
        for k, v in (("n_in", n_in), ("n_out", n_out)):
            if not isinstance(v, int) or v < 1:
                raise InvalidValueError(f"{k} must be a positive integer, got {v!r}")
        self.n_in, self.n_out = n_in, n_out
        self.config = {"name": getattr(type(self), "name", type(self).__name__.lower()), "n_in": n_in, "n_out": n_out,
                       **config}
        self.input_names: tuple[str, ...] | None = None
        self.output_names: tuple[str, ...] | None = None

    def _as_window(self, x: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """Accept (batch, time, n_in), or (batch, n_in) for one step; check the feature size."""
        if not isinstance(x, torch.Tensor):
            raise ShapeError(f"{type(self).__name__} expects a torch tensor, got {type(x).__name__}")
        squeeze = x.dim() == 2
        if squeeze:
            x = x.unsqueeze(1)
        if x.dim() != 3 or x.shape[-1] != self.n_in:
            raise ShapeError(f"{type(self).__name__} expects (batch, time, {self.n_in}) inputs, got {tuple(x.shape)}")
        return x, squeeze

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, squeeze = self._as_window(x)
        y = self.forward_window(x)
        return y.squeeze(1) if squeeze else y

    def forward_window(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError



class Doubling(nn.Module):
    """x → [x, −x_d] for the doubled features d: lets a model nondecreasing in its inputs be non-monotone in x."""

    def __init__(self, n_in: int, doubled: Sequence[int] | bool | None):
        super().__init__()
        if doubled is True or doubled is None:
            idx = list(range(n_in))
        elif doubled is False:
            idx = []
        else:
            idx = sorted(set(int(i) for i in doubled))
            bad = [i for i in idx if not 0 <= i < n_in]
            if bad:
                raise ShapeError(f"doubled indices {bad} are out of range for {n_in} inputs")
        self.doubled = tuple(idx)
        self.register_buffer("_idx", torch.tensor(idx, dtype=torch.long), persistent=False)
        self.n_out = n_in + len(idx)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.doubled:
            return x
        return torch.cat([x, -x.index_select(-1, self._idx.to(x.device))], dim=-1)

    @property
    def gain(self) -> float:
        """Lipschitz constant of the doubling in 2-norms: √2 when any feature is doubled."""
        return math.sqrt(2.0) if self.doubled else 1.0
