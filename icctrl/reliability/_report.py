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
