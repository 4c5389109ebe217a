"""The certificate reading of the graph: per element, curvature, monotonicity per input group and sign.

Each element also remembers the argument it is an elementwise function of (`base`) and the facts of that scalar
function, so that products of functions of the *same* argument (the gates of one IC-LSTM unit) can be certified
and products of functions of different arguments cannot. Flags are booleans: convex and concave (both: affine),
nondecreasing and nonincreasing per group (both: constant), nonnegative and nonpositive (both: zero).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from icctrl.convexity._ops import Facts
from icctrl.convexity._read import Abstract, Domain, label

_ids = itertools.count(1)
FIELDS = ("cvx", "ccv", "nd", "ni", "pos", "neg", "base", "s_cvx", "s_ccv", "s_nd", "s_ni",
          "b_cvx", "b_ccv", "b_nd", "b_ni")


@dataclass
class Flags(Abstract):
    """Boolean fact arrays of one tensor (nd, ni, b_nd, b_ni carry a trailing group axis)."""

    cvx: np.ndarray
    ccv: np.ndarray
    nd: np.ndarray
    ni: np.ndarray
    pos: np.ndarray
    neg: np.ndarray
    base: np.ndarray
    s_cvx: np.ndarray
    s_ccv: np.ndarray
    s_nd: np.ndarray
    s_ni: np.ndarray
    b_cvx: np.ndarray
    b_ccv: np.ndarray
    b_nd: np.ndarray
    b_ni: np.ndarray

    @property
    def shape(self):
        return self.cvx.shape

    @property
    def const(self) -> np.ndarray:
        return (self.nd & self.ni).all(-1)

    @property
    def unknown(self) -> np.ndarray:
        return ~self.cvx & ~self.ccv


def fresh(cvx, ccv, nd, ni, pos, neg) -> Flags:
    """Elements that are their own argument (identity scalar function)."""
    n = cvx.size
    start = next(_ids)
    for _ in range(max(0, n - 1)):
        next(_ids)
    base = np.arange(start, start + n).reshape(cvx.shape)
    t = np.ones(cvx.shape, bool)
    return Flags(cvx, ccv, nd, ni, pos, neg, base, t, t.copy(), t.copy(), ~t, cvx.copy(), ccv.copy(),
                 nd.copy(), ni.copy())


def compose(hc, hv, hnd, hni, cvx, ccv, nd, ni, const):
    """DCP composition h(g) per element: curvature and monotonicity (nd, ni with a trailing group axis)."""
    aff = cvx & ccv
    out_cvx = const | (hc & (aff | (hnd & cvx) | (hni & ccv)))
    out_ccv = const | (hv & (aff | (hnd & ccv) | (hni & cvx)))
    c = (nd & ni)
    e = np.expand_dims
    out_nd = c | (e(hnd, -1) & nd) | (e(hni, -1) & ni)
    out_ni = c | (e(hnd, -1) & ni) | (e(hni, -1) & nd)
    return out_cvx, out_ccv, out_nd, out_ni


class FlagDomain(Domain):
    """Propagates the flags and records, per node, the rule that produced unknown elements."""

    def __init__(self, groups: int, model_name: str, reasons: list[str], scope: str = ""):
        self.G, self.name, self.reasons, self.scope = groups, model_name, reasons, scope

    def _why(self, node, out: Flags, inputs, rule: str) -> Flags:
        if out.unknown.any() and not any(isinstance(i, Flags) and i.unknown.any() for i in inputs):
            self.reasons.append(f"{self.scope}{label(node, self.name)}: {rule}")
        return out

    # -- leaves ---------------------------------------------------------------------------------
    def const(self, t: torch.Tensor) -> Flags:
        v = t.detach().double().numpy()
        shape = v.shape
        t_ = np.ones(shape, bool)
        g = np.ones(shape + (self.G,), bool)
        return fresh(t_, t_.copy(), g, g.copy(), v >= 0, v <= 0)

    def unknown(self, node, inputs, shape, why) -> Flags:
        f = np.zeros(tuple(shape), bool)
        g = np.zeros(tuple(shape) + (self.G,), bool)
        return self._why(node, fresh(f, f.copy(), g, g.copy(), f.copy(), f.copy()), inputs, why)

    # -- data movement --------------------------------------------------------------------------
    def gather(self, srcs, ids, node) -> Flags:
        idx = ids.numpy()
        parts = {}
        for k in FIELDS:
            arrs = [getattr(s, k) for s in srcs]
            tail = arrs[0].shape[len(srcs[0].shape):]
            flat = np.concatenate([a.reshape((-1,) + tail) for a in arrs])
            parts[k] = flat[idx.reshape(-1)].reshape(idx.shape + tail)
        return Flags(**parts)

    # -- elementwise ----------------------------------------------------------------------------
    def unary(self, f: Facts, x: Flags, node) -> Flags:
        hc, hv = np.full(x.shape, f.convex), np.full(x.shape, f.concave)
        if f.by_sign:
            hnd, hni = x.pos.copy(), x.neg.copy()
        else:
            hnd, hni = np.full(x.shape, f.nondecreasing), np.full(x.shape, f.nonincreasing)
        cvx, ccv, nd, ni = compose(hc, hv, hnd, hni, x.cvx, x.ccv, x.nd, x.ni, x.const)
        s_cvx, s_ccv, s_nd, s_ni = compose(hc, hv, hnd, hni, x.s_cvx, x.s_ccv, x.s_nd[..., None],
                                           x.s_ni[..., None], (x.s_nd & x.s_ni))
        pos, neg = f.out_sign(x.pos, x.neg)
        out = Flags(cvx, ccv, nd, ni, pos, neg, x.base, s_cvx, s_ccv, s_nd[..., 0], s_ni[..., 0],
                    x.b_cvx, x.b_ccv, x.b_nd, x.b_ni)
        kind = "neither convex nor concave" if not (f.convex or f.concave) else (
            f"{'convex' if f.convex else 'concave'}"
            f"{', nondecreasing' if f.nondecreasing else ', nonincreasing' if f.nonincreasing else ', not monotone'}")
        return self._why(node, out, [x], f"{f.name} ({kind}) of {_a(_kind(x))} input has no known curvature")

    def add(self, a, b, node) -> Flags:
        a, b = self._lift(a), self._lift(b)
        out = fresh(a.cvx & b.cvx, a.ccv & b.ccv, a.nd & b.nd, a.ni & b.ni, a.pos & b.pos, a.neg & b.neg)
        self._keep_arg(out, a, b)
        return self._why(node, out, [a, b], f"sum of {_kind(a)} and {_kind(b)} terms has no known curvature")

    def _keep_arg(self, out: Flags, a: Flags, b: Flags) -> None:
        """A sum of functions of one argument (or of one function and a constant) stays a function of it."""
        ac, bc = a.const, b.const
        same = (a.base == b.base) & ~ac & ~bc
        for src, mask in ((b, ac & ~bc), (a, bc & ~ac)):
            for k in ("base", "s_cvx", "s_ccv", "s_nd", "s_ni", "b_cvx", "b_ccv", "b_nd", "b_ni"):
                getattr(out, k)[mask] = getattr(src, k)[mask]
        for k in ("s_cvx", "s_ccv", "s_nd", "s_ni"):
            getattr(out, k)[same] = (getattr(a, k) & getattr(b, k))[same]
        for k in ("base", "b_cvx", "b_ccv", "b_nd", "b_ni"):
            getattr(out, k)[same] = getattr(a, k)[same]

    def _lift(self, v) -> Flags:
        return v if isinstance(v, Flags) else self.const(v)

    def _scale(self, x: Flags, kp: np.ndarray, kn: np.ndarray) -> Flags:
        """x times a constant whose sign flags are (kp, kn) per element."""
        zero = kp & kn
        aff = x.cvx & x.ccv

        def tr(cv, cc):
            return (kp & cv) | (kn & cc) | (cv & cc) | zero, (kp & cc) | (kn & cv) | (cv & cc) | zero
        cvx, ccv = tr(x.cvx, x.ccv)
        e = np.expand_dims
        c = x.nd & x.ni
        nd = (e(kp, -1) & x.nd) | (e(kn, -1) & x.ni) | c | e(zero, -1)
        ni = (e(kp, -1) & x.ni) | (e(kn, -1) & x.nd) | c | e(zero, -1)
        s_cvx, s_ccv = tr(x.s_cvx, x.s_ccv)
        sc = x.s_nd & x.s_ni
        s_nd = (kp & x.s_nd) | (kn & x.s_ni) | sc | zero
        s_ni = (kp & x.s_ni) | (kn & x.s_nd) | sc | zero
        pos = zero | (kp & x.pos) | (kn & x.neg) | (x.pos & x.neg)
        neg = zero | (kp & x.neg) | (kn & x.pos) | (x.pos & x.neg)
        del aff
        return Flags(cvx, ccv, nd, ni, pos, neg, x.base, s_cvx, s_ccv, s_nd, s_ni, x.b_cvx, x.b_ccv, x.b_nd, x.b_ni)

    def mul(self, a, b, node) -> Flags:
        if not isinstance(a, Flags):
            a, b = b, a
        if not isinstance(b, Flags):  # a constant factor: a scaling by its sign, element by element
            v = torch.as_tensor(b, dtype=torch.float64).numpy()
            v = np.broadcast_to(v, a.shape)
            return self._scale(a, v >= 0, v <= 0)
        ac, bc = a.const, b.const
        out = self._scale(a, b.pos, b.neg)  # where b is constant
        sb = self._scale(b, a.pos, a.neg)  # where a is constant
        for k in FIELDS:
            getattr(out, k)[ac] = getattr(sb, k)[ac]
        both = ~ac & ~bc
        same = both & (a.base == b.base)
        sa_const, sb_const = a.s_nd & a.s_ni, b.s_nd & b.s_ni
        up = (a.s_nd & b.s_nd) | (a.s_ni & b.s_ni) | sa_const | sb_const
        gate = same & a.pos & b.pos & a.s_cvx & b.s_cvx & up  # nonneg convex, monotone alike: convex
        sq = same & a.s_cvx & a.s_ccv & b.s_cvx & b.s_ccv & up & ~gate  # (αs+β)(γs+δ), αγ ≥ 0: convex
        ok = gate | sq
        s_nd = np.where(gate, a.s_nd & b.s_nd, False)
        s_ni = np.where(gate, a.s_ni & b.s_ni, False)
        t = np.ones(a.shape, bool)
        cvx, ccv, nd, ni = compose(t, ~t, s_nd, s_ni, a.b_cvx, a.b_ccv, a.b_nd, a.b_ni, (a.b_nd & a.b_ni).all(-1))
        pos = (a.pos & b.pos) | (a.neg & b.neg)
        neg = (a.pos & b.neg) | (a.neg & b.pos)
        fields = dict(cvx=cvx, ccv=ccv & False, nd=nd, ni=ni, pos=pos, neg=neg, base=a.base, s_cvx=t, s_ccv=~t,
                      s_nd=s_nd, s_ni=s_ni, b_cvx=a.b_cvx, b_ccv=a.b_ccv, b_nd=a.b_nd, b_ni=a.b_ni)
        for k, v in fields.items():
            arr = getattr(out, k)
            arr[ok] = np.broadcast_to(v, arr.shape)[ok]
        bad = both & ~ok
        if bad.any():
            g = np.zeros(self.G, bool)
            for k in ("cvx", "ccv", "s_cvx", "s_ccv"):
                getattr(out, k)[bad] = False
            out.nd[bad], out.ni[bad] = g, g
            fresh_ids = fresh(*(np.zeros(a.shape, bool),) * 2, *(np.zeros(a.shape + (self.G,), bool),) * 2,
                              pos, neg).base
            out.base[bad] = fresh_ids[bad]
            diff = bad & (a.base != b.base)
            rule = ("product of two input-dependent factors that are functions of different arguments is not "
                    "certified" if diff.any() else
                    "product of two functions of one argument that are not both nonnegative, convex and monotone "
                    "in the same direction")
            return self._why(node, out, [a, b], rule)
        return out

    def maximum(self, a, b, node) -> Flags:
        a, b = self._lift(a), self._lift(b)
        both_const = a.const & b.const
        cvx = a.cvx & b.cvx
        out = fresh(cvx, both_const.copy(), a.nd & b.nd, a.ni & b.ni, a.pos | b.pos, a.neg & b.neg)
        return self._why(node, out, [a, b], f"maximum of {_kind(a)} and {_kind(b)} terms")

    # -- linear maps ----------------------------------------------------------------------------
    def matmul(self, x: Flags, m: torch.Tensor, node) -> Flags:
        M = m.numpy()
        P, N = (M > 0).astype(np.float64), (M < 0).astype(np.float64)

        def ok(a, b):  # entries where no term violates: weight > 0 needs a, weight < 0 needs b
            return ((~a).astype(np.float64) @ P + (~b).astype(np.float64) @ N) == 0

        def okg(a, b):
            a2, b2 = np.moveaxis(a, -1, -2), np.moveaxis(b, -1, -2)
            return np.moveaxis(ok(a2, b2), -1, -2)

        out = fresh(ok(x.cvx, x.ccv), ok(x.ccv, x.cvx), okg(x.nd, x.ni), okg(x.ni, x.nd),
                    ok(x.pos, x.neg), ok(x.neg, x.pos))
        return self._why(node, out, [x], f"weights of mixed sign applied to {_a(_kind(x))} input")

    def lmatmul(self, m: torch.Tensor, x: Flags, node) -> Flags:
        M = m.numpy()
        P, N = (M > 0).astype(np.float64), (M < 0).astype(np.float64)

        def ok(a, b):
            return (P @ (~a).astype(np.float64) + N @ (~b).astype(np.float64)) == 0

        def okg(a, b):
            return np.stack([ok(a[..., g], b[..., g]) for g in range(self.G)], -1) if self.G else \
                np.zeros((M.shape[0],) + a.shape[1:], bool)

        out = fresh(ok(x.cvx, x.ccv), ok(x.ccv, x.cvx), okg(x.nd, x.ni), okg(x.ni, x.nd),
                    ok(x.pos, x.neg), ok(x.neg, x.pos))
        return self._why(node, out, [x], f"weights of mixed sign applied to {_a(_kind(x))} input")

    def reduce_sum(self, x: Flags, dims, node) -> Flags:
        def r(a):
            return a.all(axis=dims, keepdims=True)

        def rg(a):
            return a.all(axis=dims, keepdims=True)
        out = fresh(r(x.cvx), r(x.ccv), rg(x.nd), rg(x.ni), r(x.pos), r(x.neg))
        return self._why(node, out, [x], f"sum of {_kind(x)} terms has no known curvature")


def _kind(x) -> str:
    if not isinstance(x, Flags):
        return "constant"
    kinds = []
    for name, m in (("convex", x.cvx & ~x.ccv), ("concave", x.ccv & ~x.cvx), ("unknown", x.unknown)):
        if m.any():
            kinds.append(name)
    return " and ".join(kinds) or "affine"


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"
