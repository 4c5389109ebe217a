"""CasADi QP plugins on the condensed real-time-iteration QPs of one closed loop (shipped IC-LSTM 2×64, N = 10,
papers' three starts): the QPs are recorded once with the default (daqp), then each plugin solves the same
sequence warm-started; median and p99 ms and how many solutions differ from daqp's by more than 1e-4.

    python examples/rti_qp_plugins.py [--plugins daqp,qrqp,hpipm,piqp,osqp]

hpipm is given the one-stage layout it needs for a dense QP (N = 1, all variables inputs of stage 0, all rows
general constraints of stage 0); without it CasADi 3.8.2's interface crashes the process.
"""

from __future__ import annotations

import argparse
import os
import time

import casadi as ca
import numpy as np
import torch

import icctrl
from icctrl.bench._run import cstr_starts
from icctrl.mpc import default_controller
from icctrl.mpc._qp import _QUIET, QP, dense
from plants import CSTR


def recorded_qps(steps: int) -> tuple[list, int, int]:
    ctrl = default_controller("cstr", icctrl.load_default("cstr", "iclstm").double().eval(), solver="rti",
                              horizon=10, lyapunov=False)
    be, qps = ctrl.backend, []
    feedback = be.feedback

    def record(p):
        qps.append((dict(be._lin), np.array(p)))
        return feedback(p)

    be.feedback = record
    plant = CSTR()
    for x0 in cstr_starts(0, 0):
        ctrl.reset()
        x = np.asarray(x0, float)
        for _ in range(steps):
            u, _info = ctrl.step(x)
            x = plant.step(x, u)
            ctrl.prepare()
    return qps, len(be.z_idx), len(be.o_idx)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plugins", default="daqp,qrqp,hpipm,piqp,osqp")
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(1)
    qps, nz, na = recorded_qps(args.steps)
    h, a = dense(nz, na)
    _QUIET.setdefault("hpipm", {"hpipm": {"iter_max": 100, "warm_start": 1}, "N": 1, "nx": [0, 0],
                                "nu": [nz, 0], "ng": [na, 0]})
    print(f"load {os.getloadavg()[0]:.1f}; {len(qps)} QPs of {nz} variables, {na} rows")
    ref = None
    for plugin in args.plugins.split(","):
        if not ca.has_conic(plugin):
            print(f"| {plugin} | not available |")
            continue
        qp = QP("rti_qp", plugin, h, a) if plugin != "hpipm" else _hpipm(h, a)
        ts, zs, ok = [], [], 0
        for rep in range(3):
            qp.reset()
            for L, p in qps:
                dp = p - L["p"]
                s, q = L["Sp"] @ dp, L["q0"] + L["qp"] @ dp
                t0 = time.perf_counter()
                z, good, _, _ = qp.solve(L["Hqp"], q, L["A"], L["lba"] - s, L["uba"] - s, L["lbz"], L["ubz"])
                ts.append(time.perf_counter() - t0)
                if rep == 0:
                    zs.append(z)
                    ok += good
        Z = np.array(zs)
        ref = Z if ref is None else ref
        off = int((np.abs(Z - ref).max(axis=1) > 1e-4).sum())
        print(f"| {plugin} | {np.median(ts) * 1e3:.3f} | {np.percentile(ts, 99) * 1e3:.2f} | {ok}/{len(qps)} | "
              f"{off} |")


def _hpipm(h, a) -> QP:
    """A QP through hpipm: QP_SOLVERS lists only the plugins the engine offers, so it is built here."""
    from icctrl.mpc import _qp

    saved = _qp.QP_SOLVERS
    _qp.QP_SOLVERS = (*saved, "hpipm")
    try:
        return QP("rti_qp", "hpipm", h, a)
    finally:
        _qp.QP_SOLVERS = saved


if __name__ == "__main__":
    main()
