"""Text report of a soak: one Markdown row per controller and the explained fallbacks."""

from __future__ import annotations


def _ms(v) -> str:
    return "–" if v is None else f"{v:.1f}"


def soak_table(out: dict) -> str:
    """Markdown table of a soak result (per controller, then the total) and its fallback reasons."""
    head = ("| controller | solver | episodes | unhandled | errors | NaN actions | violations | fallbacks | "
            "solves ok | settled | V decreased | median ms | p99 ms | worst ms |\n" + "|---" * 14 + "|")
    lines = [head]
    rows = [(n, r) for n, r in out["per_controller"].items()] + [("all", out)]
    for name, r in rows:
        sm = r.get("solve_ms") or {}
        lines.append(f"| {name} | {r.get('solver', '')} | {r['episodes']} | {r['unhandled_exceptions']} | "
                     f"{r['errors']} | {r['nan_actions']} | {r['violations']} | {r['fallbacks']} | "
                     f"{r['successes']}/{r['steps']} | {r['settled']} | {r['lyapunov_decreased']} | "
                     f"{_ms(sm.get('median'))} | {_ms(sm.get('p99'))} | {_ms(r['worst_solve_ms'])} |")
    for name, r in out["per_controller"].items():
        for reason, n in list(r["fallback_reasons"].items())[:5]:
            lines.append(f"fallback ({name}): {n} × {reason}")
    for msg, n in list(out["exception_counts"].items())[:10]:
        lines.append(f"ended early: {n} × {msg}")
    lines.append(f"{out['starts_done']} starts in {out['wall_s']} s ({out['seconds_per_start']} s per start)")
    return "\n".join(lines)


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.0f} %"


def fault_table(out: dict) -> str:
    """Markdown table per fault and controller: region kept, settled, settle steps, cost against nominal,
    fallbacks and their main reason, hard-input violations, worst step latency against the limit."""
    head = ("| fault | controller | episodes | valid region | settled | median settle step | cost vs nominal | "
            "fallbacks | main fallback reason | hard violations | unhandled | NaN actions | worst step ms | "
            "limit ms |\n" + "|---" * 14 + "|")
    lines = [head]
    for fault, per in out["by_fault"].items():
        for name, r in per.items():
            reason = next(iter(r["fallback_reasons"]), "–").split(":")[0].split(" (")[0]
            st = r.get("settle_steps") or {}
            cd = r.get("cost_degradation")
            lat = r["latency_ms"]
            lines.append(f"| {fault} | {name} | {r['episodes']} | {_pct(r['valid_region_share'])} | "
                         f"{_pct(r['settled_share'])} | {st.get('median', '–')} | "
                         f"{'–' if cd is None else f'{cd:.2f}×'} | {r['fallbacks']} | {reason} | "
                         f"{r['hard_violations']} | {r['unhandled']} | {r['nan_actions']} | {_ms(lat['max'])} | "
                         f"{_ms(lat['limit'])} |")
    return "\n".join(lines)


def fault_figure(out: dict, records: list[dict], path) -> None:
    """Four panels per fault and controller: settled share, cost against nominal, settle-step distribution,
    worst step latency against the time limit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from icctrl._io import atomic_write

    faults, ctrls = list(out["by_fault"]), out["config"]["controllers"]
    x, w = np.arange(len(faults)), 0.8 / len(ctrls)
    fig, axes = plt.subplots(2, 2, figsize=(14, 8.5), sharex=True)
    colors = plt.get_cmap("tab10").colors
    for j, name in enumerate(ctrls):
        rows = [out["by_fault"][f][name] for f in faults]
        off = x - 0.4 + (j + 0.5) * w
        axes[0, 0].bar(off, [100 * (r["settled_share"] or 0) for r in rows], w, label=name, color=colors[j])
        axes[0, 1].bar(off, [r["cost_degradation"] or np.nan for r in rows], w, color=colors[j])
        axes[1, 1].bar(off, [r["latency_ms"]["max"] or np.nan for r in rows], w, color=colors[j])
        lim = [r["latency_ms"]["limit"] for r in rows]
        axes[1, 1].scatter([o for o, v in zip(off, lim) if v], [v for v in lim if v], marker="_", s=400,
                           color="k", zorder=3, label="time limit" if j == 0 else None)
        data = [[r["settle_step"] for r in records if r.get("fault") == f and r["controller"] == name
                 and r.get("settle_step") is not None] or [np.nan] for f in faults]
        axes[1, 0].boxplot(data, positions=off, widths=0.8 * w, manage_ticks=False,
                           patch_artist=True, boxprops={"facecolor": colors[j], "alpha": 0.6})
    axes[0, 0].set_ylabel("episodes settled (%)")
    axes[0, 1].set_ylabel("closed-loop cost / nominal")
    axes[0, 1].set_yscale("log")
    axes[0, 1].axhline(1.0, color="k", lw=0.8)
    axes[1, 0].set_ylabel("settle step (of settled episodes)")
    axes[1, 1].set_ylabel("worst step latency (ms)")
    axes[1, 1].set_yscale("log")
    for ax in axes[1]:
        ax.set_xticks(x, faults, rotation=35, ha="right")
    axes[0, 0].legend(fontsize=8)
    axes[1, 1].legend(fontsize=8)
    for ax in axes.flat:
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"icctrl soak: {out['starts_done']} starts × {len(ctrls)} controllers × {len(faults)} faults")
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)
