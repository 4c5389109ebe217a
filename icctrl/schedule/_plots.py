"""Figures of a schedule run: SOC of the three policies, power flows, prices (PNG, written atomically)."""

from __future__ import annotations

from pathlib import Path

from icctrl._io import atomic_write

_NAMES = {"baseline": "self-consumption", "ours": "rolling horizon (ICNN)", "oracle": "perfect foresight"}


def _save(fig, path: Path) -> Path:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))
    return path


def plot_schedule(result, out_dir) -> list[Path]:
    """Write soc.png, power.png and prices.png under `out_dir`; returns their paths."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    t = result.times.tz_localize(None) if getattr(result.times, "tz", None) is not None else result.times
    b = result.battery
    paths = []

    fig, ax = plt.subplots(figsize=(10, 3.6))
    for k, style in (("baseline", ":"), ("oracle", "--"), ("ours", "-")):
        soc = result.runs[k].soc
        ax.step(list(t) + [t[-1] + (t[1] - t[0])], soc, where="post", ls=style, label=_NAMES[k])
    ax.axhline(b.soc_min, color="0.5", lw=0.8)
    ax.axhline(b.soc_max, color="0.5", lw=0.8)
    ax.set_ylabel("SOC [kWh]")
    ax.set_title("Battery state of charge")
    ax.legend(loc="upper right", fontsize=8)
    paths.append(_save(fig, out / "soc.png"))
    plt.close(fig)

    ours = result.runs["ours"]
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.step(t, result.pv, where="post", label="PV", color="tab:orange")
    ax.step(t, result.load, where="post", label="load", color="tab:gray")
    ax.step(t, ours.p_battery, where="post", label="battery (+ charging)", color="tab:blue")
    ax.step(
        t, ours.grid_import - ours.grid_export, where="post", label="grid (+ import)", color="tab:red", lw=0.8
    )
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel("power [kW]")
    ax.set_title("Power flows under the rolling-horizon dispatch")
    ax.legend(loc="upper right", fontsize=8, ncol=4)
    paths.append(_save(fig, out / "power.png"))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 3))
    ax.step(t, result.price_import, where="post", label="import")
    ax.step(t, result.price_export, where="post", label="export")
    ax.set_ylabel("price [€/kWh]")
    ax.set_title("Time-of-use prices")
    ax.legend(loc="upper right", fontsize=8)
    paths.append(_save(fig, out / "prices.png"))
    plt.close(fig)
    return paths
