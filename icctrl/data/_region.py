"""Where a model was trained: the box of its training states and inputs, and a k-nearest-neighbour distance test
on the training states with a threshold calibrated on held-out training points. Stored with every checkpoint."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from icctrl.errors import DataError, ShapeError

#: Stored reference points of the distance test (a seeded subsample of the training states).
MAX_POINTS = 1500
#: The state and input boxes of the training data, widened by this fraction of its span (held-out extremes stay inside).
BOX_MARGIN = 0.05


@dataclass
class TrainingRegion:
    """`contains(x)`: x inside the (widened) training box and within `threshold` of the training states.

    The distance is the mean Euclidean distance to the `k` nearest stored training states, in units of the
    training standard deviation of each state. `threshold` = `margin` × the largest such distance of a
    held-out calibration part of the training states, so held-out points of the training distribution pass.
    """

    state_names: tuple[str, ...]
    x_lb: np.ndarray
    x_ub: np.ndarray
    u_lb: np.ndarray
    u_ub: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    points: np.ndarray  # standardised reference states (M × nx)
    threshold: float
    k: int = 5
    margin: float = 1.25

    @property
    def nx(self) -> int:
        return len(self.x_lb)

    @classmethod
    def fit(cls, states, inputs, *, names=(), k: int = 5, margin: float = 1.25, calibration: float = 0.2,
            seed: int = 0) -> TrainingRegion:
        """Fit on training states (n × nx) and inputs (m × nu)."""
        X = np.unique(np.asarray(states, dtype=float), axis=0)
        Uin = np.asarray(inputs, dtype=float)
        if X.ndim != 2 or len(X) < 2 * k + 2 or Uin.ndim != 2:
            raise DataError(f"a training region needs at least {2 * k + 2} distinct states (n × nx) and inputs "
                            f"(m × nu), got {np.shape(states)} and {np.shape(inputs)}")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Uin))):
            raise DataError("training states or inputs contain non-finite values")
        rng = np.random.default_rng(seed)
        mean, std = X.mean(axis=0), X.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        Z = rng.permutation((X - mean) / std)
        n_cal = max(k + 1, int(round(calibration * len(Z))))
        cal, ref = Z[:n_cal], Z[n_cal:]
        ref = ref[: MAX_POINTS] if len(ref) > MAX_POINTS else ref
        from scipy.spatial import cKDTree

        threshold = margin * float(_knn(cKDTree(ref), cal, k).max())
        return cls(tuple(names) or tuple(f"x{i}" for i in range(X.shape[1])), X.min(axis=0), X.max(axis=0),
                   Uin.min(axis=0), Uin.max(axis=0), mean, std, ref, threshold, k, margin)

    def _states(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if x.ndim == 0 or x.shape[-1] != self.nx:
            raise ShapeError(f"states must have {self.nx} entries ({self.state_names}), got shape {x.shape}")
        return x

    @cached_property
    def _tree(self):
        from scipy.spatial import cKDTree

        return cKDTree(self.points)

    def distance(self, x) -> np.ndarray:
        """k-NN distance of states (..., nx) to the training states, in training standard deviations."""
        x = self._states(x)
        flat = ((x.reshape(-1, self.nx) - self.mean) / self.std)
        return _knn(self._tree, flat, self.k).reshape(x.shape[:-1])

    def contains(self, x) -> np.ndarray:
        """True for states (..., nx) inside the training box and near the training states."""
        x = self._states(x)
        lo, hi = self._boxes["x"]
        boxed = np.all((x >= lo) & (x <= hi), axis=-1)
        if not boxed.any():  # nothing to ask the neighbour search
            return boxed
        return boxed & (self.distance(x) <= self.threshold)

    def contains_inputs(self, u) -> np.ndarray:
        """True for inputs (..., nu) inside the (widened) box of the training inputs."""
        lo, hi = self._boxes["u"]
        u = np.asarray(u, dtype=float)
        return np.all((u >= lo) & (u <= hi), axis=-1)

    def covers(self, states, inputs=None) -> bool:
        """Whether all states (n × nx) and inputs (m × nu) lie in the region: `contains` and `contains_inputs`
        together, the neighbour search skipped when an input or every state is outside its box (a controller's
        per-step test)."""
        if inputs is not None and not self.contains_inputs(inputs).all():
            return False
        return bool(self.contains(self._states(states).reshape(-1, self.nx)).all())

    @cached_property
    def _boxes(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The training boxes of states and inputs widened by BOX_MARGIN of their spans (once)."""
        out = {}
        for key, lb, ub in (("x", self.x_lb, self.x_ub), ("u", self.u_lb, self.u_ub)):
            span = ub - lb
            tol = BOX_MARGIN * np.where(span > 0, span, 1.0)
            out[key] = (lb - tol, ub + tol)
        return out

    # -- storage -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"kind": "knn_box", "state_names": list(self.state_names), "x_lb": self.x_lb.tolist(),
                "x_ub": self.x_ub.tolist(), "u_lb": self.u_lb.tolist(), "u_ub": self.u_ub.tolist(),
                "mean": self.mean.tolist(), "std": self.std.tolist(), "points": self.points.tolist(),
                "threshold": self.threshold, "k": self.k, "margin": self.margin}

    @classmethod
    def from_dict(cls, d: dict) -> TrainingRegion:
        try:
            arr = {key: np.asarray(d[key], dtype=float) for key in ("x_lb", "x_ub", "u_lb", "u_ub", "mean", "std",
                                                                    "points")}
            return cls(tuple(d["state_names"]), threshold=float(d["threshold"]), k=int(d["k"]),
                       margin=float(d["margin"]), **arr)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"stored training region is malformed: {type(exc).__name__}: {exc}") from None

    @classmethod
    def from_dataset(cls, ds, nx: int | None = None, split: str = "train") -> TrainingRegion:
        """The region of a dataset's training split: states are the first `nx` input features (from the
        dataset meta, else the plant named in it), the planned inputs the rest."""
        nx = nx or state_count(ds)
        X, _ = ds.arrays(split, scaled=False)
        feats = X.reshape(-1, X.shape[-1])
        states = feats[:, :nx]
        rest = feats[:, nx:]
        n_rest = rest.shape[1]
        nu = int(ds.meta.get("nu") or _plant_attr(ds.meta, "nu") or n_rest)
        return cls.fit(states, rest.reshape(-1, nu), names=tuple(ds.input_names[:nx]))


def _knn(tree, Z: np.ndarray, k: int) -> np.ndarray:
    dist, _ = tree.query(Z, k=k)
    return np.asarray(dist).reshape(len(Z), -1).mean(axis=1)


def _plant_attr(meta: dict, attr: str):
    cls_path = str(meta.get("plant_class") or "")
    if not cls_path.startswith("plants."):
        return None
    mod, _, name = cls_path.rpartition(".")
    try:
        return getattr(getattr(importlib.import_module(mod), name)(), attr)
    except Exception:  # a plant that cannot be built without arguments: the caller says nx
        return None


def state_count(ds) -> int:
    """Number of state features leading the inputs of a dataset."""
    nx = ds.meta.get("nx") or _plant_attr(ds.meta, "nx")
    if not nx:
        if ds.meta.get("target_fn") is None and all(n in ds.input_names for n in ds.output_names):
            nx = len(ds.output_names)
        else:
            raise DataError("cannot tell how many input features are states: the dataset meta names no nx and "
                            "no plant; pass nx")
    return int(nx)
