"""Closed-loop simulation of a controller against a plant, with the figures of merit and plots."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from icctrl.errors import IcctrlError


@dataclass
class Episode:
    """One closed-loop run: states (T+1 × nx), inputs (T × nu), per-step solver infos and figures of merit.

    `setpoints` (T+1 × nx) is the reference in effect at each state; settling and `offset` (|x_T − setpoint|)
    are measured against the last one, `violation` is the time integral of the excess over `x_ub`."""

    start: np.ndarray
    states: np.ndarray
    inputs: np.ndarray
    infos: list[dict]
    cost: float
    settled: bool
    settle_step: int | None
    solve_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    error: str | None = None
    setpoints: np.ndarray | None = None
    violation: float = 0.0
    offset: np.ndarray | None = None

    def summary(self) -> dict:
        return {"start": self.start.tolist(), "settled": self.settled, "steps": self.settle_step,
                "cost": self.cost, "failures": sum(not i["success"] for i in self.infos),
                "median_solve_ms": float(np.median(self.solve_times) * 1e3) if len(self.solve_times) else None,
                "error": self.error, "violation": self.violation,
                "offset": None if self.offset is None else self.offset.tolist(),
                "extrapolating_steps": int(sum(bool(i.get("extrapolating")) for i in self.infos))}


def stage_cost(plant, x: np.ndarray, u: np.ndarray, Q: np.ndarray, R: np.ndarray, u_scale: np.ndarray,
               x_ref=None) -> float:
    """(x − x_ref)ᵀQ(x − x_ref) + Σ R·((u − u_ss)/u_scale)², the figure of merit shared by every controller
    (x_ref defaults to the plant's steady state)."""
    dx, du = x - (plant.x_ss if x_ref is None else x_ref), (u - plant.u_ss) / u_scale
    return float(dx @ Q @ dx + np.sum(R * du * du))


def run_episode(plant, controller, x0, steps: int, *, Q, R, settle_tol, progress=None, setpoint=None,
                x_ub=None) -> Episode:
    """Simulate `steps` sampling periods; settled = every state after the last setpoint change within
    `settle_tol` of the setpoint. `setpoint(k)` gives the reference at step k (None: the plant's x_ss, and
    the controller's own default); `x_ub` is the bound whose excess is integrated over time. Between steps the
    controller's preparation phase runs (`prepare()`), as in a real loop."""
    controller.reset()
    x = np.asarray(x0, dtype=float)
    X, U, infos, cost, err, refs = [x], [], [], 0.0, None, []
    u_scale = controller.problem.u_half
    for k in range(steps):
        ref = None if setpoint is None else setpoint(k)
        refs.append(plant.x_ss if ref is None else np.asarray(ref, float))
        u, info = controller.step(x) if ref is None else controller.step(x, x_ref=ref)
        infos.append(info)
        try:
            x_next = plant.step(x, u)
        except IcctrlError as exc:  # the plant left its valid region: report, do not hide
            err = f"plant: {exc}"
            break
        cost += stage_cost(plant, x_next, u, Q, R, u_scale, refs[-1])
        X.append(x_next)
        U.append(u)
        x = x_next
        controller.prepare()  # a real loop linearises while the plant moves, before the next state arrives
        if progress is not None:
            progress.update(1)
    X, U = np.array(X), np.array(U).reshape(-1, plant.nu)
    R_ = np.array([refs[0], *refs[: len(X) - 1]])  # reference in effect when each state was reached
    changed = np.nonzero(np.any(np.abs(np.diff(R_, axis=0)) > 0, axis=1))[0]
    first = int(changed[-1] + 1) if len(changed) else 0
    inside = np.all(np.abs(X - R_) <= np.asarray(settle_tol), axis=1)
    settle = None
    if err is None and inside[-1]:
        outside = np.nonzero(~inside[first:])[0]
        settle = int(outside[-1] + 1) if len(outside) else 0
    times = np.array([i["solve_time"] for i in infos])
    violation = 0.0
    if x_ub is not None:
        excess = np.maximum(X - np.asarray(x_ub, float), 0.0)
        excess[:, ~np.isfinite(np.asarray(x_ub, float))] = 0.0
        violation = float(np.sum(excess[1:]) * plant.dt)  # states the controller produced, not the start
    return Episode(np.asarray(x0, float), X, U, infos, cost, settle is not None, settle, times, err, R_, violation,
                   np.abs(X[-1] - R_[-1]))


def plot_episodes(plant, runs: dict[str, list[Episode]], path, lyapunov=None) -> None:
    """States, inputs, Lyapunov value and solve times of each controller's episodes, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from icctrl._io import atomic_write

    fig, axes = plt.subplots(3, 2, figsize=(11, 9))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    t_unit = getattr(plant, "time_unit", "")
    for c, (name, eps) in enumerate(runs.items()):
        col = colors[c % len(colors)]
        for j, ep in enumerate(eps):
            t = np.arange(len(ep.states)) * plant.dt
            lab = name if j == 0 else None
            for i in range(2):
                axes[0, i].plot(t, ep.states[:, i], color=col, lw=1, label=lab)
                if len(ep.inputs):
                    axes[1, i].step(t[:-1], ep.inputs[:, i], where="post", color=col, lw=1, label=lab)
            if lyapunov is not None:
                axes[2, 0].semilogy(t, np.maximum(lyapunov(ep.states), 1e-6), color=col, lw=1, label=lab)
        times = np.concatenate([ep.solve_times for ep in eps]) * 1e3
        axes[2, 1].hist(times, bins=40, histtype="step", color=col, label=name, log=True)
    for i in range(2):
        axes[0, i].axhline(plant.x_ss[i], color="k", ls=":", lw=0.8)
        axes[0, i].set_ylabel(f"{plant.state_names[i]} [{plant.state_units[i]}]")
        axes[1, i].set_ylabel(f"{plant.input_names[i]} [{plant.input_units[i]}]")
        axes[1, i].set_xlabel(f"time [{t_unit}]")
    axes[2, 0].set_ylabel("Lyapunov V(x)")
    axes[2, 0].set_xlabel(f"time [{t_unit}]")
    axes[2, 1].set_xlabel("solve time [ms]")
    axes[0, 0].legend(fontsize=8)
    axes[2, 1].legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)
