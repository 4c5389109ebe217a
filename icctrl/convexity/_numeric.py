"""Numeric second opinion on convexity, monotonicity and Lipschitz claims: sampled checks that can fail.

Conventions shared by every check:

- ``f`` maps a batch tensor ``(B, *shape)`` to ``(B, *out_shape)``; a model that returns a tuple (as
  ``torch.nn.LSTM`` does) must be wrapped, e.g. ``lambda x: lstm(x)[0]``. Put models in ``eval()`` mode:
  dropout or batch statistics make any check meaningless.
- ``sampler(n, generator)`` returns ``n`` points ``(n, *shape)``; a sampler taking only ``n`` is called with
  the global torch RNG seeded from ``seed`` inside ``torch.random.fork_rng`` (so results stay reproducible
  and the caller's RNG state is untouched).
- Dtype: the checks cast the INPUT, never the model. Points are drawn and combined in float64 and ``f`` is
  called with float64 inputs, except when ``f`` is a ``torch.nn.Module`` whose parameters are of another
  floating dtype: then inputs are cast to that dtype (with a warning) so the model runs. Pass a float64
  model (``model.double()``) for the default tolerance 1e-6 to mean anything; float32 rounding alone is
  about 1e-7 relative. Outputs are compared in float64, and the points stored in ``where`` are exactly
  the points that were evaluated.
- ``mask`` is a boolean tensor of the input shape: only masked coordinates vary (between the two ends of a
  segment, along a ray, in a Hessian); the others stay at the sampled value. "Inputs of time step 3 only"
  is ``mask[3, :] = True`` for a ``(time, features)`` window.
- Every result carries ``where``: JSON-ready data that reproduce the worst case when re-evaluated.
"""

from __future__ import annotations

import inspect
import itertools
import math
import operator
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch.func import grad, jacrev, vmap

from icctrl.errors import InvalidValueError, ShapeError, UnknownNameError

_CHUNK = 8192  # rows per forward pass; bounds memory when a check needs many evaluations
_ASCENT_STARTS = 4  # points refined by gradient ascent in lipschitz_estimate


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one numeric check: the worst violation (or the estimate) and where it happened."""

    name: str
    passed: bool
    worst: float
    tol: float
    n: int
    where: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain, JSON-serialisable copy of the result."""
        return {
            "name": self.name,
            "passed": bool(self.passed),
            "worst": float(self.worst),
            "tol": float(self.tol),
            "n": int(self.n),
            "where": dict(self.where),
        }


# ---------------------------------------------------------------------------------------------- checks


def jensen_check(
    f: Callable,
    sampler: Callable,
    n: int = 256,
    *,
    tol: float = 1e-6,
    mask=None,
    thetas: str = "random",
    seed: int = 0,
    concave: bool = False,
) -> CheckResult:
    """Worst Jensen gap f(θa+(1−θ)b) − θf(a) − (1−θ)f(b) over random segments and all output components.

    ``thetas="random"`` draws θ uniformly in [0, 1) per segment, ``"midpoint"`` uses θ = 1/2. With
    ``concave=True`` the gap is negated (a concave f has no positive gap). The tolerance is absolute. All
    3n evaluations (ends and interior points) go through ``f`` in one batched forward pass (chunked above
    8192 rows).
    """
    n, tol, gen = _check_n(n), _check_tol(tol), _generator(seed)
    if thetas not in ("random", "midpoint"):
        raise UnknownNameError(f"thetas must be 'random' or 'midpoint', got {thetas!r}")
    dtype = _eval_dtype(f)
    a = _draw(sampler, n, gen)
    shape = tuple(a.shape[1:])
    b = _draw(sampler, n, gen, shape)
    m = _mask(mask, shape).to(a.device)
    a = _round(a, dtype)
    b = _round(torch.where(m, b, a), dtype)
    if thetas == "midpoint":
        theta = torch.full((n,), 0.5, dtype=torch.float64)
    else:
        theta = torch.rand(n, generator=gen, dtype=torch.float64)
    theta = theta.to(a.device)
    th = theta.reshape(n, *([1] * len(shape)))
    x = _round(th * a + (1 - th) * b, dtype)
    y, out_shape = _evaluate(f, torch.cat([a, b, x]), dtype)
    fa, fb, fx = y.split(n)
    gap = fx - theta[:, None] * fa - (1 - theta[:, None]) * fb
    if concave:
        gap = -gap
    i, j = divmod(int(gap.argmax()), gap.shape[1])
    worst = float(gap[i, j])
    where = {
        "sample": i,
        "theta": float(theta[i]),
        "output_index": _unravel(j, out_shape),
        "a": a[i].tolist(),
        "b": b[i].tolist(),
        "x": x[i].tolist(),
        "f_a": float(fa[i, j]),
        "f_b": float(fb[i, j]),
        "f_x": float(fx[i, j]),
        "concave": bool(concave),
    }
    return CheckResult("jensen", worst <= tol, worst, tol, n, where)


def monotonicity_check(
    f: Callable,
    sampler: Callable,
    n: int = 256,
    *,
    direction: int = +1,
    tol: float = 1e-6,
    mask=None,
    step: float = 1e-2,
    seed: int = 0,
) -> CheckResult:
    """Worst decrease −direction·(f(x+δd) − f(x)) along each masked coordinate ray and a random ray per point.

    ``direction=+1`` checks nondecreasing, ``-1`` nonincreasing. Coordinate rays step by ``step`` (input
    units) in one masked coordinate; the random rays are non-negative in the masked coordinates with 2-norm
    ``step``. Monotonicity must hold for any positive step, so a larger one probes further (but may leave
    the sampler's domain). The tolerance is absolute; ``n`` in the result counts the rays tested.
    """
    n, tol, gen = _check_n(n), _check_tol(tol), _generator(seed)
    if direction not in (1, -1) or isinstance(direction, bool):
        raise InvalidValueError(f"direction must be +1 or -1, got {direction!r}")
    step = float(step)
    if not math.isfinite(step) or step <= 0:
        raise InvalidValueError(f"step must be finite and > 0, got {step!r}")
    dtype = _eval_dtype(f)
    x = _draw(sampler, n, gen)
    shape = tuple(x.shape[1:])
    m = _mask(mask, shape).to(x.device).reshape(-1)
    x = _round(x, dtype).reshape(n, -1)
    d = x.shape[1]
    coords = m.nonzero().reshape(-1)
    rand = torch.rand(n, d, generator=gen, dtype=torch.float64).to(x.device) * m
    rand = rand / rand.norm(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny) * step
    fx, out_shape = _evaluate(f, x.reshape(n, *shape), dtype)
    best = (-math.inf, None)
    per = max(1, _CHUNK // n)  # coordinate rays per forward pass
    for c in [*coords.split(per), None]:
        if c is None:  # the random non-negative rays
            xs = _round(x + rand, dtype)[:, None, :]
        else:
            offs = torch.zeros(len(c), d, dtype=torch.float64, device=x.device)
            offs[torch.arange(len(c)), c] = step
            xs = _round(x[:, None, :] + offs[None], dtype)
        k = xs.shape[1]
        fs, _ = _evaluate(f, xs.reshape(n * k, *shape), dtype)
        fs = fs.reshape(n, k, -1)
        viol = -direction * (fs - fx[:, None, :])
        flat = int(viol.argmax())
        if float(viol.reshape(-1)[flat]) > best[0]:
            i, r, j = _unravel(flat, tuple(viol.shape))
            coord = None if c is None else _unravel(int(c[r]), shape)
            best = (float(viol[i, r, j]), (i, r, j, coord, xs, fs))
    worst, (i, r, j, coord, xs, fs) = best
    where = {
        "sample": i,
        "kind": "random" if coord is None else "coordinate",
        "coordinate": coord,
        "step": step,
        "direction": int(direction),
        "output_index": _unravel(j, out_shape),
        "x": x[i].reshape(shape).tolist(),
        "x_step": xs[i, r].reshape(shape).tolist(),
        "f_x": float(fx[i, j]),
        "f_x_step": float(fs[i, r, j]),
    }
    return CheckResult("monotonicity", worst <= tol, worst, tol, n * (len(coords) + 1), where)


def hessian_check(
    f: Callable, sampler: Callable, n: int = 32, *, tol: float = 1e-6, mask=None, seed: int = 0
) -> CheckResult:
    """Worst negative curvature of any output component w.r.t. the masked inputs, via torch.func (jacrev²).

    For each sampled point and output component the Hessian H w.r.t. the flattened masked inputs is
    symmetrised and its eigenvalues taken; the violation is −λ_min(H) / max(1, ‖H‖₂): absolute for Hessians
    of spectral norm ≤ 1, relative to that norm above (so roundoff on large curvatures does not fail a convex
    model). Points are batched with vmap where ``f`` allows it, else with batched autograd (outputs × masked
    inputs double-backward passes, seconds for a small torch.nn.LSTM window). This check is for
    smooth activations (softplus, tanh, ...): ReLU networks have zero curvature almost everywhere and none
    defined at kinks, so they pass it vacuously; use ``jensen_check`` for them.
    """
    n, tol, gen = _check_n(n), _check_tol(tol), _generator(seed)
    dtype = _eval_dtype(f)
    x = _draw(sampler, n, gen)
    shape = tuple(x.shape[1:])
    m = _mask(mask, shape).to(x.device).reshape(-1)
    x = _round(x, dtype).reshape(n, -1).to(dtype)
    idx = m.nonzero().reshape(-1)
    with torch.no_grad():
        out_shape = tuple(_call(f, x[:1].reshape(1, *shape), keep_shape=True).shape[1:])
    hess = _hessians(f, x, idx, shape)  # (n, outputs, k, k)
    hess = hess.detach().to(torch.float64)
    if not torch.isfinite(hess).all():
        bad = int((~torch.isfinite(hess)).reshape(n, -1).any(1).nonzero()[0])
        raise InvalidValueError(f"the Hessian of f is not finite at input {_short(x[bad])}")
    eig, vec = torch.linalg.eigh(0.5 * (hess + hess.transpose(-1, -2)))
    scale = eig.abs().amax(-1).clamp_min(1.0)
    score = -eig[..., 0] / scale
    i, j = divmod(int(score.argmax()), score.shape[1])
    worst = float(score[i, j])
    where = {
        "sample": i,
        "output_index": _unravel(j, out_shape),
        "x": x[i].to(torch.float64).reshape(shape).tolist(),
        "min_eigenvalue": float(eig[i, j, 0]),
        "scale": float(scale[i, j]),
        "eigenvector": vec[i, j, :, 0].tolist(),
        "coordinates": [_unravel(int(c), shape) for c in idx],
    }
    return CheckResult("hessian", worst <= tol, worst, tol, n, where)


def lipschitz_estimate(
    f: Callable, sampler: Callable, n: int = 256, *, seed: int = 0, ascent_steps: int = 20
) -> CheckResult:
    """Empirical LOWER estimate of the Lipschitz constant (whole input window in, whole output out, 2-norms).

    The maximum of the secant ratios ‖f(a)−f(b)‖₂/‖a−b‖₂ over n random pairs and of the Jacobian spectral
    norms ‖∂f/∂x‖₂ (flattened, torch.func.jacrev + vmap) at the n points a, the best few refined by
    ``ascent_steps`` steps of normalised gradient ascent on that norm (step 5% of the median pair distance,
    halved on failure). Every value found is attained by f, so the true constant is never below the estimate:
    a certified upper bound below it is wrong. ``passed`` is always True and ``tol`` is 0 (unused).
    """
    n, gen = _check_n(n), _generator(seed)
    ascent_steps = _check_n(ascent_steps, "ascent_steps", minimum=0)
    dtype = _eval_dtype(f)
    a = _draw(sampler, n, gen)
    shape = tuple(a.shape[1:])
    a, b = _round(a, dtype), _round(_draw(sampler, n, gen, shape), dtype)
    y, _ = _evaluate(f, torch.cat([a, b]), dtype)
    fa, fb = y.split(n)
    dx = (a - b).reshape(n, -1).norm(dim=1)
    ratio = torch.where(dx > 0, (fa - fb).norm(dim=1) / dx.clamp_min(torch.finfo(torch.float64).tiny), 0.0)
    s = int(ratio.argmax())
    secant = float(ratio[s])

    pts = a.reshape(n, -1).to(dtype)
    norms = _jac_norms(f, pts, shape)
    top = norms.topk(min(_ASCENT_STARTS, n)).indices
    z, hz = pts[top].clone(), norms[top].clone()
    moved = dx[dx > 0]
    eta0 = 0.05 * float(moved.median()) if len(moved) else 1e-2 * (1.0 + float(a.abs().max()))
    eta = torch.full((len(top),), eta0, dtype=torch.float64, device=z.device)
    for _ in range(ascent_steps):
        gz = _jac_norm_grads(f, z, shape).to(torch.float64)
        gn = gz.norm(dim=1)
        ok = torch.isfinite(gn) & (gn > 0)
        if not ok.any():
            break
        cand = (z + (eta / torch.where(ok, gn, 1.0))[:, None] * torch.where(ok[:, None], gz, 0.0)).to(dtype)
        hc = _jac_norms(f, cand, shape, check=False)
        better = ok & torch.isfinite(hc) & (hc > hz)
        z = torch.where(better[:, None], cand, z)
        hz = torch.where(better, hc, hz)
        eta = torch.where(better, eta * 1.2, eta * 0.5)
    k = int(hz.argmax())
    jac_best = float(hz[k])
    where = {"secant": secant, "jacobian_sampled": float(norms.max()), "jacobian_ascent": jac_best}
    if secant >= jac_best:
        where.update(kind="secant", a=a[s].tolist(), b=b[s].tolist())
    else:
        where.update(kind="jacobian", x=z[k].to(torch.float64).reshape(shape).tolist())
    return CheckResult("lipschitz_estimate", True, max(secant, jac_best), 0.0, 2 * n, where)


# --------------------------------------------------------------------------------------------- helpers


def _check_n(n, name: str = "n", minimum: int = 1) -> int:
    """An integer count >= minimum, else InvalidValueError naming it."""
    try:
        value = operator.index(n)
    except TypeError:
        value = None
    if value is None or isinstance(n, bool) or value < minimum:
        raise InvalidValueError(f"{name} must be an integer >= {minimum}, got {n!r}")
    return value


def _check_tol(tol) -> float:
    """A finite non-negative tolerance."""
    value = float(tol)
    if not math.isfinite(value) or value < 0:
        raise InvalidValueError(f"tol must be finite and >= 0, got {tol!r}")
    return value


def _generator(seed) -> torch.Generator:
    """A CPU generator seeded with `seed` (all random draws of a check come from it)."""
    gen = torch.Generator()
    gen.manual_seed(_check_n(seed, "seed", minimum=0))
    return gen


def _takes_generator(sampler: Callable) -> bool:
    """True when `sampler` accepts a second positional argument (the generator)."""
    try:
        params = inspect.signature(sampler).parameters.values()
    except (TypeError, ValueError):
        return True
    kinds = [p.kind for p in params]
    if inspect.Parameter.VAR_POSITIONAL in kinds:
        return True
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(k in positional for k in kinds) >= 2


def _draw(sampler: Callable, n: int, gen: torch.Generator, shape: tuple | None = None) -> torch.Tensor:
    """n finite float64 points from the sampler, checked against the expected point shape."""
    if _takes_generator(sampler):
        pts = sampler(n, gen)
    else:
        sub_seed = int(torch.randint(0, 2**62, (1,), generator=gen))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sub_seed)
            pts = sampler(n)
    if not isinstance(pts, torch.Tensor):
        try:
            pts = torch.as_tensor(pts)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ShapeError(f"sampler must return a tensor (n, ...), got {type(pts).__name__}") from exc
    if pts.ndim < 1 or pts.shape[0] != n:
        raise ShapeError(f"sampler({n}) returned shape {tuple(pts.shape)}; expected ({n}, ...)")
    if shape is not None and tuple(pts.shape[1:]) != shape:
        raise ShapeError(f"sampler returned points of shape {tuple(pts.shape[1:])}, earlier {shape}")
    pts = pts.detach().to(torch.float64)
    if not torch.isfinite(pts).all():
        bad = int((~torch.isfinite(pts)).reshape(n, -1).any(1).nonzero()[0])
        raise InvalidValueError(f"sampler returned a non-finite point: {_short(pts[bad])}")
    return pts


def _eval_dtype(f: Callable) -> torch.dtype:
    """float64, or the floating dtype of a module's parameters (with a warning) so that it runs."""
    if isinstance(f, torch.nn.Module):
        for t in itertools.chain(f.parameters(), f.buffers()):
            if t.is_floating_point():
                if t.dtype != torch.float64:
                    warnings.warn(
                        f"model parameters are {t.dtype}: inputs are cast to it and the check is only as "
                        "precise; pass model.double() for tolerances near 1e-6",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                return t.dtype
    return torch.float64


def _round(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The float64 value of x as it will be evaluated in `dtype`."""
    return x.to(dtype).to(torch.float64)


def _mask(mask, shape: tuple) -> torch.Tensor:
    """Boolean mask of the input shape (all True when None), at least one coordinate selected."""
    if mask is None:
        return torch.ones(shape, dtype=torch.bool)
    m = torch.as_tensor(mask)
    if m.dtype != torch.bool:
        raise InvalidValueError(f"mask must be boolean, got dtype {m.dtype}")
    if tuple(m.shape) != shape:
        raise ShapeError(f"mask has shape {tuple(m.shape)}; expected the input shape {shape} (no batch)")
    if not m.any():
        raise InvalidValueError("mask selects no input coordinate (all False)")
    return m.cpu()


def _call(f: Callable, x: torch.Tensor, keep_shape: bool = False) -> torch.Tensor:
    """f(x) checked to be a (B, ...) tensor; flattened to (B, outputs) unless keep_shape."""
    y = f(x)
    if not isinstance(y, torch.Tensor):
        raise ShapeError(
            f"f must return a tensor (batch, ...), got {type(y).__name__}; wrap models that return tuples, "
            "e.g. lambda x: lstm(x)[0]"
        )
    if y.ndim < 1 or y.shape[0] != x.shape[0]:
        batch = x.shape[0]
        raise ShapeError(f"f returned shape {tuple(y.shape)} for a batch of {batch}; expected ({batch}, ...)")
    return y if keep_shape else y.reshape(x.shape[0], -1)


def _evaluate(f: Callable, x: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, tuple]:
    """f on float64 points x (cast to `dtype`) in chunks without grad: (B, outputs) float64 and out shape."""
    outs, out_shape = [], ()
    with torch.no_grad():
        for chunk in x.split(_CHUNK):
            y = _call(f, chunk.to(dtype), keep_shape=True)
            out_shape = tuple(y.shape[1:])
            outs.append(y.reshape(len(chunk), -1).to(torch.float64))
    y = torch.cat(outs)
    if not torch.isfinite(y).all():
        bad = int((~torch.isfinite(y)).any(1).nonzero()[0])
        raise InvalidValueError(f"f returned a non-finite value {_short(y[bad])} at input {_short(x[bad])}")
    return y, out_shape


def _per_point(f: Callable, shape: tuple) -> Callable:
    """f on one flat point: (d,) -> (outputs,), for torch.func transforms."""
    return lambda v: _call(f, v.reshape(1, *shape))[0]


def _jacobians(f: Callable, x: torch.Tensor, shape: tuple, create_graph: bool = False) -> torch.Tensor:
    """Jacobians (n, outputs, d) at flat points x (n, d): vmap(jacrev), else one batched backward per output.

    The fallback (for f that vmap cannot batch, e.g. torch.nn.LSTM) differentiates the batch sum of each
    output, which equals the per-point gradients because f treats batch rows independently.
    """
    if not create_graph:
        try:
            return vmap(jacrev(_per_point(f, shape)))(x)
        except (RuntimeError, NotImplementedError):
            pass
    with torch.enable_grad():
        xr = x if create_graph else x.detach().requires_grad_(True)
        y = _call(f, xr.reshape(len(x), *shape))
        rows = [_grad(y[:, j].sum(), xr, create_graph) for j in range(y.shape[1])]
    return torch.stack(rows, 1)


def _jac_norms(f: Callable, x: torch.Tensor, shape: tuple, check: bool = True) -> torch.Tensor:
    """Spectral norms (n,) float64 of the flattened Jacobians at flat points x."""
    norms = torch.linalg.matrix_norm(_jacobians(f, x, shape), ord=2).detach().to(torch.float64)
    if check and not torch.isfinite(norms).all():
        bad = int((~torch.isfinite(norms)).nonzero()[0])
        raise InvalidValueError(f"the Jacobian of f is not finite at input {_short(x[bad])}")
    return norms


def _jac_norm_grads(f: Callable, x: torch.Tensor, shape: tuple) -> torch.Tensor:
    """Gradients (n, d) of the Jacobian spectral norm w.r.t. the point: vmap(grad), else batched autograd."""
    g = _per_point(f, shape)
    try:
        return vmap(grad(lambda v: torch.linalg.matrix_norm(jacrev(g)(v), ord=2)))(x)
    except (RuntimeError, NotImplementedError):
        pass
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        norms = torch.linalg.matrix_norm(_jacobians(f, xr, shape, create_graph=True), ord=2)
        return _grad(norms.sum(), xr, False)


def _hessians(f: Callable, x: torch.Tensor, idx: torch.Tensor, shape: tuple) -> torch.Tensor:
    """Hessians (n, outputs, k, k) w.r.t. the coordinates idx of flat points x: vmap(jacrev²), else autograd.

    The masked entries are replaced by the variables through an exact linear embedding; the fallback
    differentiates batch sums twice (valid as f treats batch rows independently).
    """
    embed = torch.zeros(x.shape[1], len(idx), dtype=x.dtype, device=x.device)
    embed[idx, torch.arange(len(idx))] = 1
    keep = torch.ones(x.shape[1], dtype=x.dtype, device=x.device)
    keep[idx] = 0

    def g(z: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        return _call(f, (base * keep + embed @ z).reshape(1, *shape))[0]

    try:
        return vmap(jacrev(jacrev(g)))(x[:, idx], x)  # reverse-over-reverse: no forward-AD set-up cost
    except (RuntimeError, NotImplementedError):
        pass
    with torch.enable_grad():
        z = x[:, idx].detach().requires_grad_(True)
        y = _call(f, (x * keep + z @ embed.T).reshape(len(x), *shape))
        out = torch.zeros(len(x), y.shape[1], len(idx), len(idx), dtype=x.dtype, device=x.device)
        for j in range(y.shape[1]):
            gj = _grad(y[:, j].sum(), z, True)
            for col in range(len(idx)):
                out[:, j, col] = _grad(gj[:, col].sum(), z, False)
    return out


def _grad(out: torch.Tensor, inp: torch.Tensor, create_graph: bool) -> torch.Tensor:
    """d out / d inp, zeros where out does not depend on inp."""
    if not out.requires_grad:
        return torch.zeros_like(inp)
    (g,) = torch.autograd.grad(out, inp, retain_graph=True, create_graph=create_graph, allow_unused=True)
    return torch.zeros_like(inp) if g is None else g


def _unravel(flat: int, shape: tuple) -> list[int]:
    """Multi-index of a flat (row-major) index."""
    idx = []
    for size in reversed(shape):
        flat, r = divmod(flat, size)
        idx.append(int(r))
    return idx[::-1]


def _short(t: torch.Tensor, k: int = 6) -> str:
    """A tensor's values for an error message, the first k entries."""
    vals = t.reshape(-1).tolist()
    return str(vals[:k])[:-1] + (", ...]" if len(vals) > k else "]")
