"""CasADi reading of the graph that runs: native MX operations (no callback into torch), exact AD derivatives.

Rows of a tensor (vectors along its last dimension) become MX columns, so dense layers stay `mtimes`.
Parameter-only nodes are evaluated with the actual (constrained) weights in float64 and enter as constants.
"""

from __future__ import annotations

import casadi as ca
import numpy as np
import torch

from icctrl.convexity import GraphError, capture, interpret
from icctrl.convexity._read import label
from icctrl.convexity._rows import RowDomain, RowValue, layout
from icctrl.errors import ShapeError, UnknownNameError


class CasadiDomain(RowDomain):
    """Rows are MX (or DM) column vectors."""

    def __init__(self, name: str):
        self.name = name
        self._split: dict[int, tuple] = {}  # id of an MX row -> (row, variable part, constant part)

    def take(self, row, a, b, length):
        return row if (a, b) == (0, length) else row[a:b]

    def concat(self, parts):
        return ca.vertcat(*parts)

    def lift(self, vec):
        return ca.DM(vec)

    def unary(self, f, x, node):
        if f.casadi is None:
            raise UnknownNameError(f"no CasADi form for {label(node, self.name)}: {f.name}")
        return RowValue(x.shape, [f.casadi(r) for r in x.rows])

    def add(self, a, b, node):
        shape, ra, rb = self.pair(a, b)
        return RowValue(shape, [self._plus(p, q) for p, q in zip(ra, rb)])

    def _parts(self, r):
        if isinstance(r, ca.DM):
            return None, r
        hit = self._split.get(id(r))
        return (hit[1], hit[2]) if hit is not None and hit[0] is r else (r, None)

    def _plus(self, p, q):
        """p + q with the constant parts of both gathered into one (two biases on one pre-activation, as a
        torch LSTM cell has, cost one addition, not two)."""
        (vp, cp), (vq, cq) = self._parts(p), self._parts(q)
        var = vp if vq is None else vq if vp is None else vp + vq
        const = cp if cq is None else cq if cp is None else cp + cq
        if var is None:
            return const
        if const is None:
            return var
        out = var + const
        self._split[id(out)] = (out, var, const)
        return out

    def mul(self, a, b, node):
        shape, ra, rb = self.pair(a, b)
        return RowValue(shape, [p * q for p, q in zip(ra, rb)])

    def maximum(self, a, b, node):
        shape, ra, rb = self.pair(a, b)
        return RowValue(shape, [ca.fmax(p, q) for p, q in zip(ra, rb)])

    def matmul(self, x, m, node):
        M = ca.DM(m.numpy().T)
        return RowValue((*x.shape[:-1], m.shape[1]), [ca.mtimes(M, r) for r in x.rows])

    def lmatmul(self, m, x, node):
        Y = ca.mtimes(ca.horzcat(*x.rows), ca.DM(m.numpy().T))  # columns are the output rows
        return RowValue((m.shape[0], *x.shape[1:]), [Y[:, i] for i in range(m.shape[0])])

    def reduce_sum(self, x, dims, node):
        return self.reduce_rows(x, dims, ca.sum1)

    def unknown(self, node, inputs, shape, why):
        raise UnknownNameError(f"no CasADi form for {label(node, self.name)}: {why}")


def read_rows(model: torch.nn.Module, rows: list, domain: RowDomain):
    """The model's forward on one input row per time step, read from its graph in `domain`."""
    from icctrl.convexity._certify import example_shape

    shape = example_shape(model, len(rows))
    try:
        graph = capture(model, shape)
    except GraphError as exc:
        raise UnknownNameError(f"no CasADi export: {exc}") from exc
    x = RowValue(shape, list(rows) if len(shape) == 3 else [rows[0]])
    return interpret(graph, graph.state(model), x, domain)


def translate(model: torch.nn.Module, xs: list) -> list:
    """The model's forward on CasADi column vectors x_t (one per time step), read from its graph."""
    y = read_rows(model, xs, CasadiDomain(type(model).__name__))
    if not isinstance(y, RowValue):  # the output does not depend on the input
        y = CasadiDomain("").const(torch.as_tensor(y, dtype=torch.float64))
    grid, L = layout(y.shape)
    return list(y.rows)


def _build(model: torch.nn.Module, window: int, name: str) -> ca.Function:
    X = ca.MX.sym("X", window, model.n_in)
    ys = translate(model, [X[t, :].T for t in range(window)])
    return ca.Function(name, [X], [ca.horzcat(*ys).T], ["X"], ["Y"])


class WindowFunction(ca.Function):
    """A casadi.Function for windows of `window` steps that also accepts other window lengths when called
    numerically (building and caching the function for that length on first use)."""

    def __init__(self, model: torch.nn.Module, window: int, name: str):
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


def to_casadi(model: torch.nn.Module, window: int | None = None, name: str | None = None) -> ca.Function:
    """`casadi.Function` X (window × n_in) → Y (window × n_out) equal to `model(X[None])[0]`.

    Read from the graph of the model's forward with its effective (constrained) weights in float64, so CasADi's
    AD gives exact first and second derivatives. `window` defaults to the model's training window (or 1).
    """
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "n_in") or not hasattr(model, "forward_window"):
        raise UnknownNameError(f"to_casadi() needs an icctrl model, got {type(model).__name__}")
    window = int(window or getattr(model, "window", None) or 1)
    if window < 1:
        raise ShapeError(f"window must be >= 1, got {window}")
    return WindowFunction(model, window, name or f"{getattr(model, 'name', 'model')}_casadi")
