"""Real-time optimisation of the solar-PV converter's duty cycle with learned (input-convex) models.

`pv_dataset` builds windows with irradiance and cell temperature as measured inputs, `pv_models` trains
(or loads from `$ICCTRL_CACHE_DIR/pv`) IC-LSTM, ICLRNN and LSTM, `DutyRTO` is the RTO (learned model or the
plant's RK4 twin) on the real-time engine of `icctrl.mpc` or on Ipopt, with its certificate, `PerturbObserve`
the classic MPPT, `run_pv` the closed loop.
"""

from icctrl.pv._baseline import PerturbObserve
from icctrl.pv._closed_loop import CONTROLLERS, PAPER_RATIO, day_stretch, run_pv
from icctrl.pv._data import INPUT_NAMES, OUTPUT_NAMES, pv_dataset
from icctrl.pv._models import PV_MODELS, QUICK, ModelSpec, pv_cache_dir, pv_models
from icctrl.pv._report import plot, table
from icctrl.pv._rto import PV_SOLVERS, DutyRTO, Solve, rto_certificate, summary

__all__ = ["PerturbObserve", "CONTROLLERS", "PAPER_RATIO", "day_stretch", "run_pv", "INPUT_NAMES", "OUTPUT_NAMES",
           "pv_dataset", "PV_MODELS", "QUICK", "ModelSpec", "pv_cache_dir", "pv_models", "plot", "table",
           "PV_SOLVERS", "DutyRTO", "Solve", "rto_certificate", "summary"]
