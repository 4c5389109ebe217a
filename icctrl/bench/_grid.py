"""The benchmark grid: models × formulations × solver paths × horizons, and the settings of a run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from icctrl.errors import InvalidValueError, UnknownNameError

#: Formulations. "papers": a one-period model (or the plant) rolled out with its predictions fed back, as in
#: the IC-LSTM/ICLRNN papers; "convex": a horizon cost model without feedback, certified convex in the inputs.
FORMULATIONS = ("papers", "convex")
#: Solver paths: exported models with exact derivatives, or the reference black box.
PATHS = ("exported", "blackbox")
#: The black box's solver label: Ipopt, limited-memory Hessian, central finite-difference Jacobians.
BLACKBOX_SOLVER = "ipopt-lbfgs-fd"


@dataclass(frozen=True)
class ModelSpec:
    """One model of the grid: how to get it, which formulation it serves, which solvers apply."""

    name: str
    formulation: str
    solvers: tuple[str, ...]
    trained: bool
    note: str
    blackbox: bool = False  # also run the reference black-box path on this model
    horizons: tuple[int, ...] | None = None  # the only horizons the model serves (None: any)


MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec(
            "first_principles",
            "papers",
            ("ipopt", "sqp"),
            True,
            "the plant's own RK4 dynamics (reference NMPC)",
        ),
        ModelSpec(
            "iclstm",
            "papers",
            ("ipopt", "sqp"),
            True,
            "shipped default IC-LSTM, 2×64, ReLU, window 5",
            blackbox=True,
        ),
        ModelSpec("iclrnn", "papers", ("ipopt", "sqp"), True, "shipped default ICLRNN, 2×64, ReLU, window 5"),
        ModelSpec("linear", "papers", ("sqp", "ipopt"), True,
                  "shipped affine (ARX) least-squares model, window 5: linear MPC, one QP per SQP iteration"),
        ModelSpec("lstm", "papers", ("ipopt", "sqp"), True, "shipped default LSTM, 2×32, window 5"),
        ModelSpec(
            "rnn",
            "papers",
            ("ipopt",),
            False,
            "untrained tanh RNN, 2×32, with the LSTM default's scalers (timing only)",
        ),
        ModelSpec(
            "icrnn_cost",
            "convex",
            ("clarabel", "ecos", "osqp", "ipopt", "sqp"),
            True,
            "shipped default ICRNN cost model, 2×32, ReLU, convex in U (trained for N = 10)",
        ),
        ModelSpec(
            "picnn_cost",
            "convex",
            ("sqp", "ipopt"),
            True,
            "shipped default PICNN cost model: [x0, u0..u9] → V(x1..x10), 2×64, softplus (the deployed "
            "certified-convex controller; flat over N = 10, so N = 10 only)",
            horizons=(10,),
        ),
        # trained by the first full run (the shipped icrnn_cost recipe with softplus) and cached under
        # OUT/models; this untrained stand-in is used when training is off and no cached model exists
        ModelSpec(
            "icrnn_cost_softplus",
            "convex",
            ("ipopt", "sqp"),
            False,
            "untrained softplus ICRNN cost model, 2×32, the ICRNN default's scalers (timing only)",
        ),
    )
}


@dataclass(frozen=True)
class CellSpec:
    """One cell: a model, its formulation, a solver on a path, a horizon."""

    model: str
    formulation: str
    solver: str
    path: str
    horizon: int
    shooting: str = "default"  # "default": what deployment uses (multiple shooting for one-period models)

    @property
    def id(self) -> str:
        tail = "" if self.shooting == "default" else f"/{self.shooting}"
        return f"{self.model}/{self.formulation}/{self.solver}/{self.path}/N{self.horizon}{tail}"


@dataclass
class BenchConfig:
    """Settings of one benchmark run (every field is recorded in the JSON)."""

    horizons: tuple[int, ...] = (2, 10, 20, 50)
    models: tuple[str, ...] = tuple(MODELS)
    solvers: tuple[str, ...] | None = None  # None: every solver that applies to a model
    steps: int = 30  # closed-loop sampling periods per episode
    random_starts: int = 3  # drawn in the stability region, beside the papers' three (reference N only)
    repeat: int = 1  # the episodes are run this many times; solve times are pooled
    seed: int = 0
    threads: int = 1
    cell_budget_s: float = 90.0  # a cell stops its remaining episodes past this (status "truncated")
    sweep_steps: int = 15  # episode length at the other horizons (papers' three starts only there)
    sweep_budget_s: float = 30.0  # cell budget at the other horizons
    reference_horizon: int = 10  # the horizon of the ratios and of the black-box path
    blackbox_max_iter: int = 100
    blackbox_time_limit_s: float = 60.0
    blackbox_steps: int = 3  # closed-loop steps of the black box (from the first start), after one cold solve
    train_smooth: bool = True  # train the softplus cost model into OUT/models when it is not there yet
    quick: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.horizons = tuple(int(h) for h in self.horizons)
        if not self.horizons or any(h < 1 for h in self.horizons):
            raise InvalidValueError(f"horizons must be integers >= 1, got {self.horizons!r}")
        unknown = [m for m in self.models if m not in MODELS]
        if unknown:
            raise UnknownNameError(f"unknown benchmark model(s) {unknown}; choose from {sorted(MODELS)}")
        if self.solvers is not None:
            known = {s for m in MODELS.values() for s in m.solvers} | {BLACKBOX_SOLVER}
            bad = [s for s in self.solvers if s not in known]
            if bad:
                raise UnknownNameError(f"unknown benchmark solver(s) {bad}; choose from {sorted(known)}")
        for name in ("steps", "sweep_steps", "repeat", "threads", "blackbox_max_iter", "reference_horizon"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise InvalidValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("random_starts", "blackbox_steps"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise InvalidValueError(f"{name} must be an integer >= 0, got {v!r}")
        for name in ("cell_budget_s", "sweep_budget_s", "blackbox_time_limit_s"):
            if not getattr(self, name) > 0:
                raise InvalidValueError(f"{name} must be positive, got {getattr(self, name)!r}")

    @classmethod
    def quick_config(cls, **overrides) -> BenchConfig:
        """About a minute here: two horizons, the models the four ratios need, short episodes, a capped
        black box."""
        base = cls(
            horizons=(2, 10),
            models=("first_principles", "iclstm", "lstm", "icrnn_cost", "picnn_cost"),
            solvers=("ipopt", "sqp", "clarabel", BLACKBOX_SOLVER),
            steps=6,
            random_starts=1,
            cell_budget_s=20.0,
            sweep_steps=4,
            sweep_budget_s=10.0,
            blackbox_max_iter=5,
            blackbox_time_limit_s=15.0,
            blackbox_steps=0,
            train_smooth=False,
            quick=True,
        )
        return replace(base, **overrides)

    def blackbox_horizon(self) -> int:
        """The black box runs at the reference horizon when the grid has it, else at the smallest horizon."""
        return self.reference_horizon if self.reference_horizon in self.horizons else min(self.horizons)

    def to_dict(self) -> dict:
        return asdict(self)


def cells(config: BenchConfig) -> list[CellSpec]:
    """The grid of a run, horizon-major so a truncated run still covers every model at the first horizons."""
    out: list[CellSpec] = []
    wanted = set(config.solvers) if config.solvers is not None else None
    for h in config.horizons:
        for name in config.models:
            spec = MODELS[name]
            if spec.horizons is not None and h not in spec.horizons:
                continue
            for solver in spec.solvers:
                if wanted is None or solver in wanted:
                    out.append(CellSpec(name, spec.formulation, solver, "exported", h))
            if (
                spec.blackbox
                and h == config.blackbox_horizon()
                and (wanted is None or BLACKBOX_SOLVER in wanted)
            ):
                # the black box is single shooting; the exported model on that same NLP separates the gain of
                # exact export from the gain of multiple shooting
                out.append(CellSpec(name, spec.formulation, "ipopt", "exported", h, shooting="single"))
                out.append(
                    CellSpec(name, spec.formulation, BLACKBOX_SOLVER, "blackbox", h, shooting="single")
                )
    return out
