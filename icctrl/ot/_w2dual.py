"""ICNN W2 dual (Makkuva et al. 2020): min_f max_g E_P f(X) + E_Q[⟨Y, ∇g(Y)⟩ − f(∇g(Y))] on shared ICNNs."""

from __future__ import annotations

import torch

from icctrl.convexity import certify
from icctrl.errors import InvalidValueError
from icctrl.nn import ICNN
from icctrl.ot._arrays import from_points, to_points
from icctrl.ot._base import NeuralOTBase, check_positive_int


def potential_grad(net: torch.nn.Module, x: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """∇net(x) by autograd; `create_graph=True` keeps it differentiable for losses that contain it."""
    with torch.enable_grad():
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(net(x).sum(), x, create_graph=create_graph)
    return g


class W2Dual(NeuralOTBase):
    """W2-optimal map P→Q as the gradient of an ICNN potential f; ∇g (the conjugate's gradient) maps Q→P.

    `quadratic` (f) and `quadratic_g` (g, default: the same) add q/2‖u‖² to the ICNN, making the potential
    q-strongly convex (in standardized units); f needs some (its conjugate must be finite, else g's inner
    problem is unbounded), and q must stay under the smallest eigenvalue of the true map's Jacobian.
    Inner loop: `inner_iters` ascent steps of g per descent step of f. `pretrain_identity` first fits both
    potentials to ∇f(x) ≈ x. Data are standardized by one common shift and scalar scale (exact for W2).
    After fit, `certificates` holds `icctrl.convexity.certify` of both potentials.
    """

    def __init__(self, dim: int, *, hidden: int = 64, layers: int = 3, activation: str = "celu",
                 quadratic: float = 0.0, quadratic_g: float | None = None, lr: float = 1e-3, batch_size: int = 512,
                 inner_iters: int = 10,
                 pretrain_identity: bool = True, pretrain_iters: int = 300, lr_decay: bool = True,
                 device: str | torch.device = "auto", seed: int = 0, verbose: bool = True,
                 standardize: bool = True):
        super().__init__(dim, batch_size=batch_size, lr=lr, device=device, seed=seed, verbose=verbose,
                         standardize=standardize)
        self.hidden = check_positive_int("hidden", hidden)
        self.layers = check_positive_int("layers", layers)
        self.activation = activation
        self.quadratic = float(quadratic)
        self.quadratic_g = self.quadratic if quadratic_g is None else float(quadratic_g)
        self.inner_iters = check_positive_int("inner_iters", inner_iters)
        self.pretrain_identity = bool(pretrain_identity)
        self.pretrain_iters = int(pretrain_iters)
        self.lr_decay = bool(lr_decay)
        self.certificates: dict | None = None
        self.f, self.g = self._make_potential(), self._make_potential()  # validates the ICNN settings early

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

    def _make_potential(self) -> ICNN:
        """f first, then g (each call makes the next one): the shared ICNN, seeded for reproducibility."""
        made = len(getattr(self, "_made", []))
        torch.manual_seed(self.seed + made)
        self._made = getattr(self, "_made", []) + [1]
        q = self.quadratic if made % 2 == 0 else self.quadratic_g
        return ICNN(n_in=self.dim, n_out=1, hidden=self.hidden, layers=self.layers, activation=self.activation,
                    quadratic=q)

    # -- training ----------------------------------------------------------------------------------------------
    def fit(self, x, y, iters: int = 1000) -> W2Dual:
        """Fit on samples x ~ P and y ~ Q (numpy or torch, shape (n, dim)); `iters` f steps. Returns self."""
        iters = check_positive_int("iters", iters)
        ux, uy = self._intake(x, y)
        p_data, q_data = self._roles(ux, uy)
        self._made = []
        self.f, self.g = self._make_potential().to(self.device), self._make_potential().to(self.device)
        self.history_ = {}
        if self.pretrain_identity and self.pretrain_iters > 0:
            self._pretrain(torch.cat([p_data, q_data]))
        opt_f = torch.optim.Adam(self.f.parameters(), lr=self.lr, betas=(0.5, 0.9))
        opt_g = torch.optim.Adam(self.g.parameters(), lr=self.lr, betas=(0.5, 0.9))
        scheds = []
        if self.lr_decay:
            scheds = [torch.optim.lr_scheduler.CosineAnnealingLR(opt_f, iters, eta_min=0.05 * self.lr),
                      torch.optim.lr_scheduler.CosineAnnealingLR(opt_g, iters * self.inner_iters,
                                                                 eta_min=0.05 * self.lr)]
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
                if scheds:
                    scheds[1].step()
            xp, yq = self._batch(p_data), self._batch(q_data)
            gy = potential_grad(self.g, yq).detach()
            fx, fgy = self.f(xp).squeeze(1), self.f(gy).squeeze(1)
            loss_f = fx.mean() - fgy.mean()
            opt_f.zero_grad(set_to_none=True)
            loss_f.backward()
            opt_f.step()
            if scheds:
                scheds[0].step()
            dual = fx.mean() + ((yq * gy).sum(1) - fgy).mean()
            w2u = (xp * xp).sum(1).mean() + (yq * yq).sum(1).mean() - 2 * dual
            shift = self.scaler_.mean_shift_sq() if self.separate_centering else 0.0
            w2 = float(w2u.detach()) * self.scaler_.scale**2 + shift
            self._log(loss_f=float(loss_f.detach()), loss_g=float(loss_g.detach()), w2_squared=w2)
            if not torch.isfinite(loss_f):
                raise InvalidValueError(f"training diverged at iteration {it}: f loss {float(loss_f)}")
            self._after_outer(it)
            if self.verbose and it % 20 == 0:
                bar.set_postfix(W2sq=f"{self.history_['w2_squared'][-1]:.4g}")
        self.certificates = {"f": certify(self.f), "g": certify(self.g)}
        self.w2_squared_ = self._w2_u(p_data, q_data)
        return self

    def _pretrain(self, data: torch.Tensor) -> None:
        """Fit ∇f ≈ id and ∇g ≈ id: the identity is a valid, convex starting map between nearby measures."""
        params = list(self.f.parameters()) + list(self.g.parameters())
        opt = torch.optim.Adam(params, lr=self.lr)
        for _ in self._progress(self.pretrain_iters, "identity pretraining"):
            z = self._batch(data)
            z = z + 0.1 * torch.randn(z.shape, generator=self._gen).to(z)
            loss = sum(((potential_grad(net, z, create_graph=True) - z) ** 2).sum(1).mean()
                       for net in (self.f, self.g))
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
