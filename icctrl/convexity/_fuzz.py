"""A grammar of small random modules built to test the certificate, and the soundness check of one module.

`fuzz_module(rng)` draws a program over registers: dense layers with sign patterns (non-negative, non-positive,
mixed, parametrised, edited after construction), activations with parameters that change their curvature,
elementwise functions, sums, products (of one argument or of two), max/min, concatenation, views and reductions,
plus attachments (forward hooks and pre-hooks, a subclass with its own forward, a custom autograd function,
value-dependent control flow), or a small zoo model with the issue's fooling edits (negative quadratic, edited
weights, negative output scale, a state_dict that disagrees with the scalers). `check_module` asks: certified
convex (or concave) ⇒ no Jensen violation, certified monotone ⇒ no monotonicity violation, and certified
Lipschitz bound ≥ the measured estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from icctrl.convexity._certify import certify
from icctrl.convexity._lipschitz import lipschitz_bound
from icctrl.convexity._numeric import jensen_check, lipschitz_estimate, monotonicity_check


class NegatedReLU(nn.ReLU):
    """A ReLU subclass whose own forward negates: read by what it runs, not by its class."""

    def forward(self, x):
        return -super().forward(x)


class _Square(torch.autograd.Function):
    """A custom autograd function (x²) with a vmap rule, so the numeric checks can differentiate it."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x * x

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g


class _Abs(nn.Module):
    def forward(self, w):
        return w.abs()


class _NegAbs(nn.Module):
    def forward(self, w):
        return -w.abs()


def _activation(rng: np.random.Generator) -> nn.Module:
    pick = int(rng.integers(12))
    a = float(rng.choice([-1.0, -0.5, 0.0, 0.01, 0.5, 1.0, 3.0, 4.0]))
    if pick == 0:
        return nn.ReLU(inplace=bool(rng.random() < 0.3))
    if pick == 1:
        return nn.LeakyReLU(a)
    if pick == 2:
        return nn.ELU(alpha=a)
    if pick == 3:
        return nn.CELU(alpha=float(rng.choice([0.1, 1.0, 2.0])))
    if pick == 4:
        return nn.Softplus(beta=float(rng.choice([-1.0, 0.5, 1.0, 3.0])))
    if pick == 5:
        return nn.Tanh()
    if pick == 6:
        return nn.Sigmoid()
    if pick == 7:
        return nn.Hardtanh()
    if pick == 8:
        return NegatedReLU()
    if pick == 9:
        return nn.SELU()
    if pick == 10:
        return nn.ReLU6()
    return nn.Identity()


def _dense(rng: np.random.Generator, n_in: int, n_out: int) -> nn.Linear:
    lin = nn.Linear(n_in, n_out, bias=bool(rng.random() < 0.8))
    kind = int(rng.integers(6))
    with torch.no_grad():
        if kind == 1:
            lin.weight.abs_()
        elif kind == 2:
            lin.weight.abs_().neg_()
        elif kind == 3:  # non-negative by a parametrisation
            parametrize.register_parametrization(lin, "weight", _Abs())
        elif kind == 4:  # non-positive by a parametrisation
            parametrize.register_parametrization(lin, "weight", _NegAbs())
        elif kind == 5:  # mostly non-negative, one entry edited after construction
            lin.weight.abs_()
            lin.weight[int(rng.integers(n_out)), int(rng.integers(n_in))] *= -float(rng.choice([0.0, 1.0]))
    return lin


FUNCTIONS = ("abs", "square", "pow2", "pow3", "exp", "neg", "scale", "shift", "clamp_min", "clamp_max", "relu",
             "custom", "branch", "logsigmoid", "sum", "mean")
BINARY = ("add", "sub", "mul", "maximum", "minimum")
MOVES = ("flip", "transpose", "slice", "repeat", "perm")


class Program(nn.Module):
    """A straight-line program over registers: `steps` are (kind, op, sources, module key, constant)."""

    def __init__(self, n_in: int, steps: list[tuple], mods: dict[str, nn.Module], head: nn.Linear):
        super().__init__()
        self.n_in, self.steps, self.mods, self.head = n_in, steps, nn.ModuleDict(mods), head

    def forward(self, x):
        regs = [x + 0.0]  # a fresh tensor: in-place activations never write into the caller's input
        for kind, op, src, key, c in self.steps:
            a = regs[src[0]]
            if kind == "module":
                y = self.mods[key](a)
            elif kind == "fn":
                y = _function(op, a, c)
            elif kind == "binary":
                y = _binary(op, a, regs[src[1]])
            elif kind == "cat":
                y = torch.cat([a, regs[src[1]]], dim=-1)
            else:
                y = _move(op, a, c)
            regs.append(y)
        return self.head(regs[-1])


def _function(op: str, a, c: float):
    if op == "abs":
        return a.abs()
    if op == "square":
        return a * a
    if op == "pow2":
        return a**2
    if op == "pow3":
        return a**3
    if op == "exp":
        return torch.exp(a.clamp_max(3.0))  # clamped: concave ∘ ... keeps values finite for the checks
    if op == "neg":
        return -a
    if op == "scale":
        return c * a
    if op == "shift":
        return a + c
    if op == "clamp_min":
        return a.clamp_min(c)
    if op == "clamp_max":
        return a.clamp_max(c)
    if op == "relu":
        return F.relu(a)
    if op == "custom":
        return _Square.apply(a)
    if op == "branch":  # value-dependent control flow: cannot be captured, so never certified
        return F.relu(a) if bool(a.sum() > 0) else -F.relu(a)
    if op == "logsigmoid":
        return F.logsigmoid(a)
    if op == "sum":
        return a.sum(-1, keepdim=True)
    return a.mean(-1, keepdim=True)


def _binary(op: str, a, b):
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if op == "maximum":
        return torch.maximum(a, b)
    return torch.minimum(a, b)


def _move(op: str, a, c):
    if op == "flip":
        return a.flip(-1)
    if op == "transpose":
        return a.unsqueeze(-1).transpose(-1, -2).reshape(a.shape)
    if op == "slice":
        return a[..., : int(c)]
    if op == "repeat":
        return a.unsqueeze(-2).expand(*a.shape[:-1], 2, a.shape[-1]).reshape(*a.shape[:-1], 2 * a.shape[-1])
    return a[..., torch.arange(a.shape[-1] - 1, -1, -1)].roll(1, -1)


def _program(rng: np.random.Generator, n_in: int) -> Program:
    widths, steps, mods = [n_in], [], {}
    for i in range(int(rng.integers(1, 6))):
        src = int(rng.integers(len(widths))) if rng.random() < 0.3 else len(widths) - 1
        w = widths[src]
        kind = rng.choice(["dense", "act", "fn", "binary", "cat", "move"], p=[0.3, 0.25, 0.15, 0.12, 0.06, 0.12])
        key = f"m{i}"
        if kind == "dense":
            out = int(rng.integers(1, 5))
            mods[key] = _dense(rng, w, out)
            steps.append(("module", "dense", (src,), key, 0.0))
        elif kind == "act":
            act = _activation(rng)
            if rng.random() < 0.1:
                act.register_forward_hook(lambda mod, inp, out: -out)
            if rng.random() < 0.05:
                act.register_forward_pre_hook(lambda mod, inp: (-inp[0],))
            mods[key] = act
            steps.append(("module", "act", (src,), key, 0.0))
            out = w
        elif kind == "fn":
            op = str(rng.choice(FUNCTIONS, p=_fn_weights()))
            c = float(rng.choice([-2.0, -0.5, 0.5, 2.0]))
            steps.append(("fn", op, (src,), key, c))
            out = 1 if op in ("sum", "mean") else w
        elif kind in ("binary", "cat"):
            same = [j for j, v in enumerate(widths) if v == w and j != src]
            other = int(rng.choice(same)) if same and rng.random() < 0.7 else src  # src twice: one argument
            if kind == "cat":
                other = int(rng.integers(len(widths)))
                steps.append(("cat", "cat", (src, other), key, 0.0))
                out = w + widths[other]
            else:
                steps.append(("binary", str(rng.choice(BINARY)), (src, other), key, 0.0))
                out = w
        else:
            op = str(rng.choice(MOVES))
            c = float(rng.integers(1, w + 1))
            steps.append(("move", op, (src,), key, c))
            out = int(c) if op == "slice" else 2 * w if op == "repeat" else w
        widths.append(out)
    head = nn.Linear(widths[-1], int(rng.integers(1, 3)))
    with torch.no_grad():
        if rng.random() < 0.6:
            head.weight.abs_()
    return Program(n_in, steps, mods, head)


def _fn_weights():
    w = np.ones(len(FUNCTIONS))
    w[FUNCTIONS.index("branch")] = 0.3
    return w / w.sum()


def _zoo(rng: np.random.Generator, n_in: int) -> tuple[nn.Module, int]:
    """A small zoo model, sometimes edited the ways the issue lists; returns (model, window)."""
    from icctrl.nn import Scaled, build

    name = str(rng.choice(["icnn", "icrnn", "iclrnn", "picnn", "iclstm", "linear"]))
    T = int(rng.integers(1, 4))
    kw = {"lags": 2} if name == "linear" else {
        "hidden": 4, "layers": int(rng.integers(1, 3)),
        "activation": str(rng.choice(["relu", "softplus", "elu", "celu", "leaky_relu"]))}
    if name == "picnn":
        kw["convex_inputs"] = [0]
    if name == "icnn" and rng.random() < 0.5:
        kw["quadratic"] = 0.5
    affine = int(rng.integers(1, 3)) if name != "linear" and rng.random() < 0.3 else None
    m = build(name, n_in, 1, affine=affine, **kw) if name != "linear" else build(name, n_in, 1, **kw)
    lin = m if name == "linear" else getattr(m, "affine", None)
    if lin is not None:
        with torch.no_grad():
            lin.weight.normal_()
    core = getattr(m, "convex", m)
    edit = rng.random()
    if name == "icnn" and edit < 0.3:
        core.quadratic = -float(rng.choice([0.5, 5.0]))  # set after construction: never validated
    elif name == "icnn" and edit < 0.5:
        layer = core.hidden_w[-1]
        parametrize.remove_parametrizations(layer, "weight")
        with torch.no_grad():
            layer.weight[0, int(rng.integers(layer.weight.shape[1]))] = -float(rng.choice([0.5, 5.0]))
    if rng.random() < 0.4:
        m = Scaled(m, [0.0] * n_in, [1.0] * n_in, [0.0], [1.0])
        if rng.random() < 0.25:
            m.out_scale.fill_(-float(rng.choice([0.5, 2.0])))  # edited after construction
        elif rng.random() < 0.5:
            state = m.state_dict()
            state["out_scale"] = -state["out_scale"] * float(rng.choice([0.5, 2.0]))
            m.load_state_dict(state)  # a checkpoint that disagrees with the validated scalers
    return m, T


def fuzz_module(rng: np.random.Generator, n_in: int = 2, zoo: float = 0.1) -> tuple[nn.Module, tuple[int, ...]]:
    """A random module and the shape of one input sample: (n_in,) for a program, (window, n_in) for a zoo
    model (drawn with probability `zoo`)."""
    if rng.random() < zoo:
        m, T = _zoo(rng, n_in)
        return m.double().eval(), (T, n_in)
    return _program(rng, n_in).double().eval(), (n_in,)


@dataclass
class Verdict:
    """What the certificate claimed about one module and whether the numeric checks contradicted it."""

    convex: bool
    concave: bool
    monotone: bool
    false_curvature: float  # worst Jensen gap beyond tolerance where a curvature was certified (0: none)
    false_monotone: float  # worst monotonicity violation where monotonicity was certified (0: none)
    bound: float
    estimate: float
    violated: bool  # a numeric Jensen violation exists (whatever was certified): the checks can fail

    @property
    def unsound_bound(self) -> bool:
        return math.isfinite(self.bound) and self.estimate > self.bound * (1 + 1e-6) + 1e-9


def check_module(m: nn.Module, shape: tuple[int, ...], seed: int = 0, n: int = 256) -> Verdict:
    """Certify `m`, then look for numeric counterexamples to what was certified (batched, cheap)."""
    window = shape[0] if len(shape) == 2 else None
    cert = certify(m, window=window) if window else certify(m)

    def sample(k, gen):
        return 2.5 * torch.randn(k, *shape, generator=gen, dtype=torch.float64)

    names = list(getattr(m, "input_names", None) or [f"x{i}" for i in range(shape[-1])])
    mask = torch.zeros(shape, dtype=torch.bool)
    for w in cert.wrt:
        mask[..., names.index(w)] = True
    with torch.no_grad():
        scale = float(m(sample(64, torch.Generator().manual_seed(seed))).abs().max())
    tol = 1e-8 * (1.0 + scale)  # relative to the outputs' size: rounding is not a violation
    jensen = jensen_check(m, sample, n, mask=mask, seed=seed, tol=tol).worst
    concave_gap = jensen_check(m, sample, n, mask=mask, seed=seed + 1, tol=tol, concave=True).worst
    concave = cert.curvature in ("concave", "affine", "constant")
    false_curv = max(jensen if cert.convex else 0.0, concave_gap if concave else 0.0)
    false_mono = 0.0
    for direction, kind in ((1, "nondecreasing"), (-1, "nonincreasing")):
        sel = [names.index(w) for w, v in cert.monotonicity.items() if v in (kind, "constant")]
        if sel:
            mm = torch.zeros(shape, dtype=torch.bool)
            mm[..., sel] = True
            worst = monotonicity_check(m, sample, n // 4, mask=mm, seed=seed, direction=direction, tol=tol,
                                       step=0.5).worst
            false_mono = max(false_mono, worst if worst > tol else 0.0)
    bound = lipschitz_bound(m, window or 1)
    estimate = 0.0
    if math.isfinite(bound):
        estimate = lipschitz_estimate(m, sample, 32, seed=seed, ascent_steps=3).worst
    return Verdict(bool(cert.convex), concave, any(v != "none" for v in cert.monotonicity.values()),
                   false_curv if false_curv > tol else 0.0, false_mono, bound, estimate,
                   bool(jensen > tol))
