"""Table and figure of a PV closed-loop run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from icctrl._io import atomic_write


def table(res: dict) -> str:
    """Plain-text table: energy, share of the available MPP energy, violations, solve times."""
    avail = res["available_kwh"]
    lines = [f"{'controller':<18}{'energy [Wh]':>12}{'% of MPP':>10}{'viol.':>7}{'fail':>6}"
             f"{'median ms':>11}{'p99 ms':>9}"]
    for name, e in res["energy_kwh"].items():
        ms = res["solve_ms"][name]
        med = "-" if ms["median"] is None else f"{ms['median']:.1f}"
        p99 = "-" if ms["p99"] is None else f"{ms['p99']:.1f}"
        flag = " (aborted)" if name in res["aborted"] else ""
        lines.append(f"{name:<18}{e * 1e3:>12.4f}{100 * e / avail if avail else float('nan'):>10.1f}"
                     f"{res['violations'][name]:>7d}{res['failures'][name]:>6d}{med:>11}{p99:>9}{flag}")
    r = res["ratio_iclstm_vs_lstm"]
    lines.append(f"speed ratio IC-LSTM vs LSTM (median solve): {'-' if r is None else f'{r:.2f}x'} "
                 f"(paper: >= {res['paper_ratio']:.0f}x)")
    return "\n".join(lines)


def plot(res: dict, path: str | Path) -> Path:
    """Duty, bus power and buffer voltage of every controller against time, written atomically (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    setup = res["setup"]
    fig, ax = plt.subplots(4, 1, figsize=(8, 9), sharex=True)
    w = np.asarray(setup["weather"])
    ax[0].plot(np.arange(len(w)) * setup["dt_s"] * 1e3, w[:, 0], "k")
    ax[0].set_ylabel("irradiance [W/m²]")
    for name, tr in res["traces"].items():
        t = np.arange(len(tr["v_c"])) * setup["dt_s"] * 1e3
        ax[1].plot(t[1:], tr["duty"][: len(t) - 1], label=name)
        ax[2].plot(t, 48.0 * np.asarray(tr["i_s"]), label=name)
        ax[3].plot(t, tr["v_c"], label=name)
    ax[3].axhline(setup["v_max"], color="r", ls="--", lw=1, label="v_max")
    ax[1].set_ylabel("duty [-]")
    ax[2].set_ylabel("bus power [W]")
    ax[3].set_ylabel("buffer v_c [V]")
    ax[3].set_xlabel("time [ms] (weather time-lapsed)")
    ax[3].legend(fontsize=7, ncol=3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path
