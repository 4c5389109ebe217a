"""A DPP-compiled cvxpy LP kept in one persistent HiGHS model: a re-solve changes costs and row bounds only.

cvxpy compiles the problem once to conic form  min cᵀx + d  s.t.  A x + b ∈ {0}ᶻ × ℝ₊ⁿ,  lb ≤ x ≤ ub,  where
(c, d, A, b) are affine in the parameters (that is what DPP guarantees). The affine maps are read off once by
probing each parameter entry through cvxpy's `ParamConeProg.apply_parameters`; parameters that would change A
are refused. Each re-solve is then two sparse mat-vecs and a warm-started dual simplex run (the basis of the
previous step is kept), with no cvxpy canonicalisation, solver wrapper or result unpacking on the hot path.
"""

from __future__ import annotations

import contextlib
import os
import sys

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from icctrl.errors import InvalidValueError

_HIGHS_OK = "kOptimal"


@contextlib.contextmanager
def quiet_stdout():
    """Silence C-level writes to stdout (HiGHS prints a banner when its first instance is created)."""
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (
        AttributeError,
        OSError,
        ValueError,
    ):  # captured or replaced stream: nothing to silence at fd level
        yield
        return
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, fd)
        os.close(saved)


class CompiledLP:
    """Solve `problem` (an LP in its parameters) for new parameter values via a persistent HiGHS model."""

    def __init__(self, problem: cp.Problem, options: dict | None = None):
        import highspy

        data, _, _ = problem.get_problem_data(cp.HIGHS)
        pp = data[cp.settings.PARAM_PROB]
        dims = pp.cone_dims
        if dims.exp or dims.soc or dims.psd or getattr(dims, "p3d", None) or pp.is_mixed_integer():
            raise InvalidValueError(
                f"CompiledLP needs a continuous LP (zero and non-negative cones), got {dims}"
            )
        self.pp, self.params = pp, list(pp.parameters)
        self.n_zero, self.n_nonneg = int(dims.zero), int(dims.nonneg)
        base = {p.id: np.zeros(p.shape) for p in self.params}
        c0, d0, A0, b0 = pp.apply_parameters(base, keep_zeros=True)
        cols_c, cols_d, cols_b = [], [], []
        for p in self.params:
            for k in range(p.size):
                val = np.zeros(p.size)
                val[k] = 1.0
                c, d, A, b = pp.apply_parameters(
                    {**base, p.id: val.reshape(p.shape, order="F")}, keep_zeros=True
                )
                if (A - A0).count_nonzero():
                    raise InvalidValueError(
                        f"parameter {p.name()} changes the constraint matrix; CompiledLP only "
                        "handles parameters in costs and right-hand sides"
                    )
                cols_c.append(sp.csc_array((c - c0)[:, None]))
                cols_d.append(d - d0)
                cols_b.append(sp.csc_array((np.atleast_1d(b) - b0)[:, None]))
        self.c0, self.d0, self.b0 = np.asarray(c0, float), float(d0), np.asarray(b0, float)
        self.C = sp.hstack(cols_c).tocsr() if cols_c else sp.csr_array((self.c0.size, 0))
        self.D = np.asarray(cols_d, dtype=float)
        self.B = sp.hstack(cols_b).tocsr() if cols_b else sp.csr_array((self.b0.size, 0))
        n = self.c0.size
        lb = pp.lower_bounds if pp.lower_bounds is not None else np.full(n, -np.inf)
        ub = pp.upper_bounds if pp.upper_bounds is not None else np.full(n, np.inf)
        A = sp.csc_matrix(A0)
        self.m = A.shape[0]
        with quiet_stdout():
            self.highs = highspy.Highs()
        self.highs.setOptionValue("output_flag", False)
        for key, value in (options or {}).items():
            self.highs.setOptionValue(key, value)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n, self.m
        lp.col_cost_ = self.c0
        lp.col_lower_, lp.col_upper_ = np.asarray(lb, float), np.asarray(ub, float)
        lo, hi = self._row_bounds(self.b0)
        lp.row_lower_, lp.row_upper_ = lo, hi
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = A.indptr, A.indices, A.data
        self.highs.passModel(lp)
        self._all_cols = np.arange(n, dtype=np.int32)
        self._all_rows = np.arange(self.m, dtype=np.int32)

    def _row_bounds(self, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = -b.copy(), -b.copy()  # zero cone: A x + b = 0
        hi[self.n_zero :] = np.inf  # non-negative cone: A x + b >= 0
        return lo, hi

    def _theta(self) -> np.ndarray:
        vals = []
        for p in self.params:
            if p.value is None:
                raise InvalidValueError(f"parameter {p.name()} has no value")
            vals.append(np.asarray(p.value, dtype=float).reshape(-1, order="F"))
        return np.concatenate(vals) if vals else np.zeros(0)

    def solve(self) -> tuple[str, dict, float]:
        """(status, {variable id: value}, objective) for the parameters' current values."""
        theta = self._theta()
        c = self.c0 + self.C @ theta
        lo, hi = self._row_bounds(self.b0 + self.B @ theta)
        self.highs.changeColsCost(len(c), self._all_cols, c)
        self.highs.changeRowsBounds(self.m, self._all_rows, lo, hi)
        self.highs.run()
        status = self.highs.getModelStatus().name
        if status != _HIGHS_OK:
            return status, {}, float("nan")
        x = np.asarray(self.highs.getSolution().col_value)
        obj = float(c @ x + self.d0 + self.D @ theta)
        return "optimal", self.pp.split_solution(x), obj

    def run_time_ms(self) -> float:
        """HiGHS's own time for the last run."""
        return 1e3 * float(self.highs.getRunTime())
