"""cvxpy reading of the graph that runs, for models certified convex.

Convex nondecreasing ops with a DCP atom (relu → pos, softplus → logistic, leaky_relu → maximum) stay
expressions, so cvxpy's own DCP analysis guards every problem built on them: an objective that is not
nondecreasing in a convex output (a tracking cost (y − r)², a lower bound y ≥ c) is refused by cvxpy itself.
ELU and CELU have no atom: they become an auxiliary z with an exponential-cone epigraph (exact when z is pushed
down); `Epigraph.problem` then refuses objectives and constraints that are not nondecreasing in the outputs, and
`Epigraph.gap` reports the difference between the epigraph outputs and the model's at the solution.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np
import torch

from icctrl.convexity import certify, interpret
from icctrl.convexity._read import label
from icctrl.convexity._rows import RowDomain, RowValue
from icctrl.errors import NotConvexError, ShapeError


class CvxpyDomain(RowDomain):
    """Rows are cvxpy vectors (or numpy vectors for constants)."""

    def __init__(self, name: str):
        self.name, self.cons, self.aux = name, [], []

    def take(self, row, a, b, length):
        return row if (a, b) == (0, length) else row[a:b]

    def concat(self, parts):
        return cp.hstack(parts)

    def lift(self, vec):
        return np.asarray(vec, dtype=float)

    def _refuse(self, node, why):
        raise NotConvexError(f"no cvxpy form for {label(node, self.name)}: {why}")

    def unary(self, f, x, node):
        if f.cvxpy is not None:
            return RowValue(x.shape, [f.cvxpy(r) for r in x.rows])
        if f.epigraph is None:
            self._refuse(node, f"{f.name} has no convex epigraph form")
        rows = []
        for r in x.rows:
            z = cp.Variable(r.shape)
            cons, extra = f.epigraph(r, z)
            self.cons += cons
            self.aux.append((z, r, f))
            rows.append(z)
        return RowValue(x.shape, rows)

    def add(self, a, b, node):
        shape, ra, rb = self.pair(a, b)
        return RowValue(shape, [p + q for p, q in zip(ra, rb)])

    def mul(self, a, b, node):
        if isinstance(a, RowValue) and isinstance(b, RowValue):
            self._refuse(node, "product of two input-dependent factors")
        x, k = (a, b) if isinstance(a, RowValue) else (b, a)
        return RowValue(x.shape, [cp.multiply(c, r) for c, r in zip(self.rows_of(k, x.shape), x.rows)])

    def maximum(self, a, b, node):
        shape, ra, rb = self.pair(a, b)
        return RowValue(shape, [cp.maximum(p, q) for p, q in zip(ra, rb)])

    def matmul(self, x, m, node):
        M = m.numpy().T
        return RowValue((*x.shape[:-1], m.shape[1]), [M @ r for r in x.rows])

    def lmatmul(self, m, x, node):
        Y = m.numpy() @ cp.vstack(x.rows)
        return RowValue((m.shape[0], *x.shape[1:]), [Y[i, :] for i in range(m.shape[0])])

    def reduce_sum(self, x, dims, node):
        return self.reduce_rows(x, dims, lambda r: cp.reshape(cp.sum(r), (1,), order="C"))

    def unknown(self, node, inputs, shape, why):
        self._refuse(node, why)


def _mono(expr, targets: set[int]) -> str:
    """Monotonicity of a cvxpy expression in the target leaves (by id): const, incr, decr or none."""
    if id(expr) in targets:
        return "incr"
    if not expr.args:
        return "const"
    out = "const"
    for i, a in enumerate(expr.args):
        m = _mono(a, targets)
        if m == "const":
            continue
        if hasattr(expr, "is_incr") and expr.is_incr(i):
            pass
        elif hasattr(expr, "is_decr") and expr.is_decr(i):
            m = {"incr": "decr", "decr": "incr"}.get(m, m)
        else:
            m = "none"
        out = m if out in ("const", m) else "none"
    return out


@dataclass
class Epigraph:
    """Outputs (time × n_out expression), the epigraph constraints, and the auxiliary variables (z, argument,
    op facts) that stand for an ELU/CELU; `inputs` are the expressions the model was read on."""

    outputs: cp.Expression
    constraints: list
    aux: list = field(default_factory=list)
    inputs: list = field(default_factory=list)
    model: torch.nn.Module | None = None

    def __iter__(self):  # allows `y, cons = to_cvxpy(...)`
        return iter((self.outputs, self.constraints))

    def tightness(self) -> float:
        """Largest gap z − h(argument) at the current values (0 when every auxiliary is tight)."""
        gaps = []
        for z, arg, f in self.aux:
            if z.value is not None and arg.value is not None:
                exact = np.array(f.casadi(__import__("casadi").DM(np.atleast_1d(arg.value)))).reshape(-1)
                gaps.append(float(np.max(z.value - exact)))
        return max(gaps, default=0.0)

    def gap(self) -> float:
        """Largest |epigraph output − model output| at the current input values (0 when exact)."""
        X = np.stack([np.atleast_1d(np.asarray(x.value, dtype=float)) for x in self.inputs])
        with torch.no_grad():
            y = self.model.double()(torch.as_tensor(X)[None])[0].numpy()
        return float(np.max(np.abs(np.asarray(self.outputs.value).reshape(y.shape) - y)))

    def problem(self, objective, constraints=()) -> cp.Problem:
        """A cvxpy problem on these outputs; with auxiliaries, refuses an objective or an output constraint that
        is not nondecreasing in the outputs (the relaxation would not be exact)."""
        constraints = list(constraints)
        if self.aux:
            targets = {id(self.outputs)}
            sense = _mono(objective.args[0], targets)
            want = "incr" if isinstance(objective, cp.Minimize) else "decr"
            if sense not in ("const", want):
                raise NotConvexError(f"the objective is {sense} in the epigraph outputs; the ELU/CELU epigraph "
                                     "is exact only for objectives nondecreasing in them (use to_casadi)")
            for c in constraints:
                expr = c.args[0] - c.args[1] if isinstance(c, cp.constraints.NonPos) is False else c.args[0]
                m = _mono(expr, targets)
                if m not in ("const", "incr") or (m == "incr" and not isinstance(c, cp.constraints.Inequality)):
                    raise NotConvexError(f"constraint {c} bounds the epigraph outputs from below or fixes them; "
                                         "the epigraph is exact only under upper bounds")
        return cp.Problem(objective, self.constraints + constraints)


def to_cvxpy(model: torch.nn.Module, inputs, wrt=None) -> Epigraph:
    """The model on cvxpy `inputs` (a (time, n_in) expression or a list of (n_in,) expressions), read from
    its graph. Refuses (NotConvexError, naming the failing op) unless the core certifies it convex in `wrt`."""
    from icctrl.convexity import capture
    from icctrl.convexity._certify import example_shape

    xs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs[t, :] for t in range(inputs.shape[0])]
    for t, x in enumerate(xs):
        if x.shape != (model.n_in,):
            raise ShapeError(f"input at step {t} has shape {x.shape}, expected ({model.n_in},)")
    cert = certify(model, wrt=wrt, window=max(len(xs), 1))
    if not cert.convex:
        raise NotConvexError(f"{type(model).__name__} is not certified convex: {'; '.join(cert.reasons[:3])}")
    shape = example_shape(model, len(xs))
    graph = capture(model, shape)
    dom = CvxpyDomain(type(model).__name__)
    y = interpret(graph, graph.state(model), RowValue(shape, xs if len(shape) == 3 else xs[:1]), dom)
    return Epigraph(cp.vstack(y.rows), dom.cons, dom.aux, xs, model)
