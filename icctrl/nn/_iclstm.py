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

from icctrl.convexity._expr import Sym, Tracer
from icctrl.convexity._lattice import S, sign_of
from icctrl.errors import InvalidValueError
from icctrl.nn._base import Doubling, SequenceModel
from icctrl.nn._base import activation as get_activation
from icctrl.nn._constraints import constrain, nonneg_init_

GATES = ("i", "f", "o", "g")  # input, forget, output gates and the cell candidate


class _GateScales(nn.Module):
    """Per-gate non-negative diagonal scales d_k (hidden × 4) and free biases b_k.

    Initial scales in (0.2, 0.6): ReLU gates are unbounded, and with scales near 1 the forget gate exceeds one on
    held inputs, so an untrained 2×64 model already overflows within ten steps."""

    def __init__(self, hidden: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(hidden, len(GATES)).uniform_(0.2, 0.6))
        self.bias = nn.Parameter(torch.zeros(hidden, len(GATES)))
        constrain(self, "weight", "nonneg")


def _nonneg(n_in: int, n_out: int, bias: bool = False, gain: float = 1.0) -> nn.Linear:
    lin = nn.Linear(n_in, n_out, bias=bias)
    nonneg_init_(lin.weight, gain)
    return constrain(lin, "weight", "nonneg")


class ICLSTM(SequenceModel):
    """Input-convex LSTM, multi-layer, input [x, −x] on the `doubled` features, non-negative read-out + skip."""

    name = "iclstm"
    recurrent = True
    convexity_notes = (
        "IC-LSTM is convex per step (certify(model, per_step=True)): the output of step t in the input of step "
        "t with the past held fixed. It is not jointly convex over a varying window.",
    )

    def __init__(self, n_in: int, n_out: int, hidden: int = 64, layers: int = 2, activation: str = "relu",
                 doubled: Sequence[int] | bool | None = None):
        super().__init__(n_in, n_out, hidden=hidden, layers=layers, activation=activation,
                         doubled=list(doubled) if isinstance(doubled, (list, tuple)) else doubled)
        if layers < 1 or hidden < 1:
            raise InvalidValueError(f"ICLSTM needs layers >= 1 and hidden >= 1, got {layers}, {hidden}")
        self.act, self.atom = get_activation(activation)
        self.doubling = Doubling(n_in, doubled)
        nx, H = self.doubling.n_out, hidden
        self.w_in = nn.ModuleList([_nonneg(nx if k == 0 else H, H, bias=True) for k in range(layers)])
        self.w_rec = nn.ModuleList([_nonneg(H, H, gain=0.5) for _ in range(layers)])
        self.w_skip = nn.ModuleList([_nonneg(nx, H) for _ in range(1, layers)])
        self.gates = nn.ModuleList([_GateScales(H) for _ in range(layers)])
        self.w_out = _nonneg(H, n_out, bias=True)
        self.w_out_skip = _nonneg(nx, n_out)
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
                i, f, o, g = self.act(s.unsqueeze(-1) * D + b).unbind(-1)
                c = f * c + i * g
                h = o * self.act(c)
                hs.append(h)
            seq = torch.stack(hs, dim=1)
        return self.w_out(seq) + self.w_out_skip(xh)

    def trace(self, tr: Tracer, xs: list[list[Sym]]) -> list[Sym]:
        xh = [self.doubling.trace(tr, f, f"ICLSTM input (t={t})") for t, f in enumerate(xs)]
        seq, act = xh, self.atom
        for k in range(self.layers):
            h = c = tr.constant("initial state", S.ZERO)
            d_sign = sign_of(self.gates[k].weight.detach())
            out = []
            for t, inp in enumerate(seq):
                lab = f"ICLSTM layer {k} (t={t})"
                terms = [tr.linear(inp, sign_of(self.w_in[k].weight.detach()), f"{lab} W_x"),
                         tr.linear(h, sign_of(self.w_rec[k].weight.detach()), f"{lab} W_h")]
                if k > 0:
                    terms.append(tr.linear(xh[t], sign_of(self.w_skip[k - 1].weight.detach()), f"{lab} skip"))
                s = tr.add(*terms, label=f"{lab} shared pre-activation s")
                gate = {}
                for name in GATES:
                    scaled = tr.add(tr.scale(s, d_sign, f"{lab} d_{name} ⊙ s"), tr.constant(f"b_{name}"),
                                    label=f"{lab} {name} pre-activation")
                    gate[name] = tr.activation(scaled, act, f"{lab} {name}_t")
                c = tr.add(tr.mul(gate["f"], c, f"{lab} f_t ⊙ c_(t−1)"),
                           tr.mul(gate["i"], gate["g"], f"{lab} i_t ⊙ g_t"), label=f"{lab} c_t")
                h = tr.mul(gate["o"], tr.activation(c, act, f"{lab} {act.name}(c_t)"), f"{lab} o_t ⊙ {act.name}(c_t)")
                out.append(h)
            seq = out
        ys = []
        for t, h in enumerate(seq):
            lab = f"ICLSTM output (t={t})"
            ys.append(tr.add(tr.linear(h, sign_of(self.w_out.weight.detach()), f"{lab} V"),
                             tr.linear(xh[t], sign_of(self.w_out_skip.weight.detach()), f"{lab} skip"), label=lab))
        return ys

    def lipschitz_bound(self, window: int = 1) -> float:
        """No finite global constant: i_t ⊙ g_t is a product of two ReLUs of one argument (quadratic growth)."""
        return float("inf")
