"""Log-domain Sinkhorn with ε-scaling (stable for small ε), entropic OT values and the debiased divergence.

Costs are given as matrices, so the caller fixes the convention (the OT module uses c(x, y) = ½‖x − y‖²).
Entropic OT here is OT_ε(a, b) = min_P ⟨P, C⟩ + ε·KL(P ‖ a⊗b) over couplings P of a and b. Values carry
envelope-theorem gradients: d OT_ε / d C = P at the optimum, so nothing is back-propagated through the
iterations and memory stays O(n·m).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from icctrl.errors import InvalidValueError, ShapeError


@dataclass
class SinkhornResult:
    """Converged dual potentials f, g (cost units), the plan, the entropic value and the marginal error."""

    f: torch.Tensor
    g: torch.Tensor
    plan: torch.Tensor
    value: torch.Tensor
    cost: torch.Tensor
    marginal_error: float
    iterations: int


def sq_half_cost(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """C_ij = ½‖x_i − y_j‖², differentiable in both point clouds."""
    xx = (x * x).sum(1, keepdim=True)
    yy = (y * y).sum(1, keepdim=True)
    return (0.5 * (xx + yy.T) - x @ y.T).clamp_min(0.0)


def _softmin(eps: float, C: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """−ε·log Σ_j exp(h_j − C_ij/ε): the smoothed c-transform in the log domain."""
    return -eps * torch.logsumexp(h[None, :] - C / eps, dim=1)


def _uniform_log(n: int, like: torch.Tensor) -> torch.Tensor:
    return torch.full((n,), -torch.log(torch.tensor(float(n))).item(), dtype=like.dtype, device=like.device)


def _eps_schedule(C: torch.Tensor, eps: float, scaling: float) -> list[float]:
    start = max(float(C.max()), eps)
    out = []
    e = start
    while e > eps:
        out.append(e)
        e *= scaling
    out.append(eps)
    return out


def sinkhorn(
    C: torch.Tensor,
    eps: float,
    *,
    scaling: float = 0.8,
    max_iter: int = 2000,
    tol: float = 1e-5,
) -> SinkhornResult:
    """Solve OT_ε between uniform weights on the rows and columns of the cost matrix C (absolute ε).

    ε-scaling: start at ε₀ = max C, shrink by `scaling` with symmetric (averaged) updates, then run plain
    alternating updates at the target ε until the row-marginal error (ℓ1) is below `tol`.
    """
    if C.ndim != 2 or C.shape[0] == 0 or C.shape[1] == 0:
        raise ShapeError(f"cost matrix must be (n, m) with n, m > 0, got {tuple(C.shape)}")
    if not (eps > 0 and eps < float("inf")):
        raise InvalidValueError(f"epsilon must be a positive finite number, got {eps}")
    if not 0 < scaling < 1:
        raise InvalidValueError(f"scaling must lie in (0, 1), got {scaling}")
    Cd = C.detach()
    la, lb = _uniform_log(Cd.shape[0], Cd), _uniform_log(Cd.shape[1], Cd)
    with torch.no_grad():
        sched = _eps_schedule(Cd, eps, scaling)
        e = sched[0]
        f = _softmin(e, Cd, lb)
        g = _softmin(e, Cd.T, la)
        for e in sched[1:]:
            ft = _softmin(e, Cd, lb + g / e)
            gt = _softmin(e, Cd.T, la + f / e)
            f, g = 0.5 * (f + ft), 0.5 * (g + gt)
        err, it = float("inf"), 0
        for it in range(1, max_iter + 1):  # noqa: B007 - `it` is reported
            f = _softmin(eps, Cd, lb + g / eps)
            g = _softmin(eps, Cd.T, la + f / eps)
            if it % 5 == 0 or it == max_iter:
                logp = (f[:, None] + g[None, :] - Cd) / eps + la[:, None] + lb[None, :]
                err = float((logp.exp().sum(1) - la.exp()).abs().sum())
                if err < tol:
                    break
        logp = (f[:, None] + g[None, :] - Cd) / eps + la[:, None] + lb[None, :]
        plan = logp.exp()
        dual = (la.exp() * f).sum() + (lb.exp() * g).sum() - eps * (plan.sum() - 1.0)
    value = dual + (plan * (C - Cd)).sum()  # envelope gradient: dvalue/dC = plan
    cost = (plan * Cd).sum() + (plan * (C - Cd)).sum()  # ⟨P, C⟩; gradient wrt C taken at fixed P
    return SinkhornResult(f, g, plan, value, cost, err, it)


def self_ot(C: torch.Tensor, eps: float, *, scaling: float = 0.8, iters: int = 20) -> torch.Tensor:
    """OT_ε(a, a) for a symmetric cost matrix via symmetric updates f ← ½(f + T_ε f); envelope gradient."""
    Cd = C.detach()
    la = _uniform_log(Cd.shape[0], Cd)
    with torch.no_grad():
        sched = _eps_schedule(Cd, eps, scaling) + [eps] * iters
        f = _softmin(sched[0], Cd, la)
        for e in sched[1:]:
            f = 0.5 * (f + _softmin(e, Cd, la + f / e))
        logp = (f[:, None] + f[None, :] - Cd) / eps + la[:, None] + la[None, :]
        plan = logp.exp()
        dual = 2 * (la.exp() * f).sum() - eps * (plan.sum() - 1.0)
    return dual + (plan * (C - Cd)).sum()


def sinkhorn_divergence(x: torch.Tensor, y: torch.Tensor, eps: float, *, scaling: float = 0.8) -> torch.Tensor:
    """Debiased S_ε(x, y) = OT_ε(x, y) − ½OT_ε(x, x) − ½OT_ε(y, y) with c = ½‖·‖² (absolute ε)."""
    xy = sinkhorn(sq_half_cost(x, y), eps, scaling=scaling, max_iter=200, tol=1e-3).value
    xx = self_ot(sq_half_cost(x, x), eps, scaling=scaling)
    yy = self_ot(sq_half_cost(y, y), eps, scaling=scaling)
    return xy - 0.5 * xx - 0.5 * yy
