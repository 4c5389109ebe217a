"""Monge gap (Uscidda & Cuturi 2023): a metric of how far a map is from W2-optimal, and a map fitted with it.

Cost convention everywhere: c(x, y) = ½‖x − y‖² (the transport cost term and the Sinkhorn terms use the
same matrix). ε is relative: ε_abs = epsilon × mean of the cost matrix of the problem at hand.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from icctrl.errors import InvalidValueError, ShapeError, UnknownNameError
from icctrl.ot._arrays import as_float64, from_points, to_points
from icctrl.ot._base import (
    DivergenceError,
    NeuralOTBase,
    auto_budget,
    check_positive,
    check_positive_int,
    settled,
    split_holdout,
)
from icctrl.ot._gaussian import linear_map
from icctrl.ot._sinkhorn import sinkhorn, sinkhorn_divergence, sq_half_cost


def monge_gap(T, x, epsilon: float = 0.01, *, max_iter: int = 2000, tol: float = 1e-4) -> float:
    """M(T) = mean c(xᵢ, T(xᵢ)) − W_{c,ε}(μ, T#μ) for a callable map T on numpy arrays, c = ½‖·‖².

    W_{c,ε} is the transport cost ⟨P_ε, C⟩ of the entropic plan from a log-domain Sinkhorn with ε-scaling,
    with ε = `epsilon` × mean C (relative). ≥ 0 up to the ε blur (which biases it slightly negative);
    ≈ 0 for W2-optimal maps (gradients of convex functions), > 0 for others.
    """
    eps_rel = check_positive("epsilon", epsilon)
    xx = as_float64(x, "x")
    if not callable(T):
        raise InvalidValueError(f"T must be callable, got {type(T).__name__}")
    tx = as_float64(T(np.asarray(x)), "T(x)")
    if tx.shape != xx.shape:
        raise ShapeError(f"T(x) has shape {tx.shape}, expected the shape of x {xx.shape}")
    xt, yt = torch.from_numpy(xx), torch.from_numpy(tx)
    C = sq_half_cost(xt, yt)
    scale = float(C.mean())
    direct = float(0.5 * ((xt - yt) ** 2).sum(1).mean())
    if scale == 0:
        return 0.0
    res = sinkhorn(C, eps_rel * scale, max_iter=max_iter, tol=tol)
    return direct - float(res.cost)


class _ResidualMLP(nn.Module):
    """T(u) = u·A + c + MLP(u): an unconstrained map that starts at the affine map (A, c) (MLP output zero)."""

    def __init__(self, dim: int, hidden: int, layers: int):
        super().__init__()
        mods: list[nn.Module] = []
        width = dim
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        last = nn.Linear(width, dim)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*mods, last)
        self.affine = nn.Linear(dim, dim)
        with torch.no_grad():
            self.affine.weight.copy_(torch.eye(dim))
            self.affine.bias.zero_()

    def start_at(self, a: np.ndarray, c: np.ndarray) -> None:
        """Set the affine part to u ↦ u·a + c."""
        with torch.no_grad():
            self.affine.weight.copy_(torch.as_tensor(a.T, dtype=self.affine.weight.dtype))
            self.affine.bias.copy_(torch.as_tensor(c, dtype=self.affine.bias.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.affine(x) + self.net(x)


class MongeGapMap(NeuralOTBase):
    """Map P→Q as an unconstrained MLP trained on S_ε(T#μ, ν) + λ·M(T) (Uscidda & Cuturi 2023).

    S_ε is the debiased Sinkhorn divergence OT_ε(T#μ, ν) − ½OT_ε(T#μ, T#μ) − ½OT_ε(ν, ν) (entropic OT with
    KL regularisation, one absolute ε = `epsilon` × mean cross cost for all three terms); the Monge gap term is
    M(T) = mean ½‖x − T(x)‖² − OT_ε(μ, T#μ) with ε = `gap_epsilon` × mean of its cost matrix. Gradients use the
    envelope theorem (no back-propagation through Sinkhorn iterations). Both terms use c = ½‖x − y‖².
    Defaults: T(x) = x·A + c + MLP(x) starts at the Gaussian (Bures) map between the samples (`init="linear"`;
    "identity" starts at T = id); `iters=None` is `auto_budget(dim)`; cosine learning-rate decay; early stop
    once S_ε between T(held-out x) and held-out y has settled within `tol` over `patience` checks. A
    non-finite loss or a held-out divergence 10× above its starting value raises DivergenceError.
    """

    def __init__(self, dim: int, *, hidden: int | None = None, layers: int = 3, lam: float = 1.0,
                 epsilon: float = 0.05, gap_epsilon: float | None = None, init: str = "linear", lr: float = 1e-3,
                 batch_size: int = 256, lr_decay: bool = True, holdout: float = 0.1, check_every: int = 50,
                 patience: int = 6, tol: float = 2e-2, device: str | torch.device = "auto", seed: int = 0,
                 verbose: bool = True, standardize: bool = True):
        super().__init__(dim, batch_size=batch_size, lr=lr, device=device, seed=seed, verbose=verbose,
                         standardize=standardize)
        self.hidden = max(128, 2 * self.dim) if hidden is None else check_positive_int("hidden", hidden)
        self.layers = check_positive_int("layers", layers)
        self.lam = float(lam)
        if not self.lam >= 0:
            raise InvalidValueError(f"lam must be >= 0, got {lam}")
        self.epsilon = check_positive("epsilon", epsilon)
        self.gap_epsilon = self.epsilon if gap_epsilon is None else check_positive("gap_epsilon", gap_epsilon)
        if init not in ("linear", "identity"):
            raise UnknownNameError(f"unknown init {init!r}; choose 'linear' or 'identity'")
        self.init = init
        self.lr_decay = bool(lr_decay)
        if not 0 <= holdout < 0.5:
            raise InvalidValueError(f"holdout must lie in [0, 0.5), got {holdout}")
        self.holdout = float(holdout)
        self.check_every = check_positive_int("check_every", check_every)
        self.patience = check_positive_int("patience", patience)
        self.tol = check_positive("tol", tol)
        self.net: _ResidualMLP | None = None
        self.stop_reason_: str | None = None

    def fit(self, x, y, iters: int | None = None) -> MongeGapMap:
        """Fit on samples x ~ P and y ~ Q (numpy or torch, shape (n, dim)); `iters` steps at most (None: auto).
        Returns self; raises DivergenceError when training blows up."""
        iters = auto_budget(self.dim) if iters is None else check_positive_int("iters", iters)
        ux, uy = self._intake(x, y)
        ux, x_hold = split_holdout(ux, self.holdout, self._gen)
        uy, y_hold = split_holdout(uy, self.holdout, self._gen)
        if not x_hold.shape[0] or not y_hold.shape[0]:
            x_hold, y_hold = ux[:1024], uy[:1024]
        x_hold, y_hold = x_hold[:1024], y_hold[:1024]
        torch.manual_seed(self.seed)
        self.net = _ResidualMLP(self.dim, self.hidden, self.layers).to(self.device)
        if self.init == "linear":
            self.net.start_at(*linear_map(ux.cpu().numpy(), uy.cpu().numpy()))
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, iters, eta_min=0.05 * self.lr)
                 if self.lr_decay else None)
        self.history_, self.stop_reason_ = {}, None
        s2 = self.scaler_.scale**2
        start = self._heldout(x_hold, y_hold)
        bar = self._progress(iters, "MongeGapMap")
        for it in bar:
            xb, yb = self._batch(ux), self._batch(uy)
            tx = self.net(xb)
            eps = self.epsilon * float(sq_half_cost(tx.detach(), yb).mean())
            fit = sinkhorn_divergence(tx, yb, eps)
            loss = fit
            gap = torch.zeros(())
            if self.lam > 0:
                cg = sq_half_cost(xb, tx)
                eps_g = self.gap_epsilon * float(cg.detach().mean())
                ot_xt = sinkhorn(cg, max(eps_g, 1e-12), max_iter=200, tol=1e-3).value
                gap = 0.5 * ((xb - tx) ** 2).sum(1).mean() - ot_xt
                loss = fit + self.lam * gap
            if not torch.isfinite(loss):
                self._diverged(it, f"non-finite loss {float(loss)}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            self._log(loss=float(loss.detach()) * s2, divergence=float(fit.detach()) * s2,
                      monge_gap=float(gap.detach()) * s2)
            if (it + 1) % self.check_every == 0 or it + 1 == iters:
                held = self._heldout(x_hold, y_hold)
                if not math.isfinite(held) or held > 10 * max(start, 1e-6):
                    self._diverged(it, f"held-out Sinkhorn divergence {held:.4g} (start {start:.4g})")
                self._log(heldout_divergence=held * s2, heldout_iter=it + 1)
                if settled(self.history_["heldout_divergence"], self.patience, self.tol, 1e-3 * start * s2):
                    self.stop_reason_ = f"held-out divergence settled after {it + 1} of {iters} iterations"
                    break
                if self.verbose:
                    bar.set_postfix(S=f"{held * s2:.3g}", M=f"{self.history_['monge_gap'][-1]:.3g}")
        self.stop_reason_ = self.stop_reason_ or f"budget of {iters} iterations used"
        self.iters_ = len(self.history_["loss"])
        return self

    def _heldout(self, x_hold: torch.Tensor, y_hold: torch.Tensor) -> float:
        with torch.no_grad():
            tx = self.net(x_hold)
            eps = self.epsilon * float(sq_half_cost(tx, y_hold).mean())
            return float(sinkhorn_divergence(tx, y_hold, eps))

    def _diverged(self, it: int, reason: str) -> None:
        self.stop_reason_ = f"diverged at iteration {it}: {reason}"
        self.net, self.scaler_ = None, None  # never hand out the map of a diverged fit
        raise DivergenceError(f"MongeGapMap training diverged at iteration {it}: {reason}; no map is returned "
                              "(try a smaller lr)")

    def transport(self, x):
        """T̂(x): the fitted map P→Q (same array family, shape and dtype as x)."""
        if self.net is None:
            raise InvalidValueError("MongeGapMap is not fitted; call fit(x, y) first")
        t, kind = to_points(x, "x", dim=self.dim, device=self.device)
        with torch.no_grad():
            out = torch.cat([self.net(self.scaler_.to_u(c, "x")) for c in torch.split(t, 8192)])
        return from_points(self.scaler_.from_u(out, "y"), kind)
