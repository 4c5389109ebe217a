"""The property lattice: curvature, monotonicity and sign, with the joins and flips of the composition rules."""

from __future__ import annotations

from enum import Enum


class Curvature(str, Enum):
    """Curvature of a signal with respect to the inputs a certificate is about."""

    CONSTANT = "constant"
    AFFINE = "affine"
    CONVEX = "convex"
    CONCAVE = "concave"
    UNKNOWN = "unknown"


class Mono(str, Enum):
    """Monotonicity of a signal in one input group."""

    CONSTANT = "constant"
    NONDECREASING = "nondecreasing"
    NONINCREASING = "nonincreasing"
    NONE = "none"


class Sign(str, Enum):
    """Sign of a signal (or of a weight matrix)."""

    ZERO = "zero"
    NONNEG = "nonneg"
    NONPOS = "nonpos"
    UNKNOWN = "unknown"


C, M, S = Curvature, Mono, Sign


def is_convex(c: Curvature) -> bool:
    return c in (C.CONSTANT, C.AFFINE, C.CONVEX)


def is_concave(c: Curvature) -> bool:
    return c in (C.CONSTANT, C.AFFINE, C.CONCAVE)


def curv_add(a: Curvature, b: Curvature) -> Curvature:
    """Curvature of a sum: affine parts vanish, convex + concave is unknown."""
    if a == C.UNKNOWN or b == C.UNKNOWN:
        return C.UNKNOWN
    if a == C.CONSTANT:
        return b
    if b == C.CONSTANT:
        return a
    if a == C.AFFINE:
        return b
    if b == C.AFFINE:
        return a
    return a if a == b else C.UNKNOWN


def curv_flip(c: Curvature) -> Curvature:
    return {C.CONVEX: C.CONCAVE, C.CONCAVE: C.CONVEX}.get(c, c)


def mono_add(a: Mono, b: Mono) -> Mono:
    if a == M.CONSTANT:
        return b
    if b == M.CONSTANT:
        return a
    return a if a == b else M.NONE


def mono_flip(m: Mono) -> Mono:
    return {M.NONDECREASING: M.NONINCREASING, M.NONINCREASING: M.NONDECREASING}.get(m, m)


def sign_add(a: Sign, b: Sign) -> Sign:
    if a == S.ZERO:
        return b
    if b == S.ZERO:
        return a
    return a if a == b else S.UNKNOWN


def sign_mul(a: Sign, b: Sign) -> Sign:
    if S.ZERO in (a, b):
        return S.ZERO
    if S.UNKNOWN in (a, b):
        return S.UNKNOWN
    return S.NONNEG if a == b else S.NONPOS


def sign_flip(s: Sign) -> Sign:
    return {S.NONNEG: S.NONPOS, S.NONPOS: S.NONNEG}.get(s, s)


def sign_of(values) -> Sign:
    """Sign of every entry of an array or tensor taken together."""
    import torch

    t = torch.as_tensor(values)
    if t.numel() == 0 or bool((t == 0).all()):
        return S.ZERO
    if bool((t >= 0).all()):
        return S.NONNEG
    if bool((t <= 0).all()):
        return S.NONPOS
    return S.UNKNOWN
