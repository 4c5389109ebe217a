"""Displacement-sparse neural OT (Chen, Xie, Zhang 2025) on the ICNN W2 dual."""

from __future__ import annotations

import copy

import torch

from icctrl.errors import InvalidValueError, UnknownNameError
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
    `shift_start` (default) starts the map at the translation by the mean shift m_Q − m_P (through the ICNN's
    linear output terms), so the large displacements are there from the first step and λ only has to remove
    the small ones; without it the map starts at the identity.
    With `target_dim` set, λ is adapted by `AdaptiveLambda` from the per-sample count of coordinates with
    |Δᵢ| > `threshold`, averaged over the second half of each `check_every` window (the first half is the
    transient of the last λ change): held for `warmup` f steps, grown by `growth` until under target, then
    annealed downwards (`temperature` ≈ ln `growth`, so a proposal spans up to one growth step; `cooling` per
    proposal near the budget) while the count stays under target; training stops once the temperature is below
    0.01 with the count under target (λ settled).
    The weights of the last check under target are kept, and restored when training ends over target (a
    rejected proposal still recovering). Fit sets `lam_` (final λ), `lambda_` (the controller) and
    `restored_` (whether the map is that of an earlier check).
    """

    def __init__(self, dim: int, penalty: str = "l0", *, lam: float = 1.0, epsilon: float = 0.1, gamma: float = 1.0,
                 target_dim: float | None = None, threshold: float = 0.1, growth: float = 4.0,
                 check_every: int = 6, temperature: float = 1.4, cooling: float = 0.5, warmup: int = 0,
                 quadratic: float = 0.5, quadratic_g: float = 1.0, shift_start: bool = True, **kwargs):
        kwargs.setdefault("potential", "icnn")
        kwargs.setdefault("init", "identity")
        super().__init__(dim, quadratic=quadratic, quadratic_g=quadratic_g, **kwargs)
        if shift_start and self.potential != "icnn":
            raise InvalidValueError("shift_start=True needs potential='icnn' (its linear output term carries the "
                                    "shift); pass shift_start=False for the dense potential")
        self.shift_start = bool(shift_start)
        if penalty not in PENALTIES:
            raise UnknownNameError(f"unknown penalty {penalty!r}; choose one of {list(PENALTIES)}")
        self.penalty = penalty
        self.lam = check_positive("lam", lam)
        self.epsilon = check_positive("epsilon", epsilon)
        self.gamma = check_positive("gamma", gamma)
        self.threshold = check_positive("threshold", threshold)
        self.target_dim = None if target_dim is None else check_positive("target_dim", target_dim)
        self._ctl_args = dict(growth=growth, check_every=check_every, window=max(1, check_every // 2),
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
        self._under: tuple[float, dict, dict] | None = None  # (λ, f and g weights) at the last check under target
        self.restored_ = False
        return super().fit(x, y, iters=iters)

    def _train(self, p_data, q_data, p_hold, q_hold, iters: int) -> None:
        super()._train(p_data, q_data, p_hold, q_hold, iters)
        hist = self.lambda_.history if self.lambda_ is not None else []
        if hist and hist[-1][2] > self.lambda_.target and self._under is not None:
            self.lam_, f_state, g_state = self._under
            self.f.load_state_dict(f_state)
            self.g.load_state_dict(g_state)
            self.restored_ = True

    def _after_pretrain(self, p: torch.Tensor, q: torch.Tensor) -> None:
        """With `shift_start`, add the mean shift m_Q − m_P to ∇g (and subtract it from ∇f) through the linear
        output terms: the fit starts at the translation, which the penalty then sparsifies, instead of having
        Adam's lr-sized steps carry each large shift (many lr steps per unit) from the identity."""
        if not self.shift_start:
            return
        shift = (p.mean(0) - q.mean(0)).detach()  # f's side is Q, g's side P
        with torch.no_grad():
            self.g.skip[-1].weight.add_(shift.to(self.g.skip[-1].weight))
            self.f.skip[-1].weight.sub_(shift.to(self.f.skip[-1].weight))

    def _done(self, it: int) -> str | None:
        """Stop once λ has settled under the target: annealing cooled below 0.01 (proposals move λ by < 1 %)."""
        ctl = self.lambda_
        if ctl is None or ctl.phase != "anneal" or ctl.temperature >= 0.01 or ctl.history[-1][2] > ctl.target:
            return None
        return f"λ settled at {self.lam_:.4g} under the dimension target after {it + 1} iterations"

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
            checks = len(self.lambda_.history)
            lam_before = self.lam_
            self.lam_ = self.lambda_.update(dim)
            if len(self.lambda_.history) > checks and self.lambda_.history[-1][2] <= self.lambda_.target:
                self._under = (lam_before, copy.deepcopy(self.f.state_dict()), copy.deepcopy(self.g.state_dict()))
        self._log(lam=self.lam_, dims=dim)
