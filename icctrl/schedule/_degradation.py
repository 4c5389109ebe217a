"""Battery degradation / converter-loss cost: a documented convex ground truth and the ICNN that learns it.

The learned cost enters the dispatch LP in two exact ways: the generic epigraph export
(`icctrl.export.to_cvxpy`) and the network's own affine pieces (a scalar ReLU network is piecewise linear; a
convex one is the maximum of its pieces on any interval), which gives the same optimum with far fewer
variables."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from icctrl.convexity import Certificate, certify
from icctrl.errors import InvalidValueError, NotConvexError
from icctrl.nn import ICNN, Scaled, SequenceModel, build

_PIECEWISE_LINEAR = ("relu", "leaky_relu")
PENALTY = 0.1


@dataclass(frozen=True)
class DegradationTruth:
    """Synthetic ground-truth cost rate r(p) in €/h of the battery terminal power p in kW (+ = charging).

    r(p) = a·p² + b_charge·max(p, 0) + b_discharge·max(−p, 0) + k_stress·max(|p| − p_knee, 0)²
    a·p²: resistive cell and converter losses plus heat-driven ageing; b_·|p|: throughput ageing (pack cost
    over its cycle life, heavier on discharge); k_stress: extra ageing above the C-rate knee.
    Convex, r(0) = 0 minimal.
    """

    a: float = 0.004  # €/(kW²·h)
    b_charge: float = 0.02  # €/kWh
    b_discharge: float = 0.03  # €/kWh
    k_stress: float = 0.02  # €/(kW²·h)
    p_knee: float = 3.5  # kW

    def __post_init__(self):
        for name in ("a", "b_charge", "b_discharge", "k_stress", "p_knee"):
            v = getattr(self, name)
            if not np.isfinite(v) or v < 0:
                raise InvalidValueError(f"DegradationTruth.{name} must be finite and >= 0, got {v!r}")

    def __call__(self, p) -> np.ndarray:
        """Cost rate r(p) in €/h (numpy, elementwise)."""
        p = np.asarray(p, dtype=float)
        over = np.maximum(np.abs(p) - self.p_knee, 0.0)
        return (
            self.a * p**2
            + self.b_charge * np.maximum(p, 0.0)
            + self.b_discharge * np.maximum(-p, 0.0)
            + self.k_stress * over**2
        )

    def cvxpy_split(self, p_charge, p_discharge):
        """r(p_c) + r(−p_d) as a cvxpy expression of non-negative charge/discharge powers (for the oracle)."""
        import cvxpy as cp

        def side(p, b):
            return self.a * cp.square(p) + b * p + self.k_stress * cp.square(cp.pos(p - self.p_knee))

        return side(p_charge, self.b_charge) + side(p_discharge, self.b_discharge)


@dataclass
class Degradation:
    """A trained scalar ICNN cost rate c(p) (€/h) with its certificate, fit error and exact affine pieces."""

    model: SequenceModel
    p_min: float
    p_max: float
    certificate: Certificate
    fit: dict = field(default_factory=dict)

    def __call__(self, p) -> np.ndarray:
        """Network value c(p) in €/h (numpy in, numpy out, float64)."""
        dtype = next(self.model.parameters()).dtype
        x = torch.as_tensor(np.asarray(p, dtype=np.float64).reshape(-1, 1, 1), dtype=dtype)
        with torch.no_grad():
            y = self.model(x).reshape(-1).double().numpy()
        return y.reshape(np.shape(p))

    def pieces(self, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
        """(slopes, intercepts) with c(p) = max_k(slope_k·p + intercept_k) exactly for p in [lo, hi]."""
        return affine_pieces(self.model, lo, hi)

    def segments(self, length: float, side: int) -> tuple[np.ndarray, np.ndarray]:
        """(slopes, widths) of c along p = side·q for q in [0, length] (side = +1 charging, −1 discharging):

        c(side·q) = c(0) + min {Σ slope_k·δ_k : Σ δ_k = q, 0 ≤ δ_k ≤ width_k},
        exact because the slopes increase (the LP fills the cheapest segments first)."""
        if side not in (1, -1):
            raise InvalidValueError(f"side must be +1 or -1, got {side!r}")
        if not np.isfinite(length) or length <= 0:
            raise InvalidValueError(f"segment length must be positive, got {length!r}")
        p, y = breakpoints(self.model, *sorted((0.0, side * float(length))))
        if side < 0:
            p, y = -p[::-1], y[::-1]
        return np.diff(y) / np.diff(p), np.diff(p)


def _layers(model: SequenceModel) -> tuple[ICNN, float, float, float, float]:
    """The inner ICNN and the scalar affine maps around it (identity when the model is a bare ICNN)."""
    if isinstance(model, Scaled):
        inner = model.model
        io, isc, oo, osc = (
            float(t.reshape(-1)[0])
            for t in (model.in_offset, model.in_scale, model.out_offset, model.out_scale)
        )
    else:
        inner, io, isc, oo, osc = model, 0.0, 1.0, 0.0, 1.0
    if not isinstance(inner, ICNN) or inner.n_in != 1 or inner.n_out != 1 or inner.quadratic:
        raise InvalidValueError(
            f"affine pieces need a scalar ICNN (n_in = n_out = 1, quadratic = 0), got "
            f"{type(inner).__name__} with config {inner.config}"
        )
    act = inner.config.get("activation", "relu")
    if act not in _PIECEWISE_LINEAR:
        raise InvalidValueError(
            f"affine pieces need a piecewise-linear activation {_PIECEWISE_LINEAR}, got {act!r}; "
            "use the epigraph formulation"
        )
    return inner, io, isc, oo, osc


def _pre_activations(inner: ICNN, u: np.ndarray) -> list[np.ndarray]:
    """Pre-activations (n_points, hidden) of every hidden layer and the output (n_points,) at scaled inputs u.
    """
    W = [lin.weight.detach().double().numpy() for lin in inner.skip]
    b = [lin.bias.detach().double().numpy() for lin in inner.skip]
    H = [lin.weight.detach().double().numpy() for lin in inner.hidden_w]
    slope = 0.01 if inner.config.get("activation") == "leaky_relu" else 0.0
    x = u.reshape(-1, 1)
    pres = [x @ W[0].T + b[0]]
    z = np.maximum(pres[0], slope * pres[0])
    for k in range(1, len(H) + 1):
        pre = z @ H[k - 1].T + x @ W[k].T + b[k]
        pres.append(pre)
        z = np.maximum(pre, slope * pre)
    pres[-1] = pres[-1].reshape(-1)
    return pres


def breakpoints(
    model: SequenceModel, lo: float, hi: float, tol: float = 1e-10
) -> tuple[np.ndarray, np.ndarray]:
    """Exact knots p_0 = lo < … < p_K = hi of a scalar ReLU ICNN on [lo, hi] and its values there (affine
    between).

    Knots are added layer by layer: inside an interval without knots every earlier layer is affine, so each
    pre-activation of the next layer is affine there and crosses zero at most once (found by interpolation).
    Knots where the slope does not change are dropped. Raises NotConvexError if the slopes decrease.
    """
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise InvalidValueError(f"breakpoints need finite lo < hi, got lo={lo!r}, hi={hi!r}")
    inner, io, isc, oo, osc = _layers(model)
    knots = np.array([(lo - io) / isc, (hi - io) / isc])
    for layer in range(len(inner.hidden_w)):  # hidden layers carry the kinks
        pre = _pre_activations(inner, knots)[layer]
        a, b, pa, pb = knots[:-1], knots[1:], pre[:-1], pre[1:]
        cross = pa * pb < 0
        rows, _ = np.nonzero(cross)
        roots = a[rows] + (b[rows] - a[rows]) * pa[cross] / (pa[cross] - pb[cross])
        knots = np.unique(np.concatenate([knots, roots]))
    knots = knots[np.concatenate([[True], np.diff(knots) > tol * max(1.0, np.ptp(knots))])]
    knots[-1] = (hi - io) / isc
    p = knots * isc + io
    y = _pre_activations(inner, knots)[-1] * osc + oo
    slopes = np.diff(y) / np.diff(p)
    scale = max(1.0, np.abs(slopes).max())
    if np.any(np.diff(slopes) < -1e-8 * scale):
        raise NotConvexError(f"the network is not convex on [{lo}, {hi}]: slopes {slopes.tolist()} decrease")
    keep = np.concatenate([[True], np.abs(np.diff(slopes)) > 1e-12 * scale, [True]])
    return p[keep], y[keep]


def affine_pieces(model: SequenceModel, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """(slopes, intercepts) with c(p) = max_k(slope_k·p + intercept_k) exactly on [lo, hi] (c convex,
    piecewise
    linear: the maximum of its pieces on any interval)."""
    p, y = breakpoints(model, lo, hi)
    slopes = np.diff(y) / np.diff(p)
    return slopes, y[:-1] - slopes * p[:-1]


def _anchor_at_zero(model: Scaled, p_min: float, p_max: float) -> dict:
    """Subtract c(0) + g·p, with g the subgradient of c at 0 nearest to 0, through the output layer's free
    skip weights: the cost stays convex and exactly representable, and becomes minimal (zero) at p = 0 like
    the truth.

    A minimum away from 0 would reward idling at a small power, i.e. charging and discharging at once."""
    p, y = breakpoints(model, p_min, p_max)
    slopes = np.diff(y) / np.diff(p)
    k = int(np.searchsorted(p, 0.0))  # p[k-1] < 0 <= p[k]
    at_knot = k < len(p) and abs(p[k]) <= 1e-12 * max(1.0, p_max - p_min)
    left = slopes[k - 1] if k > 0 else slopes[0]
    right = slopes[k] if at_knot and k < len(slopes) else slopes[min(k - 1, len(slopes) - 1)]
    g = float(np.clip(0.0, left, right))
    c0 = float(np.interp(0.0, p, y))
    isc, osc = float(model.in_scale[0]), float(model.out_scale[0])
    out = model.model.skip[-1]
    with torch.no_grad():
        out.weight -= g * isc / osc
        out.bias -= c0 / osc
    return {"removed_value_at_0": c0, "removed_slope": g}


def _spread_kinks(inner: ICNN, lo: float, hi: float) -> None:
    """Start the first layer with its kinks spread evenly over the scaled input range, one of them at 0, half
    of the
    units opening to each side: a 1-D piecewise-linear fit then only has to learn the slopes."""
    n = inner.skip[0].out_features
    kinks = np.sort(np.concatenate([[0.0], np.linspace(lo, hi, n + 1)[1:-1]]))[:n]
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    with torch.no_grad():
        inner.skip[0].weight.copy_(torch.as_tensor(2.0 * sign).reshape(n, 1))
        inner.skip[0].bias.copy_(torch.as_tensor(-2.0 * sign * kinks))


def fit_degradation(
    truth: DegradationTruth | None = None,
    p_max: float = 5.0,
    p_min: float | None = None,
    hidden: int = 16,
    layers: int = 2,
    steps: int = 800,
    lr: float = 0.03,
    seed: int = 0,
) -> Degradation:
    """Train `icnn` (hidden × layers, ReLU) on the ground truth over [p_min, p_max] with Adam, then certify
    it.

    Inputs and outputs are scaled inside the model (`Scaled`, positive scales, so the certificate carries
    over)."""
    truth = truth or DegradationTruth()
    p_min = -p_max if p_min is None else p_min
    if not (np.isfinite(p_min) and np.isfinite(p_max) and p_min < 0 < p_max):
        raise InvalidValueError(
            f"fit_degradation needs p_min < 0 < p_max, got p_min={p_min!r}, p_max={p_max!r}"
        )
    if int(steps) != steps or steps < 1:
        raise InvalidValueError(f"steps must be a positive integer, got {steps!r}")
    torch.manual_seed(seed)
    inner = build("icnn", n_in=1, n_out=1, hidden=hidden, layers=layers, activation="relu")
    scale_in = max(p_max, -p_min)
    scale_out = float(max(truth(p_max), truth(p_min), 1e-9))
    _spread_kinks(inner, p_min / scale_in, p_max / scale_in)
    model = Scaled(inner, 0.0, scale_in, 0.0, scale_out).double()
    grid = np.linspace(p_min, p_max, 401)
    x = torch.as_tensor(grid.reshape(-1, 1, 1))
    y = torch.as_tensor(truth(grid).reshape(-1, 1, 1) / scale_out)
    eps = 1e-3 * scale_in
    probe = torch.tensor([-eps, 0.0, eps], dtype=torch.float64).reshape(3, 1, 1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(steps), eta_min=lr * 0.02)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 1-input network: thread hand-offs cost more than the arithmetic
    try:
        for _ in range(int(steps)):
            opt.zero_grad()
            loss = torch.mean((model(x) / scale_out - y) ** 2)
            # keep the minimum at p = 0 (as in the truth): one-sided slopes at 0 must point upwards
            c = model(probe)[:, 0, 0] / scale_out
            loss = loss + PENALTY * (torch.relu(c[1] - c[0]) + torch.relu(c[1] - c[2]))
            loss.backward()
            opt.step()
            sched.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    anchor = _anchor_at_zero(model, p_min, p_max)
    cert = certify(model)
    if not cert.convex:
        raise NotConvexError(f"trained degradation model is not certified convex: {cert.reasons}")
    deg = Degradation(model, float(p_min), float(p_max), cert)
    err = deg(grid) - truth(grid)
    deg.fit = {
        "max_abs_error_eur_per_h": float(np.abs(err).max()),
        "rmse_eur_per_h": float(np.sqrt(np.mean(err**2))),
        "range_eur_per_h": scale_out,
        "relative_max_error": float(np.abs(err).max() / scale_out),
        "anchor": anchor,
        "adam_steps": int(steps),
        "hidden": hidden,
        "layers": layers,
        "activation": "relu",
    }
    return deg
