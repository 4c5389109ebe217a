"""`lipschitz_bound`: a certified upper bound read from the graph that runs, with the actual weights.

Each row r of a tensor carries coefficients c_r over the input steps with ‖Δrow_r‖₂ ≤ Σ_k c_rk ‖Δx_k‖₂. Dense
layers multiply by the spectral norm, activations by the Lipschitz constant of their table entry (with their
parameters: a leaky slope of 5 is 5-Lipschitz), sums add, stacking combines by Minkowski's inequality. The whole
window bound is the spectral norm of the output rows' coefficient matrix.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from icctrl.convexity._graph import GraphError, capture
from icctrl.convexity._read import interpret
from icctrl.convexity._rows import RowDomain, RowValue, layout, runs
from icctrl.errors import UnknownNameError


def _scale(c: np.ndarray, k: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(c == 0, 0.0, c * k)  # a constant row stays constant through an unbounded op


class LipDomain(RowDomain):
    """Rows hold coefficient vectors over the input steps (zero: constant)."""

    def __init__(self, K: int):
        self.K = K

    def lift(self, vec):
        return np.zeros(self.K)

    def gather(self, srcs, ids, node) -> RowValue:
        rows = []
        flat = ids.reshape(-1, layout(ids.shape)[1]) if ids.dim() else ids.reshape(1, 1)
        for i, rr in enumerate(runs(srcs, ids)):
            uniq = {(k, r) for k, r, _, _ in rr}
            c2 = sum(srcs[k].rows[r] ** 2 for k, r in uniq)
            mult = int(np.unique(flat[i].numpy(), return_counts=True)[1].max()) if flat.shape[1] else 1
            rows.append(math.sqrt(mult) * np.sqrt(c2))
        return RowValue(ids.shape, rows)

    def unary(self, f, x, node):
        return RowValue(x.shape, [_scale(c, f.lipschitz) for c in x.rows])

    def add(self, a, b, node):
        ra, rb = self.rows_of(a, ()), self.rows_of(b, ())
        return RowValue(_shape(a, b), [p + q for p, q in zip(ra, rb)])

    def mul(self, a, b, node):
        if isinstance(a, RowValue) and isinstance(b, RowValue):
            return RowValue(a.shape, [np.full(self.K, np.inf) for _ in a.rows])
        x, k = (a, b) if isinstance(a, RowValue) else (b, a)
        kt = torch.broadcast_to(torch.as_tensor(k, dtype=torch.float64), x.shape)
        grid, L = layout(x.shape)
        mags = kt.abs().reshape(-1, L).amax(-1).tolist() if kt.dim() else [abs(float(kt))]
        return RowValue(x.shape, [_scale(c, m) for c, m in zip(x.rows, mags)])

    def matmul(self, x, m, node):
        norm = float(torch.linalg.matrix_norm(m, ord=2))
        return RowValue(_mm_shape(x.shape, m.shape), [_scale(c, norm) for c in x.rows])

    def lmatmul(self, m, x, node):
        A = m.abs().numpy()
        C = np.stack(x.rows)
        return RowValue((m.shape[0], *x.shape[1:]), list(A @ C))

    def reduce_sum(self, x, dims, node):
        L = layout(x.shape)[1]
        return self.reduce_rows(x, dims, lambda c: c * math.sqrt(L))

    def maximum(self, a, b, node):
        ra, rb = self.rows_of(a, ()), self.rows_of(b, ())
        return RowValue(_shape(a, b), [np.sqrt(p**2 + q**2) for p, q in zip(ra, rb)])

    def unknown(self, node, inputs, shape, why):
        return RowValue(shape, [np.full(self.K, np.inf) for _ in range(max(1, int(np.prod(layout(shape)[0]))))])


def _shape(a, b):
    return a.shape if isinstance(a, RowValue) else b.shape


def _mm_shape(xs, ms):
    return (*xs[:-1], ms[1])


def lipschitz_bound(model, window: int = 1) -> float:
    """Upper bound on ‖f(X) − f(X')‖₂ / ‖X − X'‖₂ with X the whole input window of `window` steps and f(X) the
    whole output window (2-norms), read from the graph of the forward. `inf` when no finite global constant is
    certified (products of input-dependent factors, quadratic terms, operations without a rule)."""
    from icctrl.convexity._certify import example_shape, n_inputs

    if not isinstance(model, nn.Module):
        raise UnknownNameError(f"lipschitz_bound() needs a torch module, got {type(model).__name__}")
    if n_inputs(model) is None:
        return math.inf
    shape = example_shape(model, int(window))
    try:
        graph = capture(model, shape)
    except GraphError:
        return math.inf
    K = shape[1] if len(shape) == 3 else 1
    grid, L = layout(shape)
    rows = [np.eye(K)[t] for t in range(K)] if len(shape) == 3 else [np.ones(1)]
    y = interpret(graph, graph.state(model), RowValue(shape, rows), LipDomain(K))
    if not isinstance(y, RowValue):
        return 0.0
    C = np.stack(y.rows)
    if not np.all(np.isfinite(C)):
        return math.inf
    return float(np.linalg.norm(C, ord=2))
