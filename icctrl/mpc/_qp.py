"""The QP of one real-time iteration, solved by a CasADi conic plugin, either sparse over all lifted variables
(inputs, states, slacks) or condensed: the states eliminated through the linearised dynamics, a small dense
QP in the inputs and slacks alone."""

from __future__ import annotations

import casadi as ca
import numpy as np

from icctrl.errors import UnknownNameError
from icctrl.mpc._derivatives import Buffered

#: Plugin options that silence output and report failure through the status instead of raising.
_QUIET = {
    "qrqp": {"print_iter": False, "print_header": False, "print_info": False},
    "osqp": {"osqp": {"verbose": False, "eps_abs": 1e-8, "eps_rel": 1e-8, "polish": True, "max_iter": 20000}},
    "piqp": {"piqp": {"verbose": False}},
    "qpoases": {"printLevel": "none", "sparse": False},
    "daqp": {},
    "proxqp": {"proxqp": {"eps_abs": 1e-9, "verbose": False}},
    "highs": {"highs": {"output_flag": False}},
}
QP_SOLVERS = tuple(p for p in _QUIET if ca.has_conic(p))
QP_FORMS = ("condensed", "sparse")


def conic(name: str, plugin: str, h: ca.Sparsity, a: ca.Sparsity) -> ca.Function:
    """A CasADi conic solver for the given Hessian and constraint sparsity."""
    if plugin not in QP_SOLVERS:
        raise UnknownNameError(f"unknown or unavailable QP solver {plugin!r}; available: {QP_SOLVERS}")
    opts = {**_QUIET[plugin], "error_on_fail": False}
    return ca.conic(name, plugin, {"h": h, "a": a}, opts)


class QP:
    """min ½zᵀHz + qᵀz  s.t.  lbz ≤ z ≤ ubz, lba ≤ Az ≤ uba, warm-started with the previous multipliers.
    H and A are passed as their nonzeros (column-major) in the sparsity given at construction."""

    def __init__(self, name: str, plugin: str, h: ca.Sparsity, a: ca.Sparsity):
        self.solver, self.plugin = conic(name, plugin, h, a), plugin
        self.call = Buffered(self.solver)
        self.n, self.m = h.size1(), a.size1()
        self.h_index, self.a_index = flat_index(h), flat_index(a)

    def solve(self, H, q, A, lba, uba, lbz, ubz) -> tuple[np.ndarray, bool, str, int]:
        """(z, success, status, iterations)."""
        res = self.call(h=H, g=q, a=A, lba=lba, uba=uba, lbx=lbz, ubx=ubz)
        st = self.call.stats()
        ok = bool(st.get("success", False))
        if ok:
            self.call.args["lam_x0"][:] = res["lam_x"]
            self.call.args["lam_a0"][:] = res["lam_a"]
        return res["x"].copy(), ok, str(st.get("return_status", "unknown")), int(st.get("iter_count", 0) or 0)

    def reset(self) -> None:
        self.call.args["lam_x0"][:] = 0.0
        self.call.args["lam_a0"][:] = 0.0


def flat_index(sp: ca.Sparsity) -> np.ndarray:
    """Positions of a sparsity's nonzeros in the column-major flattening of the dense matrix."""
    return np.asarray(sp.get_col(), dtype=int) * sp.size1() + np.asarray(sp.row(), dtype=int)


def dense(n: int, m: int) -> tuple[ca.Sparsity, ca.Sparsity]:
    return ca.Sparsity.dense(n, n), ca.Sparsity.dense(m, n)
