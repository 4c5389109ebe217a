"""The one representation every reading uses: the aten graph of the forward that actually runs.

`capture` traces `torch.func.functional_call(model, params, (x,))` with `make_fx` in fake mode on the real
example shape. Parameters and buffers are graph inputs, so their current values are read when a reading runs;
hooks, subclass forwards and parametrizations appear as the aten ops they really run; tensors the forward
closes over (not parameters or buffers) are copied into the graph as constants, so such a graph is not cached;
an activation's parameters (leaky slope, ELU alpha, softplus beta) appear as op arguments. Value-dependent
Python control flow cannot be traced in fake mode and is reported as a `GraphError`.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass

import torch
from torch import nn

from icctrl.errors import IcctrlError


class GraphError(IcctrlError):
    """The forward of a module could not be captured as an aten graph (the message says why)."""


@dataclass
class Graph:
    """A captured forward: the fx graph, the names of its state inputs, and the example input shape."""

    module: torch.fx.GraphModule
    names: tuple[str, ...]
    shape: tuple[int, ...]

    def state(self, model: nn.Module) -> list[torch.Tensor]:
        """Current float64 values of the parameters and buffers, in graph-input order."""
        tensors = dict(model.named_parameters())
        tensors.update(dict(model.named_buffers()))
        out = []
        for n in self.names:
            t = tensors[n].detach()
            out.append(t.double() if t.is_floating_point() else t)
        return out

    @property
    def nodes(self):
        return self.module.graph.nodes


def digest(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer value (what a certificate checked)."""
    h = hashlib.sha256()
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _structure(model: nn.Module) -> tuple:
    """What decides the traced graph besides tensor values: module types, plain attributes and hooks."""
    out = []
    for name, m in model.named_modules():
        plain = tuple(sorted((k, repr(v)) for k, v in vars(m).items()
                             if isinstance(v, (bool, int, float, str, tuple, type(None)))))
        hooks = tuple(len(getattr(m, k, ())) for k in ("_forward_hooks", "_forward_pre_hooks"))
        out.append((name, type(m), plain, hooks))
    return tuple(out)


def _anchor(model: nn.Module) -> None:
    """Keep the frames of the model's own methods in recorded stack traces (torch keeps only `forward`)."""
    from torch.fx import proxy

    register = getattr(proxy, "_register_stack_trace_anchor", None)
    if register is None:
        return
    for m in model.modules():
        for cls in type(m).__mro__:
            if cls.__module__.startswith("torch"):
                continue
            for fn in vars(cls).values():
                if callable(fn) and hasattr(fn, "__code__"):
                    register(fn)


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def capture(model: nn.Module, shape: tuple[int, ...]) -> Graph:
    """The aten graph of `model` on an input of `shape` (float64), cached per module, shape and structure."""
    key = (tuple(shape), _structure(model), nn.modules.module._global_forward_hooks.__len__())
    per_model = _CACHE.setdefault(model, {})
    if key in per_model:
        return per_model[key]
    params = dict(model.named_parameters())
    params.update(dict(model.named_buffers()))
    names = tuple(params)

    def forward(state, x):
        return torch.func.functional_call(model, dict(zip(names, state)), (x,))

    example = [t.detach().double() if t.is_floating_point() else t.detach() for t in params.values()]
    x = torch.zeros(shape, dtype=torch.float64)
    from torch.fx.experimental.proxy_tensor import make_fx

    def trace(stacks: bool) -> torch.fx.GraphModule:
        return make_fx(torch.func.functionalize(forward), tracing_mode="fake", record_stack_traces=stacks,
                       _allow_non_fake_inputs=True)(example, x)

    try:
        gm = trace(False)  # stack traces cost more than the trace itself: recorded only when a message needs one
    except Exception as exc:  # any failure to trace: value-dependent control flow, non-torch code, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise GraphError(f"{type(model).__name__}: the forward cannot be traced as a graph of tensor operations "
                         f"({type(exc).__name__}: {first[:200]}); value-dependent Python control flow and "
                         "non-torch computations are not certified") from exc

    def traced() -> dict[str, str]:
        _anchor(model)
        return {n.name: n.meta.get("stack_trace") or "" for n in trace(True).graph.nodes}

    gm.meta["stack_traces"] = traced
    graph = Graph(gm, names, tuple(shape))
    if any(n.op == "get_attr" for n in gm.graph.nodes):  # tensors the forward closes over, copied at capture:
        return graph  # not cached, so a later change to them is read
    if len(per_model) >= 8:  # a few windows per model (a controller asks for its window and its horizon)
        per_model.pop(next(iter(per_model)))
    per_model[key] = graph
    return graph


def _stack_trace(node) -> str:
    """The node's recorded stack trace; the graph is traced again with stack traces on first use."""
    if node.meta.get("stack_trace"):
        return node.meta["stack_trace"]
    meta = node.graph.owning_module.meta if node.graph.owning_module is not None else {}
    traces = meta.get("stack_traces")
    if callable(traces):
        try:
            traces = meta["stack_traces"] = traces()
        except Exception:  # the forward changed since it was captured: no location, only the op
            traces = meta["stack_traces"] = {}
    return (traces or {}).get(node.name, "")


def where(node) -> str:
    """The source line that produced a node: the innermost frame outside torch, and the torch layer if any."""
    lines = _stack_trace(node).strip().splitlines()
    frames = []
    for i, ln in enumerate(lines):
        ln = ln.strip()
        if ln.startswith("File "):
            parts = ln[5:].replace('"', "").split(", ")
            code = lines[i + 1].strip() if i + 1 < len(lines) else ""
            frames.append((parts[0], parts[1].replace("line ", "") if len(parts) > 1 else "?", code))
    own = [f for f in frames if "/torch/" not in f[0] and "/icctrl/convexity/" not in f[0]]
    if not own:
        return f"torch {frames[-1][0].split('/')[-1].removesuffix('.py')}" if frames else node.name
    path, line, code = own[-1]
    text = f"{path.split('/')[-1]}:{line} `{code}`"
    if frames[-1][0] != path and "/torch/nn/modules/" in frames[-1][0]:
        text += f" in torch {frames[-1][0].split('/')[-1].removesuffix('.py')}"
    return text
