"""Summary statistics of solve times and the within-run ratios with their goals."""

from __future__ import annotations

import numpy as np


def distribution(values, percentiles: bool = True) -> dict:
    """n, median, p90, p99, max, mean of a sample (None entries when it is empty)."""
    a = np.asarray([v for v in values if v is not None], dtype=float)
    keys = ("median", "p90", "p99", "max", "mean") if percentiles else ("median", "max", "mean")
    if a.size == 0:
        return {"n": 0, **{k: None for k in keys}}
    out = {"n": int(a.size), "median": float(np.median(a))}
    if percentiles:
        out["p90"], out["p99"] = float(np.percentile(a, 90)), float(np.percentile(a, 99))
    out["max"], out["mean"] = float(a.max()), float(a.mean())
    return out


def mean_profile(profiles: list[dict]) -> dict:
    """Mean ms per component over solves (means add up to the mean solve time; medians would not)."""
    if not profiles:
        return {}
    keys = sorted({k for p in profiles for k in p})
    return {k: float(np.mean([p.get(k, 0.0) for p in profiles])) for k in keys}
