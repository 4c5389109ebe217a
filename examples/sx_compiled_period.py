"""CasADi's SX route for a learned model's RTI derivatives: one period's values and Jacobian expanded to scalar
SX, generated as C, compiled with gcc, then mapped over the N intervals and timed against the MX function.

    nice -n 19 python examples/sx_compiled_period.py --model lstm [--flags -O1]

The expanded 2×32 LSTM period is about 470 k instructions; gcc needs minutes and several GB for it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time

import casadi as ca
import numpy as np

import icctrl
from icctrl.bench._derivs import period_jacobians
from icctrl.mpc import OneStepModel
from icctrl.mpc._derivatives import Buffered


def median_ms(call, X, U, repeats: int = 50) -> float:
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        call(x=X, u=U)
        ts.append(time.perf_counter() - t)
    return 1e3 * float(np.median(ts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lstm", help="a shipped CSTR default")
    ap.add_argument("--flags", default="-O1", help="gcc optimisation flag")
    ap.add_argument("--horizon", type=int, default=10)
    args = ap.parse_args()
    model = icctrl.load_default("cstr", args.model).double().eval()
    period = OneStepModel(model, 2, 2, window=5).step_function()
    sx = period_jacobians(period, 2, 2, 1).expand()
    print(f"one period: {sx.n_instructions()} SX instructions")
    folder = tempfile.mkdtemp()
    name = f"sx_{args.model}"
    g = ca.Function(name, sx.sx_in(), sx.call(sx.sx_in()), sx.name_in(), sx.name_out())
    gen = ca.CodeGenerator(f"{name}.c", {"with_header": False})
    gen.add(g)
    gen.generate(folder + os.sep)
    t0 = time.perf_counter()
    subprocess.run(["gcc", args.flags, "-fPIC", "-shared", f"{name}.c", "-o", f"{name}.so"], cwd=folder, check=True)
    print(f"C {os.path.getsize(os.path.join(folder, name + '.c')) / 1e6:.1f} MB, compiled in "
          f"{time.perf_counter() - t0:.0f} s")
    rng = np.random.default_rng(0)
    N = args.horizon
    X = np.array([[0.5], [400.0]]) + rng.normal(0, 1, (2, N)) * [[0.3], [10.0]]
    U = np.array([[3.0], [0.0]]) + rng.uniform(-1, 1, (2, N)) * [[1.0], [1e5]]
    mx = Buffered(period_jacobians(period, 2, 2, N))
    ref = {k: v.copy() for k, v in mx(x=X, u=U).items()}
    comp = Buffered(ca.external(name, os.path.join(folder, f"{name}.so")).map(N))
    out = comp(x=X, u=U)
    diff = max(float(np.abs(out[k] - ref[k]).max()) for k in ref)
    print(f"{N} periods: compiled SX {median_ms(comp, X, U):.2f} ms, MX {median_ms(mx, X, U):.2f} ms, "
          f"max difference {diff:.1e}, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
