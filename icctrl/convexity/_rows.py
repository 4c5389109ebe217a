"""Row-structured readings of the graph: a tensor as rows along its last dimension (one vector per row).

The Lipschitz bound, the CasADi function and the cvxpy expression all hold one object per row (a coefficient
vector, an MX column, a cvxpy vector), so dense layers stay matrix products. Data movement is mapped to runs of
source rows once, from the element ids the interpreter computes.
"""

from __future__ import annotations

import numpy as np
import torch

from icctrl.convexity._read import Abstract, Domain


def layout(shape) -> tuple[tuple[int, ...], int]:
    """(shape of the grid of rows, row length) of a tensor shape; a 0-d tensor is one row of length 1."""
    shape = tuple(shape)
    return (shape[:-1], shape[-1]) if shape else ((), 1)


def n_rows(shape) -> int:
    return int(np.prod(layout(shape)[0], dtype=np.int64))


class RowValue(Abstract):
    """A tensor as a flat list of rows (row-major over all dimensions but the last)."""

    def __init__(self, shape, rows: list):
        self.shape, self.rows = tuple(shape), list(rows)


def runs(srcs, ids: torch.Tensor) -> list[list[tuple[int, int, int, int]]]:
    """For each output row, the runs (source, source row, start, stop) of consecutive source elements."""
    sizes = [int(np.prod(s.shape, dtype=np.int64)) if s.shape else 1 for s in srcs]
    offs = np.cumsum([0, *sizes])
    lens = [layout(s.shape)[1] for s in srcs]
    flat = ids.reshape(-1).numpy()
    k = np.searchsorted(offs, flat, side="right") - 1
    local = flat - offs[k]
    L = np.array(lens)[k]
    row, pos = local // L, local % L
    _, out_len = layout(ids.shape)
    R = max(1, flat.size // max(1, out_len)) if flat.size else 0
    out = []
    for r in range(R):
        sl = slice(r * out_len, (r + 1) * out_len)
        rk, rr, rp = k[sl], row[sl], pos[sl]
        cur: list[tuple[int, int, int, int]] = []
        for a, b, p in zip(rk.tolist(), rr.tolist(), rp.tolist()):
            if cur and cur[-1][0] == a and cur[-1][1] == b and cur[-1][3] == p:
                cur[-1] = (a, b, cur[-1][2], p + 1)
            else:
                cur.append((a, b, p, p + 1))
        out.append(cur)
    return out


def concrete_rows(t: torch.Tensor) -> list[np.ndarray]:
    """Rows of a concrete tensor as float64 numpy vectors."""
    grid, L = layout(t.shape)
    a = t.detach().double().reshape(-1, L).numpy() if t.dim() else t.detach().double().reshape(1, 1).numpy()
    return [a[i] for i in range(a.shape[0])]


class RowDomain(Domain):
    """Shared row machinery; a back end supplies `take`, `concat`, `lift` and the arithmetic."""

    def take(self, row, a: int, b: int, length: int):  # pragma: no cover - back end
        raise NotImplementedError

    def concat(self, parts: list):  # pragma: no cover - back end
        raise NotImplementedError

    def lift(self, vec: np.ndarray):  # pragma: no cover - back end
        raise NotImplementedError

    def const(self, t: torch.Tensor) -> RowValue:
        return RowValue(t.shape, [self.lift(v) for v in concrete_rows(t)])

    def gather(self, srcs, ids, node) -> RowValue:
        lens = [layout(s.shape)[1] for s in srcs]
        rows = []
        for rr in runs(srcs, ids):
            parts = [self.take(srcs[k].rows[r], a, b, lens[k]) for k, r, a, b in rr]
            rows.append(parts[0] if len(parts) == 1 else self.concat(parts))
        return RowValue(ids.shape, rows)

    def pair(self, a, b) -> tuple:
        """(shape, rows of a, rows of b) of a binary op's operands, either of which may be a concrete tensor."""
        shape = a.shape if isinstance(a, RowValue) else b.shape
        return shape, self.rows_of(a, shape), self.rows_of(b, shape)

    def rows_of(self, v, shape) -> list:
        """Rows of an abstract value, or of a concrete tensor already broadcast to `shape`."""
        return v.rows if isinstance(v, RowValue) else [self.lift(r) for r in concrete_rows(v)]

    def reduce_rows(self, x: RowValue, dims, total) -> RowValue:
        """Sum over `dims` with keepdim, given `total(row) -> length-1 row` for the last dimension."""
        grid, L = layout(x.shape)
        rows = x.rows
        shape = list(x.shape)
        if len(shape) - 1 in dims or not shape:
            rows = [total(r) for r in rows]
            if shape:
                shape[-1] = 1
        other = [d for d in dims if d < len(shape) - 1]
        if other:
            arr = np.empty(len(rows), dtype=object)
            for i, r in enumerate(rows):
                arr[i] = r
            arr = arr.reshape(grid)
            arr = arr.sum(axis=tuple(other), keepdims=True)
            for d in other:
                shape[d] = 1
            rows = list(arr.reshape(-1))
        return RowValue(tuple(shape), rows)
