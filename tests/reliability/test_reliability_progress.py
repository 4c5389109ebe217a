"""The running counts a soak writes while it goes on agree with the full summary of the same records."""

import json

from icctrl.reliability._progress import Progress
from icctrl.reliability._soak import summarize


def _records():
    recs = []
    for i in range(6):
        for fault in ("nominal", "time_limit_cut"):
            for ctrl in ("a", "b"):
                limited = fault == "time_limit_cut"
                recs.append({"key": f"{fault}/{ctrl}/{i}", "controller": ctrl, "fault": fault, "index": i,
                             "start": [0.0, 0.0], "cost": 1.0 + i, "settled": i % 2 == 0, "fallbacks": i % 3,
                             "nan_actions": int(i == 4 and ctrl == "b"), "unhandled": "boom" if i == 5 else None,
                             "error": None, "error_kind": "unhandled" if i == 5 else None,
                             "violations": {"input_bounds": 1} if i == 3 else {}, "solve_times": [0.001],
                             "worst_step_ms": 1.0 + i + (ctrl == "b"), "time_limit_ms": 0.5 if limited else None})
    return recs


def test_the_running_counts_equal_the_full_summary():
    recs = _records()
    config = {"faults": ["nominal", "time_limit_cut"], "controllers": ["a", "b"]}
    prog = Progress(config)
    for r in recs:
        prog.add(r)
    part, full = prog.summary(1.0), summarize(recs, config, 1.0, True)
    for k in ("episodes", "unhandled", "nan_actions", "hard_violations", "violations", "fallbacks", "settled",
              "starts_done"):
        assert part[k] == full[k], k
    for k in ("max", "limit", "max_over_limit"):
        assert part["latency_ms"][k] == full["latency_ms"][k], k
    for fault, row in full["by_fault"].items():
        for ctrl, cell in row.items():
            assert part["by_fault"][fault][ctrl]["episodes"] == cell["episodes"]
            assert part["by_fault"][fault][ctrl]["settled"] == cell["settled"]
    assert part["complete"] is False and full["unhandled"] == 4 and full["hard_violations"] == 4
    json.dumps(part)  # plain data

