"""Exact export of zoo models to CasADi: native MX operations (no callback into torch), exact AD derivatives."""

from __future__ import annotations

from collections.abc import Callable

import casadi as ca
import numpy as np
import torch

from icctrl.errors import ShapeError, UnknownNameError
from icctrl.nn import ICLRNN, ICLSTM, ICNN, ICRNN, LRNN, LSTM, PICNN, RNN, AffinePlus, Linear, Scaled, SequenceModel
from icctrl.nn._base import Doubling


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float64).cpu().numpy()


def _softplus(x):
    return ca.fmax(x, 0) + ca.log1p(ca.exp(-ca.fabs(x)))


def _elu(x):
    return ca.if_else(x > 0, x, ca.exp(x) - 1)


def _relu(x):
    return 0.5 * (x + ca.fabs(x))  # unlike fmax(x, 0), a NaN input stays NaN, as in torch


ACTIVATIONS: dict[str, Callable] = {
    "relu": _relu,
    "softplus": _softplus,
    "leaky_relu": lambda x: ca.fmax(x, 0.01 * x),
    "celu": _elu,
    "elu": _elu,
    "tanh": ca.tanh,
    "sigmoid": lambda x: 1 / (1 + ca.exp(-x)),
}


def _act(model) -> Callable:
    return ACTIVATIONS[model.config.get("activation") or model.atom.name]


def _lin(lin: torch.nn.Linear) -> tuple[np.ndarray, np.ndarray]:
    b = _np(lin.bias) if lin.bias is not None else np.zeros(lin.out_features)
    return _np(lin.weight), b


def _double(d: Doubling, x):
    return ca.vertcat(x, -x[list(d.doubled)]) if d.doubled else x


# Each translator maps a list of column vectors x_t (n_in × 1) to a list of column vectors y_t.
def _icnn(m: ICNN, xs):
    act, out = _act(m), []
    A = [_lin(s) for s in m.skip]
    W = [_np(w.weight) for w in m.hidden_w]
    for x in xs:
        z = act(ca.mtimes(A[0][0], x) + A[0][1])
        for k in range(1, len(W) + 1):
            pre = ca.mtimes(W[k - 1], z) + ca.mtimes(A[k][0], x) + A[k][1]
            z = pre if k == len(W) else act(pre)
        if m.quadratic:
            z = z + 0.5 * m.quadratic * ca.sumsqr(x)
        out.append(z)
    return out


def _picnn(m: PICNN, xs):
    act, out = _act(m), []
    L = len(m.x_w)
    for x in xs:
        xc = x[list(m.convex_inputs)]
        u = x[list(m.context_inputs)] if m.context_inputs else ca.DM.zeros(1, 1)
        us = [u]
        for lin in m.ctx:
            W, b = _lin(lin)
            us.append(_relu(ca.mtimes(W, us[-1]) + b))
        z = None
        for k in range(L):
            Gx, gx = _lin(m.gate_x[k])
            Co, co = _lin(m.ctx_out[k])
            pre = ca.mtimes(_np(m.x_w[k].weight), xc * (ca.mtimes(Gx, us[k]) + gx)) + ca.mtimes(Co, us[k]) + co
            if z is not None:
                Gz, gz = _lin(m.gate_z[k - 1])
                pre = pre + ca.mtimes(_np(m.z_w[k - 1].weight), z * _softplus(ca.mtimes(Gz, us[k]) + gz))
            z = pre if k == L - 1 else act(pre)
        out.append(z)
    return out


def _elman(m, xs):
    act = _act(m)
    xh = [_double(m.doubling, x) for x in xs]
    seq = xh
    for k in range(m.layers):
        Wi, bi = _lin(m.w_in[k])
        U = _np(m.w_rec[k].weight)
        S = _np(m.w_skip[k - 1].weight) if (k > 0 and m.has_skip) else None
        h, hs = ca.DM.zeros(m.hidden, 1), []
        for t, s in enumerate(seq):
            pre = ca.mtimes(Wi, s) + bi + ca.mtimes(U, h)
            if S is not None:
                pre = pre + ca.mtimes(S, xh[t])
            h = act(pre)
            hs.append(h)
        seq = hs
    Wo, bo = _lin(m.w_out)
    Do = _np(m.w_out_skip.weight) if m.has_skip else None
    return [ca.mtimes(Wo, h) + bo + (ca.mtimes(Do, xh[t]) if Do is not None else 0) for t, h in enumerate(seq)]


def _iclstm(m: ICLSTM, xs):
    act = _act(m)
    xh = [_double(m.doubling, x) for x in xs]
    seq = xh
    for k in range(m.layers):
        Wi, bi = _lin(m.w_in[k])
        U = _np(m.w_rec[k].weight)
        S = _np(m.w_skip[k - 1].weight) if k > 0 else None
        D, B = _np(m.gates[k].weight), _np(m.gates[k].bias)
        h = c = ca.DM.zeros(m.hidden, 1)
        hs = []
        for t, inp in enumerate(seq):
            s = ca.mtimes(Wi, inp) + bi + ca.mtimes(U, h)
            if S is not None:
                s = s + ca.mtimes(S, xh[t])
            i, f, o, g = (act(D[:, j] * s + B[:, j]) for j in range(4))
            c = f * c + i * g
            h = o * act(c)
            hs.append(h)
        seq = hs
    Wo, bo = _lin(m.w_out)
    Do = _np(m.w_out_skip.weight)
    return [ca.mtimes(Wo, h) + bo + ca.mtimes(Do, xh[t]) for t, h in enumerate(seq)]


def _lstm(m: LSTM, xs):
    sig = ACTIVATIONS["sigmoid"]
    H, seq = m.hidden, xs
    for k in range(m.layers):
        Wih = _np(getattr(m.lstm, f"weight_ih_l{k}"))
        Whh = _np(getattr(m.lstm, f"weight_hh_l{k}"))
        b = _np(getattr(m.lstm, f"bias_ih_l{k}")) + _np(getattr(m.lstm, f"bias_hh_l{k}"))
        h = c = ca.DM.zeros(H, 1)
        hs = []
        for x in seq:
            z = ca.mtimes(Wih, x) + ca.mtimes(Whh, h) + b
            i, f, g, o = sig(z[:H]), sig(z[H:2 * H]), ca.tanh(z[2 * H:3 * H]), sig(z[3 * H:])
            c = f * c + i * g
            h = o * ca.tanh(c)
            hs.append(h)
        seq = hs
    Wo, bo = _lin(m.head)
    return [ca.mtimes(Wo, h) + bo for h in seq]


def _linear(m: Linear, xs):
    A, b = _np(m.weight), np.cumsum(_np(m.bias), axis=0)
    return [sum((ca.mtimes(A[k], xs[t - k]) for k in range(min(t + 1, m.lags))), b[min(t, m.lags - 1)])
            for t in range(len(xs))]


def _affine_plus(m: AffinePlus, xs):
    return [c + a for c, a in zip(translate(m.convex, xs), _linear(m.affine, xs))]


def _scaled(m: Scaled, xs):
    io, isc = _np(m.in_offset), _np(m.in_scale)
    oo, osc = _np(m.out_offset), _np(m.out_scale)
    ys = translate(m.model, [(x - io) / isc for x in xs])
    return [y * osc + oo for y in ys]


_TRANSLATORS: dict[type, Callable] = {ICNN: _icnn, PICNN: _picnn, ICRNN: _elman, ICLRNN: _elman, LRNN: _elman,
                                      RNN: _elman, ICLSTM: _iclstm, LSTM: _lstm, Scaled: _scaled,
                                      Linear: _linear, AffinePlus: _affine_plus}


def translate(model: SequenceModel, xs: list) -> list:
    """The model's forward pass on CasADi column vectors x_t, one per time step."""
    for cls in type(model).__mro__:
        if cls in _TRANSLATORS:
            return _TRANSLATORS[cls](model, xs)
    raise UnknownNameError(f"no CasADi export for {type(model).__name__}; exportable: "
                           f"{sorted(c.__name__ for c in _TRANSLATORS)}")


def _build(model: SequenceModel, window: int, name: str) -> ca.Function:
    X = ca.MX.sym("X", window, model.n_in)
    ys = translate(model, [X[t, :].T for t in range(window)])
    return ca.Function(name, [X], [ca.horzcat(*ys).T], ["X"], ["Y"])


class WindowFunction(ca.Function):
    """A casadi.Function for windows of `window` steps that also accepts other window lengths when called
    numerically (building and caching the function for that length on first use)."""

    def __init__(self, model: SequenceModel, window: int, name: str):
        super().__init__(_build(model, window, name))
        self._model, self._name, self._window = model, name, window
        self._cache: dict[int, ca.Function] = {window: ca.Function(self)}

    def for_window(self, window: int) -> ca.Function:
        if window < 1:
            raise ShapeError(f"window must be >= 1, got {window}")
        if window not in self._cache:
            self._cache[window] = _build(self._model, window, f"{self._name}_T{window}")
        return self._cache[window]

    def __call__(self, *args, **kwargs):
        if len(args) == 1 and not kwargs and not isinstance(args[0], (ca.MX, ca.SX)):
            X = np.atleast_2d(np.asarray(args[0], dtype=float))
            if X.shape[1] != self._model.n_in:
                raise ShapeError(f"expected a window of shape (time, {self._model.n_in}), got {X.shape}")
            return self.for_window(X.shape[0])(X)
        return super().__call__(*args, **kwargs)


def to_casadi(model: SequenceModel, window: int | None = None, name: str | None = None) -> ca.Function:
    """`casadi.Function` X (window × n_in) → Y (window × n_out) equal to `model(X[None])[0]`.

    Built from native MX operations with the model's effective (constrained) weights in float64, so CasADi's
    AD gives exact first and second derivatives. `window` defaults to the model's training window (or 1).
    """
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "n_in"):
        raise UnknownNameError(f"to_casadi() needs an icctrl model, got {type(model).__name__}")
    window = int(window or getattr(model, "window", None) or 1)
    if window < 1:
        raise ShapeError(f"window must be >= 1, got {window}")
    return WindowFunction(model, window, name or f"{getattr(model, 'name', 'model')}_casadi")
