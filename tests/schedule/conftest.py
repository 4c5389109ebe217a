"""Shared, once-per-session fixtures for the schedule tests (the ICNN fit is the slow part)."""

import numpy as np
import pytest

from icctrl.schedule import Battery, fit_degradation


@pytest.fixture(scope="session")
def degradation():
    return fit_degradation(steps=300, seed=0)


@pytest.fixture(scope="session")
def battery():
    return Battery()


@pytest.fixture
def day():
    """One day of 15-minute PV, load and time-of-use prices (kW, €/kWh)."""
    h = np.arange(96) / 4.0
    pv = np.clip(5.0 * np.sin(np.pi * (h - 6.0) / 14.0), 0.0, None)
    load = 0.4 + 0.8 * np.exp(-0.5 * ((h - 7.5) / 1.0) ** 2) + 1.6 * np.exp(-0.5 * ((h - 19.0) / 1.5) ** 2)
    price_import = np.where((h >= 17) & (h < 21), 0.45, np.where((h >= 7) & (h < 22), 0.30, 0.20))
    price_export = np.full(96, 0.08)
    return pv, load, price_import, price_export
