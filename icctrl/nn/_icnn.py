"""Feed-forward input-convex networks: ICNN (convex in every input) and PICNN (convex in some inputs)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from icctrl.errors import InvalidValueError, ShapeError
from icctrl.nn._base import SequenceModel
from icctrl.nn._base import activation as get_activation
from icctrl.nn._constraints import constrain, nonneg_init_


def _nonneg_linear(n_in: int, n_out: int, weights: str = "softplus") -> nn.Linear:
    lin = nn.Linear(n_in, n_out, bias=False)
    nonneg_init_(lin.weight)
    return constrain(lin, "weight", "nonneg", weights)


class ICNN(SequenceModel):
    """Fully input-convex network (Amos et al. 2017), applied pointwise over time.

    z₁ = σ(A₀x + b₀); z_(k+1) = σ(W_k z_k + A_k x + b_k) with W_k ≥ 0; y = W_L z_L + A_L x + b_L (+ q/2‖x‖²).
    Convex in x for any convex nondecreasing σ; `quadratic` > 0 makes it q-strongly convex (OT potentials).
    """

    name = "icnn"

    def __init__(self, n_in: int, n_out: int = 1, hidden: int = 64, layers: int = 2, activation: str = "relu",
                 quadratic: float = 0.0, weights: str = "softplus"):
        super().__init__(n_in, n_out, hidden=hidden, layers=layers, activation=activation, quadratic=quadratic,
                         weights=weights)
        if layers < 1 or hidden < 1:
            raise InvalidValueError(f"ICNN needs layers >= 1 and hidden >= 1, got layers={layers}, hidden={hidden}")
        if quadratic < 0:
            raise InvalidValueError(f"quadratic must be >= 0, got {quadratic}")
        self.act = get_activation(activation)
        self.convex_inputs = tuple(range(n_in))
        self.quadratic = float(quadratic)
        self.skip = nn.ModuleList([nn.Linear(n_in, hidden) for _ in range(layers)] + [nn.Linear(n_in, n_out)])
        self.hidden_w = nn.ModuleList([_nonneg_linear(hidden, hidden, weights) for _ in range(layers - 1)]
                                      + [_nonneg_linear(hidden, n_out, weights)])

    def forward_window(self, x: torch.Tensor) -> torch.Tensor:
        z = self.act(self.skip[0](x))
        for k, w in enumerate(self.hidden_w[:-1], start=1):
            z = self.act(w(z) + self.skip[k](x))
        y = self.hidden_w[-1](z) + self.skip[-1](x)
        if self.quadratic:
            y = y + 0.5 * self.quadratic * (x * x).sum(-1, keepdim=True)
        return y



class PICNN(SequenceModel):
    """Partially input-convex network (Amos et al. 2017): convex in `convex_inputs`, arbitrary in the others.

    A context path u_k = relu(Ũ_k u_(k−1)) runs on the other inputs and modulates the convex path:
    z_(k+1) = σ(W_k (z_k ⊙ softplus(D_k u_k)) + A_k (x ⊙ (B_k u_k)) + C_k u_k), W_k ≥ 0.
    The modulating factors depend only on the context, so they are constants where convexity is claimed.
    """

    name = "picnn"

    def __init__(self, n_in: int, n_out: int = 1, hidden: int = 64, layers: int = 2, activation: str = "relu",
                 convex_inputs: Sequence[int] | None = None, context_hidden: int | None = None):
        cvx = tuple(sorted(set(convex_inputs))) if convex_inputs is not None else tuple(range(n_in // 2 or 1))
        super().__init__(n_in, n_out, hidden=hidden, layers=layers, activation=activation,
                         convex_inputs=list(cvx), context_hidden=context_hidden)
        if any(not 0 <= i < n_in for i in cvx) or not cvx:
            raise ShapeError(f"convex_inputs {list(cvx)} must be a non-empty subset of range({n_in})")
        self.act = get_activation(activation)
        self.convex_inputs = cvx
        self.context_inputs = tuple(i for i in range(n_in) if i not in cvx)
        nx, nc, H = len(cvx), len(self.context_inputs), hidden
        Hc = context_hidden or hidden
        self.register_buffer("_xi", torch.tensor(cvx, dtype=torch.long), persistent=False)
        self.register_buffer("_ci", torch.tensor(self.context_inputs, dtype=torch.long), persistent=False)
        widths = [H] * layers + [n_out]
        cdims = [max(nc, 1)] + [Hc] * layers
        self.ctx = nn.ModuleList([nn.Linear(cdims[k], cdims[k + 1]) for k in range(layers)])
        self.gate_z = nn.ModuleList([nn.Linear(cdims[k], widths[k - 1]) for k in range(1, layers + 1)])
        self.gate_x = nn.ModuleList([nn.Linear(cdims[k], nx) for k in range(layers + 1)])
        self.ctx_out = nn.ModuleList([nn.Linear(cdims[k], widths[k]) for k in range(layers + 1)])
        self.x_w = nn.ModuleList([nn.Linear(nx, widths[k], bias=False) for k in range(layers + 1)])
        self.z_w = nn.ModuleList([_nonneg_linear(widths[k - 1], widths[k]) for k in range(1, layers + 1)])

    def _context(self, x: torch.Tensor) -> list[torch.Tensor]:
        u = x.index_select(-1, self._ci) if self.context_inputs else x.new_zeros(*x.shape[:-1], 1)
        us = [u]
        for lin in self.ctx:
            us.append(F.relu(lin(us[-1])))
        return us

    def forward_window(self, x: torch.Tensor) -> torch.Tensor:
        xc = x.index_select(-1, self._xi)
        us = self._context(x)
        z = None
        for k in range(len(self.x_w)):
            pre = self.x_w[k](xc * self.gate_x[k](us[k])) + self.ctx_out[k](us[k])
            if z is not None:
                pre = pre + self.z_w[k - 1](z * F.softplus(self.gate_z[k - 1](us[k])))
            z = pre if k == len(self.x_w) - 1 else self.act(pre)
        return z

