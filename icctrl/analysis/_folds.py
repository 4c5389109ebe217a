"""Space folds (Lewandowski et al., "On Space Folds of ReLU Neural Networks"): activation patterns along straight
paths, the range measure χ = 1 − r₁/r₂, network aggregates over many paths, and CantorNet."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from icctrl.analysis._patterns import activation_patterns
from icctrl.errors import InvalidValueError, ShapeError


def _as_tensor(x, dtype: torch.dtype, what: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64))
    if t.numel() == 0:
        raise ShapeError(f"{what} is empty")
    if not torch.isfinite(t).all():
        raise InvalidValueError(f"{what} contains non-finite values: {t.flatten()[:8].tolist()}")
    return t.to(dtype)


def _model_dtype(model: nn.Module) -> torch.dtype:
    p = next(iter(model.parameters()), None)
    return p.dtype if p is not None else torch.get_default_dtype()


def path_points(x0, x1, n_points: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """γ(t_i) = (1 − t_i)x₀ + t_i x₁ at n_points equally spaced t_i ∈ [0, 1]: shape (n_points, *x0.shape)."""
    if isinstance(n_points, bool) or not isinstance(n_points, (int, np.integer)) or n_points < 2:
        raise InvalidValueError(f"n_points must be an integer >= 2, got {n_points!r}")
    a, b = _as_tensor(x0, torch.float64, "x0"), _as_tensor(x1, torch.float64, "x1")
    if a.shape != b.shape:
        raise ShapeError(f"x0 and x1 must have one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    t = torch.linspace(0.0, 1.0, int(n_points), dtype=torch.float64).reshape(-1, *([1] * a.dim()))
    return ((1 - t) * a + t * b).to(dtype)


def path_patterns(model: nn.Module, x0, x1, n_points: int = 10_001, batch_size: int = 4096) -> torch.Tensor:
    """Activation patterns (n_points, units) of `model` along the straight path from x0 to x1."""
    pts = path_points(x0, x1, n_points, dtype=_model_dtype(model))
    return torch.cat([activation_patterns(model, pts[i:i + batch_size]).bits
                      for i in range(0, len(pts), batch_size)])


def chi_of_patterns(bits: torch.Tensor) -> float:
    """χ = 1 − r₁/r₂ of a sequence of patterns: r₁ = max_i d_H(π₁, π_i), r₂ = Σ_i d_H(π_i, π_(i+1)); 0 if r₂ = 0."""
    if bits.dim() != 2 or bits.shape[0] < 2:
        raise ShapeError(f"patterns must be (points >= 2, units), got {tuple(bits.shape)}")
    b = bits.bool()
    r1 = int((b != b[0]).sum(dim=1).max())
    r2 = int((b[1:] != b[:-1]).sum())
    return 0.0 if r2 == 0 else 1.0 - r1 / r2


def chi(model: nn.Module, x0, x1, n_points: int = 10_001) -> float:
    """Range measure χ ∈ [0, 1) of `model` along the straight path x0 → x1 (0: no fold; → 1: folds back often)."""
    return chi_of_patterns(path_patterns(model, x0, x1, n_points))


@dataclass(frozen=True)
class FoldSummary:
    """Network-level aggregate of χ over many paths; a path folds when χ > 0."""

    max: float
    mean: float
    share_folding: float
    n_paths: int
    n_points: int
    chis: tuple[float, ...]

    def as_dict(self, with_chis: bool = False) -> dict:
        d = asdict(self)
        if not with_chis:
            d.pop("chis")
        return d


def fold_summary(model: nn.Module, x0s, x1s, n_points: int = 10_001) -> FoldSummary:
    """χ along each path x0s[i] → x1s[i] and its max, mean and share of folding paths."""
    a, b = _as_tensor(x0s, torch.float64, "x0s"), _as_tensor(x1s, torch.float64, "x1s")
    if a.shape != b.shape or a.dim() < 2:
        raise ShapeError(f"x0s and x1s must be (paths, ...) of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    chis = tuple(chi(model, a[i], b[i], n_points) for i in range(a.shape[0]))
    arr = np.asarray(chis)
    return FoldSummary(max=float(arr.max()), mean=float(arr.mean()), share_folding=float((arr > 0).mean()),
                       n_paths=len(chis), n_points=int(n_points), chis=chis)


def sample_pairs(x, labels=None, n_pairs: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Endpoints of `n_pairs` random paths between distinct rows of x (of the same label when labels are given)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2 or len(x) < 2:
        raise ShapeError(f"x must hold at least two points (rows), got shape {x.shape}")
    if n_pairs < 1:
        raise InvalidValueError(f"n_pairs must be >= 1, got {n_pairs}")
    rng = np.random.default_rng(seed)
    groups = [np.arange(len(x))] if labels is None else [np.flatnonzero(np.asarray(labels) == c)
                                                          for c in np.unique(labels)]
    groups = [g for g in groups if len(g) >= 2]
    if not groups:
        raise InvalidValueError("no label has two points to join by a path")
    i0, i1 = [], []
    for _ in range(n_pairs):
        g = groups[rng.integers(len(groups))]
        a, b = rng.choice(g, size=2, replace=False)
        i0.append(a)
        i1.append(b)
    return x[i0], x[i1]


def cantornet(k: int, dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """CantorNet, representation A, recursion depth k: a ReLU network R² → R whose decision boundary is Cantor-like.

    Each of the k blocks is ReLU(W₁x + b₁), W₁ = [[3, 0], [−3, 0], [0, 1]], b₁ = [−2, 1, 0], then ReLU(W₂h),
    W₂ = [[1, 1, 0], [0, 0, 1]]: x ↦ (|3x − 3/2| − 1/2 folded to [0, 1], y). The top unit is ReLU(−x/2 + y − 1/2).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidValueError(f"CantorNet recursion depth k must be an integer >= 1, got {k!r}")

    def linear(w, b):
        lin = nn.Linear(len(w[0]), len(w), dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(w, dtype=dtype))
            lin.bias.copy_(torch.tensor(b, dtype=dtype))
        lin.requires_grad_(False)
        return lin

    layers: list[nn.Module] = []
    for _ in range(int(k)):
        layers += [linear([[3, 0], [-3, 0], [0, 1]], [-2, 1, 0]), nn.ReLU(),
                   linear([[1, 1, 0], [0, 0, 1]], [0, 0]), nn.ReLU()]
    layers += [linear([[-0.5, 1]], [-0.5]), nn.ReLU()]
    return nn.Sequential(*layers)
