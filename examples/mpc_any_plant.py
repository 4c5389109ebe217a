"""MPC for a plant other than the CSTR: the PV converter with an inductor-current limit and a measured
irradiance forecast, through `icctrl.mpc.controller(plant, model, ...)`.

    python examples/mpc_any_plant.py                  # prints the table, writes icctrl-out/pv_current_limit.png
    python examples/mpc_any_plant.py --limit 1.0      # tighter limit (A above the nominal current)

The irradiance steps from 1000 to 1200 W/m2 after 5 ms; the controller knows it from the forecast `d`. Without
the limit the converter would draw more current to follow the array; with the (soft) limit the current stays
at its bound and the array voltage moves instead. The same call works for any `plants.base.Plant` and any
trained model (a checkpoint path or a loaded model) in place of "first_principles".
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from icctrl._io import atomic_write
from icctrl.mpc import controller
from plants import PVConverter


def run(ctrl, plant, steps: int, step_at: int, bright) -> tuple[np.ndarray, list[dict]]:
    """Closed loop with the irradiance forecast over the horizon handed to every step."""
    x, xs, infos = plant.x_ss.copy(), [plant.x_ss.copy()], []
    N = ctrl.problem.N
    for k in range(steps):
        forecast = np.array([plant.d_nom if k + j < step_at else bright for j in range(N)])
        u, info = ctrl.step(x, d=forecast)
        x = plant.step(x, u, d=forecast[0])
        xs.append(x)
        infos.append(info)
    return np.array(xs), infos


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=float, default=2.0, help="current limit above the nominal i_s, in A")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--out", default="icctrl-out")
    args = ap.parse_args()
    plant = PVConverter()
    i_max = plant.x_ss[1] + args.limit
    bright = np.array([1200.0, 25.0])
    runs = {}
    for name, x_ub in (("unconstrained", None), ("current limit", [np.inf, i_max, np.inf])):
        ctrl = controller(plant, "first_principles", horizon=8, R=[0.1], x_ub=x_ub)
        runs[name] = run(ctrl, plant, args.steps, 5, bright)
    print("| controller | max i_s [A] | limit [A] | final v_pv [V] | largest planned slack | median solve ms |")
    print("|---|---|---|---|---|---|")
    for name, (xs, infos) in runs.items():
        print(f"| {name} | {xs[:, 1].max():.2f} | {i_max:.2f} | {xs[-1, 0]:.1f} | "
              f"{max(i['constraint_violation'] for i in infos):.3g} | "
              f"{1e3 * np.median([i['solve_time'] for i in infos]):.1f} |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    t = np.arange(args.steps + 1) * plant.dt * 1e3
    for name, (xs, _) in runs.items():
        axes[0].plot(t, xs[:, 1], label=name)
        axes[1].plot(t, xs[:, 0], label=name)
    axes[0].axhline(i_max, color="k", ls=":", lw=0.8, label="limit")
    axes[0].set_ylabel("i_s [A]")
    axes[1].set_ylabel("v_pv [V]")
    axes[1].set_xlabel("time [ms]")
    axes[0].legend()
    fig.suptitle("python examples/mpc_any_plant.py", fontsize=9)
    path = Path(args.out) / "pv_current_limit.png"
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
