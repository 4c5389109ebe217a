"""Summaries of signals and the composition rules for assembled problems (a model's graph read over a horizon,
plus cost and constraints). A `Sym` summarises a signal with respect to a fixed set of input groups (the inputs
a certificate is about; every other input is a constant). Models themselves are read from their graph.
"""

from __future__ import annotations

from dataclasses import dataclass

from icctrl.convexity._lattice import (
    C,
    Curvature,
    M,
    Mono,
    S,
    Sign,
    curv_add,
    curv_flip,
    mono_add,
    mono_flip,
    sign_add,
    sign_flip,
    sign_mul,
)


@dataclass(frozen=True)
class Sym:
    """A signal: its curvature, monotonicity per input group and sign."""

    curvature: Curvature
    mono: tuple[Mono, ...]
    sign: Sign
    label: str

    @property
    def constant(self) -> bool:
        return self.curvature == C.CONSTANT

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
        return Sym(curv_flip(x.curvature), tuple(mono_flip(m) for m in x.mono), sign_flip(x.sign), label)

    def square_norm(self, x: Sym, label: str) -> Sym:
        """½‖x‖² of a vector signal: convex when x is affine."""
        if x.constant:
            return self.constant(label, S.NONNEG)
        affine = x.curvature == C.AFFINE
        out = Sym(C.CONVEX if affine else C.UNKNOWN, tuple(M.CONSTANT if m == M.CONSTANT else M.NONE
                                                            for m in x.mono), S.NONNEG, label)
        if not affine and x.curvature != C.UNKNOWN:
            self._fail(out, f"square of a {x.curvature.value} (non-affine) signal has no known curvature")
        return out

    def add(self, *xs: Sym, label: str) -> Sym:
        curv, sign = C.CONSTANT, S.ZERO
        mono = tuple(M.CONSTANT for _ in self.groups)
        for x in xs:
            curv = curv_add(curv, x.curvature)
            sign = sign_add(sign, x.sign)
            mono = tuple(mono_add(a, b) for a, b in zip(mono, x.mono))
        out = Sym(curv, mono, sign, label)
        if curv == C.UNKNOWN and all(x.curvature != C.UNKNOWN for x in xs):
            kinds = ", ".join(sorted({x.curvature.value for x in xs}))
            self._fail(out, f"sum of convex and concave terms ({kinds}) has no known curvature")
        return out

    def apply(self, x: Sym, h, label: str) -> Sym:
        """h(x) for a scalar function with the op table's `Facts` h (a norm counts as convex, no monotonicity):
        the CVXPY composition rule, convex nondecreasing ∘ convex, convex nonincreasing ∘ concave, and so on."""
        sign = {"nonneg": S.NONNEG, "nonpos": S.NONPOS, "keep": x.sign, "flip": sign_flip(x.sign)}.get(h.sign,
                                                                                                          S.UNKNOWN)
        if x.constant:
            return self.constant(label, sign)
        up, down = h.nondecreasing, h.nonincreasing
        if x.curvature == C.AFFINE:
            curv = (C.AFFINE if h.convex and h.concave else C.CONVEX if h.convex else C.CONCAVE if h.concave
                    else C.UNKNOWN)
        elif x.curvature in (C.CONVEX, C.CONCAVE):
            same = (up and x.curvature == C.CONVEX) or (down and x.curvature == C.CONCAVE)
            flip = (down and x.curvature == C.CONVEX) or (up and x.curvature == C.CONCAVE)
            curv = C.CONVEX if (h.convex and same) else C.CONCAVE if (h.concave and flip) else C.UNKNOWN
            if h.convex and h.concave:  # affine h keeps or flips the curvature
                curv = x.curvature if up else curv_flip(x.curvature) if down else C.UNKNOWN
        else:
            curv = C.UNKNOWN
        mono = tuple(m if (up or m == M.CONSTANT) else mono_flip(m) if down else M.NONE for m in x.mono)
        out = Sym(curv, mono, sign, label)
        if curv == C.UNKNOWN and x.curvature != C.UNKNOWN:
            self._fail(out, f"{h.name} of a {x.curvature.value} input has no known curvature")
        return out

    def concat(self, *xs: Sym, label: str) -> Sym:
        """Stacking vectors: every entry keeps its own facts; the summary is their join."""
        return self.add(*xs, label=label)  # the join of curvature/mono/sign is the rule for a sum
