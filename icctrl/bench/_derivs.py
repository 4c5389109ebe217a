"""Cost of the real-time engine's derivatives: values and Jacobians (x, u) → x_next of N one-period maps in one
call, evaluated as CasADi MX, SX (expanded), compiled C (generated from MX, cached by digest), torch.func
(vmap of jacrev on the torch model), numpy forward-mode tangents read from the model's graph and forward
differences through the same graph's batched values (all N Jacobians, or those of a quarter of the intervals as
the multi-level RTI default refreshes them: "tangent:m", "differences:m"). ReLU and softplus variants of the
input-convex models side by side."""

from __future__ import annotations

import time
from functools import partial

import casadi as ca
import numpy as np
import torch

from icctrl.mpc._derivatives import Buffered, compiled

MODES = ("mx", "sx", "codegen", "torch.func", "tangent", "tangent:3", "differences", "differences:3")


def _median_ms(fn, repeats: int) -> float:
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts) * 1e3)


def period_jacobians(period: ca.Function, nx: int, nu: int, N: int) -> ca.Function:
    """The engine's mapped linearisation: y and ∂y/∂(x, u) of N periods (nx adjoint sweeps each)."""
    x, u = ca.MX.sym("x", nx), ca.MX.sym("u", nu)
    y = period(x, u) if period.n_in() == 2 else period(x, u, ca.DM.zeros(0, 1))
    jac = ca.jtimes(y, ca.vertcat(x, u), ca.DM.eye(nx), True).T
    return ca.Function("period_lin", [x, u], [y, jac], ["x", "u"], ["y", "jac"]).map(N)


def _torch_jacobians(model, nx: int, nu: int, window: int):
    from torch.func import jacrev, vmap

    def period(xu):
        return model(xu.reshape(1, 1, nx + nu).expand(1, window, nx + nu))[0, -1]

    jac = vmap(jacrev(period))
    val = vmap(period)

    def run(X, U):
        xu = torch.as_tensor(np.vstack([X, U]).T.copy())
        with torch.no_grad():
            return val(xu), jac(xu)

    return run


def time_derivatives(models: dict, N: int = 10, repeats: int = 30, modes=MODES, seed: int = 0,
                     folder=None) -> list[dict]:
    """models: label -> (torch model in float64, window, note). One row per model and mode: median ms of one
    mapped evaluation, set-up seconds (expansion or compilation into `folder`, default the user cache), and
    the largest difference from MX (absolute, and relative to the largest MX value or derivative)."""
    from icctrl.mpc import OneStepModel
    from plants import CSTR

    plant = CSTR()
    rng = np.random.default_rng(seed)
    X = plant.x_ss[:, None] + rng.normal(0, 1, (2, N)) * np.array([[0.3], [10.0]])
    U = plant.u_ss[:, None] + rng.uniform(-0.5, 0.5, (2, N)) * (plant.u_ub - plant.u_lb)[:, None] / 2
    rows = []
    for label, (model, window, note) in models.items():
        period = OneStepModel(model, 2, 2, window=window).step_function()
        f = period_jacobians(period, 2, 2, N)
        ref = Buffered(f)(x=X, u=U)
        ref = {k: v.copy() for k, v in ref.items()}
        for mode in modes:
            row = {"model": label, "note": note, "mode": mode, "N": N}
            t0 = time.perf_counter()
            try:
                if mode.startswith(("tangent", "differences")):
                    from icctrl.export import PeriodTangents
                    from icctrl.mpc._defaults import CSTR_X_SCALE
                    from icctrl.mpc._linearise import DIFFERENCE_STEP

                    tan = PeriodTangents(model, window)
                    if mode.startswith("differences"):  # the RTI's steps: 1e-6 of x_scale and of the input ranges
                        step = DIFFERENCE_STEP * np.concatenate([CSTR_X_SCALE, (plant.u_ub - plant.u_lb) / 2])
                        tan = partial(tan.differences, step=step)
                    setup = time.perf_counter() - t0
                    XU = np.vstack([X, U]).T.copy()
                    m = int(mode.split(":")[1]) if ":" in mode else N
                    Y, J = tan(XU, N)
                    jac = J.transpose(1, 0, 2).reshape(2, -1).reshape(-1, order="F")
                    diff = max(float(np.abs(Y.reshape(-1) - ref["y"]).max()), float(np.abs(jac - ref["jac"]).max()))
                    row["median_ms"] = _median_ms(lambda tan=tan, m=m, XU=XU: tan(XU, m), repeats)
                elif mode == "torch.func":
                    run = _torch_jacobians(model, 2, 2, window)
                    setup = time.perf_counter() - t0
                    y, J = run(X, U)
                    jac = J.detach().numpy()  # (N, nx, nx + nu)
                    diff = max(float(np.abs(y.numpy().T.reshape(-1, order="F") - ref["y"]).max()),
                               float(np.abs(np.concatenate(list(jac), axis=1).reshape(-1, order="F")
                                            - ref["jac"]).max()))
                    row["median_ms"] = _median_ms(lambda run=run: run(X, U), max(5, repeats // 5))
                else:
                    g = f.expand() if mode == "sx" else compiled(f, folder) if mode == "codegen" else f
                    setup = time.perf_counter() - t0
                    call = Buffered(g)
                    out = call(x=X, u=U)
                    diff = max(float(np.abs(out[k] - ref[k]).max()) for k in ref)
                    row["median_ms"] = _median_ms(lambda call=call: call(x=X, u=U), repeats)
                scale = max(float(np.abs(ref[k]).max()) for k in ref)
                row.update(setup_s=setup, max_abs_diff_vs_mx=diff, max_rel_diff_vs_mx=diff / scale)
            except Exception as exc:  # noqa: BLE001 - a mode that cannot run is reported, the others go on
                row.update(median_ms=None, setup_s=None, error=f"{type(exc).__name__}: {exc}"[:300])
            rows.append(row)
    return rows


def smooth_variant(model, activation: str, seed: int = 0):
    """An untrained model of the same kind, size and scalers with another activation (timing only)."""
    from icctrl.nn import Scaled, build

    inner = model.model
    inner = getattr(inner, "convex", inner)  # a convex model with an affine path: the convex part's kind and size
    torch.manual_seed(seed)
    kw = {"hidden": inner.hidden, "layers": inner.layers, "activation": activation}
    new = build(inner.name, inner.n_in, inner.n_out, **kw)
    return Scaled(new, model.in_offset, model.in_scale, model.out_offset, model.out_scale).double().eval()
