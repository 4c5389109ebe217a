"""`icctrl bench` end to end on a tiny grid: the JSON contract, the report files, every cell's status.
No timing assertions: only the structure and the arithmetic of the ratios."""

from __future__ import annotations

import json
import math

import pytest

from icctrl.bench import RATIO_NAMES
from icctrl.bench._dompc import available as dompc_available
from icctrl.cli import main
from icctrl.errors import InvalidValueError

STATUSES = {"ok", "partial", "failed", "capped", "truncated", "error"}


def _check_result(res: dict) -> None:
    assert set(res) >= {"cells", "ratios", "machine", "command"}
    assert isinstance(res["command"], str) and res["command"].startswith("icctrl bench")
    assert isinstance(res["machine"], dict) and res["machine"]["cpus"] >= 1
    assert set(res["ratios"]) == set(RATIO_NAMES)
    for name, v in res["ratios"].items():
        assert v is None or (isinstance(v, float) and math.isfinite(v) and v > 0), (name, v)
    assert res["cells"]
    for c in res["cells"]:
        assert c["status"] in STATUSES, c["id"]
        assert c["status"] == "ok" or c["message"], c["id"]
        if c["status"] != "error":
            assert set(c["solve_ms"]) >= {"n", "median", "p90", "p99", "max"}
            assert set(c["setup_s"]) == {"build", "first_solve"}
            assert 0.0 <= c["success_rate"] <= 1.0
            assert c["iterations"]["n"] == c["solve_ms"]["n"]
            assert {"episodes", "mean_cost", "settled"} <= set(c["closed_loop"])
    # each ratio is (slower median) / (faster median) of the cells it names
    for name in RATIO_NAMES:
        d = res["ratio_details"][name]
        if d["value"] is not None:
            assert d["value"] == pytest.approx(d["b"]["median_ms"] / d["a"]["median_ms"])


def test_bench_cli_tiny_grid(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything written to the working directory would show below
    out = tmp_path / "out"
    argv = ["bench", "--quick", "--horizons", "2", "--steps", "2", "--random-starts", "0",
            "--models", "iclstm,lstm,icrnn_cost", "--blackbox-iters", "2", "--cell-budget", "20",
            "--out", str(out), "--json", str(out / "b.json"), "--quiet"]
    assert main(argv) == 0
    res = json.loads((out / "b.json").read_text())
    _check_result(res)
    ids = {c["id"] for c in res["cells"]}
    assert "iclstm/papers/ipopt-lbfgs-fd/blackbox/N2/single" in ids
    optional = set() if dompc_available() else {"rti_vs_dompc"}  # do-mpc is the optional extra icctrl[bench]
    assert all(res["ratios"][k] is not None for k in RATIO_NAMES if k not in optional)
    assert {"iclstm/papers/rti/exported/N2", "iclstm/papers/dompc/exported/N2"} <= ids
    rti = next(c for c in res["cells"] if c["id"] == "iclstm/papers/rti/exported/N2")
    assert rti["status"] == "ok" and set(rti["profile_ms"]) == {"prepare", "feedback"}
    files = ["b.json", "bench.md", "solve_times.png", "time_vs_horizon.png"]
    assert sorted(p.name for p in out.iterdir()) == files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing written outside the output folder
    assert "exported_vs_blackbox" in (out / "bench.md").read_text()


def test_bench_cli_rejects_bad_options(tmp_path, capsys):
    assert main(["bench", "--horizons", "0,10", "--out", str(tmp_path / "o")]) == 2
    assert "horizons" in capsys.readouterr().err
    assert main(["bench", "--models", "iclstm,nope", "--out", str(tmp_path / "o")]) == 2
    assert "nope" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_bench_quick_cli(tmp_path):
    """The real `icctrl bench --quick` (about a minute on an idle 2-core machine)."""
    out = tmp_path / "bench"
    argv = ["bench", "--quick", "--json", str(tmp_path / "bench.json"), "--out", str(out), "--quiet"]
    assert main(argv) == 0
    res = json.loads((tmp_path / "bench.json").read_text())
    _check_result(res)
    assert all(res["ratios"][k] is not None for k in RATIO_NAMES)
    assert {c["horizon"] for c in res["cells"]} == {2, 10}


@pytest.mark.slow
def test_bench_train_cli(tmp_path):
    path = tmp_path / "train.json"
    assert main(["bench", "train", "--repeat", "1", "--json", str(path), "--quiet"]) == 0
    res = json.loads(path.read_text())
    assert "cpu" in res["per_device"] and res["command"].startswith("icctrl bench train")


def test_bench_cells_on_two_workers_equal_the_sequential_run_apart_from_timings(tmp_path):
    from icctrl.bench import run_bench
    from icctrl.bench._grid import BenchConfig

    cfg = BenchConfig.quick_config(horizons=(2,), models=("linear",), solvers=("rti", "ipopt"),
                                   steps=3, random_starts=0, blackbox_steps=0, derivatives=False)
    runs = [run_bench(cfg, out=tmp_path / f"w{w}", quiet=True, workers=w) for w in (1, 2)]
    same = [[(c["id"], c["status"], c["success_rate"], c["iterations"]["n"], c["closed_loop"]["mean_cost"],
              c["closed_loop"]["settled"]) for c in r["cells"]] for r in runs]
    assert len(same[0]) == 2 and same[0] == same[1]
    assert set(runs[0]["cells"][0]) == set(runs[1]["cells"][0])  # the JSON keys stay as they are
    with pytest.raises(InvalidValueError, match="workers"):
        run_bench(cfg, out=tmp_path / "bad", quiet=True, workers=0)
