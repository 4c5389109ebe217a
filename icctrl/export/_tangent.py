"""Forward-mode tangent reading of the graph that runs: values and Jacobians of a model's one-period map for a
batch of points at once, in numpy float64.

The graph is read once into a tape of numpy operations. A register is an array of B + S·m rows: the values of
B points, then S tangents (one per input seed) of the first m of them, so a dense layer is one matrix product
for all points and seeds together, and a call may ask for the Jacobians of only some points (m < B). Reading
folds constants, shares common subexpressions (an input held over the window is projected once), drops what
the output does not need and fuses scale → shift → activation chains. Each batch shape (B, m) gets a plan: every
register a preallocated buffer and every instruction a few numpy calls writing into it, so a call allocates
and reshapes nothing. Elementwise derivatives come from the op table (`Facts.tangent`), so an op without one is
refused, never approximated. `PeriodTangents.differences` runs the same plan on values only, for forward
differences.
"""

from __future__ import annotations

import hashlib
from functools import partial

import numpy as np
import torch
from scipy.special import expit

from icctrl.convexity import GraphError, capture, interpret
from icctrl.convexity._read import label
from icctrl.convexity._rows import RowDomain, RowValue
from icctrl.errors import ShapeError, UnknownNameError


class Reg:
    """An input-dependent row: register `i` of a tape, of length `n`."""

    __array_ufunc__ = None  # ndarray + Reg defers to Reg.__radd__ (object-array sums of rows)

    def __init__(self, tape: Tape, i: int, n: int):
        self.tape, self.i, self.n = tape, i, n

    def __add__(self, other):
        return self.tape.add(self, other)

    __radd__ = __add__


def _key(c) -> tuple:
    c = np.asarray(c, float)
    return c.shape, hashlib.sha1(np.ascontiguousarray(c).tobytes()).hexdigest()


class Tape:
    """Instructions (kind, out, ins, param) over registers; register 0 is the input."""

    def __init__(self, n_in: int):
        self.code: list[tuple] = []
        self.n = [n_in]
        self._seen: dict[tuple, Reg] = {}

    def op(self, kind: str, ins: tuple, n: int, param=None, key=()) -> Reg:
        """A new register, or the one an identical earlier instruction made."""
        k = (kind, tuple(r.i for r in ins), key)
        if k not in self._seen:
            self.n.append(n)
            self.code.append((kind, len(self.n) - 1, tuple(r.i for r in ins), param))
            self._seen[k] = Reg(self, len(self.n) - 1, n)
        return self._seen[k]

    def add(self, a, b):
        ra, rb = isinstance(a, Reg), isinstance(b, Reg)
        if not ra and not rb:
            return a + b
        if ra and rb:
            return self.op("add", (a, b), max(a.n, b.n))
        r, c = (a, np.asarray(b, float)) if ra else (b, np.asarray(a, float))
        if not c.any():
            return r
        c = np.array(np.broadcast_to(c, (r.n,)))
        return self.op("addc", (r,), r.n, c, _key(c))

    def mul(self, a, b):
        ra, rb = isinstance(a, Reg), isinstance(b, Reg)
        if not ra and not rb:
            return a * b
        if ra and rb:
            return self.op("mul", (a, b), max(a.n, b.n))
        r, c = (a, np.asarray(b, float)) if ra else (b, np.asarray(a, float))
        if not c.any():
            return np.zeros(r.n)
        if np.all(c == 1):
            return r
        c = np.array(np.broadcast_to(c, (r.n,)))
        return self.op("mulc", (r,), r.n, c, _key(c))

    def compile(self, out: Reg) -> list[tuple]:
        """The instructions the output needs, in order, fused, as (kind, outs, ins, param)."""
        live, keep = {out.i}, []
        for ins in reversed(self.code):
            if ins[1] in live:
                keep.append(ins)
                live.update(ins[2])
        return _fuse([(k, (o,), ins, p) for k, o, ins, p in keep[::-1]], out.i)


def _fuse(code: list[tuple], out: int) -> list[tuple]:
    """Fusion passes over (kind, outs, ins, param): activation(x·scale + shift) chains into one instruction,
    such chains on one source into one grouped instruction (an LSTM's gates), x·M + y and a·b + c·d."""
    def uses():
        n: dict[int, int] = {out: 1}
        for _, _, ins, _ in code:
            for i in ins:
                n[i] = n.get(i, 0) + 1
        return n

    n, by = uses(), {o[0]: (k, ins, p) for k, o, ins, p in code}
    drop, new = set(), {}
    for kind, (o,), ins, f in code:  # unary(addc(mulc(x))) with single-use intermediates
        if kind != "unary":
            continue
        scale = shift = None
        src = ins[0]
        k1 = by.get(src)
        if k1 and k1[0] == "addc" and n[src] == 1:
            drop.add(src)
            shift, src = k1[2], k1[1][0]
            k2 = by.get(src)
            if k2 and k2[0] == "mulc" and n[src] == 1:
                drop.add(src)
                scale, src = k2[2], k2[1][0]
        new[o] = ("affine", (o,), (src,), (scale, shift, f))
    code = [new.get(c[1][0], c) for c in code if c[1][0] not in drop]
    groups: dict[tuple, list] = {}
    for c in code:
        if c[0] == "affine" and c[3][0] is not None and c[3][1] is not None:
            groups.setdefault((c[2][0], c[3][2].name, len(c[3][0])), []).append(c)
    first = {}
    for g in groups.values():
        if len(g) > 1:
            outs = tuple(c[1][0] for c in g)
            param = (np.stack([c[3][0] for c in g]), np.stack([c[3][1] for c in g]), g[0][3][2])
            first[g[0][1]] = ("group", outs, g[0][2], param)
            drop.update(outs[1:])
    code = [first.get(c[1], c) for c in code if c[1][0] not in drop]
    n, by = uses(), {o[0]: (k, ins, p) for k, o, ins, p in code}
    drop, new = set(), {}
    for _, (o,), ins, _ in (c for c in code if c[0] == "add"):
        ka, kb = by.get(ins[0]), by.get(ins[1])
        single = [n[i] == 1 for i in ins]
        if ka and kb and ka[0] == kb[0] == "mul" and all(single):  # a·b + c·d
            drop.update(ins)
            new[o] = ("fma", (o,), (*ka[1], *kb[1]), None)
            continue
        for j in (0, 1):
            kj = by.get(ins[j])
            if kj and kj[0] == "mm" and single[j]:  # x·M + y
                drop.add(ins[j])
                new[o] = ("mm_add", (o,), (kj[1][0], ins[1 - j]), kj[2])
                break
    code = [new.get(c[1][0], c) if len(c[1]) == 1 else c for c in code if len(c[1]) > 1 or c[1][0] not in drop]
    n, by = uses(), {o[0]: (k, ins, p) for k, o, ins, p in code}
    drop, new = set(), {}
    for kind, (o,), ins, p in (c for c in code if c[0] in ("addc", "mul")):
        if kind == "addc":  # x·M + c
            k1 = by.get(ins[0])
            if k1 and k1[0] == "mm" and n[ins[0]] == 1:
                drop.add(ins[0])
                new[o] = ("mm_bias", (o,), k1[1], (k1[2], p))
            continue
        for j in (0, 1):  # a · h(b): the activation fused into the product
            kj = by.get(ins[j])
            if kj and kj[0] == "affine" and kj[2][0] is None and kj[2][1] is None and n[ins[j]] == 1:
                drop.add(ins[j])
                new[o] = ("mul_act", (o,), (ins[1 - j], kj[1][0]), kj[2][2])
                break
    code = [new.get(c[1][0], c) if len(c[1]) == 1 else c for c in code if len(c[1]) > 1 or c[1][0] not in drop]
    return code


# -- plans: every register a fixed buffer of rows [values of B points; S tangent blocks of m rows], every
# instruction a few numpy calls writing into it (no allocation, no reshaping inside a call) ---------------------
def _tv(y: np.ndarray, B: int, S: int, m: int) -> np.ndarray:
    """The tangent rows of buffer y as an (S, m, n) view (a view, never a copy: the plan writes through it)."""
    t = y[B:].view()
    t.shape = (S, m, y.shape[-1])
    return t


def _act(f, v: np.ndarray, d: np.ndarray, first: tuple) -> list[tuple]:
    """Calls that apply f to the value rows v in place and leave its derivative at v[first] (the points with
    Jacobians) in d."""
    if f.name == "relu":  # the op table's relu, without its temporaries: h = max(v, 0), h' = [v > 0]
        return ([(np.greater, (v[first], 0.0, d))] if d.size else []) + [(partial(np.maximum, out=v), (v, 0.0))]
    if f.name in ("tanh", "sigmoid"):  # in place, the derivative from the value: 1 − h², h·(1 − h)
        h = v[first]
        if f.name == "tanh":
            return [(np.tanh, (v, v))] + ([(np.multiply, (h, h, d)), (np.subtract, (1.0, d, d))] if d.size else [])
        return [(expit, (v, v))] + ([(np.subtract, (1.0, h, d)), (np.multiply, (d, h, d))] if d.size else [])
    if not d.size:  # values only
        return [(lambda: np.copyto(v, f.tangent(v)[0]), ())]

    def run():
        val, dv = f.tangent(v)
        d[...] = dv[first]
        v[...] = val

    return [(run, ())]


class _Plan:
    """The instructions of a tape for one batch shape (B points, Jacobians of the first m) as a flat list of
    numpy calls over preallocated buffers; `x0` takes the input rows, `out` holds the output register."""

    def __init__(self, code: list[tuple], sizes: list[int], out: int, B: int, m: int, S: int):
        R = B + S * m
        self.x0 = np.zeros((R, S))
        if m:
            _tv(self.x0, B, S, m)[:] = np.eye(S)[:, None, :]
        buf = {0: self.x0}
        self.ops: list[tuple] = []
        for kind, outs, ins, p in code:
            xs = [buf[i] for i in ins]
            if kind == "take":
                buf[outs[0]] = xs[0][:, p[0]:p[1]]
                continue
            if kind == "group":
                k = len(outs)
                g = np.empty((k, R, sizes[outs[0]]))
                for j, o in enumerate(outs):
                    buf[o] = g[j]
                self.ops += _group(g, xs[0], p, B, m, S)
                continue
            o = buf[outs[0]] = np.zeros((R, sizes[outs[0]]))
            self.ops += _EMIT[kind](o, xs, p, B, m, S)
        self.out = buf[out]

    def __call__(self, XU: np.ndarray) -> np.ndarray:
        self.x0[: XU.shape[0]] = XU
        with np.errstate(over="ignore", invalid="ignore"):  # far outside the training data values may overflow:
            for fn, args in self.ops:  # they come back as inf/nan, which the callers check, not as warnings
                fn(*args)
        return self.out


def _group(g, x, p, B, m, S):
    """k activations of x·scale_j + shift_j (an LSTM's gates) into the (k, R, L) buffer g."""
    scale, shift, f = p
    k, L = scale.shape
    gv = g[:, :B]
    ops = [(np.multiply, (x[None], scale[:, None, :], g)), (np.add, (gv, shift[:, None, :], gv))]
    d = np.empty((k, m, L), float)
    ops += _act(f, gv, d, (slice(None), slice(None, m)))
    if not m:
        return ops
    t = g[:, B:].view()
    t.shape = (k, S, m, L)
    return ops + [(np.multiply, (t, d[:, None], t))]


def _e_addc(o, xs, c, B, m, S):
    x = xs[0]
    return [(np.add, (x[:B], c, o[:B]))] + ([(np.copyto, (o[B:], x[B:]))] if m else [])


def _e_mulc(o, xs, c, B, m, S):
    return [(np.multiply, (xs[0], c, o))]


def _e_affine(o, xs, p, B, m, S):
    """f(x·scale + shift), either of scale and shift possibly absent (a plain activation)."""
    scale, shift, f = p
    x, ov = xs[0], o[:B]
    ops = [(np.multiply, (x, scale, o))] if scale is not None else [(np.copyto, (o, x))]
    if shift is not None:
        ops.append((np.add, (ov, shift, ov)))
    d = np.empty((m, o.shape[1]), float)
    ops += _act(f, ov, d, (slice(None, m),))
    if m:
        t = _tv(o, B, S, m)
        ops.append((np.multiply, (t, d, t)))
    return ops


def _e_unary(o, xs, f, B, m, S):
    return _e_affine(o, xs, (None, None, f), B, m, S)


def _e_add(o, xs, p, B, m, S):
    return [(np.add, (xs[0], xs[1], o))]


def _product_tangent(o, a, b, B, m, S, tmp) -> list[tuple]:
    """Tangent rows of a·b added to those of o (ȧ·b + a·ḃ); `tmp` an (S, m, n) scratch buffer."""
    t = _tv(o, B, S, m)
    return [(np.multiply, (_tv(a, B, S, m), b[:m], tmp)), (np.add, (t, tmp, t)),
            (np.multiply, (a[:m], _tv(b, B, S, m), tmp)), (np.add, (t, tmp, t))]


def _e_mul(o, xs, p, B, m, S):
    a, b = xs
    ops = [(np.multiply, (a[:B], b[:B], o[:B]))]
    if m:
        ops += [(np.copyto, (o[B:], 0.0))] + _product_tangent(o, a, b, B, m, S, np.empty((S, m, o.shape[1])))
    return ops


def _e_fma(o, xs, p, B, m, S):
    """a·b + c·d."""
    a, b, c, d = xs
    ov, tv = o[:B], np.empty((B, o.shape[1]))
    ops = [(np.multiply, (a[:B], b[:B], ov)), (np.multiply, (c[:B], d[:B], tv)), (np.add, (ov, tv, ov))]
    if m:
        tmp = np.empty((S, m, o.shape[1]))
        ops += [(np.copyto, (o[B:], 0.0))] + _product_tangent(o, a, b, B, m, S, tmp) + \
            _product_tangent(o, c, d, B, m, S, tmp)
    return ops


def _e_mul_act(o, xs, f, B, m, S):
    """a · h(b) with h's derivative: values a·h(b), tangents ȧ·h(b) + a·h'(b)·ḃ."""
    a, b = xs
    n = o.shape[1]
    hb, d = np.empty((B, n)), np.empty((m, n), float)
    ops = [(np.copyto, (hb, b[:B]))] + _act(f, hb, d, (slice(None, m),)) + [(np.multiply, (a[:B], hb, o[:B]))]
    if m:
        t, tmp, coef = _tv(o, B, S, m), np.empty((S, m, n)), np.empty((m, n))
        ops += [(np.multiply, (_tv(a, B, S, m), hb[:m], t)), (np.multiply, (a[:m], d, coef)),
                (np.multiply, (coef, _tv(b, B, S, m), tmp)), (np.add, (t, tmp, t))]
    return ops


def _e_mm(o, xs, M, B, m, S):
    return [(np.matmul, (xs[0], M, o))]


def _e_mm_add(o, xs, M, B, m, S):
    return [(np.matmul, (xs[0], M, o)), (np.add, (o, xs[1], o))]


def _e_mm_bias(o, xs, p, B, m, S):
    M, c = p
    return [(np.matmul, (xs[0], M, o)), (np.add, (o[:B], c, o[:B]))]


def _e_cat(o, xs, pieces, B, m, S):
    """Registers copied into their columns; constant pieces written once (values rows; tangents stay 0)."""
    ops, it, col = [], iter(xs), 0
    for p in pieces:
        if p is None:
            x = next(it)
            w = x.shape[1]
            ops.append((np.copyto, (o[:, col:col + w], x)))
        else:
            w = len(p)
            o[:B, col:col + w] = p
        col += w
    return ops


def _e_maxc(o, xs, c, B, m, S):
    """max(x, c): the tangent follows x where x ≥ c."""
    x = xs[0]
    ops = [(partial(np.maximum, out=o[:B]), (x[:B], c))]
    if m:
        mask, t = np.empty((m, o.shape[1]), bool), _tv(o, B, S, m)
        ops = [(np.greater_equal, (x[:m], c, mask))] + ops + [(np.multiply, (_tv(x, B, S, m), mask, t))]
    return ops


def _e_max(o, xs, p, B, m, S):
    """max(a, b): the tangent of a where a ≥ b, else of b."""
    a, b = xs
    ops = [(partial(np.maximum, out=o[:B]), (a[:B], b[:B]))]
    if m:
        mask, t = np.empty((m, o.shape[1]), bool), _tv(o, B, S, m)
        mask_t = np.broadcast_to(mask, t.shape)
        ops = [(np.greater_equal, (a[:m], b[:m], mask))] + ops + [
            (np.copyto, (t, _tv(b, B, S, m))), (np.copyto, (t, _tv(a, B, S, m), "same_kind", mask_t))]
    return ops


def _e_sum(o, xs, p, B, m, S):
    x = xs[0]
    return [(lambda: np.sum(x, axis=1, keepdims=True, out=o), ())]


_EMIT = {"addc": _e_addc, "mulc": _e_mulc, "unary": _e_unary, "add": _e_add, "mul": _e_mul, "cat": _e_cat,
         "mm": _e_mm, "maxc": _e_maxc, "max": _e_max, "sum": _e_sum, "affine": _e_affine, "fma": _e_fma,
         "mm_add": _e_mm_add, "mm_bias": _e_mm_bias, "mul_act": _e_mul_act}


class TangentDomain(RowDomain):
    """Rows are `Reg`s (input-dependent) or 1-d numpy arrays (constants)."""

    def __init__(self, tape: Tape, name: str):
        self.tape, self.name = tape, name

    def lift(self, vec):
        return np.asarray(vec, float)

    def take(self, row, a, b, length):
        if (a, b) == (0, length):
            return row
        if not isinstance(row, Reg):
            return row[a:b]
        return self.tape.op("take", (row,), b - a, (a, b), (a, b))

    def concat(self, parts):
        if not any(isinstance(p, Reg) for p in parts):
            return np.concatenate(parts)
        regs = tuple(p for p in parts if isinstance(p, Reg))
        pieces = [None if isinstance(p, Reg) else np.asarray(p, float) for p in parts]
        n = sum(p.n if isinstance(p, Reg) else len(p) for p in parts)
        key = tuple(("r", p.i) if isinstance(p, Reg) else _key(p) for p in parts)
        return self.tape.op("cat", regs, n, pieces, key)

    def unary(self, f, x, node):
        if f.tangent is None:
            raise UnknownNameError(f"no tangent form for {label(node, self.name)}: {f.name}")
        rows = []
        for r in x.rows:
            if not isinstance(r, Reg):
                rows.append(f.tangent(r)[0])
            elif f.name == "identity":
                rows.append(r)
            else:
                rows.append(self.tape.op("unary", (r,), r.n, f, f.name))
        return RowValue(x.shape, rows)

    def _pairs(self, a, b):
        shape, ra, rb = self.pair(a, b)
        return shape, zip(ra, rb)

    def add(self, a, b, node):
        shape, pairs = self._pairs(a, b)
        return RowValue(shape, [self.tape.add(p, q) for p, q in pairs])

    def mul(self, a, b, node):
        shape, pairs = self._pairs(a, b)
        return RowValue(shape, [self.tape.mul(p, q) for p, q in pairs])

    def maximum(self, a, b, node):
        shape, pairs = self._pairs(a, b)
        rows = []
        for p, q in pairs:
            if not isinstance(p, Reg) and not isinstance(q, Reg):
                rows.append(np.maximum(p, q))
            elif isinstance(p, Reg) and isinstance(q, Reg):
                rows.append(self.tape.op("max", (p, q), p.n))
            else:
                r, c = (p, q) if isinstance(p, Reg) else (q, p)
                c = np.array(np.broadcast_to(c, (r.n,)))
                rows.append(self.tape.op("maxc", (r,), r.n, c, _key(c)))
        return RowValue(shape, rows)

    def matmul(self, x, m, node):
        M = np.ascontiguousarray(m.numpy())
        rows = [r @ M if not isinstance(r, Reg) else self.tape.op("mm", (r,), M.shape[1], M, _key(M))
                for r in x.rows]
        return RowValue((*x.shape[:-1], m.shape[1]), rows)

    def lmatmul(self, m, x, node):
        A = m.numpy()
        out = []
        for i in range(A.shape[0]):
            acc = np.zeros(x.shape[-1])
            for j, r in enumerate(x.rows):
                acc = self.tape.add(acc, self.tape.mul(r, A[i, j]))
            out.append(acc)
        return RowValue((m.shape[0], *x.shape[1:]), out)

    def reduce_sum(self, x, dims, node):
        def total(r):
            if not isinstance(r, Reg):
                return np.atleast_1d(r.sum())
            return self.tape.op("sum", (r,), 1)

        return self.reduce_rows(x, dims, total)

    def unknown(self, node, inputs, shape, why):
        raise UnknownNameError(f"no tangent form for {label(node, self.name)}: {why}")


class PeriodTangents:
    """Values and Jacobians of `model`'s last output when one input row is held over `window` sub-steps (the
    one-period map of `OneStepModel`), for a batch of rows: `(Y, J) = f(XU)`, XU (B, n_in), Y (B, n_out),
    J (m, n_out, n_in) for the first m rows (all by default). Read from the captured graph with the model's
    weights at construction."""

    def __init__(self, model: torch.nn.Module, window: int = 1):
        from icctrl.convexity._certify import example_shape

        if not hasattr(model, "forward_window") or not hasattr(model, "n_in"):
            raise UnknownNameError(f"tangents need an icctrl model, got {type(model).__name__}")
        self.window, self.n_in, self.n_out = int(window), int(model.n_in), int(model.n_out)
        if self.window < 1:
            raise ShapeError(f"window must be >= 1, got {window}")
        shape = example_shape(model, self.window)
        try:
            graph = capture(model, shape)
        except GraphError as exc:
            raise UnknownNameError(f"no tangent reading: {exc}") from exc
        tape = Tape(self.n_in)
        x0 = Reg(tape, 0, self.n_in)
        y = interpret(graph, graph.state(model), RowValue(shape, [x0] * self.window),
                      TangentDomain(tape, type(model).__name__))
        if not isinstance(y, RowValue) or not isinstance(y.rows[-1], Reg):
            raise UnknownNameError(f"{type(model).__name__}: the output does not depend on the input")
        self._out = y.rows[-1].i
        self.code, self._sizes = tape.compile(y.rows[-1]), tape.n
        #: products of two input-dependent rows (gates): each costs the tangent plan four extra calls
        self.products = sum(c[0] in ("mul", "fma", "mul_act") for c in self.code)
        self._plans: dict[tuple, _Plan] = {}

    def __call__(self, XU: np.ndarray, m: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        XU = np.asarray(XU, float)
        if XU.ndim != 2 or XU.shape[1] != self.n_in:
            raise ShapeError(f"expected rows of {self.n_in} inputs, shape (B, {self.n_in}), got {XU.shape}")
        B = XU.shape[0]
        m = B if m is None else int(m)
        if not 0 <= m <= B:
            raise ShapeError(f"m (points with Jacobians) must be in [0, {B}], got {m}")
        out = self.run(XU, m)
        return out[:B].copy(), out[B:].reshape(self.n_in, m, self.n_out).transpose(1, 2, 0).copy()

    def differences(self, XU: np.ndarray, m: int, step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Y, J) as `__call__`, but J by forward differences through the value plan: the B points and
        x_j + step_j of the first m in one pass (n_in·m extra rows, none of the tangent instructions: 6–16 % less
        time on the shipped gated models, docs/benchmarks.md). With steps of 1e-6 of the inputs' scale the error
        is below 1e-6 of the Jacobian's scale (1e-9 on ReLU models); where a ReLU kink lies within a step it is
        the one-sided secant's slope."""
        XU = np.asarray(XU, float)
        B, S = XU.shape[0], self.n_in
        h = np.asarray(step, float).reshape(-1)
        if h.shape != (S,) or not np.all(h > 0):
            raise ShapeError(f"step must be {S} positive numbers, got {np.asarray(step).tolist()}")
        if not 0 <= m <= B:
            raise ShapeError(f"m (points with Jacobians) must be in [0, {B}], got {m}")
        rows = np.empty((B + S * m, S))
        rows[:B] = XU
        moved = rows[B:].reshape(S, m, S)
        moved[:] = XU[:m]
        j = np.arange(S)
        moved[j, :, j] += h[:, None]
        out = self.run(rows, 0)
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite values stay non-finite (checked by callers)
            d = (out[B:].reshape(S, m, self.n_out) - out[:m]) / h[:, None, None]
        return out[:B].copy(), d.transpose(1, 2, 0)

    def run(self, XU: np.ndarray, m: int) -> np.ndarray:
        """The output register (B value rows, then n_in blocks of m tangent rows): a buffer of the plan for
        this batch shape, overwritten by the next call of the same shape."""
        key = (XU.shape[0], m)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = _Plan(self.code, self._sizes, self._out, *key, self.n_in)
        return plan(XU)
