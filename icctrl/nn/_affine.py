"""A convex model that starts at the affine fit: y = affine(x) + convex part(x).

An affine map of any sign keeps convexity, so the sum is exactly as convex as its convex part. `affine_start_`
fits the affine path by least squares to what the (shrunk) convex part leaves, so training begins at the
affine model's error and can only improve on it (the trainer keeps the best validation weights).
"""

from __future__ import annotations

import torch
from torch.nn.utils import parametrize

from icctrl.errors import InvalidValueError
from icctrl.nn._base import SequenceModel
from icctrl.nn._linear import Linear

#: Least size of the convex part at the start, relative to what the affine fit leaves: the start's error is
#: at most (1 + START_SHARE)² × the affine model's, and the part is large enough to learn from.
START_SHARE = 0.1


class AffinePlus(SequenceModel):
    """`convex` (any zoo model) plus a causal affine path of `lags` taps; certified as its convex part."""

    def __init__(self, convex: SequenceModel, lags: int):
        super().__init__(convex.n_in, convex.n_out)
        self.convex = convex
        self.affine = Linear(convex.n_in, convex.n_out, lags=lags)
        self.config = {**convex.config, "affine": lags}
        self.recurrent = True
        self.convex_inputs = convex.convex_inputs
        self.convexity_notes = convex.convexity_notes

    @property
    def name(self) -> str:
        return self.convex.config["name"]

    def forward_window(self, x: torch.Tensor) -> torch.Tensor:
        return self.convex.forward_window(x) + self.affine.forward_window(x)


def readout(model: SequenceModel) -> list[torch.nn.Linear]:
    """The layers that form a zoo model's output (scaling them scales the output, keeping weight signs)."""
    if hasattr(model, "w_out"):
        return [m for m in (model.w_out, getattr(model, "w_out_skip", None)) if m is not None]
    if hasattr(model, "hidden_w"):
        return [model.hidden_w[-1], model.skip[-1]]
    if hasattr(model, "z_w"):
        return [model.x_w[-1], model.z_w[-1], model.ctx_out[-1]]
    if hasattr(model, "head"):
        return [model.head]
    raise InvalidValueError(f"no read-out layers known for {type(model).__name__}")


@torch.no_grad()
def affine_start_(model: AffinePlus, x: torch.Tensor, y: torch.Tensor, share: float = START_SHARE) -> AffinePlus:
    """Scale the convex part's read-out by the factor s ≥ 0 that best fits what the affine least-squares model
    leaves (at least `share` of that remainder's size, so the convex part can learn), then fit the affine path
    to y − s·convex(x). x, y: training windows in scaled units."""
    if not isinstance(model, AffinePlus):
        raise InvalidValueError(f"affine_start_ needs an AffinePlus model, got {type(model).__name__}")
    fit = Linear(model.n_in, model.n_out, lags=model.affine.lags).double()
    xd, yd = x.double(), y.double()
    rest = yd - fit.fit(xd, yd)(xd)  # what the affine model cannot explain
    c = model.convex.forward_window(x).double()
    c_rest = c - fit.fit(xd, c)(xd)  # the convex part beyond its own affine fit
    size = float(c_rest.pow(2).sum())
    if size > 0:
        best = float((rest * c_rest).sum()) / size
        factor = max(best, share * float(rest.pow(2).sum().sqrt()) / size**0.5)
        for lin in readout(model.convex):
            if parametrize.is_parametrized(lin, "weight"):
                lin.weight = lin.weight * factor
            else:
                lin.weight.mul_(factor)
            if lin.bias is not None:
                lin.bias.mul_(factor)
    model.affine.fit(x, y - model.convex.forward_window(x))
    return model
