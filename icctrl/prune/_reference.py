"""The same layer program written in cvxpy: the independent reference the ADMM is checked against."""

from __future__ import annotations

import cvxpy as cp
import numpy as np


def net_trim_layer_cvxpy(X, Y, *, epsilon: float, relu: bool = True, V=None, solver: str = "CLARABEL"):
    """Solve min ‖W‖₁ s.t. ‖(XW − Y)_Ω‖_F ≤ ε‖Y‖_F, (XW)_Ωᶜ ≤ V with a conic solver; returns (W, objective)."""
    X, Y = np.asarray(X, float), np.asarray(Y, float)
    active = Y > 0 if relu else np.ones(Y.shape, bool)
    V = np.zeros_like(Y) if V is None else np.asarray(V, float)
    W = cp.Variable((X.shape[1], Y.shape[1]))
    XW = X @ W
    cons = [cp.norm(cp.multiply(active, XW - Y), "fro") <= epsilon * np.linalg.norm(Y)]
    if not active.all():
        cons.append(cp.multiply(~active, XW - V) <= 0)
    prob = cp.Problem(cp.Minimize(cp.sum(cp.abs(W))), cons)
    prob.solve(solver=solver)
    return W.value, float(prob.value)
