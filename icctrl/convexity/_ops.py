"""The one table of facts about elementwise operations, keyed by the aten op and its parameters.

Each entry gives curvature, monotonicity, output sign, Lipschitz constant and smoothness, plus the CasADi form,
the cvxpy form (an expression, or an epigraph for a convex nondecreasing op that has no DCP atom) and the numpy
form with its derivative (for forward-mode tangents). An op
whose parameters change its curvature (a leaky slope above one, an ELU alpha above one, a negative softplus beta)
gets the facts of those parameters. An op that is not in the table is unknown, never convex.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

KEEP, NONNEG, NONPOS, FLIP, NONE = "keep", "nonneg", "nonpos", "flip", "none"


@dataclass(frozen=True)
class Facts:
    """Local facts of a scalar function h applied elementwise (in the CVXPY way)."""

    name: str  # with its parameters, e.g. "leaky_relu(slope=3.0)"
    convex: bool
    concave: bool
    nondecreasing: bool
    nonincreasing: bool
    sign: str  # output sign: KEEP (sign of the input), NONNEG, NONPOS, FLIP or NONE
    lipschitz: float
    smooth: bool = True
    by_sign: bool = False  # monotone by the input's sign: nondecreasing where x ≥ 0, nonincreasing where x ≤ 0
    casadi: Callable | None = None
    cvxpy: Callable | None = None  # expression form (affine or DCP convex nondecreasing atom)
    epigraph: Callable | None = None  # (x, z) -> constraints and variables making z ≥ h(x) exact
    tangent: Callable | None = None  # numpy x -> (h(x), h'(x)), elementwise, the derivative CasADi's AD gives

    def out_sign(self, pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t, f = np.ones_like(pos), np.zeros_like(pos)
        return {KEEP: (pos, neg), FLIP: (neg, pos), NONNEG: (t, pos & neg), NONPOS: (pos & neg, t),
                NONE: (pos & neg, pos & neg)}.get(self.sign, (f, f))


def _ca():
    import casadi

    return casadi


def _cp():
    import cvxpy

    return cvxpy


def _relu_ca(x):
    return 0.5 * (x + _ca().fabs(x))  # unlike fmax(x, 0), a NaN stays NaN, as in torch


def _softplus_ca(x, beta=1.0, threshold=20.0):
    """The smooth softplus; torch switches to x above the threshold, where the two differ by < 2.1e-9 / beta,
    and the switch would cost four instructions per element and a kink for Newton solvers."""
    ca = _ca()
    bx = x if beta == 1 else beta * x
    soft = ca.fmax(bx, 0) + ca.log1p(ca.exp(-ca.fabs(bx)))
    return soft if beta == 1 else soft / beta


def _relu_np(x):
    d = x > 0
    return x * d, d


def _softplus_np(x, beta=1.0):
    bx = beta * x
    return (np.maximum(bx, 0) + np.log1p(np.exp(-np.abs(bx)))) / beta, 0.5 * (1 + np.tanh(0.5 * bx))


def _elu_np(x, alpha, scale=1.0, input_scale=1.0):
    e = np.exp(input_scale * np.minimum(x, 0))
    pos = x > 0
    return scale * np.where(pos, x, alpha * (e - 1)), scale * np.where(pos, 1.0, alpha * input_scale * e)


def _sigmoid_np(x):
    s = 0.5 * (1 + np.tanh(0.5 * x))
    return s, s * (1 - s)


def _tanh_np(x):
    t = np.tanh(x)
    return t, 1 - t * t


def _clamp_np(lo, hi):
    def form(x):
        inside = np.ones_like(x, dtype=bool)
        if lo is not None:
            inside &= x > lo
        if hi is not None:
            inside &= x < hi
        return np.clip(x, lo, hi), inside.astype(float)

    return form


def _elu_ca(x, alpha, scale=1.0, input_scale=1.0):
    ca = _ca()
    return scale * ca.if_else(x > 0, x, alpha * (ca.exp(input_scale * x) - 1))


def _elu_epigraph(alpha: float, width: float = 1.0):
    """z ≥ α·w·(exp(x/w) − 1) for x ≤ 0, x for x > 0 (0 ≤ α ≤ 1): z ≥ αw(exp(u) − 1) + pos(x − w u), u ≤ 0.
    The minimum over u ≤ 0 of the right-hand side is exactly the ELU (CELU with w = α), an exponential cone."""

    def form(x, z):
        cp = _cp()
        u = cp.Variable(x.shape)
        return [z >= alpha * width * (cp.exp(u) - 1) + cp.pos(x - width * u), u <= 0], [u]

    return form


def _unknown(name: str, lip=math.inf, mono=(False, False), sign=NONE, casadi=None) -> Facts:
    return Facts(name, False, False, mono[0], mono[1], sign, lip, casadi=casadi)


def leaky_relu(slope: float = 0.01) -> Facts:
    a = float(slope)
    name = f"leaky_relu(slope={a:g})"
    def ca_form(x):
        return (_ca().if_else(x > 0, x, a * x))
    cvx_form = (lambda x: _cp().maximum(x, a * x)) if 0 <= a <= 1 else None
    def np_form(x):
        d = np.where(x > 0, 1.0, a)
        return x * d, d
    return Facts(name, a <= 1, a >= 1, a >= 0, False, NONNEG if a <= 0 else KEEP, max(1.0, abs(a)),
                 smooth=a == 1, casadi=ca_form, cvxpy=cvx_form, tangent=np_form)


def elu(alpha: float = 1.0, scale: float = 1.0, input_scale: float = 1.0) -> Facts:
    a, s, i = float(alpha), float(scale), float(input_scale)
    name = f"elu(alpha={a:g}" + ("" if s == i == 1 else f", scale={s:g}, input_scale={i:g}") + ")"
    ok = s > 0 and i > 0
    convex = ok and 0 <= a * i <= 1 and i == 1  # slopes α·i·e^(ix) then 1: increasing iff 0 ≤ α·i ≤ 1
    nondecr = ok and a >= 0
    sign = (NONNEG if a <= 0 else KEEP) if ok else NONE
    lip = abs(s) * max(1.0, abs(a * i))
    epi = _elu_epigraph(a) if convex and s == 1 else None
    return Facts(name, convex, False, nondecr, False, sign, lip, smooth=a * i == 1,
                 casadi=lambda x: _elu_ca(x, a, s, i), epigraph=epi, tangent=lambda x: _elu_np(x, a, s, i))


def celu(alpha: float = 1.0) -> Facts:
    a = float(alpha)
    name = f"celu(alpha={a:g})"
    def ca_form(x):
        return (_ca().if_else(x > 0, x, a * (_ca().exp(x / a) - 1)))
    if a > 0:  # slopes e^(x/α) ≤ 1 then 1: convex, nondecreasing, 1-Lipschitz
        return Facts(name, True, False, True, False, KEEP, 1.0, casadi=ca_form, epigraph=_elu_epigraph(1.0, a),
                     tangent=lambda x: _elu_np(x, a, 1.0, 1.0 / a))
    return _unknown(name, casadi=ca_form)


def softplus(beta: float = 1.0, threshold: float = 20.0) -> Facts:
    b, th = float(beta), float(threshold)
    name = f"softplus(beta={b:g})"
    def ca_form(x):
        return (_softplus_ca(x, b, th))
    if b > 0:
        return Facts(name, True, False, True, False, NONNEG, 1.0, casadi=ca_form,
                     cvxpy=lambda x: _cp().logistic(b * x) / b, tangent=lambda x: _softplus_np(x, b))
    if b < 0:  # (1/β)·log(1 + e^(βx)) with β < 0: concave, nondecreasing, non-positive
        return Facts(name, False, True, True, False, NONPOS, 1.0, casadi=ca_form,
                     tangent=lambda x: _softplus_np(x, b))
    return _unknown(name)


def _pow(p: float) -> Facts:
    name = f"pow({p:g})"
    if p == 1:
        return IDENTITY
    def ca_form(x):
        return (x**p)
    def np_form(x):
        return x**p, p * x ** (p - 1)
    if p == 2:
        return Facts(name, True, False, False, False, NONNEG, math.inf, by_sign=True, casadi=ca_form,
                     cvxpy=None, tangent=np_form)
    return Facts(name, False, False, False, False, NONE, math.inf, casadi=ca_form, tangent=np_form)


def _clamp(lo, hi) -> Facts:
    ca = _ca
    if lo is not None and hi is None:
        lo = float(lo)
        return Facts(f"clamp_min({lo:g})", True, False, True, False, NONNEG if lo >= 0 else NONE, 1.0,
                     smooth=False, casadi=lambda x: ca().fmax(x, lo), cvxpy=lambda x: _cp().maximum(x, lo),
                     tangent=_clamp_np(lo, None))
    if hi is not None and lo is None:
        hi = float(hi)
        return Facts(f"clamp_max({hi:g})", False, True, True, False, NONPOS if hi <= 0 else NONE, 1.0,
                     smooth=False, casadi=lambda x: ca().fmin(x, hi), tangent=_clamp_np(None, hi))
    lo_, hi_ = float(lo), float(hi)
    return Facts(f"clamp({lo_:g}, {hi_:g})", False, False, True, False, NONE, 1.0,
                 casadi=lambda x: ca().fmin(ca().fmax(x, lo_), hi_), tangent=_clamp_np(lo_, hi_))


IDENTITY = Facts("identity", True, True, True, False, KEEP, 1.0, casadi=lambda x: x, cvxpy=lambda x: x,
                 tangent=lambda x: (x, np.ones_like(x)))


def _sigmoid_ca(x):
    return 1 / (1 + _ca().exp(-x))


def facts(op: str, args: tuple) -> Facts | None:
    """Facts of the elementwise aten op `op` (overload packet name) with its non-tensor arguments, or None."""
    a = [v for v in args if isinstance(v, (int, float, bool)) or v is None]
    if op in ("relu",):
        return Facts("relu", True, False, True, False, NONNEG, 1.0, smooth=False, casadi=_relu_ca,
                     cvxpy=lambda x: _cp().pos(x), tangent=_relu_np)
    if op == "leaky_relu":
        return leaky_relu(*a[:1])
    if op == "elu":
        return elu(*a[:3])
    if op == "celu":
        return celu(*a[:1])
    if op == "softplus":
        return softplus(*a[:2])
    if op == "neg":
        return Facts("neg", True, True, False, True, FLIP, 1.0, casadi=lambda x: -x, cvxpy=lambda x: -x,
                     tangent=lambda x: (-x, -np.ones_like(x)))
    if op == "exp":
        return Facts("exp", True, False, True, False, NONNEG, math.inf, casadi=lambda x: _ca().exp(x),
                     cvxpy=lambda x: _cp().exp(x), tangent=lambda x: (np.exp(x),) * 2)
    if op == "abs":
        return Facts("abs", True, False, False, False, NONNEG, 1.0, smooth=False, by_sign=True,
                     casadi=lambda x: _ca().fabs(x), tangent=lambda x: (np.abs(x), np.sign(x)))
    if op == "tanh":
        return Facts("tanh", False, False, True, False, KEEP, 1.0, casadi=lambda x: _ca().tanh(x), tangent=_tanh_np)
    if op == "sigmoid":
        return Facts("sigmoid", False, False, True, False, NONNEG, 0.25, casadi=_sigmoid_ca, tangent=_sigmoid_np)
    if op == "sqrt":
        return Facts("sqrt", False, True, True, False, NONNEG, math.inf, casadi=lambda x: _ca().sqrt(x),
                     tangent=lambda x: (np.sqrt(x), 0.5 / np.sqrt(x)))
    if op == "log":
        return Facts("log", False, True, True, False, NONE, math.inf, casadi=lambda x: _ca().log(x),
                     tangent=lambda x: (np.log(x), 1.0 / x))
    if op == "pow" and a:
        return _pow(float(a[0]))
    if op == "clamp_min" and a:
        return _clamp(a[0], None)
    if op == "clamp_max" and a:
        return _clamp(None, a[0])
    if op == "clamp":
        lo, hi = (list(a) + [None, None])[:2]
        return _clamp(lo, hi) if (lo, hi) != (None, None) else IDENTITY
    if op == "hardtanh":
        lo, hi = (list(a) + [-1.0, 1.0])[:2]
        return _clamp(lo, hi)
    if op in ("detach", "clone", "alias", "_to_copy", "contiguous", "lift_fresh_copy", "to"):
        return IDENTITY
    return None
