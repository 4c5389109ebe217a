"""Scalers inside the model: y = out_scale·f((x − in_offset)/in_scale) + out_offset, exported with it.

Positive scales keep curvature and monotonicity, so the certificate of the wrapped model carries over.
"""

from __future__ import annotations

import numpy as np
import torch

from icctrl.errors import InvalidValueError, ShapeError
from icctrl.nn._base import SequenceModel


def _vec(v, n: int, what: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(v, dtype=np.float64)).reshape(-1)
    if t.numel() == 1:
        t = t.expand(n).clone()
    if t.numel() != n:
        raise ShapeError(f"{what} has {t.numel()} entries, expected {n}")
    if not torch.isfinite(t).all():
        raise InvalidValueError(f"{what} contains non-finite values: {t.tolist()}")
    return t


class Scaled(SequenceModel):
    """A model in physical units: affine input/output scalers (positive scales) around a model in scaled units."""

    def __init__(self, model: SequenceModel, in_offset, in_scale, out_offset, out_scale):
        super().__init__(model.n_in, model.n_out)
        self.inner_config = dict(model.config)
        self.model = model
        self.recurrent = model.recurrent
        self.convex_inputs = model.convex_inputs
        self.convexity_notes = model.convexity_notes
        for name, v, n in (("in_offset", in_offset, model.n_in), ("in_scale", in_scale, model.n_in),
                           ("out_offset", out_offset, model.n_out), ("out_scale", out_scale, model.n_out)):
            t = _vec(v, n, name)
            if name.endswith("scale") and not bool((t > 0).all()):
                raise InvalidValueError(f"{name} must be positive (a negative scale flips convexity), got {t.tolist()}")
            self.register_buffer(name, t.to(torch.get_default_dtype()))
        self.config = dict(model.config)

    @property
    def name(self) -> str:
        return self.model.name

    def forward_window(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.in_offset.to(x.dtype)) / self.in_scale.to(x.dtype)
        return self.model.forward_window(z) * self.out_scale.to(x.dtype) + self.out_offset.to(x.dtype)

