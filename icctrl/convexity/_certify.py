"""`certify`: compose the local facts of every layer through a model (unrolled over time) into a Certificate."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from torch import nn

from icctrl.convexity._expr import Sym, Tracer
from icctrl.convexity._flags import FlagDomain, Flags, fresh
from icctrl.convexity._graph import GraphError, capture, digest
from icctrl.convexity._lattice import C, M, S, curv_add, is_concave, is_convex, mono_add
from icctrl.convexity._read import interpret
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
    digest: str = ""  # SHA-256 prefix of the parameter and buffer values the certificate was made from

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


def n_inputs(model: nn.Module) -> int | None:
    """Input width: the model's `n_in`, else the first Linear layer's (plain torch modules)."""
    n_in = getattr(model, "n_in", None)
    if n_in is None:
        lin = next((m for m in model.modules() if isinstance(m, nn.Linear)), None)
        n_in = lin.in_features if lin is not None else None
    return n_in


def example_shape(model: nn.Module, T: int) -> tuple[int, ...]:
    """The shape the graph is captured on: (1, T, n_in) for icctrl models, (1, n_in) for plain modules."""
    n_in = n_inputs(model)
    return (1, T, n_in) if hasattr(model, "forward_window") else (1, n_in)


def _flags_of(sym: Sym, groups: tuple[str, ...]) -> tuple:
    nd = [m in (M.NONDECREASING, M.CONSTANT) for m in sym.mono]
    ni = [m in (M.NONINCREASING, M.CONSTANT) for m in sym.mono]
    return (is_convex(sym.curvature), is_concave(sym.curvature), nd, ni,
            sym.sign in (S.NONNEG, S.ZERO), sym.sign in (S.NONPOS, S.ZERO))


def _input(xs: list[list[Sym]], shape, G: int) -> Flags:
    """Flags of the example input from one Sym per step and feature."""
    cvx = np.zeros(shape, bool)
    ccv, pos, neg = cvx.copy(), cvx.copy(), cvx.copy()
    nd, ni = np.zeros(shape + (G,), bool), np.zeros(shape + (G,), bool)
    for t, feats in enumerate(xs):
        for i, sym in enumerate(feats):
            idx = (0, t, i) if len(shape) == 3 else (0, i)
            c, v, d, n, p, q = _flags_of(sym, ())
            cvx[idx], ccv[idx], nd[idx], ni[idx], pos[idx], neg[idx] = c, v, d, n, p, q
    return fresh(cvx, ccv, nd, ni, pos, neg)


def _sym(f: Flags, mask, label: str) -> Sym:
    """Join the flags of the selected elements into one Sym."""
    cvx, ccv = bool(f.cvx[mask].all()), bool(f.ccv[mask].all())
    nd, ni = f.nd[mask].all(0), f.ni[mask].all(0)
    const = bool((nd & ni).all())
    curv = (C.CONSTANT if const and cvx and ccv else C.AFFINE if cvx and ccv else C.CONVEX if cvx
            else C.CONCAVE if ccv else C.UNKNOWN)
    mono = tuple(M.CONSTANT if a and b else M.NONDECREASING if a else M.NONINCREASING if b else M.NONE
                 for a, b in zip(nd, ni))
    pos, neg = bool(f.pos[mask].all()), bool(f.neg[mask].all())
    sign = S.ZERO if pos and neg else S.NONNEG if pos else S.NONPOS if neg else S.UNKNOWN
    return Sym(curv, mono, sign, label)


def run_trace(model: nn.Module, tr: Tracer, xs: list[list[Sym]]) -> list[Sym]:
    """Read the graph of the model's forward over len(xs) steps with the given input facts; one Sym per
    output step. Reasons (naming the source line and the aten op) are appended to `tr.reasons`."""
    name = type(model).__name__
    seq = hasattr(model, "forward_window")
    steps = [xs] if seq else [[x] for x in xs]
    outs: list[Sym] = []
    for chunk in steps:
        try:
            graph = capture(model, example_shape(model, len(chunk)))
        except GraphError as exc:
            tr.reasons.append(f"{tr.scope}{exc}")
            outs += [Sym(C.UNKNOWN, tuple(M.NONE for _ in tr.groups), S.UNKNOWN, name)] * len(chunk)
            continue
        dom = FlagDomain(len(tr.groups), name, tr.reasons, tr.scope)
        y = interpret(graph, graph.state(model), _input(chunk, graph.shape, len(tr.groups)), dom)
        if not isinstance(y, Flags):
            outs += [tr.constant(f"{name} output")] * len(chunk)
            continue
        if seq and y.cvx.ndim == 3:
            for t in range(y.shape[1]):
                mask = np.zeros(y.shape, bool)
                mask[:, t] = True
                outs.append(_sym(y, mask, f"{name} output (t={t})"))
        else:
            outs.append(_sym(y, np.ones(y.shape, bool), f"{name} output"))
    return outs


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
    n_in = n_inputs(model)
    if n_in is None:
        reason = f"{type(model).__name__}: no convexity rule is known and its input size cannot be read"
        return Certificate(False, False, "unknown", (), {}, [reason], "", type(model).__name__)
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
    cert = summarize(tr, outs, wrt_names, scope, type(model).__name__, notes)
    cert.digest = digest(model)
    return cert
