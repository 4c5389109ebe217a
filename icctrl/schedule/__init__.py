"""PV + battery rolling-horizon dispatch: forecaster, learned convex degradation cost, certified LP,
comparison."""

from icctrl.schedule._baseline import oracle_dispatch, self_consumption_action
from icctrl.schedule._battery import Battery
from icctrl.schedule._bench import DEFAULT_CASES, dispatch_timings, timings_table
from icctrl.schedule._compiled import CompiledLP
from icctrl.schedule._degradation import (
    Degradation,
    DegradationTruth,
    affine_pieces,
    breakpoints,
    fit_degradation,
)
from icctrl.schedule._dispatch import (
    BACKENDS,
    FORMULATIONS,
    SOLVERS,
    Dispatcher,
    DispatchStats,
    Plan,
    check_prices,
)
from icctrl.schedule._forecast import RidgeForecaster
from icctrl.schedule._plots import plot_schedule
from icctrl.schedule._simulate import PolicyRun, ScheduleConfig, ScheduleResult, run_schedule

__all__ = [
    "DEFAULT_CASES",
    "dispatch_timings",
    "timings_table",
    "oracle_dispatch",
    "self_consumption_action",
    "Battery",
    "CompiledLP",
    "Degradation",
    "DegradationTruth",
    "affine_pieces",
    "breakpoints",
    "fit_degradation",
    "BACKENDS",
    "FORMULATIONS",
    "SOLVERS",
    "Dispatcher",
    "DispatchStats",
    "Plan",
    "check_prices",
    "RidgeForecaster",
    "plot_schedule",
    "PolicyRun",
    "ScheduleConfig",
    "ScheduleResult",
    "run_schedule",
]
