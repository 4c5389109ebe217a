"""ICNN W2 dual (Makkuva et al. 2020): min_f max_g E_P f(X) + E_Q[⟨Y, ∇g(Y)⟩ − f(∇g(Y))] on convex potentials."""

from __future__ import annotations

import math

import numpy as np
import torch

from icctrl.convexity import certify
from icctrl.errors import InvalidValueError, UnknownNameError
from icctrl.nn import ICNN
from icctrl.ot._arrays import from_points, to_points
from icctrl.ot._base import (
    DivergenceError,
    NeuralOTBase,
    auto_budget,
    auto_lr,
    check_positive,
    check_positive_int,
    settled,
    split_holdout,
)
from icctrl.ot._dense_icnn import DenseICNN, benchmark_widths
from icctrl.ot._gaussian import linear_map

POTENTIALS = ("dense", "icnn")
INITS = ("linear", "identity", "none")


def potential_grad(net: torch.nn.Module, x: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """∇net(x) by autograd; `create_graph=True` keeps it differentiable for losses that contain it."""
    with torch.enable_grad():
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(net(x).sum(), x, create_graph=create_graph)
    return g


class W2Dual(NeuralOTBase):
    """W2-optimal map P→Q as the gradient of a convex potential f; ∇g (the conjugate's gradient) maps Q→P.

    Defaults (no settings needed): `potential="dense"` is the W2 benchmark's DenseICNN (quadratic skips, CELU)
    with a full quadratic that `init="linear"` sets to the Gaussian (Bures) map between the samples, so the fit
    starts at the affine baseline; `quadratic="auto"` (strong convexity of f, σ/2‖u‖²) is a quarter of the
    smallest eigenvalue of that linear map (of its inverse for g); `iters=None` in `fit` is a budget that grows
    with d; the W2² estimate on a held-out split (`holdout` of the samples) is recorded every `check_every`
    f steps, and when it has settled within `tol` over `patience` checks the learning rate drops tenfold
    (`lr_decay`); the third plateau stops training early. Divergence (a non-finite loss, a held-out W2²
    estimate below zero, ∇g far off the data) raises `DivergenceError`; no map is kept.
    `lr="auto"` is `auto_lr(dim)`: 1e-2 up to d = 32, 3e-3 above.
    `potential="icnn"` uses `icctrl.nn.ICNN` (`hidden`, `layers`, `activation`); `hidden`/`layers` set equal
    widths for the dense one too (default: the benchmark's max(2d, 64), max(2d, 64), max(d, 32)); `rank` is
    the rank of its quadratic skips. The start map is fitted by `pretrain_iters` steps of ∇f ≈ it (and
    ∇g ≈ its inverse); `init="identity"` starts at the identity, `init="none"` at the random initialisation.
    Inner loop: `inner_iters` ascent steps of g per step of f; `conjugate_steps` > 0 refines ∇g(y), g's guess of
    argmaxₓ ⟨x, y⟩ − f(x), by that many gradient steps (step 1/λ_max of the start map, kept per sample only
    where they raise the objective) before f's step uses it (amortised conjugate plus a solver, as in Amos 2023).
    After fit, `certificates` holds `icctrl.convexity.certify` of both potentials and `history_` the curves.
    """

    def __init__(self, dim: int, *, potential: str = "dense", hidden: int | None = None, layers: int = 3,
                 rank: int = 1, activation: str = "celu", quadratic: float | str = "auto",
                 quadratic_g: float | str | None = None, init: str = "linear", lr: float | str = "auto",
                 batch_size: int = 512, inner_iters: int = 3, conjugate_steps: int = 5, pretrain_iters: int = 300,
                 lr_decay: bool = True, holdout: float = 0.1, check_every: int = 50, patience: int = 6,
                 tol: float = 2e-3, device: str | torch.device = "auto", seed: int = 0, verbose: bool = True,
                 standardize: bool = True):
        super().__init__(dim, batch_size=batch_size, lr=auto_lr(dim) if lr == "auto" else lr, device=device,
                         seed=seed, verbose=verbose, standardize=standardize)
        if potential not in POTENTIALS:
            raise UnknownNameError(f"unknown potential {potential!r}; choose one of {list(POTENTIALS)}")
        if init not in INITS:
            raise UnknownNameError(f"unknown init {init!r}; choose one of {list(INITS)}")
        if init == "linear" and potential != "dense":
            raise InvalidValueError("init='linear' needs potential='dense' (the ICNN has no full quadratic)")
        if potential == "dense" and activation != "celu":
            raise InvalidValueError(f"activation {activation!r} applies to potential='icnn'; the dense potential "
                                    "is CELU (the benchmark's architecture)")
        if potential == "icnn" and rank != 1:
            raise InvalidValueError(f"rank={rank} applies to potential='dense' (the ICNN has no quadratic skips)")
        self.potential, self.init = potential, init
        self.hidden = None if hidden is None else check_positive_int("hidden", hidden)
        self.layers = check_positive_int("layers", layers)
        self.rank = check_positive_int("rank", rank)
        self.activation = activation
        self.quadratic = self._check_q("quadratic", quadratic)
        self.quadratic_g = self.quadratic if quadratic_g is None else self._check_q("quadratic_g", quadratic_g)
        self.inner_iters = check_positive_int("inner_iters", inner_iters)
        if isinstance(conjugate_steps, bool) or not isinstance(conjugate_steps, int) or conjugate_steps < 0:
            raise InvalidValueError(f"conjugate_steps must be a non-negative integer, got {conjugate_steps!r}")
        self.conjugate_steps = conjugate_steps
        self._conj_step = 1.0
        if isinstance(pretrain_iters, bool) or not isinstance(pretrain_iters, int) or pretrain_iters < 0:
            raise InvalidValueError(f"pretrain_iters must be a non-negative integer, got {pretrain_iters!r}")
        self.pretrain_iters = pretrain_iters
        self.lr_decay = bool(lr_decay)
        if not 0 <= holdout < 0.5:
            raise InvalidValueError(f"holdout must lie in [0, 0.5), got {holdout}")
        self.holdout = float(holdout)
        self.check_every = check_positive_int("check_every", check_every)
        self.patience = check_positive_int("patience", patience)
        self.tol = check_positive("tol", tol)
        self.certificates: dict | None = None
        self.stop_reason_: str | None = None
        self._q = (0.0 if self.quadratic == "auto" else self.quadratic,
                   0.0 if self.quadratic_g == "auto" else self.quadratic_g)
        self.f, self.g = self._make_potential(0), self._make_potential(1)  # validates the settings early

    @staticmethod
    def _check_q(name: str, q) -> float | str:
        if q == "auto":
            return "auto"
        try:
            v = float(q)
        except (TypeError, ValueError) as exc:
            raise InvalidValueError(f"{name} must be 'auto' or a number >= 0, got {q!r}") from exc
        if not v >= 0 or math.isinf(v):
            raise InvalidValueError(f"{name} must be 'auto' or a finite number >= 0, got {q!r}")
        return v

    # -- roles: the sparse subclass puts the source on g's side ---------------------------------------------
    #: which measure ("x" = P, "y" = Q) sits on f's side and on g's side of the minimax
    _sides = ("x", "y")

    def _roles(self, ux: torch.Tensor, uy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(samples for f's side, samples for g's side); here f sees P and g sees Q."""
        return (ux, uy) if self._sides == ("x", "y") else (uy, ux)

    def _g_penalty(self, yq: torch.Tensor, gy: torch.Tensor, it: int) -> torch.Tensor | None:
        """Extra term of g's loss (none for the plain dual)."""
        return None

    def _after_outer(self, it: int) -> None:
        """Hook run after each f step."""

    def _after_g_step(self, opt_g: torch.optim.Optimizer) -> None:
        """Hook run after each Adam step of g (a proximal step, in the sparse subclass)."""

    def _done(self, it: int) -> str | None:
        """Hook: a reason to stop after f step `it` (none for the plain dual, which stops on its held-out W2²)."""
        return None

    def _after_pretrain(self, p: torch.Tensor, q: torch.Tensor) -> None:
        """Hook run once the potentials are at their start map (f's side samples p, g's side q)."""

    def _make_potential(self, which: int) -> torch.nn.Module:
        """f (which = 0) or g (which = 1), seeded for reproducibility, with its strong convexity self._q[which]."""
        torch.manual_seed(self.seed + which)
        q = self._q[which]
        if self.potential == "dense":
            if self.hidden is None and self.layers == 3:
                widths = benchmark_widths(self.dim)
            else:
                widths = (self.hidden or max(2 * self.dim, 64),) * self.layers
            return DenseICNN(self.dim, widths, rank=self.rank, quadratic=q)
        return ICNN(n_in=self.dim, n_out=1, hidden=self.hidden or max(64, 2 * self.dim), layers=self.layers,
                    activation=self.activation, quadratic=q)

    # -- training ----------------------------------------------------------------------------------------------
    def fit(self, x, y, iters: int | None = None) -> W2Dual:
        """Fit on samples x ~ P and y ~ Q (numpy or torch, shape (n, dim)); `iters` f steps at most
        (None: `auto_budget(dim)`). Returns self; raises DivergenceError when training blows up."""
        iters = auto_budget(self.dim) if iters is None else check_positive_int("iters", iters)
        ux, uy = self._intake(x, y)
        p_all, q_all = self._roles(ux, uy)
        p_data, p_hold = split_holdout(p_all, self.holdout, self._gen)
        q_data, q_hold = split_holdout(q_all, self.holdout, self._gen)
        self.history_, self.stop_reason_, self.certificates = {}, None, None
        a = self._start_map(p_data, q_data)
        self.f, self.g = self._make_potential(0).to(self.device), self._make_potential(1).to(self.device)
        if self.init == "linear":
            ainv = torch.linalg.inv(a)
            self.f.set_quadratic_form(a)
            self.g.set_quadratic_form(ainv)
            self._pretrain(p_data, q_data, a.to(p_data), ainv.to(q_data))
        elif self.init == "identity":
            both = torch.cat([p_data, q_data])
            self._pretrain(both, both)
        self._after_pretrain(p_data, q_data)
        try:
            self._train(p_data, q_data, p_hold, q_hold, iters)
        except DivergenceError:
            self.scaler_ = None  # never hand out the map of a diverged fit
            raise
        self.certificates = {"f": certify(self.f), "g": certify(self.g)}
        self.w2_squared_ = self._w2_u(*(h if h.shape[0] else d for h, d in ((p_hold, p_data), (q_hold, q_data))))
        return self

    def _start_map(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor | None:
        """The Gaussian (Bures) map between the two samples (standardized units); fixes the "auto" convexities.
        None (and nothing computed) when neither the start nor the convexities need it."""
        if self.init != "linear" and "auto" not in (self.quadratic, self.quadratic_g):
            self._q = self.quadratic_ = (self.quadratic, self.quadratic_g)
            return None
        a, _ = linear_map(p.cpu().numpy(), q.cpu().numpy())
        eig = np.linalg.eigvalsh(a)
        self._conj_step = 1.0 / float(eig.max())  # ∇²f ≈ a at the start
        auto = (0.25 * float(eig.min()), 0.25 / float(eig.max()))
        self._q = tuple(auto[i] if q == "auto" else q for i, q in enumerate((self.quadratic, self.quadratic_g)))
        self.quadratic_ = self._q
        return torch.from_numpy(a)

    def _train(self, p_data, q_data, p_hold, q_hold, iters: int) -> None:
        opt_f = torch.optim.Adam(self.f.parameters(), lr=self.lr, betas=(0.5, 0.9))
        opt_g = torch.optim.Adam(self.g.parameters(), lr=self.lr, betas=(0.5, 0.9))
        drops = 0
        hold = (p_hold, q_hold) if p_hold.shape[0] and q_hold.shape[0] else (p_data[:4096], q_data[:4096])
        second = (hold[0].pow(2).sum(1).mean() + hold[1].pow(2).sum(1).mean()).item()
        self._window = 0  # index of the first held-out estimate since the last lr drop
        bar = self._progress(iters, type(self).__name__)
        for it in bar:
            for _ in range(self.inner_iters):
                yq = self._batch(q_data)
                gy = potential_grad(self.g, yq, create_graph=True)
                loss_g = -((yq * gy).sum(1) - self.f(gy).squeeze(1)).mean()
                pen = self._g_penalty(yq, gy, it)
                if pen is not None:
                    loss_g = loss_g + pen
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                self._after_g_step(opt_g)
            xp, yq = self._batch(p_data), self._batch(q_data)
            gy = self._conjugate(yq, potential_grad(self.g, yq).detach())
            fx, fgy = self.f(xp).squeeze(1), self.f(gy).squeeze(1)
            loss_f = fx.mean() - fgy.mean()
            opt_f.zero_grad(set_to_none=True)
            loss_f.backward()
            opt_f.step()
            self._log(loss_f=float(loss_f.detach()), loss_g=float(loss_g.detach()))
            if not (torch.isfinite(loss_f) and torch.isfinite(loss_g)):
                self._diverged(it, f"non-finite loss (f: {float(loss_f)}, g: {float(loss_g)})")
            self._after_outer(it)
            done = self._done(it)
            if done:
                self.stop_reason_ = done
                break
            if (it + 1) % self.check_every == 0 or it + 1 == iters:
                if self._check(it, hold, second):
                    if not self.lr_decay or drops == 2:
                        self.stop_reason_ = f"held-out W2² settled after {it + 1} of {iters} iterations"
                        break
                    drops += 1  # plateau: lr ÷ 10, and a fresh window of checks
                    for opt in (opt_f, opt_g):
                        for group in opt.param_groups:
                            group["lr"] *= 0.1
                    self._log(lr_drop=it + 1)
                    self._window = len(self.history_["heldout_w2"])
                if self.verbose:
                    bar.set_postfix(W2sq=f"{self.history_['heldout_w2'][-1]:.4g}")
        if self.stop_reason_ is None:
            self.stop_reason_ = f"budget of {iters} iterations used"
        self.iters_ = len(self.history_["loss_f"])

    def _conjugate(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """`conjugate_steps` gradient steps on x ↦ ⟨x, y⟩ − f(x) from x (per sample, only steps that raise it)."""
        if not self.conjugate_steps:
            return x
        with torch.no_grad():
            value = (x * y).sum(1) - self.f(x).squeeze(1)
        for _ in range(self.conjugate_steps):
            trial = (x - self._conj_step * (potential_grad(self.f, x) - y)).detach()
            with torch.no_grad():
                new = (trial * y).sum(1) - self.f(trial).squeeze(1)
                better = new > value
                x = torch.where(better[:, None], trial, x)
                value = torch.where(better, new, value)
        return x

    def _check(self, it: int, hold, second: float) -> bool:
        """Held-out W2² estimate: divergence tests, then True when it has settled (early stop). A negative
        estimate counts as divergence only beyond 3 standard errors (and 1 % of E‖X‖² + E‖Y‖²)."""
        gq = torch.cat([potential_grad(self.g, c) for c in torch.split(hold[1], 8192)])
        fp = torch.cat([potential_grad(self.f, c) for c in torch.split(hold[0], 8192)])
        with torch.no_grad():
            a = hold[0].pow(2).sum(1) - 2 * self.f(hold[0]).squeeze(1)
            b = hold[1].pow(2).sum(1) - 2 * ((hold[1] * gq).sum(1) - self.f(gq).squeeze(1))
            w2u = float(a.mean() + b.mean())
            se = float((a.var() / a.numel() + b.var() / b.numel()).sqrt())  # its Monte Carlo standard error
            reach = float(gq.pow(2).sum(1).mean()) / max(second, 1e-12)
            # a map of P onto Q has E‖∇f(X)‖² = E‖Y‖²: a forward map off by 10× in it is no map of P onto Q
            moment = float(fp.pow(2).sum(1).mean()) / max(float(hold[1].pow(2).sum(1).mean()), 1e-12)
        if not math.isfinite(w2u):
            self._diverged(it, f"held-out W2² estimate is {w2u}")
        if reach > 100.0:
            self._diverged(it, f"∇g maps the held-out samples {reach:.3g}× farther than the data (g blew up)")
        if not 0.1 <= moment <= 10.0:
            self._diverged(it, f"∇f maps the held-out P samples to {moment:.3g}× the second moment of the held-out "
                               "Q samples (f blew up)")
        if w2u < -max(0.01 * second, 3 * se):
            self._diverged(it, f"held-out W2² estimate {w2u:.4g} < 0 beyond its noise (standard error {se:.2g}; "
                               "standardized units)")
        shift = self.scaler_.mean_shift_sq() if self.separate_centering else 0.0
        self._log(heldout_w2=w2u * self.scaler_.scale**2 + shift, heldout_iter=it + 1)
        est = self.history_["heldout_w2"][self._window:]
        return settled(est, self.patience, self.tol, 1e-3 * second * self.scaler_.scale**2)

    def _diverged(self, it: int, reason: str) -> None:
        self.stop_reason_ = f"diverged at iteration {it}: {reason}"
        raise DivergenceError(f"{type(self).__name__} training diverged at iteration {it}: {reason}; "
                              "no map is returned (try a smaller lr or a larger quadratic)")

    def _pretrain(self, p: torch.Tensor, q: torch.Tensor, a: torch.Tensor | None = None,
                  ainv: torch.Tensor | None = None) -> None:
        """Fit ∇f(u) ≈ u·a on P's samples and ∇g(v) ≈ v·a⁻¹ on Q's (the identity when a is None), with
        N(0, 0.1²) jitter, for `pretrain_iters` steps: the fit starts at a valid convex map, with live weights."""
        params = list(self.f.parameters()) + list(self.g.parameters())
        opt = torch.optim.Adam(params, lr=self.lr)
        for _ in self._progress(self.pretrain_iters, "pretraining to the start map"):
            loss = 0.0
            for net, data, m in ((self.f, p, a), (self.g, q, ainv)):
                z = self._batch(data)
                z = z + 0.1 * torch.randn(z.shape, generator=self._gen).to(z)
                target = z if m is None else z @ m
                loss = loss + ((potential_grad(net, z, create_graph=True) - target) ** 2).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            self._log(pretrain=float(loss.detach()))

    # -- inference ---------------------------------------------------------------------------------------------
    def _map(self, net: torch.nn.Module, a, name: str, src: str, dst: str):
        self._require_fit()
        t, kind = to_points(a, name, dim=self.dim, device=self.device)
        u = self.scaler_.to_u(t, src)
        out = torch.cat([potential_grad(net, c) for c in torch.split(u, 8192)])
        return from_points(self.scaler_.from_u(out, dst), kind)

    def _forward_net(self) -> torch.nn.Module:
        return self.f

    def _inverse_net(self) -> torch.nn.Module:
        return self.g

    def transport(self, x):
        """T̂(x): the fitted map P→Q (same array family, shape and dtype as x)."""
        return self._map(self._forward_net(), x, "x", "x", "y")

    def inverse(self, y):
        """Ŝ(y): the fitted map Q→P."""
        return self._map(self._inverse_net(), y, "y", "y", "x")

    def w2_squared(self, x, y) -> float:
        """Dual estimate of W2²(P, Q) from samples: E‖X‖² + E‖Y‖² − 2(E f(X) + E[⟨Y, ∇g(Y)⟩ − f(∇g(Y))])."""
        self._require_fit()
        xt, _ = to_points(x, "x", dim=self.dim, device=self.device)
        yt, _ = to_points(y, "y", dim=self.dim, device=self.device)
        return self._w2_u(*self._roles(self.scaler_.to_u(xt, "x"), self.scaler_.to_u(yt, "y")))

    def _w2_u(self, p: torch.Tensor, q: torch.Tensor) -> float:
        gq = torch.cat([potential_grad(self.g, c) for c in torch.split(q, 8192)])
        with torch.no_grad():
            dual = self.f(p).mean() + ((q * gq).sum(1) - self.f(gq).squeeze(1)).mean()
            w2u = (p * p).sum(1).mean() + (q * q).sum(1).mean() - 2 * dual
        shift = self.scaler_.mean_shift_sq() if self.separate_centering else 0.0
        return float(w2u) * self.scaler_.scale**2 + shift
