"""What the neural OT estimators share: data intake, a common isotropic scaling, batches and progress."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from icctrl.errors import IcctrlError, InvalidValueError, ShapeError
from icctrl.ot._arrays import resolve_device, to_points


class DivergenceError(IcctrlError, RuntimeError):
    """Training blew up (NaN loss, a W2 estimate below zero, a conjugate map far off the data); no map is kept."""


def auto_budget(dim: int) -> int:
    """Default number of outer iterations in R^dim: grows with d (early stopping usually ends sooner)."""
    return int(min(20000, 2000 + 150 * dim))


def auto_lr(dim: int) -> float:
    """Default Adam learning rate of the W2 dual in R^dim: 1e-2 up to d = 32, 3e-3 above. On the W2 benchmark at
    d = 64 the bare call at 1e-2 diverged after 7849 steps, and 3e-3 reached 13.6 % (docs/ot.md)."""
    return 1e-2 if dim <= 32 else 3e-3


def settled(values: list[float], patience: int, tol: float, floor: float) -> bool:
    """True when the last `patience` + 1 values lie within tol·max(|their mean|, floor) of each other."""
    if len(values) <= patience:
        return False
    recent = values[-(patience + 1):]
    return max(recent) - min(recent) <= tol * max(abs(sum(recent) / len(recent)), floor)


def split_holdout(data: torch.Tensor, fraction: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(training part, held-out part): a random `fraction` of the rows (at least 256, at most 4096) is held out."""
    n = data.shape[0]
    k = int(min(4096, max(256, round(fraction * n))))
    if fraction <= 0 or n < 2 * k:
        return data, data[:0]
    perm = torch.randperm(n, generator=gen).to(data.device)
    return data[perm[k:]], data[perm[:k]]


def check_positive_int(name: str, value) -> int:
    """Return `value` as an int, or raise InvalidValueError naming it when it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_positive(name: str, value) -> float:
    """Return `value` as a float, or raise InvalidValueError naming it when it is not a positive number."""
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(f"{name} must be a positive number, got {value!r}") from exc
    if not v > 0 or v == float("inf"):
        raise InvalidValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


class Standardizer:
    """u = (x − m)/s with ONE scalar s for both measures, so W2-optimal maps carry over exactly.

    With `separate=True` each measure is centred on its own mean: the optimal map between P and Q is the
    mean shift plus the optimal map between the centred measures (quadratic cost), so nothing is lost and
    the networks need not learn a large translation. With `separate=False` one pooled mean is used (the
    displacement T(x) − x then keeps its mean part, as the sparsity penalty needs). Per-coordinate scales
    would change the cost and with it the optimal map, so there are none.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, enabled: bool = True, separate: bool = True):
        both = torch.cat([x, y])
        if not enabled:
            self.means = {"x": torch.zeros_like(x[0]), "y": torch.zeros_like(y[0])}
        elif separate:
            self.means = {"x": x.mean(0), "y": y.mean(0)}
        else:
            self.means = {"x": both.mean(0), "y": both.mean(0)}
        cx, cy = x - self.means["x"], y - self.means["y"]
        spread = float(torch.cat([cx, cy]).pow(2).sum(1).mean().sqrt() / max(both.shape[1], 1) ** 0.5)
        self.scale = spread if enabled and spread > 0 else 1.0

    def to_u(self, x: torch.Tensor, side: str) -> torch.Tensor:
        """Data units of measure `side` ("x" for P, "y" for Q) → standardized units."""
        return (x - self.means[side].to(x)) / self.scale

    def from_u(self, u: torch.Tensor, side: str) -> torch.Tensor:
        """Standardized units → data units of measure `side`."""
        return u * self.scale + self.means[side].to(u)

    def mean_shift_sq(self) -> float:
        """‖m_Q − m_P‖² in data units (the W2² part removed by separate centring)."""
        return float((self.means["y"] - self.means["x"]).pow(2).sum())


class NeuralOTBase:
    """Common constructor arguments and the fit prologue of the estimators (device, seed, progress)."""

    #: centre P and Q on their own means (see Standardizer); the sparse estimator turns this off
    separate_centering: bool = True

    def __init__(self, dim: int, *, batch_size: int, lr: float, device: str | torch.device, seed: int,
                 verbose: bool, standardize: bool):
        self.dim = check_positive_int("dim", dim)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.lr = check_positive("lr", lr)
        self.device = resolve_device(device)
        self.seed = int(seed)
        self.verbose = bool(verbose)
        self.standardize = bool(standardize)
        self.history_: dict[str, list[float]] = {}
        self.scaler_: Standardizer | None = None
        self._gen = torch.Generator().manual_seed(self.seed)

    def _intake(self, x, y) -> tuple[torch.Tensor, torch.Tensor]:
        xt, _ = to_points(x, "x", dim=self.dim, device=self.device)
        yt, _ = to_points(y, "y", dim=self.dim, device=self.device)
        if xt.shape[0] < 2 or yt.shape[0] < 2:
            raise ShapeError(f"fit needs at least 2 samples of each measure, got {xt.shape[0]} and {yt.shape[0]}")
        self.scaler_ = Standardizer(xt, yt, self.standardize, self.separate_centering)
        return self.scaler_.to_u(xt, "x"), self.scaler_.to_u(yt, "y")

    def _batch(self, data: torch.Tensor) -> torch.Tensor:
        idx = torch.randint(0, data.shape[0], (min(self.batch_size, data.shape[0]),), generator=self._gen)
        return data[idx.to(data.device)]

    def _progress(self, iters: int, desc: str):
        return tqdm(range(iters), desc=desc, disable=not self.verbose, leave=False, dynamic_ncols=True)

    def _log(self, **values: float) -> None:
        for k, v in values.items():
            self.history_.setdefault(k, []).append(float(v))

    def _require_fit(self) -> None:
        if self.scaler_ is None:
            raise InvalidValueError(f"{type(self).__name__} is not fitted; call fit(x, y) first")
