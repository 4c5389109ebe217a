"""Exceptions raised for user errors; each message names the bad value."""


class IcctrlError(Exception):
    """Base class of every error icctrl raises on purpose."""


class ShapeError(IcctrlError, ValueError):
    """An array or tensor has the wrong shape."""


class InvalidValueError(IcctrlError, ValueError):
    """A value is NaN, infinite, out of bounds or otherwise invalid."""


class UnknownNameError(IcctrlError, KeyError):
    """A model, solver, plant or option name is not known."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class NotConvexError(IcctrlError):
    """A certified-convex path was requested for something the core cannot certify."""


class CheckpointError(IcctrlError):
    """A checkpoint file is missing, corrupt, truncated, of a wrong version or unsafe."""


class InfeasibleError(IcctrlError, ValueError):
    """Bounds or constraints admit no solution."""


class IntegrationError(IcctrlError, RuntimeError):
    """A plant integration failed (stiff blow-up, non-finite state)."""


class DataError(IcctrlError, ValueError):
    """A dataset or table is malformed: gaps, NaNs, irregular sampling, hash mismatch."""
