"""The robustness study, reduced: every model at two noise levels on a small CSTR dataset."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from icctrl.errors import InvalidValueError, UnknownNameError
from icctrl.train import robustness_study
from icctrl.train._robustness import plot, to_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_reduced_study_produces_rows_table_and_plot(tmp_path):
    res = robustness_study(
        ("rnn", "iclrnn"), (0.0, 0.9), hidden=4, layers=1, window=3, epochs=2, n_traj=12, lipschitz_n=8
    )
    rows = res["rows"]
    assert [(r["model"], r["noise"]) for r in rows] == [
        ("rnn", 0.0),
        ("iclrnn", 0.0),
        ("rnn", 0.9),
        ("iclrnn", 0.9),
    ]
    for r in rows:
        assert math.isfinite(r["test_mse"]) and r["test_mse"] > 0 and r["lipschitz"] > 0
    iclrnn = [r for r in rows if r["model"] == "iclrnn"]
    # the certified bound of the ICLRNN is an upper bound of its empirical estimate
    assert all(r["convex"] and r["lipschitz"] <= r["lipschitz_bound"] * (1 + 1e-6) for r in iclrnn)
    table = to_markdown(res)
    assert "| RNN |" in table and "| ICLRNN |" in table and "MSE σ=0.9" in table
    assert plot(res, tmp_path / "r.png").stat().st_size > 1000
    assert set(res["ordering"]) >= {"lipschitz_constrained_below_unconstrained", "mse_growth_factor"}


def test_bad_arguments():
    with pytest.raises(UnknownNameError, match="gru"):
        robustness_study(("gru",), (0.0,))
    with pytest.raises(InvalidValueError, match="noise"):
        robustness_study(("rnn",), (-1.0,))


@pytest.mark.slow
def test_example_script_quick_run(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "robustness_study.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((tmp_path / "robustness.json").read_text())
    assert len(res["rows"]) == 20 and (tmp_path / "robustness.png").is_file()
