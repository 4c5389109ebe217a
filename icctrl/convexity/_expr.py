"""Abstract signals and the composition rules that propagate curvature, monotonicity and sign through a model.

A `Sym` summarises a vector signal with respect to a fixed set of input groups (the inputs a certificate
is about; every other input is a constant). When a signal is an elementwise function of one earlier
pre-activation (as all gates of one IC-LSTM unit are), the `Sym` remembers that argument and the facts of
the scalar function, so that products of functions of the *same* argument can be certified and products of
functions of different arguments cannot.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

from icctrl.convexity._lattice import (
    Atom,
    C,
    Curvature,
    M,
    Mono,
    S,
    Sign,
    curv_add,
    curv_flip,
    is_concave,
    is_convex,
    mono_add,
    mono_flip,
    sign_add,
    sign_flip,
    sign_mul,
)

_ids = itertools.count()


@dataclass(frozen=True)
class Scalar:
    """Facts of a scalar function h applied elementwise to a named argument signal."""

    base: int  # uid of the argument signal
    base_curvature: Curvature  # the argument's facts with respect to the input groups
    base_mono: tuple[Mono, ...]
    curvature: Curvature  # of h as a function of its argument
    mono: Mono
    sign: Sign


@dataclass(frozen=True)
class Sym:
    """A vector signal: its curvature, monotonicity per input group and sign."""

    curvature: Curvature
    mono: tuple[Mono, ...]
    sign: Sign
    label: str
    arg: Scalar | None = None
    uid: int = field(default_factory=lambda: next(_ids))

    @property
    def constant(self) -> bool:
        return self.curvature == C.CONSTANT


def compose_curvature(h_curv: Curvature, h_mono: Mono, inner: Curvature) -> Curvature:
    """DCP composition h(g): convex if h convex and (nondecreasing & g convex, or nonincreasing & g concave)."""
    if inner == C.CONSTANT:
        return C.CONSTANT
    if h_curv == C.AFFINE:
        if inner == C.AFFINE:
            return C.AFFINE
        if h_mono == M.NONDECREASING:
            return inner
        if h_mono == M.NONINCREASING:
            return curv_flip(inner)
        return C.UNKNOWN
    if h_curv == C.CONVEX:
        if inner == C.AFFINE:
            return C.CONVEX
        if (h_mono == M.NONDECREASING and is_convex(inner)) or (h_mono == M.NONINCREASING and is_concave(inner)):
            return C.CONVEX
        return C.UNKNOWN
    if h_curv == C.CONCAVE:
        if inner == C.AFFINE:
            return C.CONCAVE
        if (h_mono == M.NONDECREASING and is_concave(inner)) or (h_mono == M.NONINCREASING and is_convex(inner)):
            return C.CONCAVE
        return C.UNKNOWN
    return C.UNKNOWN


def compose_mono(h_mono: Mono, inner: Mono) -> Mono:
    if inner == M.CONSTANT:
        return M.CONSTANT
    if h_mono == M.NONDECREASING:
        return inner
    if h_mono == M.NONINCREASING:
        return mono_flip(inner)
    return M.NONE


def _linear_mono(m: Mono, weight: Sign) -> Mono:
    if weight == S.NONNEG or m == M.CONSTANT:
        return m
    return mono_flip(m) if weight == S.NONPOS else M.NONE


class Tracer:
    """Applies the composition rules and records, for each failure, the layer and the rule that broke."""

    def __init__(self, groups: tuple[str, ...]):
        self.groups = tuple(groups)
        self.reasons: list[str] = []
        self.scope = ""  # prefix for reasons, e.g. "horizon step 2: " when a model is rolled out

    # -- leaves -------------------------------------------------------------------------------------
    def input(self, group: str | None, label: str, sign: Sign = S.UNKNOWN) -> Sym:
        """A scalar input feature: affine and nondecreasing in its own group, or a constant."""
        if group is None:
            return self.constant(label, sign)
        mono = tuple(M.NONDECREASING if g == group else M.CONSTANT for g in self.groups)
        return Sym(C.AFFINE, mono, sign, label)

    def constant(self, label: str, sign: Sign = S.UNKNOWN) -> Sym:
        return Sym(C.CONSTANT, tuple(M.CONSTANT for _ in self.groups), sign, label)

    def _fail(self, result: Sym, rule: str) -> Sym:
        if result.curvature == C.UNKNOWN:
            self.reasons.append(f"{self.scope}{result.label}: {rule}")
        return result

    # -- affine maps --------------------------------------------------------------------------------
    def linear(self, x: Sym, weight: Sign, label: str, bias: Sign = S.ZERO) -> Sym:
        """W x + b for a weight matrix whose entries all have sign `weight`."""
        if x.constant or weight == S.ZERO:
            return self.constant(label, sign_add(sign_mul(weight, x.sign), bias))
        if x.curvature in (C.AFFINE, C.UNKNOWN):
            curv = x.curvature
        elif weight == S.NONNEG:
            curv = x.curvature
        elif weight == S.NONPOS:
            curv = curv_flip(x.curvature)
        else:
            curv = C.UNKNOWN
        mono = tuple(_linear_mono(m, weight) for m in x.mono)
        out = Sym(curv, mono, sign_add(sign_mul(weight, x.sign), bias), label)
        if curv == C.UNKNOWN and x.curvature != C.UNKNOWN:
            self._fail(out, f"weights of mixed sign applied to a {x.curvature.value} (non-affine) input")
        return out

    def neg(self, x: Sym, label: str) -> Sym:
        arg = x.arg and replace(x.arg, curvature=curv_flip(x.arg.curvature), mono=mono_flip(x.arg.mono),
                                sign=sign_flip(x.arg.sign))
        return Sym(curv_flip(x.curvature), tuple(mono_flip(m) for m in x.mono), sign_flip(x.sign), label, arg)

    def scale(self, x: Sym, sign: Sign, label: str) -> Sym:
        """Elementwise (diagonal) scaling by factors of one sign; keeps the elementwise argument."""
        if sign == S.NONNEG:
            h = x.arg or self._identity(x)
            return replace(x, label=label, sign=sign_mul(S.NONNEG, x.sign), uid=next(_ids),
                           arg=replace(h, sign=sign_mul(S.NONNEG, h.sign)))
        if sign == S.NONPOS:
            return self.neg(x, label)
        return self.linear(x, sign, label)

    def add(self, *xs: Sym, label: str) -> Sym:
        curv, sign = C.CONSTANT, S.ZERO
        mono = tuple(M.CONSTANT for _ in self.groups)
        for x in xs:
            curv = curv_add(curv, x.curvature)
            sign = sign_add(sign, x.sign)
            mono = tuple(mono_add(a, b) for a, b in zip(mono, x.mono))
        out = Sym(curv, mono, sign, label, self._sum_arg(xs))
        if curv == C.UNKNOWN and all(x.curvature != C.UNKNOWN for x in xs):
            kinds = ", ".join(sorted({x.curvature.value for x in xs}))
            self._fail(out, f"sum of convex and concave terms ({kinds}) has no known curvature")
        return out

    def concat(self, *xs: Sym, label: str) -> Sym:
        """Stacking vectors: every entry keeps its own facts; the summary is their join."""
        out = self.add(*xs, label=label)  # the join of curvature/mono/sign is the rule for a sum
        return replace(out, arg=None)

    @staticmethod
    def _sum_arg(xs) -> Scalar | None:
        args = [x.arg for x in xs if not x.constant]
        if not args or any(a is None for a in args) or len({a.base for a in args}) != 1:
            return None
        curv, mono, sign = C.AFFINE, M.CONSTANT, S.ZERO
        for x in xs:
            if x.constant:
                sign = sign_add(sign, x.sign)
                continue
            curv = curv_add(curv, x.arg.curvature)
            mono = mono_add(mono, x.arg.mono)
            sign = sign_add(sign, x.arg.sign)
        return Scalar(args[0].base, args[0].base_curvature, args[0].base_mono, curv, mono, sign)

    @staticmethod
    def _identity(x: Sym) -> Scalar:
        return Scalar(x.uid, x.curvature, x.mono, C.AFFINE, M.NONDECREASING, x.sign)

    # -- nonlinearities -----------------------------------------------------------------------------
    def activation(self, x: Sym, act: Atom, label: str) -> Sym:
        """An elementwise activation, composed by the DCP rule."""
        if x.constant:
            return self.constant(label, act.sign if act.sign != S.UNKNOWN else S.UNKNOWN)
        curv = compose_curvature(act.curvature, act.mono, x.curvature)
        mono = tuple(compose_mono(act.mono, m) for m in x.mono)
        h = x.arg or self._identity(x)
        h_curv = compose_curvature(act.curvature, act.mono, h.curvature)
        arg = Scalar(h.base, h.base_curvature, h.base_mono, h_curv, compose_mono(act.mono, h.mono), act.sign)
        out = Sym(curv, mono, act.sign, label, arg)
        if curv == C.UNKNOWN and x.curvature != C.UNKNOWN:
            if act.curvature == C.UNKNOWN:
                rule = f"{act.name} is neither convex nor concave"
            else:
                rule = f"{act.name} ({act.curvature.value}, {act.mono.value}) of a {x.curvature.value} input"
            self._fail(out, rule)
        return out

    def mul(self, a: Sym, b: Sym, label: str) -> Sym:
        """Elementwise product: certified when one factor is a signed constant, or both are non-negative
        convex functions of the same argument, monotone in the same direction."""
        if a.constant and b.constant:
            return self.constant(label, sign_mul(a.sign, b.sign))
        if a.constant or b.constant:
            k, x = (a, b) if a.constant else (b, a)
            if k.sign in (S.NONNEG, S.NONPOS, S.ZERO):
                out = self.scale(x, S.NONNEG if k.sign == S.ZERO else k.sign, label)
                return out
            out = self.linear(x, S.UNKNOWN, label)
            return out
        ha, hb = a.arg, b.arg
        if ha and hb and ha.base == hb.base:
            ok_sign = ha.sign in (S.NONNEG, S.ZERO) and hb.sign in (S.NONNEG, S.ZERO)
            same_mono = ha.mono == hb.mono and ha.mono in (M.NONDECREASING, M.NONINCREASING, M.CONSTANT)
            if ok_sign and same_mono and is_convex(ha.curvature) and is_convex(hb.curvature):
                h = Scalar(ha.base, ha.base_curvature, ha.base_mono, C.CONVEX, ha.mono, S.NONNEG)
                curv = compose_curvature(C.CONVEX, ha.mono, ha.base_curvature)
                mono = tuple(compose_mono(ha.mono, m) for m in ha.base_mono)
                out = Sym(curv, mono, S.NONNEG, label, h)
                if ha.base_curvature == C.UNKNOWN:
                    return out  # the argument's own failure is already reported
                return self._fail(out, f"convex {ha.mono.value} product of a {ha.base_curvature.value} argument")
        out = Sym(C.UNKNOWN, tuple(M.CONSTANT if x == y == M.CONSTANT else M.NONE for x, y in zip(a.mono, b.mono)),
                  sign_mul(a.sign, b.sign), label)
        return self._fail(out, f"product of two input-dependent factors ({a.label} ⊙ {b.label}) that are "
                               "functions of different arguments is not certified")

    def square_norm(self, x: Sym, label: str) -> Sym:
        """½‖x‖² of a vector signal: convex when x is affine."""
        act = Atom("square", C.CONVEX, M.NONE, S.NONNEG, float("inf"))
        return self.activation(x, act, label)
