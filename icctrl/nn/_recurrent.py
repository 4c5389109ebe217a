"""Recurrent models: ICRNN and ICLRNN (input-convex), LRNN (Lipschitz, not convex), RNN and LSTM baselines."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from icctrl.errors import InvalidValueError
from icctrl.nn._base import Doubling, SequenceModel, spectral_norm
from icctrl.nn._base import activation as get_activation
from icctrl.nn._constraints import constrain, nonneg_init_


def _linear(n_in: int, n_out: int, kind: str | None, bias: bool = False, gain: float = 1.0,
            weights: str = "softplus") -> nn.Linear:
    lin = nn.Linear(n_in, n_out, bias=bias)
    if kind in ("nonneg", "nonneg_spectral"):
        nonneg_init_(lin.weight, gain)
    if kind:
        constrain(lin, "weight", kind, weights)
    return lin


class _ElmanStack(SequenceModel):
    """h^l_t = σ(W_l in^l_t + U_l h^l_(t−1) + S_l x̂_t + b_l); y_t = V h^L_t + D x̂_t + c.

    Subclasses choose the weight constraint, whether inputs are doubled and whether skips exist.
    """

    recurrent = True
    constraint: str | None = None
    has_skip = False
    default_activation = "relu"
    doubles_by_default = False  # input-convex members double every input to [x, −x] unless told otherwise

    def __init__(self, n_in: int, n_out: int, hidden: int = 64, layers: int = 2, activation: str | None = None,
                 doubled: Sequence[int] | bool | None = None, weights: str | None = None):
        activation = activation or self.default_activation
        nonneg = self.constraint in ("nonneg", "nonneg_spectral")
        if weights is not None and not nonneg:
            raise InvalidValueError(f"{type(self).__name__} has no non-negative weights; weights={weights!r} "
                                    "applies to the input-convex models")
        extra = {"weights": weights or "softplus"} if nonneg else {}
        super().__init__(n_in, n_out, hidden=hidden, layers=layers, activation=activation,
                         doubled=list(doubled) if isinstance(doubled, (list, tuple)) else doubled, **extra)
        if layers < 1 or hidden < 1:
            raise InvalidValueError(f"{type(self).__name__} needs layers >= 1 and hidden >= 1")
        self.act = get_activation(activation)
        self.doubling = Doubling(n_in, doubled if doubled is not None else self.doubles_by_default)
        nx, H, c, w = self.doubling.n_out, hidden, self.constraint, weights or "softplus"
        self.w_in = nn.ModuleList([_linear(nx if k == 0 else H, H, c, bias=True, weights=w) for k in range(layers)])
        self.w_rec = nn.ModuleList([_linear(H, H, c, gain=0.5, weights=w) for _ in range(layers)])
        self.w_skip = nn.ModuleList([_linear(nx, H, c, weights=w) for _ in range(1, layers)] if self.has_skip else [])
        self.w_out = _linear(H, n_out, c, bias=True, weights=w)
        self.w_out_skip = _linear(nx, n_out, c, weights=w) if self.has_skip else None
        self.hidden, self.layers = hidden, layers

    def forward_window(self, x: torch.Tensor) -> torch.Tensor:
        xh = self.doubling(x)
        seq = xh
        for k in range(self.layers):
            pre = self.w_in[k](seq)
            if k > 0 and self.has_skip:
                pre = pre + self.w_skip[k - 1](xh)
            U = self.w_rec[k].weight
            h = x.new_zeros(x.shape[0], self.hidden)
            hs = []
            for t in range(x.shape[1]):
                h = self.act(pre[:, t] + h @ U.T)
                hs.append(h)
            seq = torch.stack(hs, dim=1)
        y = self.w_out(seq)
        return y + self.w_out_skip(xh) if self.has_skip else y



class ICRNN(_ElmanStack):
    """Input-convex RNN (Chen, Shi, Zhang 2019): non-negative weights, input [x, −x], non-negative skips.
    Jointly convex over the window by plain composition. `weights`: softplus, exp or projected (WEIGHTS)."""

    name = "icrnn"
    constraint = "nonneg"
    has_skip = True
    doubles_by_default = True

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.convex_inputs = tuple(range(self.n_in))


class ICLRNN(_ElmanStack):
    """Input-convex Lipschitz RNN: non-negative weights (softplus, exp or projected) with spectral norm ≤ 1, ReLU,
    input [x, −x].

    Jointly convex over the window; each step (x̂_t, h_(t−1)) → h_t is 1-Lipschitz in each argument, and the
    [x, −x] doubling costs a factor √2 in x.
    """

    name = "iclrnn"
    constraint = "nonneg_spectral"
    doubles_by_default = True

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.convex_inputs = tuple(range(self.n_in))

    def step_lipschitz(self) -> dict[str, float]:
        """Certified constants of the per-step map in each argument (layer 0)."""
        from icctrl.convexity._ops import facts

        lsig = facts(self.config["activation"], ()).lipschitz
        return {"x_hat": lsig * spectral_norm(self.w_in[0].weight),
                "x": lsig * spectral_norm(self.w_in[0].weight) * self.doubling.gain,
                "h_prev": lsig * spectral_norm(self.w_rec[0].weight)}


class LRNN(_ElmanStack):
    """Lipschitz RNN: weights of spectral norm ≤ 1 with any sign, tanh: 1-Lipschitz steps, not convex."""

    name = "lrnn"
    constraint = "spectral"
    default_activation = "tanh"



class RNN(_ElmanStack):
    """Plain Elman RNN (tanh), the unconstrained baseline."""

    name = "rnn"
    constraint = None
    default_activation = "tanh"


class LSTM(SequenceModel):
    """torch.nn.LSTM with a linear read-out, the unconstrained baseline (cuDNN/fused kernels)."""

    name = "lstm"
    recurrent = True

    def __init__(self, n_in: int, n_out: int, hidden: int = 64, layers: int = 2):
        super().__init__(n_in, n_out, hidden=hidden, layers=layers)
        self.lstm = nn.LSTM(n_in, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, n_out)
        self.hidden, self.layers = hidden, layers

    def forward_window(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x)[0])

