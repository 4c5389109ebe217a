"""`certify`: compose the local facts of every layer through a model (unrolled over time) into a Certificate."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from torch import nn

from icctrl.convexity._expr import Sym, Tracer
from icctrl.convexity._lattice import ATOMS, C, M, S, curv_add, is_convex, mono_add, sign_of
from icctrl.errors import ShapeError, UnknownNameError


@dataclass
class Certificate:
    """What the composition rules prove about a model or problem, and why where they cannot."""

    convex: bool
    nondecreasing: bool
    curvature: str
    wrt: tuple[str, ...]
    monotonicity: dict[str, str]
    reasons: list[str]
    scope: str
    subject: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["wrt"] = list(self.wrt)
        return d

    def __str__(self) -> str:
        verdict = "convex" if self.convex else "NOT certified convex"
        lines = [f"{self.subject}: {verdict} ({self.curvature}) {self.scope}",
                 f"  with respect to: {', '.join(self.wrt) or '(nothing)'}",
                 f"  nondecreasing: {self.nondecreasing}"]
        lines += [f"  reason: {r}" for r in self.reasons]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# ---- rules for torch's own layers (an icctrl model declares its own through a `trace` method) ---------------
Rule = Callable[[Tracer, nn.Module, Sym, str], Sym]
_RULES: dict[type, Rule] = {}


def register_rule(module_type: type) -> Callable[[Rule], Rule]:
    """Declare how a module type transforms a signal (used for torch layers icctrl does not own)."""

    def deco(fn: Rule) -> Rule:
        _RULES[module_type] = fn
        return fn

    return deco


def _act_rule(name: str) -> Rule:
    return lambda tr, m, x, label: tr.activation(x, ATOMS[name], f"{label} ({name})")


for _t, _n in ((nn.ReLU, "relu"), (nn.Softplus, "softplus"), (nn.Tanh, "tanh"), (nn.Sigmoid, "sigmoid"),
               (nn.CELU, "celu"), (nn.ELU, "elu"), (nn.LeakyReLU, "leaky_relu"), (nn.Identity, "identity")):
    register_rule(_t)(_act_rule(_n))


@register_rule(nn.Linear)
def _linear_rule(tr: Tracer, m: nn.Linear, x: Sym, label: str) -> Sym:
    bias = S.ZERO if m.bias is None else sign_of(m.bias.detach())
    return tr.linear(x, sign_of(m.weight.detach()), f"{label} (Linear {m.in_features}→{m.out_features})", bias)


@register_rule(nn.Sequential)
def _sequential_rule(tr: Tracer, m: nn.Sequential, x: Sym, label: str) -> Sym:
    for i, child in enumerate(m):
        x = trace_module(tr, child, x, f"{label}[{i}]")
    return x


def trace_module(tr: Tracer, module: nn.Module, x: Sym, label: str) -> Sym:
    """Propagate one vector signal through a (pointwise) module; unknown modules give `unknown`."""
    for cls in type(module).__mro__:
        if cls in _RULES:
            return _RULES[cls](tr, module, x, label)
    out = Sym(C.UNKNOWN, tuple(M.NONE for _ in x.mono), S.UNKNOWN, label)
    tr.reasons.append(f"{label}: no convexity rule is known for module {type(module).__name__}")
    return out


# ---- certify ---------------------------------------------------------------------------------------------
def _input_names(model: nn.Module, n_in: int) -> tuple[str, ...]:
    names = getattr(model, "input_names", None)
    return tuple(names) if names else tuple(f"x{i}" for i in range(n_in))


def _resolve_wrt(wrt, names: tuple[str, ...], default: Sequence[int]) -> tuple[int, ...]:
    if wrt is None:
        return tuple(default)
    idx = []
    for w in [wrt] if isinstance(wrt, (int, str)) else wrt:
        if isinstance(w, str):
            if w not in names:
                raise UnknownNameError(f"wrt={w!r} is not an input of the model; inputs are {list(names)}")
            idx.append(names.index(w))
        elif isinstance(w, int) and 0 <= w < len(names):
            idx.append(w)
        else:
            raise ShapeError(f"wrt index {w!r} is out of range for a model with {len(names)} inputs")
    return tuple(sorted(set(idx)))


def run_trace(model: nn.Module, tr: Tracer, xs: list[list[Sym]]) -> list[Sym]:
    """The model's own `trace` (icctrl models), or the pointwise rules for torch layers."""
    if hasattr(model, "trace"):
        return model.trace(tr, xs)
    return [trace_module(tr, model, tr.concat(*x, label=f"input[t={t}]"), type(model).__name__)
            for t, x in enumerate(xs)]


_STEP = re.compile(r"(horizon step \d+: |\(t=\d+\)|\[t=\d+\]|_\d+)")


def _first_of_each_kind(reasons: Sequence[str]) -> list[str]:
    """One reason per layer and rule: the same failure repeated at later time or horizon steps is dropped."""
    seen, out = set(), []
    for r in reasons:
        key = _STEP.sub("#", r)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def summarize(tr: Tracer, outs: Sequence[Sym], wrt_names: tuple[str, ...], scope: str, subject: str,
              notes: Sequence[str] = ()) -> Certificate:
    """Join the facts of the selected outputs into a Certificate."""
    curv, mono = C.CONSTANT, [M.CONSTANT] * len(wrt_names)
    for y in outs:
        curv = curv_add(curv, y.curvature)  # the join: convex if every output is convex or affine
        mono = [mono_add(a, b) for a, b in zip(mono, y.mono)]
    convex = is_convex(curv)
    nondecreasing = all(m in (M.NONDECREASING, M.CONSTANT) for m in mono)
    reasons = _first_of_each_kind(tr.reasons) if not convex else []
    if not convex and not reasons:
        reasons = [f"output is {curv.value} in {', '.join(wrt_names)}"]
    return Certificate(convex, nondecreasing, curv.value, wrt_names,
                       {n: m.value for n, m in zip(wrt_names, mono)}, reasons, scope, subject, list(notes))


def certify(model, wrt=None, *, window: int | None = None, per_step: bool = False) -> Certificate:
    """Certify a model (or an assembled problem) convex in `wrt` from the facts of its layers.

    For a sequence model the default is joint convexity of every output over a window of `window` steps in
    the inputs of every step (`window` defaults to 4 for recurrent models). `per_step=True` asks the weaker
    question: is the output of one step convex in that step's input, with the past held fixed?
    `wrt` selects input features by index or name (default: the inputs the model is built to be convex in).
    """
    if hasattr(model, "certificate") and not isinstance(model, nn.Module):
        return model.certificate()
    if not isinstance(model, nn.Module):
        raise UnknownNameError(f"certify() needs a torch module or an icctrl problem, got {type(model).__name__}")
    n_in = getattr(model, "n_in", None)
    if n_in is None:
        lin = next((m for m in model.modules() if isinstance(m, nn.Linear)), None)
        if lin is None:
            reason = f"{type(model).__name__}: no convexity rule is known and its input size cannot be read"
            return Certificate(False, False, "unknown", (), {}, [reason], "", type(model).__name__)
        n_in = lin.in_features
    names = _input_names(model, n_in)
    idx = _resolve_wrt(wrt, names, getattr(model, "convex_inputs", None) or range(n_in))
    wrt_names = tuple(names[i] for i in idx)
    recurrent = bool(getattr(model, "recurrent", False))
    T = window or (4 if recurrent else 1)
    if T < 1:
        raise ShapeError(f"window must be >= 1, got {T}")
    tr = Tracer(wrt_names)
    if per_step:
        T = 2
        xs = [[tr.constant(f"{names[i]}[t=0]") for i in range(n_in)],
              [tr.input(names[i] if i in idx else None, f"{names[i]}[t=1]") for i in range(n_in)]]
        outs = run_trace(model, tr, xs)[1:]
        scope = "per step: output of step t in the inputs of step t, earlier inputs and state held fixed"
    else:
        xs = [[tr.input(names[i] if i in idx else None, f"{names[i]}[t={t}]") for i in range(n_in)]
              for t in range(T)]
        outs = run_trace(model, tr, xs)
        scope = (f"jointly over a window of {T} steps" if recurrent else "pointwise (each step on its own input)")
    notes = list(getattr(model, "convexity_notes", ()))
    return summarize(tr, outs, wrt_names, scope, type(model).__name__, notes)


