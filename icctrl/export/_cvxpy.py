"""Epigraph export of input-convex networks to cvxpy.

Every activation z = σ(pre) becomes an auxiliary variable with z ≥ σ(pre) (z ≥ pre, z ≥ 0 for ReLU: an LP).
Exactness: the weights that multiply auxiliary variables downstream are non-negative, so lowering any z to
σ(pre) never raises an output. Hence, when the objective is nondecreasing in the outputs and the outputs are
only bounded above, the relaxation has the same optimal value as the network and an optimum with every z
tight; when the objective is strictly increasing in every output, every optimum is tight. It is NOT exact
for objectives that reward large outputs (tracking (y − r)², lower bounds y ≥ c): use the CasADi export there.
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import torch

from icctrl.convexity import certify
from icctrl.errors import NotConvexError, ShapeError
from icctrl.nn import ICLRNN, ICNN, ICRNN, AffinePlus, Linear, Scaled, SequenceModel

_EPIGRAPH = {
    "relu": cp.pos,
    "softplus": cp.logistic,
    "leaky_relu": lambda x: cp.maximum(x, 0.01 * x),
}


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float64).cpu().numpy()


@dataclass
class Epigraph:
    """Outputs (time × n_out expression), the epigraph constraints, and the auxiliary variables with the
    expressions they bound (to check tightness after a solve)."""

    outputs: cp.Expression
    constraints: list
    aux: list[tuple[cp.Variable, cp.Expression]]

    def __iter__(self):  # allows `y, cons = to_cvxpy(...)`
        return iter((self.outputs, self.constraints))

    def tightness(self) -> float:
        """Largest gap z − σ(pre) at the current variable values (0 when the relaxation is tight)."""
        gaps = [float(np.max(z.value - act.value)) for z, act in self.aux if z.value is not None]
        return max(gaps, default=0.0)


class _Builder:
    def __init__(self, activation: str):
        if activation not in _EPIGRAPH:
            raise NotConvexError(f"no epigraph form for activation {activation!r}; supported: {sorted(_EPIGRAPH)}")
        self.f = _EPIGRAPH[activation]
        self.cons: list = []
        self.aux: list = []

    def act(self, pre: cp.Expression) -> cp.Variable:
        z = cp.Variable(pre.shape)
        bound = self.f(pre)
        self.cons.append(z >= bound)
        self.aux.append((z, bound))
        return z


def _double(m, x):
    d = list(m.doubling.doubled)
    return cp.hstack([x, -x[d]]) if d else x


def _lin(lin):
    return _np(lin.weight), (_np(lin.bias) if lin.bias is not None else 0.0)


def _icnn(m: ICNN, xs, b: _Builder):
    if m.quadratic:
        raise NotConvexError("the epigraph export of ICNN does not cover the quadratic term; use quadratic=0")
    out = []
    for x in xs:
        A0, a0 = _lin(m.skip[0])
        z = b.act(A0 @ x + a0)
        for k in range(1, len(m.hidden_w) + 1):
            A, a = _lin(m.skip[k])
            pre = _np(m.hidden_w[k - 1].weight) @ z + A @ x + a
            z = pre if k == len(m.hidden_w) else b.act(pre)
        out.append(z)
    return out


def _elman(m, xs, b: _Builder):
    xh = [_double(m, x) for x in xs]
    seq = xh
    for k in range(m.layers):
        Wi, bi = _lin(m.w_in[k])
        U = _np(m.w_rec[k].weight)
        S = _np(m.w_skip[k - 1].weight) if (k > 0 and m.has_skip) else None
        h, hs = None, []
        for t, s in enumerate(seq):
            pre = Wi @ s + bi
            if h is not None:
                pre = pre + U @ h
            if S is not None:
                pre = pre + S @ xh[t]
            h = b.act(pre)
            hs.append(h)
        seq = hs
    Wo, bo = _lin(m.w_out)
    return [Wo @ h + bo + (_np(m.w_out_skip.weight) @ xh[t] if m.has_skip else 0) for t, h in enumerate(seq)]


def _translate(model, xs, b: _Builder):
    if isinstance(model, Scaled):
        io, isc, oo, osc = (_np(v) for v in (model.in_offset, model.in_scale, model.out_offset, model.out_scale))
        ys = _translate(model.model, [cp.multiply(1 / isc, x - io) for x in xs], b)
        return [cp.multiply(osc, y) + oo for y in ys]
    if isinstance(model, Linear):
        A, c = _np(model.weight), np.cumsum(_np(model.bias), axis=0)
        return [sum((A[k] @ xs[t - k] for k in range(min(t + 1, model.lags))), c[min(t, model.lags - 1)])
                for t in range(len(xs))]
    if isinstance(model, AffinePlus):
        return [c + a for c, a in zip(_translate(model.convex, xs, b), _translate(model.affine, xs, b))]
    if isinstance(model, ICNN):
        return _icnn(model, xs, b)
    if isinstance(model, (ICRNN, ICLRNN)):
        return _elman(model, xs, b)
    raise NotConvexError(f"{type(model).__name__} has no epigraph form (ICNN, ICRNN, ICLRNN and their Scaled "
                         "wrappers have one; gated products such as IC-LSTM's do not)")


def to_cvxpy(model: SequenceModel, inputs, wrt=None) -> Epigraph:
    """Epigraph form of `model` on cvxpy `inputs` (a (time, n_in) expression or a list of (n_in,) expressions).

    Refuses (NotConvexError, naming the failing layer) unless the core certifies the model convex in `wrt`.
    """
    xs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs[t, :] for t in range(inputs.shape[0])]
    for t, x in enumerate(xs):
        if x.shape != (model.n_in,):
            raise ShapeError(f"input at step {t} has shape {x.shape}, expected ({model.n_in},)")
    cert = certify(model, wrt=wrt, window=max(len(xs), 1))
    if not cert.convex:
        raise NotConvexError(f"{type(model).__name__} is not certified convex: {'; '.join(cert.reasons[:3])}")
    inner = model.model if isinstance(model, Scaled) else model
    b = _Builder(inner.config.get("activation", "relu"))
    ys = _translate(model, xs, b)
    return Epigraph(cp.vstack(ys), b.cons, b.aux)
