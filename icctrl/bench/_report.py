"""Markdown tables and plots of a benchmark result: solve-time distributions per model/solver and time vs
horizon."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from icctrl._io import atomic_write
from icctrl.bench._ratios import GOALS, RATIO_NAMES


def _f(v, fmt: str = ".1f") -> str:
    return "–" if v is None else format(v, fmt)


def _single(c: dict) -> bool:
    """A cell asked for single shooting (the black box and its exported twin), not the deployed default."""
    return c["id"].endswith("/single")


def _label(c: dict) -> str:
    tail = "" if c["path"] == "exported" and not _single(c) else f" ({c['path']}, single shooting)"
    return f"{c['model']} · {c['solver']}{tail}"


def cells_table(cells: list[dict]) -> str:
    """One row per cell: status, solve-time distribution, iterations, success, closed loop, setup."""
    head = (
        "| model | form. | solver | path | N | convex cert. | status | median ms | p90 ms | p99 ms | "
        "max ms | "
        "cold median ms | iters (median) | success | mean cost | settled | setup s (build + first) |\n"
        "|" + "---|" * 17
    )
    rows = [head]
    for c in cells:
        s, cl, it = c.get("solve_ms") or {}, c.get("closed_loop") or {}, c.get("iterations") or {}
        setup = c.get("setup_s") or {}
        first = setup.get("first_solve")
        setup_txt = _f(setup.get("build"), ".2f") + ("" if first is None else f" + {first:.2f}")
        settled = f"{cl.get('settled', 0)}/{cl.get('complete', 0)}" if cl else "–"
        path = c["path"] + (" (single sh.)" if _single(c) else "")
        rows.append(
            f"| {c['model']}{'' if c['trained'] else ' †'} | {c['formulation']} | {c['solver']} | {path} | "
            f"{c['horizon']} | {'yes' if c.get('certified_convex') else 'no'} | {c['status']} | "
            f"{_f(s.get('median'))} | {_f(s.get('p90'))} | {_f(s.get('p99'))} | {_f(s.get('max'))} | "
            f"{_f((c.get('cold_ms') or {}).get('median'))} | {_f(it.get('median'), '.0f')} | "
            f"{_f(c.get('success_rate'), '.0%')} | {_f(cl.get('mean_cost'), '.0f')} | {settled} | "
            f"{setup_txt} |"
        )
    rows.append("\n† untrained stand-in of the same size: timing only, its closed-loop figures mean nothing.")
    return "\n".join(rows)


def ratios_table(ratios: dict, details: dict) -> str:
    """The contract ratios with the cells compared and the goal."""
    rows = [
        "| ratio = median(b) / median(a) | value | goal | met | on CPU time | a (median ms) "
        "| b (median ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in RATIO_NAMES:
        d = details.get(name, {})
        fa, sl = d.get("a") or {}, d.get("b") or {}
        met = d.get("met")
        extra = " (lower bound)" if d.get("lower_bound") else ""
        rows.append(
            f"| {name} | {_f(ratios.get(name), '.2f')}{extra} | "
            f"{'–' if GOALS[name] is None else f'≥ {GOALS[name]:g}'} | "
            f"{'–' if met is None else ('yes' if met else 'no')} | {_f(d.get('cpu_value'), '.2f')} | "
            f"{fa.get('id', '–')} "
            f"({_f(fa.get('median_ms'))}) | {sl.get('id', '–')} ({_f(sl.get('median_ms'))}) |"
        )
    return "\n".join(rows)


def profile_table(cells: list[dict], horizon: int) -> str:
    """Mean ms per solve by component at one horizon (CasADi oracle wall times with the mean number of calls
    in brackets, the solver's own work; for cvxpy the conic solver and cvxpy's mapping), CPU ms per step."""
    sel = [c for c in cells if c["horizon"] == horizon and c.get("profile_ms")]
    keys = sorted({k for c in sel for k in c["profile_ms"]})
    rows = [
        "| cell | mean solve ms | CPU ms/step (median) | " + " | ".join(keys) + " |",
        "|---|---|---|" + "---|" * len(keys),
    ]
    for c in sel:
        p, n = c["profile_ms"], c.get("profile_calls") or {}
        parts = [_f(p.get(k)) + (f" ({n[k]:.0f})" if n.get(k) else "") for k in keys]
        rows.append(
            f"| {_label(c)} | {_f((c.get('solve_ms') or {}).get('mean'))} | "
            f"{_f((c.get('step_cpu_ms') or {}).get('median'))} | " + " | ".join(parts) + " |"
        )
    return "\n".join(rows)


def rti_section(result: dict) -> list[str]:
    """The real-time engine's goals and the one-period derivative timings, when the run has them."""
    out = []
    goals = (result.get("ratio_details") or {}).get("rti_goals") or {}
    if goals.get("iclstm") or goals.get("first_principles"):
        rows = ["| goal | cell | solve median ms | solve p99 ms | step median ms | step p99 ms | step CPU median ms "
                "| met |", "|---|---|---|---|---|---|---|---|"]
        for key, label in (("iclstm", "IC-LSTM RTI step ≤ 1 ms median, ≤ 3 ms p99"),
                           ("first_principles", "first-principles RTI step ≤ 1 ms median")):
            g = goals.get(key)
            if g:
                rows.append(f"| {label} | {g['cell']} | {_f(g['median_ms'], '.2f')} | {_f(g['p99_ms'], '.2f')} | "
                            f"{_f(g.get('step_median_ms'), '.2f')} | {_f(g.get('step_p99_ms'), '.2f')} | "
                            f"{_f(g.get('cpu_median_ms'), '.2f')} | {'yes' if g['met'] else 'no'} |")
        for m, g in (goals.get("growth_with_N") or {}).items():
            cpu = "–" if g.get("cpu_ratio") is None else f"× {g['cpu_ratio']:.2f}"
            met = "yes" if g["at_most_linear"] else "no"
            met_cpu = {None: "–", True: "yes", False: "no"}[g.get("at_most_linear_cpu")]
            rows.append(f"| {m} RTI time grows at most linearly in N | {g['from']} → {g['to']} | "
                        f"× {g['time_ratio']:.2f} for N × {g['horizon_ratio']:.1f} | | | | {cpu} | "
                        f"wall {met}, CPU {met_cpu} |")
        out += ["## Real-time engine goals", "\n".join(rows)]
    der = result.get("derivatives")
    if der:
        rows = ["| model | mode | median ms | set-up s | max diff vs MX (relative) |", "|---|---|---|---|---|"]
        for r in der:
            rows.append(f"| {r['model']} | {r['mode']} | {_f(r.get('median_ms'), '.3f')} | "
                        f"{_f(r.get('setup_s'), '.2f')} | {_f(r.get('max_rel_diff_vs_mx'), '.1e')} |"
                        + (f" {r['error']}" if r.get("error") else ""))
        out += [f"## One-period Jacobians of N = {der[0]['N']} intervals in one call", "\n".join(rows)]
    return out


def markdown(result: dict) -> str:
    """The whole report: command, machine, ratios, cells, profile."""
    m = result["machine"]
    N = result["reference_horizon"]
    return (
        "\n\n".join(
            [
                "# icctrl bench: MPC solve times",
                f"Command: `{result['command']}`",
                f"Machine: {m.get('cpu_model') or m.get('processor')}, {m.get('cpus')} CPUs, load average "
                f"{m.get('load_avg_start')} at start and {m.get('load_avg_end')} at end; "
                f"threads {m.get('threads')}; python {m.get('python')}, torch {m.get('torch')}, "
                f"casadi {m.get('casadi')}, cvxpy {m.get('cvxpy')}.",
                f"## Ratios (N = {N}, medians of one run)",
                ratios_table(result["ratios"], result["ratio_details"]),
                "## Cells",
                cells_table(result["cells"]),
                f"## Where the solve time goes (N = {N}, mean ms per solve)",
                profile_table(result["cells"], N),
                *rti_section(result),
            ]
        )
        + "\n"
    )


def plot_distributions(cells: list[dict], horizon: int, path) -> None:
    """Box plot of closed-loop solve times per model/solver at one horizon (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = [
        c for c in cells if c["horizon"] == horizon and (c.get("solve_times_ms") or c.get("cold_times_ms"))
    ]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(sel) + 2), 4.8))
    data = [c.get("solve_times_ms") or c.get("cold_times_ms") for c in sel]
    colors = {"papers": "#4C72B0", "convex": "#55A868"}
    if data:
        bp = ax.boxplot(data, whis=(1, 99), showfliers=True, patch_artist=True)
        for patch, c in zip(bp["boxes"], sel):
            patch.set_facecolor(
                "#C44E52" if c["path"] == "blackbox" else colors.get(c["formulation"], "#8172B2")
            )
            patch.set_alpha(0.6)
        ax.set_xticks(range(1, len(sel) + 1), [_label(c) for c in sel], rotation=60, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("solve time per MPC step [ms]")
    ax.set_title(
        f"CSTR MPC solve times, N = {horizon} (whiskers p1–p99; blue papers', green convex, red black box)",
        fontsize=9,
    )
    ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)


def plot_horizons(cells: list[dict], path) -> None:
    """Median solve time (bars: p90) against the horizon, one line per model/solver/path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    lines: dict[str, list[dict]] = {}
    for c in cells:
        if (c.get("solve_ms") or {}).get("median") is not None:
            lines.setdefault(_label(c), []).append(c)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    cmap = plt.get_cmap("tab20")
    for i, (name, cs) in enumerate(sorted(lines.items())):
        cs = sorted(cs, key=lambda c: c["horizon"])
        h = np.array([c["horizon"] for c in cs])
        med = np.array([c["solve_ms"]["median"] for c in cs])
        p90 = np.array([c["solve_ms"]["p90"] for c in cs])
        style = "--" if cs[0]["formulation"] == "convex" else "-"
        ax.errorbar(h, med, yerr=[np.zeros_like(med), p90 - med], ls=style, marker="os^D"[i % 4], ms=4,
                    capsize=2, lw=1, color=cmap(i % 20), label=name)
    horizons = sorted({c["horizon"] for c in cells})
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(horizons, [str(h) for h in horizons])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("horizon N")
    ax.set_ylabel("median solve time [ms] (bar: p90)")
    ax.set_title("CSTR MPC solve time vs horizon (dashed: certified-convex formulation)", fontsize=9)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)


def write_report(result: dict, out) -> dict[str, str]:
    """bench.md, solve_times.png and time_vs_horizon.png under `out`; returns their paths."""
    out = Path(out)
    md = out / "bench.md"
    text = markdown(result)
    atomic_write(md, lambda p: p.write_text(text))
    box, hor = out / "solve_times.png", out / "time_vs_horizon.png"
    plot_distributions(result["cells"], result["reference_horizon"], box)
    plot_horizons(result["cells"], hor)
    return {"table": str(md), "distributions": str(box), "horizons": str(hor)}
