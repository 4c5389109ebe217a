"""Exact export of trained models: CasADi (symbolic, exact derivatives; `second_order`: outputs, Jacobian and a
weighted Hessian read from the layers), cvxpy (epigraph form) and numpy forward-mode tangents (values and Jacobians
of a batch of periods)."""

from icctrl.export._casadi import WindowFunction, to_casadi, translate
from icctrl.export._cvxpy import Epigraph, to_cvxpy
from icctrl.export._second_order import second_order
from icctrl.export._tangent import PeriodTangents

__all__ = ["WindowFunction", "to_casadi", "translate", "Epigraph", "to_cvxpy", "PeriodTangents", "second_order"]
