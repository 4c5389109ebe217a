"""The Net-Trim layer program, min ‖W‖₁ s.t. ‖(XW − Y)_Ω‖_F ≤ ε, (XW)_Ωᶜ ≤ V, solved by ADMM in torch.

Splitting Z = XW (the layer's response) and T = W (the sparse copy): the W-step is one linear solve with the
Cholesky factor of cXᵀX + I computed once per layer, the Z-step projects onto the Frobenius ball around Y on Ω
and clips at V on Ωᶜ, the T-step soft-thresholds, then the scaled duals move. The two splittings carry the
penalties cρ and ρ, so the factor does not depend on ρ, which is re-balanced from the residuals at no cost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from icctrl.errors import InvalidValueError, ShapeError


@dataclass
class LayerResult:
    """A solved layer: the sparse weights and how the solve went."""

    W: torch.Tensor  # (n_in, n_out), exact zeros off the support
    iterations: int
    converged: bool
    seconds: float
    discrepancy: float  # ‖(XW − Y)_Ω‖_F / ‖Y‖_F with the returned W
    violation: float  # max((XW − V)_Ωᶜ, 0) with the returned W (0 for a linear layer)
    nonzeros: int


def _as_tensor(a, name: str, dtype, device) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a.detach())
    if t.ndim != 2:
        raise ShapeError(f"{name} must be a 2-D array (samples × features), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise InvalidValueError(f"{name} holds NaN or infinite values")
    return t.to(device=device, dtype=dtype)


def _device(device) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def solve_layer(X, Y, *, epsilon: float, relu: bool = True, V=None, rho: float | None = None,
                tol: float = 1e-5, max_iter: int = 5000, relax: float = 1.6, penalty_ratio: float | None = None,
                free_rows: int = 0, device=None, dtype=torch.float64) -> LayerResult:
    """Net-Trim's per-layer program by ADMM; see `net_trim_layer` for the meaning of the arguments.

    `V` (P, n_out) bounds XW on the inactive set Ωᶜ = {Y ≤ 0} (default 0, the parallel scheme); `tol` is the
    relative primal/dual residual at which ADMM stops; `relax` the over-relaxation factor; `penalty_ratio` the
    penalty of Z = XW over that of T = W (default n_in‖X‖₂²/‖X‖_F², one over XᵀX's mean scaled eigenvalue);
    the last `free_rows` rows of W (a bias row against a column of ones in X) are left out of the l1 norm;
    `device` "auto" picks CUDA when present.
    """
    if not np.isfinite(epsilon) or epsilon < 0:
        raise InvalidValueError(f"epsilon must be a finite number >= 0, got {epsilon!r}")
    if rho is not None and not rho > 0:
        raise InvalidValueError(f"rho must be > 0, got {rho!r}")
    if penalty_ratio is not None and not penalty_ratio > 0:
        raise InvalidValueError(f"penalty_ratio must be > 0, got {penalty_ratio!r}")
    if not 0 <= free_rows <= np.shape(X)[1]:
        raise InvalidValueError(f"free_rows must be in [0, n_in={np.shape(X)[1]}], got {free_rows!r}")
    if not 0 < relax < 2:
        raise InvalidValueError(f"relax must be in (0, 2), got {relax!r}")
    if not tol > 0 or max_iter < 1:
        raise InvalidValueError(f"tol must be > 0 and max_iter >= 1, got tol={tol!r}, max_iter={max_iter!r}")
    dev = _device(device)
    X, Y = _as_tensor(X, "X", dtype, dev), _as_tensor(Y, "Y", dtype, dev)
    if X.shape[0] != Y.shape[0]:
        raise ShapeError(f"X has {X.shape[0]} samples but Y has {Y.shape[0]}")
    if relu and bool((Y < 0).any()):
        raise InvalidValueError(f"relu=True needs Y >= 0 (a ReLU layer's output); min(Y) = {float(Y.min()):.3g}")
    t0 = time.perf_counter()
    active = Y > 0 if relu else torch.ones_like(Y, dtype=torch.bool)
    if V is None:
        V = torch.zeros_like(Y)
    else:
        V = _as_tensor(V, "V", dtype, dev)
        if V.shape != Y.shape:
            raise ShapeError(f"V must have the shape of Y {tuple(Y.shape)}, got {tuple(V.shape)}")
    radius = float(epsilon) * float(torch.linalg.norm(Y))
    n_in = X.shape[1]
    # Solve in W' = sW with X' = X/s, s = ‖X‖₂: the same minimiser (the l1 norm only scales), XᵀX in [0, 1].
    G = X.T @ X
    x_scale = max(float(torch.linalg.eigvalsh(G)[-1]) ** 0.5, 1e-12)
    X, G = X / x_scale, G / x_scale**2
    c = float(n_in / max(float(torch.trace(G)), 1e-12)) if penalty_ratio is None else float(penalty_ratio)
    eye = torch.eye(n_in, dtype=dtype, device=dev)
    # penalties c·ρ on Z = XW and ρ on T = W: the factor of cXᵀX + I does not depend on ρ, so ρ is re-balanced
    # from the residuals at no cost; c > 1 weighs the constraint up in the many directions where X is small
    # (hidden-layer signals are far from white: c ≈ 150 on a trained 200-unit layer, ≈ 3 for Gaussian X).
    L = torch.linalg.cholesky(c * G + eye)
    W = torch.cholesky_solve(X.T @ Y, torch.linalg.cholesky(G + eye))
    if rho is None:  # the threshold 1/ρ starts at a tenth of the typical least-squares weight
        rho = 10.0 / max(float(W.abs().mean()), 1e-12)
    T, Z = W.clone(), X @ W
    A, B = torch.zeros_like(Z), torch.zeros_like(W)  # scaled duals of Z = XW and T = W
    XtZ, XtA = X.T @ Z, torch.zeros_like(W)  # XᵀZ and XᵀA, kept in Gram space (no extra P·n·m products)
    inactive = ~active
    # P × n_out work in preallocated buffers (fresh 10⁷-entry tensors cost more than the arithmetic on them);
    # min(U, V_cap) clips on Ωᶜ and leaves Ω alone, and Y is 0 on Ωᶜ, so (U − Y)·1_Ω is U − Y on Ω only
    active_f = active.to(dtype)
    V_cap = torch.where(active, torch.full_like(V, float("inf")), V)
    XW, U, D = torch.empty_like(Z), torch.empty_like(Z), torch.empty_like(Z)
    it, converged = 0, False
    scale = max(float(torch.linalg.norm(Y)), 1e-12)
    for it in range(1, max_iter + 1):
        W = torch.cholesky_solve(c * (XtZ - XtA) + (T - B), L)
        torch.matmul(X, W, out=XW)
        T_old, XtZ_old = T, XtZ
        torch.add(A, XW, alpha=relax, out=U)  # U = XWr + A, XWr = relax·XW + (1 − relax)·Z over-relaxed
        U.add_(Z, alpha=1 - relax)
        Wr = relax * W + (1 - relax) * T_old  # (Boyd et al. §3.4.3)
        # Z-step: projection onto {‖(Z − Y)_Ω‖_F ≤ radius, Z_Ωᶜ ≤ V} (the two parts separate)
        torch.mul(U, active_f, out=D).sub_(Y)
        nrm = float(torch.linalg.norm(D))
        torch.minimum(U, V_cap, out=Z)
        if nrm > radius:
            Z.sub_(D, alpha=1 - radius / nrm)
        T = torch.sign(Wr + B) * torch.clamp((Wr + B).abs() - 1.0 / rho, min=0.0)
        if free_rows:
            T[n_in - free_rows:] = (Wr + B)[n_in - free_rows:]
        torch.sub(U, Z, out=A)  # A + XWr − Z
        B = B + Wr - T
        XtZ = X.T @ Z
        XtA = XtA + relax * (G @ W) + (1 - relax) * XtZ_old - XtZ
        if it % 10 == 0 or it == max_iter:
            r = float(torch.sqrt(c * torch.linalg.norm(XW - Z) ** 2 + torch.linalg.norm(W - T) ** 2))
            d = rho * float(torch.linalg.norm(c * (XtZ - XtZ_old) + (T - T_old)))
            w_scale = max(float(torch.linalg.norm(T)), 1e-12)
            dual_scale = rho * float(torch.sqrt(c**2 * torch.linalg.norm(XtA) ** 2 + torch.linalg.norm(B) ** 2))
            if r <= tol * max(scale, w_scale) and d <= tol * max(dual_scale, 1e-12):
                converged = True
                break
            if r > 3 * d or d > 3 * r:  # residual balancing (Boyd et al. §3.4.1); the factor is unchanged
                f = 2.0 if r > d else 0.5
                rho *= f
                A.div_(f)
                B, XtA = B / f, XtA / f
    XT = X @ T
    T = T / x_scale
    disc = float(torch.linalg.norm((XT - Y)[active])) / scale
    viol = float(torch.clamp(XT - V, min=0.0)[inactive].max()) if bool(inactive.any()) else 0.0
    return LayerResult(T, it, converged, time.perf_counter() - t0, disc, viol, int((T[:n_in - free_rows] != 0).sum()))


def net_trim_layer(X, Y, *, epsilon: float, relu: bool = True, V=None, **options) -> torch.Tensor:
    """Sparse W (n_in, n_out) with relu(X @ W) ≈ Y (or X @ W ≈ Y when `relu=False`).

    X (P, n_in) are the layer's input samples, Y (P, n_out) the responses to keep; `epsilon` is relative:
    ‖(X @ W − Y)_Ω‖_F ≤ epsilon·‖Y‖_F on the active set Ω = {Y > 0}, and X @ W ≤ V (default 0) elsewhere.
    Further `options` go to `solve_layer` (rho, tol, max_iter, penalty_ratio, device, dtype).
    """
    return solve_layer(X, Y, epsilon=epsilon, relu=relu, V=V, **options).W
