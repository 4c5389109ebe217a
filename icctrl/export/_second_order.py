"""Second-order CasADi reading of the graph that runs: a model's outputs, their Jacobian in chosen input entries and
the Hessian of a weighted sum of the outputs, built from the layers instead of by AD of AD.

Every value carries its Jacobian in the seeded entries as one MX matrix, so a dense layer is one matrix product for
all seeds at once. Second derivatives live only where the graph is nonlinear: an elementwise function h of a
(h''(a) Jₐᵀ diag(δ) Jₐ) and a product of two input-dependent values p ⊙ q (Jₚᵀ diag(δ) J_q + its transpose), with δ
the adjoint of that node's output; matrix products, sums, data movement and maximum (piecewise linear) add none.
The adjoints come from one reverse pass: each nonlinear node's output gets an additive zero ε, and δ = ∂⟨μ, y⟩/∂ε.
For a PICNN cost over a 10-step horizon this is several times cheaper than CasADi's forward-over-reverse Hessian of
the same function (docs/reliability.md), and equal to it to rounding (tests/export/test_second_order.py).
"""

from __future__ import annotations

import casadi as ca
import numpy as np
import torch

from icctrl.convexity._read import label
from icctrl.convexity._rows import RowDomain, RowValue
from icctrl.errors import UnknownNameError
from icctrl.export._casadi import read_rows


class Dual:
    """A row: its value `v` (MX or DM column) and its Jacobian `J` in the seeds (n × s MX), None when constant."""

    def __init__(self, v, J=None):
        self.v, self.J = v, J

    @property
    def n(self) -> int:
        return int(self.v.shape[0])

    def __add__(self, other):
        other = other if isinstance(other, Dual) else Dual(ca.DM(np.asarray(other, float)))
        return Dual(self.v + other.v, _add(self.J, other.J))

    __radd__ = __add__


def _add(a, b):
    return b if a is None else a if b is None else a + b


def _cols(vec, J):
    """diag(vec) J: each row of J scaled by the entry of vec."""
    return ca.repmat(vec, 1, J.shape[1]) * J


def _expand(r: Dual, n: int) -> Dual:
    """A length-1 row broadcast to length n (torch broadcasting of a scalar row)."""
    if r.n == n:
        return r
    return Dual(ca.repmat(r.v, n, 1), None if r.J is None else ca.repmat(r.J, n, 1))


class SecondOrderDomain(RowDomain):
    """Rows are `Dual`s; nonlinear nodes are recorded with their ε for the Hessian."""

    def __init__(self, name: str, seeds: int):
        self.name, self.s = name, seeds
        self.terms: list[tuple] = []  # ("h", Jₐ, h''(a), ε) or ("pq", Jₚ, J_q, ε)
        self.eps: list[ca.MX] = []
        self._derivs: dict[tuple[str, int], ca.Function] = {}

    def _epsilon(self, n: int) -> ca.MX:
        e = ca.MX.sym(f"eps{len(self.eps)}", n)
        self.eps.append(e)
        return e

    def take(self, row, a, b, length):
        if (a, b) == (0, length):
            return row
        return Dual(row.v[a:b], None if row.J is None else row.J[a:b, :])

    def concat(self, parts):
        J = None
        if any(p.J is not None for p in parts):
            J = ca.vertcat(*[p.J if p.J is not None else ca.DM.zeros(p.n, self.s) for p in parts])
        return Dual(ca.vertcat(*[p.v for p in parts]), J)

    def lift(self, vec):
        return Dual(ca.DM(vec))

    def _derivatives(self, f, n: int) -> ca.Function:
        """h, h', h'' of an elementwise op on length-n vectors, by CasADi's AD of its CasADi form."""
        key = (f.name, n)
        if key not in self._derivs:
            a = ca.MX.sym("a", n)
            h = f.casadi(a)
            d1 = ca.jtimes(h, a, ca.DM.ones(n))  # elementwise: the directional derivative along ones is h'
            d2 = ca.jtimes(d1, a, ca.DM.ones(n))
            self._derivs[key] = ca.Function(f"{f.name.split('(')[0]}_d2", [a], [h, d1, d2])
        return self._derivs[key]

    def unary(self, f, x, node):
        if f.casadi is None:
            raise UnknownNameError(f"no CasADi form for {label(node, self.name)}: {f.name}")
        rows = []
        for r in x.rows:
            if r.J is None:
                rows.append(Dual(f.casadi(r.v)))
                continue
            h, d1, d2 = self._derivatives(f, r.n)(r.v)
            e = self._epsilon(r.n)
            self.terms.append(("h", r.J, d2, e))
            rows.append(Dual(h + e, _cols(d1, r.J)))
        return RowValue(x.shape, rows)

    def _rows2(self, a, b):
        """(shape, row pairs) of a binary op, a scalar row broadcast to the other's length."""
        shape, ra, rb = self.pair(a, b)
        pairs = []
        for p, q in zip(ra, rb):
            n = max(p.n, q.n)
            pairs.append((_expand(p, n), _expand(q, n)))
        return shape, pairs

    def add(self, a, b, node):
        shape, pairs = self._rows2(a, b)
        return RowValue(shape, [Dual(p.v + q.v, _add(p.J, q.J)) for p, q in pairs])

    def mul(self, a, b, node):
        shape, pairs = self._rows2(a, b)
        out = []
        for p, q in pairs:
            n = p.n
            J = _add(None if p.J is None else _cols(q.v, p.J), None if q.J is None else _cols(p.v, q.J))
            v = p.v * q.v
            if p.J is not None and q.J is not None:
                e = self._epsilon(n)
                self.terms.append(("pq", p.J, q.J, e))
                v = v + e
            out.append(Dual(v, J))
        return RowValue(shape, out)

    def maximum(self, a, b, node):
        shape, pairs = self._rows2(a, b)
        out = []
        for p, q in pairs:
            n = p.n
            J = None
            if p.J is not None or q.J is not None:
                first = p.v >= q.v  # 1 where p is the maximum: its Jacobian (the kink has measure zero)
                Jp = p.J if p.J is not None else ca.DM.zeros(n, self.s)
                Jq = q.J if q.J is not None else ca.DM.zeros(n, self.s)
                J = _cols(first, Jp) + _cols(1 - first, Jq)
            out.append(Dual(ca.fmax(p.v, q.v), J))
        return RowValue(shape, out)

    def matmul(self, x, m, node):
        M = ca.DM(m.numpy().T)
        return RowValue((*x.shape[:-1], m.shape[1]),
                        [Dual(ca.mtimes(M, r.v), None if r.J is None else ca.mtimes(M, r.J)) for r in x.rows])

    def lmatmul(self, m, x, node):
        m = m.numpy()
        rows = []
        for i in range(m.shape[0]):
            acc = None
            for j, r in enumerate(x.rows):
                if m[i, j] != 0.0:
                    term = Dual(float(m[i, j]) * r.v, None if r.J is None else float(m[i, j]) * r.J)
                    acc = term if acc is None else acc + term
            rows.append(acc if acc is not None else Dual(ca.DM.zeros(x.rows[0].n)))
        return RowValue((m.shape[0], *x.shape[1:]), rows)

    def reduce_sum(self, x, dims, node):
        return self.reduce_rows(x, dims, lambda r: Dual(ca.sum1(r.v), None if r.J is None else ca.sum1(r.J)))

    def unknown(self, node, inputs, shape, why):
        raise UnknownNameError(f"no second-order CasADi form for {label(node, self.name)}: {why}")


def second_order(model: torch.nn.Module, window: int, seeds: list[tuple[int, int]], name: str | None = None
                 ) -> ca.Function:
    """`casadi.Function` (X (window × n_in), mu (window·n_out)) → (y, A, H): y = the outputs row by row (vec of
    Yᵀ), A = ∂y/∂s, H = ∂²⟨mu, y⟩/∂s², where s are the entries X[t, c] of `seeds`, in that order."""
    n_in, s = int(model.n_in), len(seeds)
    X = ca.MX.sym("X", window, n_in)
    rows = []
    for t in range(window):
        J = np.zeros((n_in, s))
        for k, (tt, c) in enumerate(seeds):
            if tt == t:
                J[c, k] = 1.0
        rows.append(Dual(X[t, :].T, ca.DM(J) if J.any() else None))
    dom = SecondOrderDomain(type(model).__name__, s)
    out = read_rows(model, rows, dom)
    if not isinstance(out, RowValue):
        raise UnknownNameError(f"{type(model).__name__}: the output does not depend on the input")
    y = ca.vertcat(*[r.v for r in out.rows])
    A = ca.vertcat(*[r.J if r.J is not None else ca.DM.zeros(r.n, s) for r in out.rows])
    mu = ca.MX.sym("mu", y.shape[0])
    H = ca.MX(s, s)
    if dom.eps:
        eps = ca.vertcat(*dom.eps)
        delta = ca.gradient(ca.dot(mu, y), eps)
        k = 0
        for kind, Ja, b, e in dom.terms:
            d = delta[k:k + e.shape[0]]
            k += e.shape[0]
            if kind == "h":
                H += ca.mtimes(Ja.T, _cols(d * b, Ja))
            else:
                T = ca.mtimes(Ja.T, _cols(d, b))
                H += T + T.T
        inner = ca.Function("so_eps", [X, mu, eps], [y, A, H])
        y, A, H = inner(X, mu, ca.DM.zeros(eps.shape[0]))
    return ca.Function(name or f"{getattr(model, 'name', 'model')}_second_order", [X, mu], [y, A, H],
                       ["X", "mu"], ["y", "A", "H"])
