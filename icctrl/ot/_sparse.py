"""Displacement-sparse neural OT (Chen, Xie, Zhang 2025) on the ICNN W2 dual."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch

from icctrl.errors import InvalidValueError, UnknownNameError
from icctrl.ot._arrays import to_points
from icctrl.ot._base import auto_lr, check_positive
from icctrl.ot._penalties import PENALTIES, AdaptiveLambda, _tau
from icctrl.ot._w2dual import W2Dual

#: settings the bare call leaves unset, on a sparse pair (small potentials: the penalised part lives on few
#: coordinates, and a step stays cheap at d in the thousands) and on a dense one (W2Dual's bare call)
SPARSE_DEFAULTS = dict(potential="icnn", init="identity", quadratic=0.5, quadratic_g=1.0, hidden=64, layers=2,
                       batch_size=128, pretrain_iters=50, lr=1e-2, conjugate_steps=0)
PLAIN_DEFAULTS = dict(potential="dense", init="linear", quadratic="auto", quadratic_g="auto", hidden=None, layers=3,
                      batch_size=512, pretrain_iters=300, conjugate_steps=5)
_ARCH = ("potential", "init", "quadratic", "quadratic_g")

#: the robust outlier cut of `moved_coordinates` (median + MOVED_K·MAD) and the displacement share it must carry
MOVED_K, MOVED_SHARE = 4.0, 0.9


def marginal_w2(x, y) -> np.ndarray:
    """W2 distance between the i-th marginals of the samples x ~ P and y ~ Q, for each coordinate i (data units).

    Zero (up to sampling noise) in every coordinate a map leaves alone: a lower bound of what the map moves there."""
    xt, _ = to_points(x, "x")
    yt, _ = to_points(y, "y", dim=xt.shape[1])
    m = min(xt.shape[0], yt.shape[0], 4096)
    q = (np.arange(m) + 0.5) / m
    xq = np.quantile(xt.cpu().double().numpy(), q, axis=0)
    yq = np.quantile(yt.cpu().double().numpy(), q, axis=0)
    return np.sqrt(((yq - xq) ** 2).mean(0))


def moved_coordinates(x, y) -> dict:
    """The data's own reading of which coordinates a P→Q map moves: those whose marginal W2 exceeds
    τ = median + 4·MAD (scaled to σ) over all coordinates; the pair counts as sparse when they are at most half
    of the coordinates and carry ≥ 90 % of Σᵢ W2ᵢ². Returns {"moved", "tau", "share", "sparse"}."""
    w = marginal_w2(x, y)
    med = float(np.median(w))
    tau = med + MOVED_K * 1.4826 * float(np.median(np.abs(w - med)))
    tau = max(tau, 1e-6 * float(w.max()), 1e-12)
    moved = np.flatnonzero(w > tau)
    total = float((w**2).sum())
    share = float((w[moved] ** 2).sum() / total) if total > 0 else 0.0
    sparse = 1 <= moved.size <= w.size / 2 and share >= MOVED_SHARE
    return {"moved": moved, "tau": tau, "share": share, "sparse": bool(sparse)}


class SparseW2Dual(W2Dual):
    """W2Dual whose map adds λ·τ(∇g(y) − y) to g's loss so that each sample moves in few coordinates.

    Bare call (`target_dim`, `epsilon`, `gamma`, `threshold` = "auto"): `moved_coordinates` reads from the
    marginals which coordinates move; on a sparse pair λ is adapted toward a budget of that many coordinates,
    with ε = τ/2, γ = τ/8 and the count threshold τ/20 (τ its cut between moved and still coordinates); on a dense
    pair (and `potential`, `init`, `quadratic`, `quadratic_g` left unset) the fit is W2Dual's bare call, λ = 0.
    Roles: the source P sits on g's side, so the penalised map ∇g is the forward map P→Q (`transport`), and
    ∇f is the inverse. τ is `penalty` ("l0" smoothed with `epsilon`, "l1", or "stvs" with `gamma`), applied to
    displacements in data units and averaged over the batch (mean-over-batch normalisation; the reference
    formulation sums over the batch, i.e. its λ is ours divided by the batch size).
    "l1" is applied as a proximal step, not a loss term: after each Adam step of g, the weights that read the
    input (the ICNN's skip matrices, whose column i alone carries coordinate i into ∇g − id) are
    soft-thresholded at lr·λ/(√v̂ + 1e-8), the ℓ1 prox in Adam's own metric: exact zeros, where a subgradient
    under Adam only oscillates around them (λ weighs Σ|weights|, standardized units, not the displacement).
    `quadratic_g` = 1 (sparse default) makes g = ½‖u‖² + ICNN, so the displacement ∇g(u) − u = ∇ICNN(u) can be
    exactly zero in a coordinate (the ICNN ignores it); with q < 1 the ICNN would have to cancel (1 − q)/2‖u‖² in
    every coordinate, which no ICNN does exactly, and every displacement stays dense. The price: ∇²g ⪰ I, i.e.
    the forward map may not contract any direction (true for translations, as in the single-cell example).
    The smoothed ℓ0 saturates: a coordinate already displaced by more than ~2ε gets almost no pull back, so
    ε must lie between the displacements to suppress and the ones to keep (data units).
    `shift_start` (default) starts the map at the translation by the mean shift m_Q − m_P (through the ICNN's
    linear output terms), so the large displacements are there from the first step and λ only has to remove
    the small ones; without it the map starts at the identity.
    With a `target_dim` (None: λ fixed), λ is adapted by `AdaptiveLambda` from the per-sample count of
    coordinates with |Δᵢ| > `threshold`, averaged over the second half of each `check_every` window (the first
    half is the transient of the last λ change): held for `warmup` f steps, grown by `growth` (at most to
    `lam_max`) until under target, then annealed downwards (`temperature` ≈ ln `growth`, so a proposal spans up
    to one growth step; `cooling` per proposal near the budget) while the count stays under target; training
    stops once the temperature is below 0.01 with the count under target (λ settled), or, with a warning, once
    λ at `lam_max` still leaves the count over target (`budget_met_` False).
    The weights of the last check under target are kept, and restored when training ends over target (a
    rejected proposal still recovering). Fit sets `lam_` (final λ), `lambda_` (the controller), `restored_`
    (whether the map is that of an earlier check), `moved_` (the `moved_coordinates` reading) and the resolved
    `target_dim_`, `epsilon_`, `gamma_`, `threshold_`.
    """

    def __init__(self, dim: int, penalty: str = "l0", *, lam: float = 1.0, epsilon: float | str = "auto",
                 gamma: float | str = "auto", target_dim: float | str | None = "auto",
                 threshold: float | str = "auto", growth: float = 4.0, check_every: int = 6,
                 temperature: float = 1.4, cooling: float = 0.5, warmup: int = 0, lam_max: float = 1e6,
                 shift_start: bool = True, **kwargs):
        given = {k: kwargs.pop(k) for k in SPARSE_DEFAULTS if kwargs.get(k) is not None}
        kwargs = {k: v for k, v in kwargs.items() if k not in SPARSE_DEFAULTS}
        self._plain_ok = not any(k in given for k in _ARCH) and "activation" not in kwargs
        super().__init__(dim, **{**SPARSE_DEFAULTS, **given}, **kwargs)
        self._sparse_arch = {k: getattr(self, k) for k in SPARSE_DEFAULTS}
        self._plain_arch = {**PLAIN_DEFAULTS, "lr": auto_lr(dim), **given}
        if shift_start and self.potential != "icnn":
            raise InvalidValueError("shift_start=True needs potential='icnn' (its linear output term carries the "
                                    "shift); pass shift_start=False for the dense potential")
        self.shift_start = bool(shift_start)
        if penalty not in PENALTIES:
            raise UnknownNameError(f"unknown penalty {penalty!r}; choose one of {list(PENALTIES)}")
        self.penalty = penalty
        self.lam = check_positive("lam", lam)
        self.epsilon, self.gamma, self.threshold = (self._auto_or_positive(n, v) for n, v in
                                                    (("epsilon", epsilon), ("gamma", gamma),
                                                     ("threshold", threshold)))
        self.target_dim = target_dim if target_dim in (None, "auto") else check_positive("target_dim", target_dim)
        self._ctl_args = dict(growth=growth, check_every=check_every, window=max(1, check_every // 2),
                              temperature=temperature, cooling=cooling, warmup=warmup, lam_max=lam_max,
                              seed=self.seed)
        AdaptiveLambda(self.lam, 1.0, **self._ctl_args)  # check the settings now
        self.lambda_: AdaptiveLambda | None = None
        self.lam_ = self.lam
        self.moved_: dict | None = None
        self.budget_met_: bool | None = None
        self._plain = False

    @staticmethod
    def _auto_or_positive(name: str, value) -> float | str:
        return "auto" if isinstance(value, str) and value == "auto" else check_positive(name, value)

    _sides = ("y", "x")
    separate_centering = False

    def _forward_net(self) -> torch.nn.Module:
        return self.g

    def _inverse_net(self) -> torch.nn.Module:
        return self.f

    def fit(self, x, y, iters: int | None = None) -> SparseW2Dual:
        """Fit on x ~ P (source) and y ~ Q (target) with the sparsity penalty; returns self."""
        self.moved_ = moved_coordinates(x, y)
        tau = self.moved_["tau"]
        pick = lambda v, auto: auto if v == "auto" else v  # noqa: E731
        self.epsilon_, self.gamma_ = pick(self.epsilon, tau / 2), pick(self.gamma, tau / 8)
        self.threshold_ = pick(self.threshold, tau / 20)
        dense = self.target_dim == "auto" and not self.moved_["sparse"]
        k = self.moved_["moved"].size
        self.target_dim_ = (None if dense else k + max(0.5, 0.1 * k)) if self.target_dim == "auto" \
            else self.target_dim
        self._set_architecture(plain=dense and self._plain_ok)
        self.lam_ = 0.0 if dense else self.lam
        ctl_args = dict(self._ctl_args)
        if self.target_dim == "auto" and not dense:  # the budget has slack: cool once the count reaches 0.8k
            ctl_args["near"] = 0.8 * k / self.target_dim_
        self.lambda_ = AdaptiveLambda(self.lam, self.target_dim_, **ctl_args) if self.target_dim_ else None
        self._dims: list[float] = []
        self._under: tuple[float, dict, dict] | None = None  # (λ, f and g weights) at the last check under target
        self.restored_ = False
        self.budget_met_ = None
        return super().fit(x, y, iters=iters)

    def _set_architecture(self, plain: bool) -> None:
        """The sparse potentials (ICNN, g = ½‖u‖² + ICNN, a pooled centring) or, with `plain`, W2Dual's defaults."""
        arch = self._plain_arch if plain else self._sparse_arch
        for k, v in arch.items():
            setattr(self, k, v)
        self._q = tuple(0.0 if q == "auto" else q for q in (self.quadratic, self.quadratic_g))
        self.separate_centering = plain
        self._plain = plain

    def _train(self, p_data, q_data, p_hold, q_hold, iters: int) -> None:
        super()._train(p_data, q_data, p_hold, q_hold, iters)
        ctl = self.lambda_
        hist = ctl.history if ctl is not None else []
        if hist and hist[-1][2] > ctl.target and self._under is not None:
            self.lam_, f_state, g_state = self._under
            self.f.load_state_dict(f_state)
            self.g.load_state_dict(g_state)
            self.restored_ = True
        if ctl is not None:
            self.budget_met_ = self._under is not None
            if ctl.capped and not self.budget_met_:
                warnings.warn(f"SparseW2Dual: the dimension budget {ctl.target:g} was never reached: λ is at its "
                              f"cap lam_max={ctl.lam_max:g} with {hist[-1][2]:.1f} coordinates displaced per "
                              f"sample (penalty {self.penalty!r})", RuntimeWarning, stacklevel=3)

    def _after_pretrain(self, p: torch.Tensor, q: torch.Tensor) -> None:
        """With `shift_start`, add the mean shift m_Q − m_P to ∇g (and subtract it from ∇f) through the linear
        output terms: the fit starts at the translation, which the penalty then sparsifies, instead of having
        Adam's lr-sized steps carry each large shift (many lr steps per unit) from the identity."""
        if not self.shift_start or self._plain:
            return
        shift = (p.mean(0) - q.mean(0)).detach()  # f's side is Q, g's side P
        with torch.no_grad():
            self.g.skip[-1].weight.add_(shift.to(self.g.skip[-1].weight))
            self.f.skip[-1].weight.sub_(shift.to(self.f.skip[-1].weight))

    def _done(self, it: int) -> str | None:
        """Stop once λ has settled under the target (annealing cooled below 0.01: proposals move λ by < 1 %),
        or once λ sits at its cap with the count still over the target."""
        ctl = self.lambda_
        if ctl is None:
            return None
        if ctl.capped and self._under is None:
            return (f"λ reached its cap {ctl.lam_max:g} with {ctl.history[-1][2]:.1f} coordinates displaced per "
                    f"sample, over the budget of {ctl.target:g}, after {it + 1} iterations")
        if ctl.phase != "anneal" or ctl.temperature >= 0.01 or ctl.history[-1][2] > ctl.target:
            return None
        return f"λ settled at {self.lam_:.4g} under the dimension target after {it + 1} iterations"

    def _check(self, it: int, hold, second: float) -> bool:
        """Divergence tests always; the early stop only once λ has brought the map under its dimension target."""
        stop = super()._check(it, hold, second)
        return stop and (self.lambda_ is None or self.lambda_.phase == "anneal")

    def _g_penalty(self, yq: torch.Tensor, gy: torch.Tensor, it: int) -> torch.Tensor | None:
        if self._plain:
            return None
        delta = (gy - yq) * self.scaler_.scale  # data units
        with torch.no_grad():
            self._dims.append(float((delta.abs() > self.threshold_).sum(1).float().mean()))
        if self.penalty == "l1" or self.lam_ == 0:
            return None  # ℓ1: the proximal step in _after_g_step
        return self.lam_ * _tau(delta, self.penalty, self.epsilon_, self.gamma_).mean()

    def _after_g_step(self, opt_g: torch.optim.Optimizer) -> None:
        """ℓ1 proximal step on g's input weights in Adam's metric: w ← sign(w)·max(|w| − lr·λ/(√v̂ + 1e-8), 0)."""
        if self.penalty != "l1" or self._plain or self.lam_ == 0:
            return
        group = opt_g.param_groups[0]
        beta2 = group["betas"][1]
        with torch.no_grad():
            for layer in self.g.skip:
                w = layer.weight
                state = opt_g.state.get(w)
                if not state:
                    continue
                v_hat = state["exp_avg_sq"] / (1 - beta2 ** float(state["step"]))
                thresh = group["lr"] * self.lam_ / (v_hat.sqrt() + 1e-8)
                w.copy_(w.sign() * (w.abs() - thresh).clamp_min(0.0))

    def _after_outer(self, it: int) -> None:
        dim = sum(self._dims) / max(len(self._dims), 1)
        self._dims = []
        if self.lambda_ is not None:
            checks = len(self.lambda_.history)
            lam_before = self.lam_
            self.lam_ = self.lambda_.update(dim)
            event = self.lambda_.history[-1] if len(self.lambda_.history) > checks else None
            if event and event[2] <= self.lambda_.target:
                self._under = (lam_before, copy.deepcopy(self.f.state_dict()), copy.deepcopy(self.g.state_dict()))
            elif event and event[0] == "reject" and self._under is not None:  # back to λ_best's weights too
                self.f.load_state_dict(self._under[1])
                self.g.load_state_dict(self._under[2])
        self._log(lam=self.lam_, dims=dim)
