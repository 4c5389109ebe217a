"""A plant the package does not ship, written the way a user writes one (a Plant subclass), trained with the
defaults: every input-convex model must beat the affine least-squares fit on it."""

import numpy as np
import pytest
from scipy.optimize import fsolve

from icctrl.data import generate
from icctrl.train import TrainConfig, train
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


@pytest.fixture(scope="module")
def reactor_data():
    plant = VanDeVusse()
    rng = np.random.default_rng(0)
    lo, hi = np.array([1.0, 0.5, 100.0, 95.0]), np.array([3.0, 1.3, 130.0, 125.0])
    return generate(plant, layout="one_step", design="grid", n_traj=60, x0=lo + (hi - lo) * rng.random((60, 4)),
                    input_grid=4, window=5, region_margin=None, cache=False, u_range=(plant.u_lb, plant.u_ub))


def test_the_user_plant_gives_the_documented_data(reactor_data):
    assert len(reactor_data.indices("train")) == 672 and reactor_data.window == 5
    assert reactor_data.input_names == ("C_A", "C_B", "T", "T_K", "F_V", "Q_K")


def test_a_short_default_run_already_beats_the_affine_fit(reactor_data):
    affine = train("linear", reactor_data, TrainConfig(quiet=True)).metrics["test_mse"]
    res = train("icrnn", reactor_data, TrainConfig(quiet=True, steps=200), hidden=16, layers=2)
    assert res.certificate.convex
    assert res.metrics["test_mse"] < 0.8 * affine


@pytest.mark.slow
@pytest.mark.parametrize("name", ["icrnn", "iclrnn"])
def test_defaults_reach_the_goal_on_the_user_plant(reactor_data, name):
    affine = train("linear", reactor_data, TrainConfig(quiet=True)).metrics["test_mse"]
    res = train(name, reactor_data)
    assert res.certificate.convex
    assert res.metrics["test_mse"] <= 0.35 * affine
