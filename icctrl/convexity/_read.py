"""One interpreter of the captured graph, shared by every reading.

Nodes that depend only on parameters and buffers are evaluated with their actual values (so a parametrised
weight is read as the values it has). Nodes that depend on the input are handed to a `Domain`: the certificate
(curvature, monotonicity, sign), the Lipschitz bound, the CasADi function or the cvxpy expression. Data movement
(views, slices, concatenation, broadcasting) is read once for all domains by running the op on element ids.
"""

from __future__ import annotations

import operator

import torch

from icctrl.convexity._graph import Graph, where
from icctrl.convexity._ops import Facts, facts

MOVES = {"view", "_unsafe_view", "reshape", "permute", "t", "transpose", "select", "slice", "cat", "stack",
         "expand", "unsqueeze", "squeeze", "index_select", "unbind", "split", "split_with_sizes", "flip", "repeat",
         "narrow", "index", "gather", "alias", "expand_copy", "view_copy", "permute_copy", "diagonal", "movedim",
         "unflatten", "flatten", "chunk", "_reshape_alias", "as_strided", "unsafe_split", "unsafe_chunk",
         "split_with_sizes_copy", "unbind_copy", "select_copy", "slice_copy", "unsqueeze_copy", "squeeze_copy",
         "transpose_copy", "t_copy", "alias_copy"}
LIKE = {"new_zeros", "new_ones", "new_full", "new_empty", "zeros_like", "ones_like", "full_like", "empty_like",
        "sym_size", "size", "new_empty_strided"}


class Abstract:
    """Marker base class of a domain's input-dependent values; `shape` is the tensor shape."""

    shape: tuple[int, ...]


class Domain:
    """What a reading does with input-dependent values. Every method gets the node, for messages."""

    def gather(self, srcs: list[Abstract], ids: torch.Tensor, node) -> Abstract: ...
    def const(self, t: torch.Tensor) -> Abstract: ...
    def unary(self, f: Facts, x: Abstract, node) -> Abstract: ...
    def add(self, a, b, node) -> Abstract: ...
    def mul(self, a, b, node) -> Abstract: ...
    def matmul(self, x: Abstract, m: torch.Tensor, node) -> Abstract: ...
    def lmatmul(self, m: torch.Tensor, x: Abstract, node) -> Abstract: ...
    def reduce_sum(self, x: Abstract, dims: tuple[int, ...], node) -> Abstract: ...
    def maximum(self, a, b, node) -> Abstract: ...
    def unknown(self, node, inputs: list[Abstract], shape: tuple[int, ...], why: str) -> Abstract: ...


def op_name(node) -> str:
    t = node.target
    if t is operator.getitem:
        return "getitem"
    packet = getattr(t, "overloadpacket", None)
    return getattr(packet, "__name__", None) or getattr(t, "__name__", str(t))


def _is_abs(v) -> bool:
    return isinstance(v, Abstract)


def _flat(args):
    for a in args:
        if isinstance(a, (list, tuple)):
            yield from _flat(a)
        else:
            yield a


def _map(args, fn):
    if isinstance(args, (list, tuple)):
        return type(args)(_map(a, fn) for a in args)
    return fn(args)


def _out_shape(node) -> tuple[int, ...]:
    val = node.meta.get("val")
    return tuple(int(s) for s in val.shape) if isinstance(val, torch.Tensor) else ()


def broadcast(dom: Domain, v, shape, node):
    """`v` (abstract or tensor) broadcast to `shape`, as an abstract value or a float64 tensor."""
    if not _is_abs(v):
        return torch.broadcast_to(torch.as_tensor(v, dtype=torch.float64), shape)
    if tuple(v.shape) == tuple(shape):
        return v
    ids = torch.broadcast_to(torch.arange(max(1, _numel(v.shape))).reshape(v.shape), shape)
    return dom.gather([v], ids, node)


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _move(dom: Domain, node, args, kwargs):
    srcs: list[Abstract] = []

    def ids(v):
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            v = dom.const(v.double())
        if _is_abs(v):
            base = sum(_numel(s.shape) for s in srcs)
            srcs.append(v)
            return torch.arange(base, base + _numel(v.shape), dtype=torch.long).reshape(v.shape)
        return v

    a2, k2 = _map(args, ids), {k: _map(v, ids) for k, v in kwargs.items()}
    out = node.target(*a2, **k2)
    if isinstance(out, (list, tuple)):
        return type(out)(dom.gather(srcs, o, node) for o in out)
    return dom.gather(srcs, out, node)


def _pad(dom: Domain, node, x: Abstract, pad, value) -> Abstract:
    """Constant padding (or cropping, for negative pads) as data movement with one constant source element."""
    n = _numel(x.shape)
    ids = torch.nn.functional.pad(torch.arange(n, dtype=torch.long).reshape(x.shape), list(pad), value=n)
    return dom.gather([x, dom.const(torch.tensor([float(value or 0.0)], dtype=torch.float64))], ids, node)


def _dims(node, args, ndim: int) -> tuple[int, ...]:
    dims = args[1] if len(args) > 1 and args[1] is not None else node.kwargs.get("dim")
    if dims is None or dims == []:
        return tuple(range(ndim))
    dims = [dims] if isinstance(dims, int) else list(dims)
    return tuple(sorted(d % ndim for d in dims))


def _keepdim(node, args) -> bool:
    return bool(args[2] if len(args) > 2 else node.kwargs.get("keepdim", False))


def _reshape(dom, v, shape, node):
    if tuple(v.shape) == tuple(shape):
        return v
    return dom.gather([v], torch.arange(_numel(v.shape)).reshape(shape), node)


def _reduce(dom, node, x, args, mean=False):
    dims = _dims(node, args, len(x.shape))
    kept = dom.reduce_sum(x, dims, node)  # keepdim shape
    if mean:
        kept = dom.mul(kept, torch.tensor(1.0 / max(1, _numel([x.shape[d] for d in dims])), dtype=torch.float64),
                       node)
    return _reshape(dom, kept, _out_shape(node), node)


def _binary(dom, node, name, a, b, alpha=1):
    shape = _out_shape(node)
    if name in ("sub", "rsub"):
        if name == "rsub":
            a, b = b, a
        b = dom.unary(facts("neg", ()), b, node) if _is_abs(b) else -torch.as_tensor(b, dtype=torch.float64)
    if alpha != 1:
        b = dom.mul(b, torch.tensor(float(alpha), dtype=torch.float64), node) if _is_abs(b) else b * alpha
    if name == "div":
        if _is_abs(b):
            return dom.unknown(node, [v for v in (a, b) if _is_abs(v)], shape, "division by an input-dependent value")
        b = 1.0 / torch.as_tensor(b, dtype=torch.float64)
        name = "mul"
    a, b = broadcast(dom, a, shape, node), broadcast(dom, b, shape, node)
    if name in ("add", "sub", "rsub"):
        return dom.add(a, b, node)
    if name == "mul":
        return dom.mul(a, b, node)
    if name == "maximum":
        return dom.maximum(a, b, node)
    if name == "minimum":  # min(a, b) = −max(−a, −b)
        neg = facts("neg", ())
        na = dom.unary(neg, a, node) if _is_abs(a) else -a
        nb = dom.unary(neg, b, node) if _is_abs(b) else -b
        return dom.unary(neg, dom.maximum(broadcast(dom, na, shape, node), broadcast(dom, nb, shape, node), node),
                         node)
    raise AssertionError(name)


def _matmul(dom, node, a, b):
    shape = _out_shape(node)
    if _is_abs(a) and _is_abs(b):
        return dom.unknown(node, [a, b], shape, "product of two input-dependent matrices")
    if _is_abs(a):
        if b.dim() == 3 and len(a.shape) == 3 and bool((b == b[:1]).all()):  # a batched product, one matrix
            b = b[0]
        if b.dim() != 2:
            return dom.unknown(node, [a], shape, f"matrix product with a {b.dim()}-d right factor")
        return dom.matmul(a, b, node)
    if a.dim() != 2 or len(b.shape) != 2:
        return dom.unknown(node, [b], shape, "matrix product with an input-dependent right factor of this shape")
    return dom.lmatmul(a, b, node)


def _inplace_is_local(node) -> bool:
    """An in-place op can be read as its out-of-place twin when nothing reads the mutated tensor (or a tensor
    it is a view of) after it."""
    order = {n: i for i, n in enumerate(node.graph.nodes)}
    frontier, seen = [node.args[0]], set()
    while frontier:
        n = frontier.pop()
        if not isinstance(n, torch.fx.Node) or n in seen:
            continue
        seen.add(n)
        if any(u is not node and order[u] > order[node] for u in n.users):
            return False
        if op_name(n) in MOVES or op_name(n) == "getitem":
            frontier += [a for a in _flat(n.args) if isinstance(a, torch.fx.Node)]
    return True


def _call(dom: Domain, node, args, kwargs):
    name = op_name(node)
    if name == "getitem":
        return args[0][args[1]]
    abstract = [v for v in _flat([*args, *kwargs.values()]) if _is_abs(v)]
    if not abstract:
        return node.target(*args, **kwargs)
    if name.endswith("_") and not name.startswith("_"):
        if not _inplace_is_local(node):
            return _unknown(dom, node, abstract, f"in-place aten.{name} on a tensor that is read again later")
        name = name[:-1]
    if name in LIKE:  # uses only the input's shape and dtype
        dummy = _map(args, lambda v: torch.zeros(v.shape, dtype=torch.float64) if _is_abs(v) else v)
        return node.target(*dummy, **kwargs)
    if any(isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())
           for v in _flat([*args, *kwargs.values()])):
        return _unknown(dom, node, abstract, "a parameter or constant has non-finite values")
    if name in MOVES:
        return _move(dom, node, args, kwargs)
    if name == "constant_pad_nd" and _is_abs(args[0]) and len(abstract) == 1:
        return _pad(dom, node, args[0], args[1], kwargs.get("value", args[2] if len(args) > 2 else 0.0))
    if name in ("add", "sub", "rsub", "mul", "div", "maximum", "minimum"):
        return _binary(dom, node, name, args[0], args[1], kwargs.get("alpha", args[2] if len(args) > 2 else 1))
    if name in ("mm", "matmul", "bmm"):
        return _matmul(dom, node, args[0], args[1])
    if name == "addmm":
        beta, alpha = kwargs.get("beta", 1), kwargs.get("alpha", 1)
        prod = _matmul(dom, node, args[1], args[2])
        if alpha != 1:
            prod = dom.mul(prod, torch.tensor(float(alpha), dtype=torch.float64), node)
        bias = args[0] if beta == 1 else args[0] * beta
        return dom.add(broadcast(dom, bias, _out_shape(node), node), prod, node)
    if name in ("sum", "mean") and len(_flat_shape(args[0])) > 0:
        return _reduce(dom, node, args[0], args, mean=name == "mean")
    f = facts(name, tuple(args[1:]) + tuple(kwargs.values()))
    if f is not None and _is_abs(args[0]) and len(abstract) == 1:
        return dom.unary(f, args[0], node)
    return _unknown(dom, node, abstract, f"no rule is known for the operation aten.{name}")


def _unknown(dom, node, abstract, why):
    val = node.meta.get("val")
    if isinstance(val, (list, tuple)):
        return type(val)(dom.unknown(node, abstract, tuple(v.shape), why) for v in val)
    return dom.unknown(node, abstract, _out_shape(node), why)


def _flat_shape(v):
    return v.shape if _is_abs(v) else ()


def interpret(graph: Graph, state: list[torch.Tensor], x: Abstract, dom: Domain):
    """Run the graph with the given state values and abstract input; returns the abstract output."""
    env = {}
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    for n, v in zip(placeholders, [*state, x]):
        env[n] = v
    out = None
    for node in graph.nodes:
        if node.op == "call_function":
            args = _map(node.args, lambda a: env[a] if isinstance(a, torch.fx.Node) else a)
            kwargs = {k: _map(v, lambda a: env[a] if isinstance(a, torch.fx.Node) else a)
                      for k, v in node.kwargs.items()}
            env[node] = _call(dom, node, args, kwargs)
        elif node.op == "get_attr":  # a tensor constant the forward closed over
            t = getattr(graph.module, node.target)
            env[node] = t.detach().double() if t.is_floating_point() else t.detach()
        elif node.op == "output":
            out = _map(node.args[0], lambda a: env[a] if isinstance(a, torch.fx.Node) else a)
        elif node.op != "placeholder":
            raise AssertionError(node.op)
    while isinstance(out, (list, tuple)):
        out = out[0]
    return out


def label(node, model_name: str) -> str:
    """How a reason names a node: the model, the source line and the aten op."""
    return f"{model_name} at {where(node)} (aten.{op_name(node)})"
