"""Map-quality metrics of the W2 benchmark (L2-UVP, cosine) and displacement-sparsity measures."""

from __future__ import annotations

import numpy as np

from icctrl.errors import InvalidValueError, ShapeError
from icctrl.ot._arrays import as_float64


def _same_shape(**arrays: np.ndarray) -> None:
    shapes = {k: v.shape for k, v in arrays.items()}
    if len(set(shapes.values())) != 1:
        raise ShapeError(f"arrays must have the same shape, got {shapes}")


def l2_uvp(mapped, true_mapped, y=None) -> float:
    """100·E‖T̂(X) − T*(X)‖² / Var(Q) in percent; Var is the sum of per-coordinate variances of `y`.

    `y` are samples of the target Q (defaults to `true_mapped`, which are samples of Q when X ~ P).
    """
    m = as_float64(mapped, "mapped")
    t = as_float64(true_mapped, "true_mapped", dim=m.shape[1])
    _same_shape(mapped=m, true_mapped=t)
    yy = t if y is None else as_float64(y, "y", dim=m.shape[1])
    if yy.shape[0] < 2:
        raise ShapeError(f"y needs at least 2 samples to estimate Var(Q), got {yy.shape[0]}")
    var = float(yy.var(axis=0).sum())
    if var <= 0:
        raise InvalidValueError(f"Var(Q) of y is {var}; the target samples are all identical")
    return float(100.0 * ((m - t) ** 2).sum(axis=1).mean() / var)


def cosine(x, mapped, true_mapped) -> float:
    """E⟨T*(X) − X, T̂(X) − X⟩ / sqrt(E‖T*(X) − X‖²·E‖T̂(X) − X‖²): a ratio of expectations, as in the benchmark."""
    xx = as_float64(x, "x")
    m = as_float64(mapped, "mapped", dim=xx.shape[1])
    t = as_float64(true_mapped, "true_mapped", dim=xx.shape[1])
    _same_shape(x=xx, mapped=m, true_mapped=t)
    dt, dm = t - xx, m - xx
    den = np.sqrt((dt**2).sum(axis=1).mean() * (dm**2).sum(axis=1).mean())
    if den == 0:
        raise InvalidValueError("cosine is undefined: the true or the fitted displacement is zero everywhere")
    return float((dt * dm).sum(axis=1).mean() / den)


def displacement_dims(x, mapped, threshold: float = 1e-2) -> np.ndarray:
    """Per-sample count of coordinates whose displacement |T(x)ᵢ − xᵢ| exceeds `threshold`."""
    if not threshold > 0:
        raise InvalidValueError(f"threshold must be > 0, got {threshold}")
    xx = as_float64(x, "x")
    m = as_float64(mapped, "mapped", dim=xx.shape[1])
    _same_shape(x=xx, mapped=m)
    return (np.abs(m - xx) > threshold).sum(axis=1)


def support_recovery(x, mapped, true_support, threshold: float) -> dict[str, float]:
    """Precision and recall of the displaced coordinates (mean |Δᵢ| over samples > threshold) vs a known support."""
    if not threshold > 0:
        raise InvalidValueError(f"threshold must be > 0, got {threshold}")
    xx = as_float64(x, "x")
    m = as_float64(mapped, "mapped", dim=xx.shape[1])
    _same_shape(x=xx, mapped=m)
    truth = np.zeros(xx.shape[1], dtype=bool)
    idx = np.asarray(true_support, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= xx.shape[1]):
        raise InvalidValueError(f"true_support indices must lie in [0, {xx.shape[1]}), got {idx.min()}..{idx.max()}")
    truth[idx] = True
    found = np.abs(m - xx).mean(axis=0) > threshold
    tp = int((found & truth).sum())
    precision = tp / int(found.sum()) if found.any() else 0.0
    recall = tp / int(truth.sum()) if truth.any() else 0.0
    return {"precision": precision, "recall": recall, "found": int(found.sum()), "true": int(truth.sum())}
