"""The do-mpc anchor: the same exported one-period model (a discrete CasADi MX model), the same costs, bounds
and offset-free estimate, solved by do-mpc's MPC with its default Ipopt settings (output silenced).

Optional: needs `pip install icctrl[bench]` (do-mpc). The cell reports status "error" without it.
"""

from __future__ import annotations

import time
import warnings

import casadi as ca
import numpy as np

from icctrl.errors import InvalidValueError, UnknownNameError
from icctrl.mpc._predictors import call_period

DOMPC_SOLVER = "dompc"
_QUIET = {"ipopt.print_level": 0, "ipopt.sb": "yes", "print_time": 0}


def available() -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # do-mpc warns about its optional ONNX/OPC UA features on import
            import do_mpc  # noqa: F401
    except ImportError:
        return False
    return True


class DoMPCSolver:
    """A Controller back end running do-mpc on the problem's model and costs (state models without the LMPC
    contraction or rate limits: do-mpc states its constraints on every stage)."""

    def __init__(self, problem):
        if not available():
            raise UnknownNameError("solver 'dompc' needs do-mpc: pip install 'icctrl[bench]'")
        import do_mpc

        pb = problem
        if pb.predictor.kind != "state" or pb.period_fn is None or pb.nd:
            raise InvalidValueError(f"the do-mpc anchor needs a one-period state model without measured "
                                    f"disturbances, got {pb.predictor.label}")
        extra = (pb.lyapunov, pb.du_max, pb.terminal_cost, pb.terminal_set)
        if any(e is not None for e in extra) or pb.bounded_states or pb.path:
            raise InvalidValueError("the do-mpc anchor has no first-step LMPC contraction, rate limits, terminal "
                                    "terms, state bounds or path constraints; build the problem without them")
        self.problem = pb
        model = do_mpc.model.Model("discrete", "MX")
        x = model.set_variable("_x", "x", (pb.nx, 1))
        u = model.set_variable("_u", "u", (pb.nu, 1))
        d = model.set_variable("_tvp", "d", (pb.nx, 1))
        model.set_rhs("x", call_period(pb.predictor.step_function(), x, u, ca.DM.zeros(0, 1)) + d)
        model.setup()
        mpc = do_mpc.controller.MPC(model)
        mpc.settings.n_horizon = pb.N
        mpc.settings.t_step = 1.0
        mpc.settings.store_full_solution = True
        mpc.settings.nlpsol_opts = dict(_QUIET)
        e = x - ca.DM(pb.x_ref)
        du = (u - ca.DM(pb.u_ref)) / ca.DM(pb.u_half)
        track = ca.mtimes([e.T, ca.DM(pb.Q), e]) / pb.cost_scale
        # our cost weighs x̂_1..x̂_N and u_0..u_(N-1); do-mpc's stage term sees x_0..x_(N-1), its terminal term x_N
        mpc.set_objective(lterm=track + ca.sum1(ca.DM(pb.R) * du * du) / pb.cost_scale, mterm=track)
        mpc.set_rterm(u=np.zeros(pb.nu))
        mpc.bounds["lower", "_u", "u"] = pb.u_lb
        mpc.bounds["upper", "_u", "u"] = pb.u_ub
        mpc.scaling["_u", "u"] = pb.u_half
        mpc.scaling["_x", "x"] = pb.x_scale
        self._d = np.zeros(pb.nx)
        tvp = mpc.get_tvp_template()

        def tvp_fun(t_now):
            for k in range(pb.N + 1):
                tvp["_tvp", k, "d"] = self._d
            return tvp

        mpc.set_tvp_fun(tvp_fun)
        mpc.setup()
        self.mpc = mpc
        self.solver = mpc.S  # the nlpsol, for the per-oracle profile
        self._started = False

    def solve(self, p: np.ndarray, v0: np.ndarray):
        from icctrl.mpc._solvers import SolveResult

        pb = self.problem
        x0 = p[: pb.nx]
        self._d = pb.block(p, "bias")
        if not self._started:  # do-mpc's own initial guess: x0 and the reference input everywhere
            self.mpc.x0 = x0
            self.mpc.u0 = pb.u_ref
            self.mpc.set_initial_guess()
            self._started = True
        t0 = time.perf_counter()
        try:
            self.mpc.make_step(x0.reshape(-1, 1))
        except RuntimeError as exc:
            return SolveResult(None, False, f"solver_error: {exc}".splitlines()[0], 0, np.nan,
                               time.perf_counter() - t0)
        elapsed = time.perf_counter() - t0
        stats = self.mpc.solver_stats
        status = str(stats.get("return_status", "unknown"))
        ok = bool(stats.get("success", False))
        opt = self.mpc.opt_x_num_unscaled  # physical units (opt_x_num holds the scaled variables)
        U = np.array([np.asarray(opt["_u", k, 0, "u"]).reshape(-1) for k in range(pb.N)])
        X = np.array([np.asarray(opt["_x", k + 1, 0, 0, "x"]).reshape(-1) for k in range(pb.N)])
        parts = [pb.normalised(U)]
        if pb.n_states:
            parts.append(((X - pb.x_ref) / pb.x_scale).T.reshape(-1))
        w = np.concatenate([*parts, np.zeros(pb.n_slack)])
        # do-mpc keeps no objective value; the closed-loop cost is the comparison
        return SolveResult(w, ok, status, int(stats.get("iter_count", 0)), np.nan, elapsed)

    def reset(self) -> None:
        self._started = False
