"""Battery limits used by the dispatch problem, checked once so that an impossible set is refused up front."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from icctrl.errors import InfeasibleError, InvalidValueError


@dataclass(frozen=True)
class Battery:
    """Energy (kWh) and power (kW) limits, one-way efficiencies, and the operating SOC window of a battery."""

    capacity_kwh: float = 13.5
    p_charge_max: float = 5.0  # kW drawn at the terminals
    p_discharge_max: float = 5.0  # kW delivered at the terminals
    eta_charge: float = 0.95  # stored / drawn
    eta_discharge: float = 0.95  # delivered / drained
    soc_min: float = 1.35  # kWh, lower operating limit
    soc_max: float = 12.825  # kWh, upper operating limit
    soc_terminal: float = 6.75  # kWh, the SOC each plan must end at or above

    def __post_init__(self):
        for name in (
            "capacity_kwh",
            "p_charge_max",
            "p_discharge_max",
            "eta_charge",
            "eta_discharge",
            "soc_min",
            "soc_max",
            "soc_terminal",
        ):
            v = getattr(self, name)
            if not isinstance(v, (int, float, np.floating, np.integer)) or not np.isfinite(v):
                raise InvalidValueError(f"Battery.{name} must be a finite number, got {v!r}")
        for name in ("capacity_kwh", "p_charge_max", "p_discharge_max"):
            if getattr(self, name) <= 0:
                raise InfeasibleError(f"Battery.{name} must be positive, got {getattr(self, name)!r}")
        for name in ("eta_charge", "eta_discharge"):
            if not 0 < getattr(self, name) <= 1:
                raise InvalidValueError(f"Battery.{name} must be in (0, 1], got {getattr(self, name)!r}")
        if not 0 <= self.soc_min <= self.soc_max <= self.capacity_kwh:
            raise InfeasibleError(
                f"Battery SOC window must satisfy 0 <= soc_min <= soc_max <= capacity, got "
                f"soc_min={self.soc_min!r}, soc_max={self.soc_max!r}, capacity={self.capacity_kwh!r}"
            )
        if not self.soc_min <= self.soc_terminal <= self.soc_max:
            raise InfeasibleError(
                f"Battery.soc_terminal={self.soc_terminal!r} kWh is outside the SOC window "
                f"[{self.soc_min!r}, {self.soc_max!r}]"
            )

    @classmethod
    def from_microgrid(
        cls, plant, soc_min_frac: float = 0.1, soc_max_frac: float = 0.95, terminal_frac: float = 0.5
    ) -> Battery:
        """The battery of a `plants.Microgrid`, with an operating window given as fractions of its capacity.
        """
        cap = float(plant.capacity_kwh)
        return cls(
            cap,
            float(plant.u_ub[0]),
            float(-plant.u_lb[0]),
            float(plant.eta_charge),
            float(plant.eta_discharge),
            soc_min_frac * cap,
            soc_max_frac * cap,
            terminal_frac * cap,
        )

    def soc_change(self, p_b, dt: float) -> np.ndarray:
        """SOC change (kWh) over dt hours of net terminal power p_b (kW, + = charging)."""
        p = np.asarray(p_b, dtype=float)
        return dt * (self.eta_charge * np.maximum(p, 0.0) - np.maximum(-p, 0.0) / self.eta_discharge)

    def power_window(self, soc: float, dt: float) -> tuple[float, float]:
        """(p_min, p_max) kW that keep the next SOC inside [soc_min, soc_max] (empty window clipped to 0)."""
        hi = min(self.p_charge_max, max(0.0, (self.soc_max - soc) / (dt * self.eta_charge)))
        lo = max(-self.p_discharge_max, min(0.0, -(soc - self.soc_min) * self.eta_discharge / dt))
        return lo, hi
