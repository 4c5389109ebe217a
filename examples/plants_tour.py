"""Tour of the three plants: simulate a trajectory of each and plot it to PNG.

    python examples/plants_tour.py [--out icctrl-out/plants] [--seed 0]

Writes cstr.png (open-loop runs from the stability region, phase plane with V < rho), pv_converter.png
(duty steps around the maximum power point under a passing cloud) and microgrid.png (two days of PV, load
and a greedy self-consumption battery rule), and prints a one-line summary per plant.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from icctrl._io import atomic_write  # noqa: E402
from plants import CSTR, Microgrid, PVConverter  # noqa: E402


def save(fig: plt.Figure, path: Path) -> Path:
    """Write a figure atomically as PNG."""
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=120))
    plt.close(fig)
    return path


def tour_cstr(out: Path, rng: np.random.Generator) -> str:
    """Open-loop CSTR runs from the stability region under random input steps, phase plane with V < rho."""
    cstr = CSTR()
    T = 60  # 0.3 h
    X0 = cstr.sample_stability_region(8, rng)
    dU = rng.uniform(-1, 1, size=(8, 3, 2)) * cstr.du_max * np.array([1.0, 0.3])
    U = cstr.u_ss + np.repeat(dU, T // 3, axis=1)  # three input levels per run
    X = cstr.simulate_batch(X0, U)
    t = np.arange(T + 1) * cstr.dt

    fig, ax = plt.subplots(1, 3, figsize=(14, 4))
    for b in range(len(X)):
        ax[0].plot(t, X[b, :, 0], lw=1)
        ax[1].plot(t, X[b, :, 1], lw=1)
        ax[2].plot(X[b, :, 0], X[b, :, 1], lw=1)
        ax[2].plot(*X[b, 0], "k.", ms=4)
    ca_grid, t_grid = np.meshgrid(np.linspace(0.0, 4.0, 200), np.linspace(300.0, 500.0, 200))
    V = cstr.lyapunov(np.stack([ca_grid, t_grid], axis=-1))
    ax[2].contour(ca_grid, t_grid, V, levels=[cstr.rho_stability], colors="k", linestyles="--")
    ax[2].plot(*cstr.x_ss, "r*", ms=10, label="x_ss (unstable)")
    ax[2].plot(*cstr.second_steady_state, "bs", ms=6, label="second steady state")
    ax[0].set(xlabel="t [h]", ylabel="C_A [kmol/m3]", title="concentration")
    ax[1].set(xlabel="t [h]", ylabel="T [K]", title="temperature")
    ax[2].set(xlabel="C_A [kmol/m3]", ylabel="T [K]", title="phase plane, dashed: V = 372", ylim=(250, 650))
    ax[2].legend(loc="upper right", fontsize=8)
    fig.suptitle("Wu–Christofides CSTR, open loop, dt = 0.005 h")
    fig.tight_layout()
    path = save(fig, out / "cstr.png")
    left = int(np.sum(~cstr.in_stability_region(X[:, -1])))
    return f"cstr: {len(X)} runs of {T} steps, {left} end outside V < {cstr.rho_stability:g} -> {path}"


def tour_pv_converter(out: Path, rng: np.random.Generator) -> str:
    """Duty steps around the MPP while a cloud edge dims the array; compare with the MPP power."""
    pv = PVConverter()
    n = 300  # 0.3 s at 1 ms
    t = np.arange(n) * pv.dt
    irradiance = np.where(t < 0.15, 1000.0, 600.0) + 10.0 * rng.standard_normal(n)
    D = np.column_stack([np.clip(irradiance, 0, 1500), np.full(n, 25.0)])
    duty = np.full((n, 1), pv.u_ss[0])
    duty[50:100] = pv.u_ss[0] + 0.08
    duty[200:] = float(pv.mpp(600.0, 25.0).duty)  # the MPP duty of the dimmer sky
    X = pv.simulate(pv.x_ss, duty, D=D)
    p_pv = pv.pv_power(X[1:], D)
    p_mpp = pv.mpp(D[:, 0], D[:, 1]).p_mp

    fig, ax = plt.subplots(1, 3, figsize=(14, 4))
    ax[0].plot(t, X[1:, 0], label="v_pv")
    ax[0].plot(t, pv.v_b / duty[:, 0], "k:", label="v_b / u")
    ax[1].plot(t, X[1:, 1], label="i_s")
    ax[1].axhline(pv.i_L, color="k", ls=":", label="i_L")
    ax[2].plot(t, p_pv / 1e3, label="array power")
    ax[2].plot(t, p_mpp / 1e3, "k:", label="MPP power (pvlib)")
    ax[0].set(xlabel="t [s]", ylabel="V", title="array voltage")
    ax[1].set(xlabel="t [s]", ylabel="A", title="inductor current")
    ax[2].set(xlabel="t [s]", ylabel="kW", title="power")
    for a in ax:
        a.legend(fontsize=8)
    fig.suptitle(f"PV converter: {pv.n_series}x{pv.n_parallel} {pv.module}, dt = 1 ms")
    fig.tight_layout()
    path = save(fig, out / "pv_converter.png")
    efficiency = float(np.sum(p_pv) / np.sum(p_mpp))
    return f"pv_converter: {n} steps, energy captured / MPP energy = {efficiency:.3f} -> {path}"


def tour_microgrid(out: Path, seed: int) -> str:
    """Two days of PV and load with a greedy rule: store PV surplus, cover the deficit from the battery."""
    grid = Microgrid()
    prof = grid.profiles(days=2, start="2024-06-21", seed=seed)
    soc = [grid.x_ss.copy()]
    p_b = []
    for pv_kw, load_kw in zip(prof["pv_kw"], prof["load_kw"]):
        lo, hi = grid.input_bounds(soc[-1][0])
        p = float(np.clip(pv_kw - load_kw, lo, hi))
        p_b.append(p)
        soc.append(grid.step(soc[-1], [p]))
    p_b = np.array(p_b)
    imp, exp = grid.grid_power(prof["pv_kw"], prof["load_kw"], p_b)
    cost = grid.energy_cost(prof, p_b).sum()
    cost_without = grid.energy_cost(prof, np.zeros(len(prof))).sum()

    t = prof.index.tz_localize(None)
    fig, ax = plt.subplots(3, 1, figsize=(12, 8), sharex=True)
    ax[0].plot(t, prof["pv_kw"], label="PV")
    ax[0].plot(t, prof["load_kw"], label="load")
    ax[0].plot(t, p_b, label="battery (+ charge)")
    ax[0].set(ylabel="kW")
    ax[1].plot(t, np.array(soc)[1:, 0], color="C3")
    ax[1].axhline(grid.capacity_kwh, color="k", ls=":")
    ax[1].set(ylabel="SOC [kWh]")
    ax[2].plot(t, imp, label="import")
    ax[2].plot(t, -exp, label="export (negative)")
    ax2 = ax[2].twinx()
    ax2.step(t, prof["price_import"], "k:", where="post", lw=1)
    ax2.set(ylabel="import price [€/kWh]")
    ax[2].set(ylabel="grid kW")
    for a in (ax[0], ax[2]):
        a.legend(fontsize=8, loc="upper left")
    fig.suptitle(
        f"Microgrid at {grid.site}: {grid.pv_kwp:g} kWp PV, {grid.capacity_kwh:g} kWh battery, 15-min steps"
    )
    fig.tight_layout()
    path = save(fig, out / "microgrid.png")
    return (
        f"microgrid: 2 days, cost {cost:.2f} € with the greedy rule vs {cost_without:.2f} € without -> {path}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path("icctrl-out/plants"), help="folder for the PNG files"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of initial states, noise and weather")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    for line in (
        tour_cstr(args.out, rng),
        tour_pv_converter(args.out, rng),
        tour_microgrid(args.out, args.seed),
    ):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
