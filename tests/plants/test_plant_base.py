"""The Plant interface every plant shares: names, units, bounds, nominal point, step and simulate."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import plants
from icctrl.errors import InvalidValueError, ShapeError
from plants import CSTR, Microgrid, Plant, PVConverter

ALL = [CSTR, PVConverter, Microgrid]


@pytest.fixture(scope="module", params=ALL, ids=lambda c: c.__name__)
def plant(request):
    return request.param()


def test_public_names():
    assert {"Plant", "CSTR", "PVConverter", "Microgrid"} <= set(plants.__all__)


def test_metadata_is_consistent(plant):
    assert isinstance(plant, Plant)
    assert len(plant.state_names) == len(plant.state_units) == plant.nx
    assert len(plant.input_names) == len(plant.input_units) == plant.nu
    assert len(plant.disturbance_names) == plant.nd
    assert plant.dt > 0 and plant.time_unit in ("h", "s")
    for arr, n in ((plant.x_ss, plant.nx), (plant.x_lb, plant.nx), (plant.x_ub, plant.nx)):
        assert arr.shape == (n,)
    for arr in (plant.u_ss, plant.u_lb, plant.u_ub):
        assert arr.shape == (plant.nu,)
    assert np.all(plant.x_lb <= plant.x_ss) and np.all(plant.x_ss <= plant.x_ub)
    assert np.all(plant.u_lb <= plant.u_ss) and np.all(plant.u_ss <= plant.u_ub)
    assert plant.disturbance(0.0, np.random.default_rng(0)).shape == (plant.nd,)


def test_nominal_point_is_a_fixed_point(plant):
    np.testing.assert_allclose(plant.step(plant.x_ss, plant.u_ss), plant.x_ss, rtol=1e-7, atol=1e-9)
    f = plant.casadi_step()
    x_next = np.array(f(plant.x_ss, plant.u_ss, plant.d_nom)).ravel()
    np.testing.assert_allclose(x_next, plant.x_ss, rtol=1e-7, atol=1e-9)


def test_simulate_shapes_and_errors(plant):
    U = np.tile(plant.u_ss, (3, 1))
    assert plant.simulate(plant.x_ss, U).shape == (4, plant.nx)
    with pytest.raises(ShapeError):
        plant.simulate(plant.x_ss, plant.u_ss)
    with pytest.raises(ShapeError):
        plant.simulate(plant.x_ss, U, D=np.zeros((2, plant.nd + 1)))
    with pytest.raises(InvalidValueError, match="dt"):
        plant.step(plant.x_ss, plant.u_ss, dt=float("nan"))
    with pytest.raises(InvalidValueError, match="numeric"):
        plant.step(["a"] * plant.nx, plant.u_ss)


@pytest.mark.slow
def test_plants_tour_writes_three_pngs(tmp_path):
    path = Path(__file__).resolve().parents[2] / "examples" / "plants_tour.py"
    spec = importlib.util.spec_from_file_location("plants_tour", path)
    tour = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tour)
    assert tour.main(["--out", str(tmp_path), "--seed", "1"]) == 0
    for name in ("cstr.png", "pv_converter.png", "microgrid.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
