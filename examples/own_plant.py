"""Your own plant end to end: a Plant subclass → data → every zoo model trained with defaults → accuracy
against the affine fit → MPC closed loop on the best certified-convex model → plot.

    python examples/own_plant.py                  # ≈ 15 min on a loaded 2-core machine
    python examples/own_plant.py --steps 500      # a quick look (worse models)

The plant is the van de Vusse reactor (A → B → C, 2A → D, cooling jacket; Klatt & Engell 1998), written the
way a user writes one: physics, names, units, bounds and the CasADi twin of the same equations.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.optimize import fsolve

from plants.base import Plant


class VanDeVusse(Plant):
    """x = (C_A [mol/l], C_B [mol/l], T [°C], T_K [°C]), u = (F/V [1/h], Q_K [kJ/h]); time in hours."""

    name = "van_de_vusse"
    state_names = ("C_A", "C_B", "T", "T_K")
    state_units = ("mol/l", "mol/l", "degC", "degC")
    input_names = ("F_V", "Q_K")
    input_units = ("1/h", "kJ/h")
    time_unit = "h"
    dt = 20.0 / 3600.0  # 20 s

    k0 = (1.287e12, 1.287e12, 9.043e9)  # 1/h, 1/h, l/(mol h)
    E = (-9758.3, -9758.3, -8560.0)  # activation temperatures, K
    dH = (4.2, -11.0, -41.85)  # reaction enthalpies, kJ/mol
    rho, Cp, kw, A_R, V_R, m_K, Cp_K = 0.9342, 3.01, 4032.0, 0.215, 10.0, 5.0, 2.0
    C_A0, T_in = 5.1, 104.9

    def __init__(self):
        self.u_lb, self.u_ub = np.array([5.0, -8500.0]), np.array([35.0, 0.0])
        self.x_lb, self.x_ub = np.array([0.0, 0.0, 50.0, 50.0]), np.array([5.1, 5.1, 160.0, 160.0])
        self.u_ss = np.array([14.19, -1113.5])
        self.x_ss = fsolve(lambda x: self._rhs(x, self.u_ss, None), np.array([2.14, 1.09, 114.2, 112.9]))

    def _terms(self, x, u, exp):
        ca_, cb, T, tk = x[0], x[1], x[2], x[3]
        k1, k2, k3 = (k * exp(e / (T + 273.15)) for k, e in zip(self.k0, self.E))
        r1, r2, r3 = k1 * ca_, k2 * cb, k3 * ca_**2
        heat = (r1 * self.dH[0] + r2 * self.dH[1] + r3 * self.dH[2]) / (self.rho * self.Cp)
        wall = self.kw * self.A_R * (tk - T)
        return [u[0] * (self.C_A0 - ca_) - r1 - r3,
                -u[0] * cb + r1 - r2,
                u[0] * (self.T_in - T) - heat + wall / (self.rho * self.Cp * self.V_R),
                (u[1] - wall) / (self.m_K * self.Cp_K)]

    def _rhs(self, x, u, d):
        return np.array(self._terms(x, u, np.exp))

    def _casadi_rhs_expr(self, x, u, d):
        import casadi as ca

        return ca.vertcat(*self._terms(x, u, ca.exp))


def dataset(plant: VanDeVusse | None = None, n_traj: int = 60, seed: int = 0):
    """One-period windows (5 sub-steps) from n_traj random states around the steady state crossed with a 4×4
    grid of constant inputs over the full bounds: 960 windows, 672 for training."""
    from icctrl.data import generate

    plant = plant or VanDeVusse()
    rng = np.random.default_rng(seed)
    lo, hi = np.array([1.0, 0.5, 100.0, 95.0]), np.array([3.0, 1.3, 130.0, 125.0])
    x0 = lo + (hi - lo) * rng.random((n_traj, 4))
    return generate(plant, layout="one_step", design="grid", n_traj=n_traj, x0=x0, input_grid=4, window=5,
                    region_margin=None, cache=False, u_range=(plant.u_lb, plant.u_ub))


MODELS = ("linear", "icrnn", "iclrnn", "iclstm", "lstm")
START = np.array([-0.5, -0.25, 8.0, 8.0])  # deviation from the steady state the closed loop starts at


def controller(plant: VanDeVusse, model, horizon: int = 10):
    """Tracking MPC of the steady state on a learned one-period model (prediction fed back)."""
    from icctrl.mpc import Controller, MPCProblem, OneStepModel

    scale = np.array([1.0, 1.0, 20.0, 20.0])  # typical spans: weigh the states alike
    problem = MPCProblem(OneStepModel(model, plant.nx, plant.nu, window=5), horizon, u_lb=plant.u_lb,
                         u_ub=plant.u_ub, u_ref=plant.u_ss, x_ref=plant.x_ss, Q=np.diag(1.0 / scale**2),
                         R=np.array([0.1, 0.1]), input_names=plant.input_names, shooting="multiple")
    solver = "sqp" if model.name == "linear" else "ipopt"
    return Controller(problem, solver, state_bounds=(plant.x_lb, plant.x_ub), offset_free=1.0)


def main() -> None:
    import torch

    from icctrl.mpc import plot_episodes, run_episode
    from icctrl.train import TrainConfig, train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps per model (default: the trainer's)")
    parser.add_argument("--out", default="icctrl-out/own_plant", help="folder for the plot")
    args = parser.parse_args()
    torch.set_num_threads(1)
    plant = VanDeVusse()
    ds = dataset(plant)
    print(ds.summary())
    results = {name: train(name, ds, TrainConfig(quiet=True, steps=args.steps)) for name in MODELS}
    affine = results["linear"].metrics["test_mse"]
    print("| model | test MSE (scaled) | × affine | certified convex (jointly) |\n|---|---|---|---|")
    for name, res in results.items():
        m = res.metrics
        print(f"| {name} | {m['test_mse']:.2e} | {m['test_mse'] / affine:.2f} | {res.certificate.convex} |")
    convex = [n for n in MODELS if results[n].certificate.convex and n != "linear"]
    best = min(convex, key=lambda n: results[n].metrics["test_mse"])
    runs = {}
    for name in ("linear", best):
        ep = run_episode(plant, controller(plant, results[name].model.double()), plant.x_ss + START, 30,
                         Q=np.diag([1.0, 1.0, 1 / 400, 1 / 400]), R=np.array([0.1, 0.1]),
                         settle_tol=[0.02, 0.02, 0.5, 0.5])
        runs[name] = [ep]
        print(f"MPC on {name}: settled {ep.settled} (step {ep.settle_step}), cost {ep.cost:.3f}, "
              f"median solve {np.median(ep.solve_times) * 1e3:.1f} ms, final C_B {ep.states[-1, 1]:.3f} "
              f"(setpoint {plant.x_ss[1]:.3f})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot_episodes(plant, runs, out / "closed_loop.png")
    print(f"plot: {out / 'closed_loop.png'}")


if __name__ == "__main__":
    main()
