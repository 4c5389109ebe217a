"""Controllers of the grid's cells: the shipped models (or untrained stand-ins for timing-only cells)
assembled into the CSTR LMPC of `icctrl.mpc` exactly as deployment does, and the black-box reference on the
same NLP."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from icctrl.bench._blackbox import BLACKBOX_IPOPT, BLACKBOX_OFFSET_FREE, BlackBoxPredictor
from icctrl.bench._dompc import DOMPC_SOLVER, DoMPCSolver
from icctrl.bench._grid import MODELS, CellSpec
from icctrl.errors import UnknownNameError

_HIDDEN, _LAYERS = 32, 2  # size of the untrained stand-ins: the shipped LSTM / ICRNN cost model's
SMOOTH_COST = "icrnn_cost_softplus"
SMOOTH_FILE = "cstr_icrnn_cost_softplus.pt"


@contextmanager
def _dataset_cache(folder: Path):
    """Point the dataset cache into the benchmark's own folder while it trains (it writes nowhere else)."""
    from icctrl.data._cache import ENV_VAR

    old = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = str(folder)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = old


def train_smooth_cost(folder: str | os.PathLike) -> Path:
    """Train the shipped ICRNN cost model's recipe with softplus instead of ReLU (same data, size, seed and
    settings) and save it as `folder/cstr_icrnn_cost_softplus.pt`: the smooth certified-convex controller."""
    from icctrl.train import TrainConfig, train
    from icctrl.train._defaults import default_dataset, spec

    folder = Path(folder)
    s = spec("cstr", "icrnn_cost")
    with _dataset_cache(folder / "datasets"):
        ds = default_dataset(s)
    cfg = TrainConfig(
        **{
            **s.config_kw,
            "quiet": True,
            "device": "cpu",
            "threads": 1,
            "certify_wrt": list(s.certify_wrt or ()) or None,
            "tags": {"plant": "cstr", "default": SMOOTH_COST, "layout": s.layout, "target": s.target},
        }
    )
    result = train(
        s.model, ds, cfg, hidden=s.hidden, layers=s.layers, **{**s.model_kw, "activation": "softplus"}
    )
    path = folder / SMOOTH_FILE
    result.save(path)
    return path


class ModelCache:
    """Loads each model once per run (float64, eval mode) and says what it is in `meta`.

    The smooth cost model is read from `folder` when a previous run trained it there, trained there when
    `train_missing`, else replaced by a seeded untrained stand-in (timing only)."""

    def __init__(self, seed: int = 0, folder: str | os.PathLike | None = None, train_missing: bool = False):
        self.seed, self.train_missing = seed, train_missing
        self.folder = Path(folder) if folder is not None else None
        self._models: dict[str, torch.nn.Module] = {}
        self.meta: dict[str, dict] = {}

    def get(self, name: str):
        if name not in self._models:
            t0 = time.perf_counter()
            self._models[name] = self._load(name)
            self.meta.setdefault(name, {})["load_s"] = time.perf_counter() - t0
        return self._models[name]

    def _load(self, name: str):
        import icctrl
        from icctrl.train import default_names

        if name in default_names("cstr"):  # a shipped default (hash-checked)
            return icctrl.load_default("cstr", name).double().eval()
        if name == SMOOTH_COST and self.folder is not None:
            path = self.folder / SMOOTH_FILE
            trained_now = False
            if not path.is_file() and self.train_missing:
                t0 = time.perf_counter()
                train_smooth_cost(self.folder)
                trained_now = time.perf_counter() - t0
            if path.is_file():
                m = icctrl.load(path).double().eval()
                err = (
                    (m.info.get("metrics") or {}).get("test_rel_error") if isinstance(m.info, dict) else None
                )
                self.meta[name] = {
                    "trained": True,
                    "note": f"softplus ICRNN cost model, 2×32, trained by icctrl bench with the shipped "
                    f"icrnn_cost recipe (activation softplus), cached at {path}",
                    "train_s": trained_now or None,
                    "test_rel_error": err,
                }
                return m
        if name in ("rnn", SMOOTH_COST):
            return self._stand_in(name)
        raise UnknownNameError(f"no benchmark model {name!r}; choose from {sorted(MODELS)}")

    def _stand_in(self, name: str):
        from icctrl.nn import Scaled, build

        ref = self.get("lstm" if name == "rnn" else "icrnn_cost")
        torch.manual_seed(self.seed)
        if name == "rnn":
            inner = build("rnn", ref.n_in, ref.n_out, hidden=_HIDDEN, layers=_LAYERS)
        else:
            inner = build(
                "icrnn",
                ref.n_in,
                ref.n_out,
                hidden=_HIDDEN,
                layers=_LAYERS,
                activation="softplus",
                doubled=[2, 3],
            )
        m = Scaled(inner, ref.in_offset, ref.in_scale, ref.out_offset, ref.out_scale).double().eval()
        m.info = getattr(ref, "info", {})  # same layout and window as the model whose scalers it borrows
        self.meta[name] = {"trained": False, "note": MODELS[name].note}
        return m


def build_controller(cell: CellSpec, cache: ModelCache, *, blackbox_max_iter: int = 100,
                     blackbox_time_limit: float | None = None, lyapunov: bool = False):
    """The cell's `Controller` exactly as `default_controller` deploys it (solver settings, shooting,
    offset-free estimate), and for the black box the same problem and settings with the model left in torch,
    Ipopt's Hessian limited-memory and its iterations and wall time per solve capped. Returns (controller,
    black-box predictor or None)."""
    from icctrl.mpc import Controller, cstr_problem, default_controller
    from icctrl.mpc._defaults import model_window
    from plants import CSTR

    plant = CSTR()
    shooting = None if cell.shooting == "default" else cell.shooting
    if cell.path == "blackbox":
        model = cache.get(cell.model)
        bb = BlackBoxPredictor(model, plant.nx, plant.nu, model_window(model))
        problem = cstr_problem(bb, cell.horizon, shooting="single", lyapunov=lyapunov)
        ctrl = Controller(problem, "ipopt", state_bounds=(plant.x_lb, plant.x_ub),
                          offset_free=BLACKBOX_OFFSET_FREE, options=dict(BLACKBOX_IPOPT),
                          max_iter=blackbox_max_iter, time_limit=blackbox_time_limit)
        ctrl.solver_name = cell.solver
        return ctrl, bb
    spec = "first_principles" if cell.model == "first_principles" else cache.get(cell.model)
    if cell.solver == DOMPC_SOLVER:  # the same controller (problem, offset-free estimate), do-mpc as back end
        ctrl = default_controller("cstr", spec, solver="rti", horizon=cell.horizon, shooting=shooting,
                                  lyapunov=lyapunov)
        ctrl.backend, ctrl.solver_name = DoMPCSolver(ctrl.problem), DOMPC_SOLVER
        ctrl.reset()
        return ctrl, None
    return default_controller("cstr", spec, solver=cell.solver, horizon=cell.horizon, shooting=shooting,
                              lyapunov=lyapunov), None
