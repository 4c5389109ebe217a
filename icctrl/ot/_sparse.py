"""Displacement-sparse neural OT (Chen, Xie, Zhang 2025) on the ICNN W2 dual."""

from __future__ import annotations

import torch

from icctrl.errors import UnknownNameError
from icctrl.ot._base import check_positive
from icctrl.ot._penalties import PENALTIES, AdaptiveLambda, _tau
from icctrl.ot._w2dual import W2Dual


class SparseW2Dual(W2Dual):
    """W2Dual whose map adds λ·τ(∇g(y) − y) to g's loss so that each sample moves in few coordinates.

    Roles: the source P sits on g's side, so the penalised map ∇g is the forward map P→Q (`transport`), and
    ∇f is the inverse. τ is `penalty` ("l0" smoothed with `epsilon`, "l1", or "stvs" with `gamma`), applied to
    displacements in data units and averaged over the batch (mean-over-batch normalisation; the reference
    formulation sums over the batch, i.e. its λ is ours divided by the batch size).
    `quadratic_g` = 1 (default) makes g = ½‖u‖² + ICNN, so the displacement ∇g(u) − u = ∇ICNN(u) can be exactly
    zero in a coordinate (the ICNN ignores it); with q < 1 the ICNN would have to cancel (1 − q)/2‖u‖² in every
    coordinate, which no ICNN does exactly, and every displacement stays dense. The price: ∇²g ⪰ I, i.e. the
    forward map may not contract any direction (true for translations, as in the single-cell example).
    The smoothed ℓ0 saturates: a coordinate already displaced by more than ~2ε gets almost no pull back, so
    choose ε between the displacements to suppress and the ones to keep (data units).
    With `target_dim` set, λ is adapted by `AdaptiveLambda` from the running mean of the per-sample count of
    coordinates with |Δᵢ| > `threshold`: held for `warmup` f steps, grown by `growth` until under target, then
    annealed downwards while the count stays under target. Fit sets `lam_` (final λ) and `lambda_` (the
    controller).
    """

    def __init__(self, dim: int, penalty: str = "l0", *, lam: float = 1.0, epsilon: float = 0.1, gamma: float = 1.0,
                 target_dim: float | None = None, threshold: float = 0.1, growth: float = 2.0,
                 check_every: int = 25, temperature: float = 1.0, cooling: float = 0.9, warmup: int = 0,
                 quadratic: float = 0.5, quadratic_g: float = 1.0, **kwargs):
        kwargs.setdefault("potential", "icnn")
        kwargs.setdefault("init", "identity")
        super().__init__(dim, quadratic=quadratic, quadratic_g=quadratic_g, **kwargs)
        if penalty not in PENALTIES:
            raise UnknownNameError(f"unknown penalty {penalty!r}; choose one of {list(PENALTIES)}")
        self.penalty = penalty
        self.lam = check_positive("lam", lam)
        self.epsilon = check_positive("epsilon", epsilon)
        self.gamma = check_positive("gamma", gamma)
        self.threshold = check_positive("threshold", threshold)
        self.target_dim = None if target_dim is None else check_positive("target_dim", target_dim)
        self._ctl_args = dict(growth=growth, check_every=check_every, window=check_every,
                              temperature=temperature, cooling=cooling, warmup=warmup, seed=self.seed)
        AdaptiveLambda(self.lam, self.target_dim or 1.0, **self._ctl_args)  # check the settings now
        self.lambda_: AdaptiveLambda | None = None
        self.lam_ = self.lam

    _sides = ("y", "x")
    separate_centering = False

    def _forward_net(self) -> torch.nn.Module:
        return self.g

    def _inverse_net(self) -> torch.nn.Module:
        return self.f

    def fit(self, x, y, iters: int | None = None) -> SparseW2Dual:
        """Fit on x ~ P (source) and y ~ Q (target) with the sparsity penalty; returns self."""
        self.lam_ = self.lam
        self.lambda_ = AdaptiveLambda(self.lam, self.target_dim, **self._ctl_args) if self.target_dim else None
        self._dims: list[float] = []
        return super().fit(x, y, iters=iters)

    def _check(self, it: int, hold, second: float) -> bool:
        """Divergence tests always; the early stop only once λ has brought the map under its dimension target."""
        stop = super()._check(it, hold, second)
        return stop and (self.lambda_ is None or self.lambda_.phase == "anneal")

    def _g_penalty(self, yq: torch.Tensor, gy: torch.Tensor, it: int) -> torch.Tensor:
        delta = (gy - yq) * self.scaler_.scale  # data units
        with torch.no_grad():
            self._dims.append(float((delta.abs() > self.threshold).sum(1).float().mean()))
        return self.lam_ * _tau(delta, self.penalty, self.epsilon, self.gamma).mean()

    def _after_outer(self, it: int) -> None:
        dim = sum(self._dims) / max(len(self._dims), 1)
        self._dims = []
        if self.lambda_ is not None:
            self.lam_ = self.lambda_.update(dim)
        self._log(lam=self.lam_, dims=dim)
