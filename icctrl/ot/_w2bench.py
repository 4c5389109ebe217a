"""Loader and sampler of the continuous W2 benchmark (Korotin et al. 2021), Mix3→Mix10 pairs.

The ground truth is T*(x) = (∇ψ₁(x) + ∇ψ₂(x) − μ)/s with ψ₁, ψ₂ the benchmark's dense quadratic ICNNs
(strong convexity σ = 1e-2 added here, as the upstream loader does) and μ, s the mean and the
coordinate-averaged standard deviation of ∇ψ₁ + ∇ψ₂ under P. P is the benchmark's 3-component mixture,
rebuilt from numpy's legacy generator seeded with 0. See the data README for the exact recipe.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from icctrl.errors import DataError, InvalidValueError
from icctrl.ot._arrays import from_points, to_points

_SIGMA = 1e-2
_STD = 0.4
_NUM = 3
_KEYS = [f"quadratic_layers.{k}.{p}" for k in range(3) for p in ("quadratic_decomposed", "weight", "bias")] + [
    "convex_layers.0.weight",
    "convex_layers.1.weight",
    "final_layer.weight",
]


def default_root() -> Path:
    """$ICCTRL_W2BENCH, else the nearest shared/data/w2bench above the repository (../shared for a clone)."""
    env = os.environ.get("ICCTRL_W2BENCH")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents[2:]:
        candidate = parent / "shared" / "data" / "w2bench"
        if candidate.is_dir():
            return candidate
    return here.parents[3] / "shared" / "data" / "w2bench"


def _load_potential(path: Path, d: int) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise DataError(f"W2 benchmark file not found: {path} (set ICCTRL_W2BENCH or pass root=)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or unsafe archive: say which file
        raise DataError(f"cannot read W2 benchmark file {path}: {exc}") from exc
    missing = [k for k in _KEYS if k not in state]
    if missing:
        raise DataError(f"{path} lacks keys {missing}")
    if tuple(state["quadratic_layers.0.weight"].shape)[1] != d:
        raise DataError(f"{path} holds a potential on R^{state['quadratic_layers.0.weight'].shape[1]}, expected {d}")
    return {k: state[k].to(torch.float64) for k in _KEYS}


def _celu(u: torch.Tensor) -> torch.Tensor:
    return torch.where(u > 0, u, torch.expm1(torch.clamp(u, max=0.0)))


def _potential(w: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """ψ(x) of one benchmark network, shape (n,)."""

    def q(k: int) -> torch.Tensor:
        qd = w[f"quadratic_layers.{k}.quadratic_decomposed"]
        quad = torch.einsum("bi,irj->brj", x, qd).pow(2).sum(1)
        return quad + x @ w[f"quadratic_layers.{k}.weight"].T + w[f"quadratic_layers.{k}.bias"]

    z = q(0)
    z = _celu(z @ w["convex_layers.0.weight"].T + q(1))
    z = _celu(z @ w["convex_layers.1.weight"].T + q(2))
    return (z @ w["final_layer.weight"].T).squeeze(1) + 0.5 * _SIGMA * (x * x).sum(1)


class W2Bench:
    """One Mix3→Mix10 benchmark pair in R^d: `.sample(n, seed)` draws P, `.true_map(x)` is T*."""

    def __init__(self, d: int, root: str | os.PathLike | None = None, *, norm_samples: int = 2**16):
        if int(d) < 1:
            raise InvalidValueError(f"dimension must be >= 1, got {d}")
        self.dim = int(d)
        self.root = Path(root) if root is not None else default_root()
        folder = self.root / "Mix3toMix10"
        self.paths = (folder / f"{self.dim}_v1.pt", folder / f"{self.dim}_v2.pt")
        self._w = [_load_potential(p, self.dim) for p in self.paths]
        self._build_mixture()
        grad = self._raw_grad(torch.from_numpy(self.sample(norm_samples, seed=2**20).astype(np.float64)))
        self.shift = grad.mean(0)
        self.scale = float(grad.var(0).mean().sqrt())

    def _build_mixture(self) -> None:
        d = self.dim
        rng = np.random.RandomState(0)  # the legacy stream the upstream loader seeds with 0
        centers = np.zeros((_NUM, d))
        for j in range(d):
            centers[:, j] = rng.choice(range(_NUM), _NUM, replace=False)
        centers -= 1.0
        a = rng.normal(size=(_NUM, d, d)).astype(np.float32).astype(np.float64)
        a /= np.linalg.norm(a, axis=2, keepdims=True)
        m = np.sqrt((centers**2).sum(1).mean() + d * _STD**2) / np.sqrt(d)
        self.centers, self.factors = centers / m, a / m

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """n samples of P (float32): pick a component uniformly, return c_k + 0.4·A_k z, z ~ N(0, I)."""
        if int(n) < 1:
            raise InvalidValueError(f"sample size must be >= 1, got {n}")
        rng = np.random.default_rng(seed)
        k = rng.integers(0, _NUM, size=int(n))
        z = rng.standard_normal((int(n), self.dim))
        x = self.centers[k] + _STD * np.einsum("nij,nj->ni", self.factors[k], z)
        return x.astype(np.float32)

    def _raw_grad(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        for chunk in torch.split(x, 8192):
            c = chunk.clone().requires_grad_(True)
            with torch.enable_grad():
                total = (_potential(self._w[0], c) + _potential(self._w[1], c)).sum()
                (g,) = torch.autograd.grad(total, c)
            out.append(g)
        return torch.cat(out)

    def true_map(self, x):
        """T*(x) = (∇ψ₁ + ∇ψ₂ − μ)/s; numpy or torch in, the same family, shape and dtype out."""
        t, kind = to_points(x, "x", dim=self.dim, dtype=torch.float64)
        return from_points((self._raw_grad(t) - self.shift) / self.scale, kind)

    def __repr__(self) -> str:
        return f"W2Bench(d={self.dim}, root={str(self.root)!r})"


def w2bench(d: int, root: str | os.PathLike | None = None) -> W2Bench:
    """Load the Mix3→Mix10 benchmark pair in R^d from `root` (default: $ICCTRL_W2BENCH or ../shared/data/w2bench)."""
    return W2Bench(d, root)
