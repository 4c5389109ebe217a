"""`ConvexReLU`: a one-hidden-layer ReLU network trained as the Pilanci–Ergen convex program, robust to ℓ∞
perturbations when `robust_eps > 0` (Bai, Gautam, Sojoudi); derivation in docs/convexnn.md.

With X̃ = [X, 1] and patterns D_i, the program is
    min ℓ(Σ_i D_i X̃ (v_i − w_i), y) + β Σ_i (‖v_i‖₂ + ‖w_i‖₂)   s.t. (2D_i − I) X̃ v_i ≥ 0, (2D_i − I) X̃ w_i ≥ 0,
and its optimum equals ℓ(f(X), y) + (β/2)(‖U‖²_F + ‖α‖²) of the ReLU network f(x) = Σ_j α_j relu(uⱼᵀ[x, 1])
recovered by uⱼ = vᵢ/√‖vᵢ‖, αⱼ = ±√‖vᵢ‖.
"""

from __future__ import annotations

import time

import cvxpy as cp
import numpy as np
import torch
from torch import nn

from icctrl.convexnn._patterns import enumerate_patterns, sample_patterns, sampling_rule
from icctrl.errors import InvalidValueError, ShapeError, UnknownNameError

LOSSES = ("squared", "hinge")


class ConvexReLU:
    """Convex training of f(x) = Σ_j α_j relu(uⱼᵀx + bⱼ); `n_patterns=None` enumerates every pattern,
    "auto" samples `sampling_rule(d + 1)` gate directions, an integer samples that many."""

    def __init__(self, beta: float = 1e-4, n_patterns=None, loss: str = "squared", robust_eps: float = 0.0,
                 seed: int = 0, solver: str = "CLARABEL"):
        if not (np.isfinite(beta) and beta > 0):
            raise InvalidValueError(f"beta must be a finite number > 0, got {beta!r}")
        if loss not in LOSSES:
            raise UnknownNameError(f"loss={loss!r} is not known; use one of {list(LOSSES)}")
        if not (np.isfinite(robust_eps) and robust_eps >= 0):
            raise InvalidValueError(f"robust_eps must be a finite number >= 0, got {robust_eps!r}")
        if not (n_patterns is None or n_patterns == "auto" or (isinstance(n_patterns, int) and n_patterns >= 1)):
            raise InvalidValueError(f"n_patterns must be None, 'auto' or an integer >= 1, got {n_patterns!r}")
        self.beta, self.n_patterns, self.loss, self.robust_eps, self.seed = beta, n_patterns, loss, robust_eps, seed
        self.solver = solver

    # -- data ---------------------------------------------------------------------------------------
    def _targets(self, y) -> np.ndarray:
        y = np.asarray(y).ravel()
        if self.loss == "squared":
            self.classes_ = None
            return y.astype(float)
        classes = np.unique(y)
        if len(classes) != 2:
            raise InvalidValueError(f"the hinge loss needs two classes, got {len(classes)}: {classes[:5]}")
        self.classes_ = classes
        return np.where(y == classes[1], 1.0, -1.0)

    @staticmethod
    def _check_X(X, d: int | None = None) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or (d is not None and X.shape[1] != d):
            raise ShapeError(f"X must be (samples, {d or 'features'}), got shape {X.shape}")
        if not np.isfinite(X).all():
            raise InvalidValueError("X holds NaN or infinite values")
        return X

    # -- fit ----------------------------------------------------------------------------------------
    def fit(self, X, y) -> ConvexReLU:
        """Solve the convex program on (X, y); sets objective_, patterns_, certificate_ and the weights."""
        X = self._check_X(X)
        t = self._targets(y)
        if len(t) != len(X):
            raise ShapeError(f"X has {len(X)} samples but y has {len(t)}")
        n, d = X.shape
        Xa = np.c_[X, np.ones(n)]
        if self.n_patterns is None:
            M = enumerate_patterns(Xa)
        else:
            k = sampling_rule(d + 1) if self.n_patterns == "auto" else self.n_patterns
            M = sample_patterns(Xa, k, self.seed)
        self.patterns_ = M.astype(bool)
        t0 = time.perf_counter()
        prob, V, W = self._program(Xa, t, M.T.astype(float))
        prob.solve(solver=self.solver)
        if prob.status not in ("optimal", "optimal_inaccurate"):
            raise InvalidValueError(f"the convex program ended {prob.status!r} (solver {self.solver})")
        self.solve_seconds_ = time.perf_counter() - t0
        self.objective_ = float(prob.value)
        self.status_ = prob.status
        self.is_dcp_ = bool(prob.is_dcp())
        self.n_features_ = d
        self._set_network(V.value, W.value)
        from icctrl.convexnn._certify import program_certificate

        self.certificate_ = program_certificate(self.loss, self.robust_eps > 0)
        return self

    def _program(self, Xa: np.ndarray, t: np.ndarray, M: np.ndarray):
        """The cvxpy program; M (n, P) holds the patterns as columns."""
        n, dim = Xa.shape
        P = M.shape[1]
        V, W = cp.Variable((dim, P)), cp.Variable((dim, P))
        S = 2 * M - 1
        f = cp.sum(cp.multiply(M, Xa @ (V - W)), axis=1)
        eps = self.robust_eps
        ones = np.ones((n, 1))
        cons = []
        for Q in (V, W):
            margin = cp.multiply(S, Xa @ Q)
            if eps > 0:  # the cone must hold for every x + δ, ‖δ‖∞ ≤ ε (the bias input is not perturbed)
                margin = margin - eps * ones @ cp.reshape(cp.norm(Q[:-1], 1, axis=0), (1, P), order="C")
            cons.append(margin >= 0)
        # worst-case change of the output over the ε-box, per sample: ε‖Σ_i d_ik (v_i − w_i)‖₁
        spread = eps * cp.norm((V - W)[:-1] @ M.T, 1, axis=0) if eps > 0 else 0
        if self.loss == "hinge":
            loss = cp.sum(cp.pos(1 - cp.multiply(t, f) + spread))
        elif eps > 0:
            r = cp.Variable(n)
            cons.append(r >= cp.abs(f - t) + spread)
            loss = 0.5 * cp.sum_squares(r)
        else:
            loss = 0.5 * cp.sum_squares(f - t)
        reg = self.beta * (cp.sum(cp.norm(V, 2, axis=0)) + cp.sum(cp.norm(W, 2, axis=0)))
        return cp.Problem(cp.Minimize(loss + reg), cons), V, W

    def _set_network(self, V: np.ndarray, W: np.ndarray) -> None:
        """Neurons of the equivalent ReLU network: uⱼ = vᵢ/√‖vᵢ‖, αⱼ = ±√‖vᵢ‖ for the non-zero groups."""
        us, alphas = [], []
        for Q, sign in ((V, 1.0), (W, -1.0)):
            norms = np.linalg.norm(Q, axis=0)
            keep = norms > 1e-6 * max(norms.max(), 1e-300)
            for q, r in zip(Q[:, keep].T, norms[keep]):
                us.append(q / np.sqrt(r))
                alphas.append(sign * np.sqrt(r))
        self.first_ = np.array(us).reshape(-1, V.shape[0])  # (m, d + 1): weights and bias per neuron
        self.second_ = np.array(alphas)

    # -- use ----------------------------------------------------------------------------------------
    def _fitted(self) -> None:
        if not hasattr(self, "objective_"):
            raise InvalidValueError("ConvexReLU is not fitted yet: call fit(X, y) first")

    def to_torch(self) -> nn.Sequential:
        """The recovered network Linear(d, m) → ReLU → Linear(m, 1, no bias), in float64."""
        self._fitted()
        m, d = len(self.second_), self.n_features_
        net = nn.Sequential(nn.Linear(d, max(m, 1)), nn.ReLU(), nn.Linear(max(m, 1), 1, bias=False)).double()
        with torch.no_grad():
            for p in net.parameters():
                p.zero_()
            if m:
                net[0].weight.copy_(torch.as_tensor(self.first_[:, :d]))
                net[0].bias.copy_(torch.as_tensor(self.first_[:, d]))
                net[2].weight.copy_(torch.as_tensor(self.second_)[None])
        return net

    def decision_function(self, X) -> np.ndarray:
        """The network's real output f(x)."""
        self._fitted()
        X = self._check_X(X, self.n_features_)
        return np.maximum(X @ self.first_[:, :-1].T + self.first_[:, -1], 0) @ self.second_ if len(self.second_) \
            else np.zeros(len(X))

    def predict(self, X) -> np.ndarray:
        """f(x) for the squared loss; the class of sign f(x) for the hinge loss."""
        f = self.decision_function(X)
        return f if self.classes_ is None else np.where(f > 0, self.classes_[1], self.classes_[0])

    def nonconvex_objective(self, X, y) -> float:
        """ℓ(f(X), y) + (β/2)(‖U‖²_F + ‖α‖²) of the recovered network: equal to objective_ (robust_eps = 0)."""
        self._fitted()
        return regularised_objective(self.to_torch(), X, self._targets(y), self.beta, self.loss)

    def facts(self) -> dict:
        """The program's certificate and the recovered network's facts from the convexity core."""
        from icctrl.convexnn._certify import network_facts

        self._fitted()
        return {"program": self.certificate_.to_dict(), "cvxpy_is_dcp": self.is_dcp_,
                "network": network_facts(self.to_torch()), "neurons": int(len(self.second_)),
                "patterns": int(len(self.patterns_))}


def regularised_objective(net: nn.Sequential, X, t, beta: float, loss: str) -> float:
    """ℓ(net(X), t) + (β/2)·(squared norms of the first layer with its bias, and of the output weights)."""
    X = torch.as_tensor(np.asarray(X, float))
    t = torch.as_tensor(np.asarray(t, float))
    with torch.no_grad():
        return float(_torch_objective(net.double(), X, t, beta, loss))


def _torch_objective(net, X, t, beta: float, loss: str) -> torch.Tensor:
    f = net(X).squeeze(1)
    data = 0.5 * ((f - t) ** 2).sum() if loss == "squared" else torch.relu(1 - t * f).sum()
    reg = net[0].weight.pow(2).sum() + net[0].bias.pow(2).sum() + net[2].weight.pow(2).sum()
    return data + 0.5 * beta * reg
