"""Classic perturb-and-observe MPPT: step the duty, keep the direction while the delivered power rises."""

from __future__ import annotations

import numpy as np

from icctrl.errors import InvalidValueError


class PerturbObserve:
    """Every `every` periods compare the mean bus power with the previous window and step the duty by
    ±`delta` (reversing when the power fell). Blind to the bus-voltage bound, as the classic method is."""

    label = "perturb-observe"

    def __init__(self, delta: float = 0.01, every: int = 5, u_lb: float = 0.05, u_ub: float = 0.95):
        if not (np.isfinite(delta) and delta > 0):
            raise InvalidValueError(f"delta must be > 0, got {delta!r}")
        if isinstance(every, bool) or int(every) != every or every < 1:
            raise InvalidValueError(f"every must be a positive integer, got {every!r}")
        self.delta, self.every, self.lo, self.hi = float(delta), int(every), float(u_lb), float(u_ub)
        self.direction, self.last, self.acc, self.n = 1.0, None, 0.0, 0

    def update(self, power: float, duty: float) -> float:
        """Feed the power measured over the last period; returns the duty for the next one."""
        self.acc, self.n = self.acc + float(power), self.n + 1
        if self.n < self.every:
            return duty
        mean, self.acc, self.n = self.acc / self.n, 0.0, 0
        if self.last is not None and mean < self.last:
            self.direction = -self.direction
        self.last = mean
        return float(np.clip(duty + self.direction * self.delta, self.lo, self.hi))
