"""Running counts of a soak, updated in O(1) per episode record: what the JSON holds while the run goes on.

The full summary (`summarize`) reads every record: 1.8 s of the collecting process's CPU at 47 000 records, a third
process on the two workers' cores. In the fifth 1000-start run it held time-limited steps up by up to 4.4 ms past
their limit (docs/reliability.md), so it is computed once, when the workers are done.
"""

from __future__ import annotations

COUNTS = ("episodes", "unhandled", "nan_actions", "hard_violations", "violations", "fallbacks", "settled")


class Progress:
    """Totals, the same per fault and controller, and the worst step against its limit, of the records so far."""

    def __init__(self, config: dict):
        self.config = config
        self.totals = dict.fromkeys(COUNTS, 0)
        self.by_fault: dict[str, dict[str, dict[str, int]]] = {}
        self.latency = {"max": None, "limit": None, "max_over_limit": None}
        self.starts: set[int] = set()

    def add(self, rec: dict) -> None:
        viol = rec.get("violations") or {}
        counts = {"episodes": 1, "unhandled": int(rec.get("unhandled") is not None),
                  "nan_actions": rec.get("nan_actions", 0), "hard_violations": int(viol.get("input_bounds", 0)),
                  "violations": int(sum(viol.values())), "fallbacks": rec.get("fallbacks", 0),
                  "settled": int(bool(rec.get("settled")))}
        cell = self.by_fault.setdefault(rec.get("fault", "nominal"), {}).setdefault(
            rec["controller"], dict.fromkeys(COUNTS, 0))
        for k, v in counts.items():
            self.totals[k] += v
            cell[k] += v
        self.starts.add(rec["index"])
        lat, worst, limit = self.latency, rec.get("worst_step_ms"), rec.get("time_limit_ms")
        if worst is not None:
            lat["max"] = worst if lat["max"] is None else max(lat["max"], worst)
            if limit:
                lat["limit"] = limit if lat["limit"] is None else max(lat["limit"], limit)
                over = worst - limit
                lat["max_over_limit"] = over if lat["max_over_limit"] is None else max(lat["max_over_limit"], over)

    def summary(self, wall_s: float) -> dict:
        """The JSON of a run in progress: the public keys of the final summary, counted so far."""
        return {**self.totals, "unhandled_exceptions": self.totals["unhandled"], "by_fault": self.by_fault,
                "latency_ms": dict(self.latency), "starts_done": len(self.starts), "complete": False,
                "wall_s": round(wall_s, 1), "config": self.config}
