"""IC-LSTM (Wang et al.): shared non-negative gate weights, per-gate non-negative scales, ReLU gates.

All gates of unit j at step t are convex nondecreasing functions of ONE pre-activation s_t,j, so their
product within a step is convex: the output of step t is convex in the input of step t with the past fixed.
Across steps f_t ⊙ c_(t−1) and o_t ⊙ relu(c_t) multiply functions of different arguments, so the model is not
jointly convex over a varying window; `certify` says so and names the product.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from icctrl.errors import InvalidValueError
from icctrl.nn._base import Doubling, SequenceModel
from icctrl.nn._base import activation as get_activation
from icctrl.nn._constraints import constrain, nonneg_init_

GATES = ("i", "f", "o", "g")  # input, forget, output gates and the cell candidate


class _GateScales(nn.Module):
    """Per-gate non-negative diagonal scales d_k (hidden × 4) and free biases b_k.

    Initial scales in (0.2, 0.6): ReLU gates are unbounded, and with scales near 1 the forget gate exceeds one on
    held inputs, so an untrained 2×64 model already overflows within ten steps."""

    def __init__(self, hidden: int, weights: str = "softplus"):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(hidden, len(GATES)).uniform_(0.2, 0.6))
        self.bias = nn.Parameter(torch.zeros(hidden, len(GATES)))
        constrain(self, "weight", "nonneg", weights)


def _nonneg(n_in: int, n_out: int, bias: bool = False, gain: float = 1.0, weights: str = "softplus") -> nn.Linear:
    lin = nn.Linear(n_in, n_out, bias=bias)
    nonneg_init_(lin.weight, gain)
    return constrain(lin, "weight", "nonneg", weights)


class ICLSTM(SequenceModel):
    """Input-convex LSTM, multi-layer, input [x, −x] on the `doubled` features, non-negative read-out + skip."""

    name = "iclstm"
    recurrent = True
    convexity_notes = (
        "IC-LSTM is convex per step (certify(model, per_step=True)): the output of step t in the input of step "
        "t with the past held fixed. It is not jointly convex over a varying window.",
    )

    def __init__(self, n_in: int, n_out: int, hidden: int = 64, layers: int = 2, activation: str = "relu",
                 doubled: Sequence[int] | bool | None = None, weights: str = "softplus"):
        super().__init__(n_in, n_out, hidden=hidden, layers=layers, activation=activation,
                         doubled=list(doubled) if isinstance(doubled, (list, tuple)) else doubled, weights=weights)
        if layers < 1 or hidden < 1:
            raise InvalidValueError(f"ICLSTM needs layers >= 1 and hidden >= 1, got {layers}, {hidden}")
        self.act = get_activation(activation)
        self.doubling = Doubling(n_in, doubled)
        nx, H, w = self.doubling.n_out, hidden, weights
        self.w_in = nn.ModuleList([_nonneg(nx if k == 0 else H, H, bias=True, weights=w) for k in range(layers)])
        self.w_rec = nn.ModuleList([_nonneg(H, H, gain=0.5, weights=w) for _ in range(layers)])
        self.w_skip = nn.ModuleList([_nonneg(nx, H, weights=w) for _ in range(1, layers)])
        self.gates = nn.ModuleList([_GateScales(H, w) for _ in range(layers)])
        self.w_out = _nonneg(H, n_out, bias=True, weights=w)
        self.w_out_skip = _nonneg(nx, n_out, weights=w)
        self.hidden, self.layers = hidden, layers
        self.convex_inputs = tuple(range(n_in))

    def forward_window(self, x: torch.Tensor) -> torch.Tensor:
        xh = self.doubling(x)
        seq = xh
        B, T = x.shape[:2]
        for k in range(self.layers):
            pre = self.w_in[k](seq)
            if k > 0:
                pre = pre + self.w_skip[k - 1](xh)
            U, D, b = self.w_rec[k].weight, self.gates[k].weight, self.gates[k].bias
            h = x.new_zeros(B, self.hidden)
            c = x.new_zeros(B, self.hidden)
            hs = []
            for t in range(T):
                s = pre[:, t] + h @ U.T
                i, f, o, g = (self.act(s * D[:, k] + b[:, k]) for k in range(len(GATES)))
                c = f * c + i * g
                h = o * self.act(c)
                hs.append(h)
            seq = torch.stack(hs, dim=1)
        return self.w_out(seq) + self.w_out_skip(xh)

