"""Feed-forward input-convex networks: ICNN (convex in every input) and PICNN (convex in some inputs)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from icctrl.convexity._expr import Sym, Tracer
from icctrl.convexity._lattice import ATOMS, S, sign_of
from icctrl.errors import InvalidValueError, ShapeError
from icctrl.nn._base import SequenceModel, spectral_norm
from icctrl.nn._base import activation as get_activation
from icctrl.nn._constraints import constrain, nonneg_init_


def _nonneg_linear(n_in: int, n_out: int) -> nn.Linear:
    lin = nn.Linear(n_in, n_out, bias=False)
    nonneg_init_(lin.weight)
    return constrain(lin, "weight", "nonneg")


class ICNN(SequenceModel):
    """Fully input-convex network (Amos et al. 2017), applied pointwise over time.

    z₁ = σ(A₀x + b₀); z_(k+1) = σ(W_k z_k + A_k x + b_k) with W_k ≥ 0; y = W_L z_L + A_L x + b_L (+ q/2‖x‖²).
    Convex in x for any convex nondecreasing σ; `quadratic` > 0 makes it q-strongly convex (OT potentials).
    """

    name = "icnn"

    def __init__(self, n_in: int, n_out: int = 1, hidden: int = 64, layers: int = 2, activation: str = "relu",
                 quadratic: float = 0.0):
        super().__init__(n_in, n_out, hidden=hidden, layers=layers, activation=activation, quadratic=quadratic)
        if layers < 1 or hidden < 1:
            raise InvalidValueError(f"ICNN needs layers >= 1 and hidden >= 1, got layers={layers}, hidden={hidden}")
        if quadratic < 0:
            raise InvalidValueError(f"quadratic must be >= 0, got {quadratic}")
        self.act, self.atom = get_activation(activation)
        self.convex_inputs = tuple(range(n_in))
        self.quadratic = float(quadratic)
        self.skip = nn.ModuleList([nn.Linear(n_in, hidden) for _ in range(layers)] + [nn.Linear(n_in, n_out)])
        self.hidden_w = nn.ModuleList([_nonneg_linear(hidden, hidden) for _ in range(layers - 1)]
                                      + [_nonneg_linear(hidden, n_out)])

    def forward_window(self, x: torch.Tensor) -> torch.Tensor:
        z = self.act(self.skip[0](x))
        for k, w in enumerate(self.hidden_w[:-1], start=1):
            z = self.act(w(z) + self.skip[k](x))
        y = self.hidden_w[-1](z) + self.skip[-1](x)
        if self.quadratic:
            y = y + 0.5 * self.quadratic * (x * x).sum(-1, keepdim=True)
        return y

    def trace(self, tr: Tracer, xs: list[list[Sym]]) -> list[Sym]:
        outs = []
        for t, feats in enumerate(xs):
            x = tr.concat(*feats, label=f"input[t={t}]")
            z = tr.activation(tr.linear(x, sign_of(self.skip[0].weight.detach()), f"ICNN layer 0 (t={t})"),
                              self.atom, f"ICNN layer 0 {self.atom.name} (t={t})")
            for k, w in enumerate(self.hidden_w, start=1):
                last = k == len(self.hidden_w)
                lab = f"ICNN {'output' if last else f'layer {k}'} (t={t})"
                pre = tr.add(tr.linear(z, sign_of(w.weight.detach()), f"{lab} W_z"),
                             tr.linear(x, sign_of(self.skip[k].weight.detach()), f"{lab} A_x"), label=lab)
                z = pre if last else tr.activation(pre, self.atom, f"{lab} {self.atom.name}")
            if self.quadratic:
                z = tr.add(z, tr.square_norm(x, f"quadratic term (t={t})"), label=f"ICNN output (t={t})")
            outs.append(z)
        return outs

    def lipschitz_bound(self, window: int = 1) -> float:
        if self.quadratic:
            return float("inf")
        lip = self.atom.lipschitz * spectral_norm(self.skip[0].weight)
        for k, w in enumerate(self.hidden_w, start=1):
            gain = 1.0 if k == len(self.hidden_w) else self.atom.lipschitz
            lip = gain * (spectral_norm(w.weight) * lip + spectral_norm(self.skip[k].weight))
        return lip  # pointwise in time: the whole window has the per-step constant


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
        self.act, self.atom = get_activation(activation)
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

    def trace(self, tr: Tracer, xs: list[list[Sym]]) -> list[Sym]:
        outs = []
        soft = ATOMS["softplus"]
        for t, feats in enumerate(xs):
            xc = tr.concat(*[feats[i] for i in self.convex_inputs], label=f"convex inputs[t={t}]")
            u = (tr.concat(*[feats[i] for i in self.context_inputs], label=f"context inputs[t={t}]")
                 if self.context_inputs else tr.constant("no context", S.ZERO))
            us = [u]
            for k in range(len(self.ctx)):
                us.append(tr.activation(tr.linear(us[-1], S.UNKNOWN, f"PICNN context {k} (t={t})"), ATOMS["relu"],
                                        f"PICNN context {k} relu (t={t})"))
            z = None
            for k in range(len(self.x_w)):
                lab = f"PICNN layer {k} (t={t})"
                gx = tr.linear(us[k], S.UNKNOWN, f"{lab} x-gate")
                terms = [tr.linear(tr.mul(xc, gx, f"{lab} x ⊙ gate"), S.UNKNOWN, f"{lab} A_x"),
                         tr.linear(us[k], S.UNKNOWN, f"{lab} context term")]
                if z is not None:
                    gz = tr.activation(tr.linear(us[k], S.UNKNOWN, f"{lab} z-gate"), soft, f"{lab} softplus gate")
                    terms.append(tr.linear(tr.mul(z, gz, f"{lab} z ⊙ gate"), sign_of(self.z_w[k - 1].weight.detach()),
                                           f"{lab} W_z"))
                pre = tr.add(*terms, label=lab)
                z = pre if k == len(self.x_w) - 1 else tr.activation(pre, self.atom, f"{lab} {self.atom.name}")
            outs.append(z)
        return outs

    def lipschitz_bound(self, window: int = 1) -> float:
        # The context gates multiply the convex path: no global constant without bounds on the inputs.
        return float("inf")
