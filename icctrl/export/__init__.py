"""Exact export of trained models: CasADi (symbolic, exact derivatives) and cvxpy (epigraph form)."""

from icctrl.export._casadi import WindowFunction, to_casadi, translate
from icctrl.export._cvxpy import Epigraph, to_cvxpy

__all__ = ["WindowFunction", "to_casadi", "translate", "Epigraph", "to_cvxpy"]
