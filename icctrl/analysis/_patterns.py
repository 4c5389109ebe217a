"""Activation patterns of piecewise-linear networks: the on/off state of every ReLU unit a forward pass meets.

The units are found by intercepting the ReLU calls of the forward pass (`F.relu`, `torch.relu`, `nn.ReLU`,
`Tensor.relu`, leaky ReLU), so any torch model works, icctrl's zoo included, without knowing its layers. Only
calls whose input depends on the data count: a ReLU applied to weights (a parametrisation) is not a unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call
from torch.overrides import TorchFunctionMode

from icctrl.errors import InvalidValueError, ShapeError

#: Functions whose linear piece is chosen by the sign of their input (unit "on" when the input is > 0).
PIECEWISE_LINEAR = frozenset({"relu", "relu_", "leaky_relu", "leaky_relu_"})


@dataclass(frozen=True)
class ActivationPatterns:
    """`bits[i, j]`: unit j is on (pre-activation > 0) at input i; `layers`: (label, units) of each ReLU call in
    the order of the forward pass, the label naming the innermost module that made the call and the call's index."""

    bits: torch.Tensor
    layers: tuple[tuple[str, int], ...]

    @property
    def units(self) -> int:
        return int(self.bits.shape[1])


class _Recorder(TorchFunctionMode):
    """Records the sign of the input of every data-dependent piecewise-linear call."""

    def __init__(self, batch: int):
        super().__init__()
        self.batch, self.bits, self.layers, self.scope = batch, [], [], []

    def enter(self, label: str):
        def hook(module, args) -> None:
            self.scope.append(label)
        return hook

    def leave(self, module, args, out) -> None:
        self.scope.pop()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in PIECEWISE_LINEAR and args and isinstance(args[0], torch.Tensor) and args[0].requires_grad:
            pre = args[0]
            if pre.dim() == 0 or pre.shape[0] != self.batch:
                raise ShapeError(f"{name} call #{len(self.layers)} has input shape {tuple(pre.shape)}, whose first "
                                 f"dimension is not the batch of {self.batch} points")
            self.bits.append((pre.detach() > 0).reshape(self.batch, -1))
            where = self.scope[-1] if self.scope else ""
            self.layers.append((f"{where or 'model'}: {name} #{len(self.layers)}", int(self.bits[-1].shape[1])))
        return func(*args, **kwargs)


def activation_patterns(model: nn.Module, x: torch.Tensor) -> ActivationPatterns:
    """Patterns of `model` at each of the inputs `x` (first dimension: the points; the rest: one model input)."""
    if not isinstance(x, torch.Tensor) or x.dim() < 1:
        raise ShapeError(f"inputs must be a tensor with a leading point dimension, got {type(x).__name__}")
    if not torch.isfinite(x).all():
        raise InvalidValueError("inputs contain non-finite values")
    # Parameters are detached so that only tensors computed from x require grad: that is how units are told
    # from ReLUs applied to weights.
    state = {k: v.detach() for k, v in model.named_parameters()}
    state.update({k: v for k, v in model.named_buffers()})
    rec = _Recorder(x.shape[0])
    hooks = []
    for mod_name, mod in model.named_modules():
        hooks.append(mod.register_forward_pre_hook(rec.enter(f"{mod_name} ({type(mod).__name__})" if mod_name else "")))
        hooks.append(mod.register_forward_hook(rec.leave))
    try:
        with torch.enable_grad(), rec:
            functional_call(model, state, (x.detach().requires_grad_(True),))
    finally:
        for h in hooks:
            h.remove()
    if not rec.bits:
        raise InvalidValueError(f"{type(model).__name__} has no ReLU units on its data path: activation patterns "
                                "need a ReLU (or leaky ReLU) network")
    return ActivationPatterns(torch.cat(rec.bits, dim=1), tuple(rec.layers))
