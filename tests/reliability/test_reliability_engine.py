"""The scale-out engine: records stream to a JSON-lines file one whole line per write; a run killed with
SIGKILL resumes with no lost and no duplicated episode and equals an uninterrupted run; a Dask cluster of two
workers (and local processes, in the slow set) give the same episodes as one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from icctrl.errors import InvalidValueError
from icctrl.reliability import RecordStore, run_tasks, soak

#: Timing fields and the worker's pid differ between runs; everything else in an episode record must be identical.
TIMING = ("solve_times", "worst_step_ms", "worst_step_cpu_ms", "worst_step_at", "pid")
KW = dict(controllers=("first_principles",), steps=6, horizon=3, faults="nominal,sensor_noise,parameter_drift")


def _episodes(records):
    return {r["key"]: {k: v for k, v in r.items() if k not in TIMING} for r in records}


def _square(task):
    return {"key": task["key"], "value": task["x"] ** 2}


def test_records_survive_a_torn_last_line_and_are_never_duplicated(tmp_path):
    store = RecordStore(tmp_path, {"run": 1})
    store.append({"key": "a", "v": 1})
    store.append({"key": "a", "v": 2})
    with open(tmp_path / "records.jsonl", "ab") as f:
        f.write(b'{"key": "b", "v"')  # a run killed in the middle of a write
    again = RecordStore(tmp_path, {"run": 1})
    assert list(again.records) == ["a"] and again.records["a"]["v"] == 1
    again.append({"key": "b", "v": 3})
    lines = (tmp_path / "records.jsonl").read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["a", "b"]


def test_records_are_fsynced_in_batches_and_at_the_end_of_a_run(tmp_path, monkeypatch):
    import icctrl.reliability._engine as engine

    synced = []
    monkeypatch.setattr(engine.os, "fsync", lambda fd: synced.append(fd))
    store = RecordStore(tmp_path, {})
    for i in range(200):  # well within SYNC_S: no fsync per record
        store.append({"key": f"r{i}", "v": i})
    assert len(synced) <= 1
    out = run_tasks(_square, [{"key": f"t{i}", "x": i} for i in range(3)], store=store, progress=False)
    assert len(synced) >= 1 and [r["value"] for r in out] == [0, 1, 4]  # the run ends with an fsync
    n = len(synced)
    monkeypatch.setattr(engine, "SYNC_S", 0.0)
    store.append({"key": "late", "v": 0})
    assert len(synced) == n + 1
    assert len(RecordStore(tmp_path, {}).records) == 204


def test_a_directory_of_another_run_is_refused(tmp_path):
    RecordStore(tmp_path, {"starts": 10, "command": "x"}, volatile=("command",))
    RecordStore(tmp_path, {"starts": 10, "command": "y"}, volatile=("command",))
    with pytest.raises(InvalidValueError, match="starts"):
        RecordStore(tmp_path, {"starts": 11, "command": "x"}, volatile=("command",))


def test_run_tasks_skips_what_is_stored_and_keeps_task_order(tmp_path):
    store = RecordStore(tmp_path, {})
    store.append({"key": "t2", "value": -1})
    out = run_tasks(_square, [{"key": f"t{i}", "x": i} for i in range(4)], store=store, progress=False)
    assert [r["value"] for r in out] == [0, 1, -1, 9]
    with pytest.raises(InvalidValueError, match="unique"):
        run_tasks(_square, [{"key": "a", "x": 1}, {"key": "a", "x": 2}], progress=False)


def test_a_failing_task_becomes_its_error_record():
    def boom(task, exc):
        return {"key": task["key"], "error": str(exc)}

    out = run_tasks(_square, [{"key": "ok", "x": 2}, {"key": "bad", "x": "2"}], on_error=boom, progress=False)
    assert out[0]["value"] == 4 and "unsupported operand" in out[1]["error"]


def _soak_command(out_dir):
    return [sys.executable, "-m", "icctrl.cli", "soak", "--starts", "4", "--steps", "6", "--horizon", "3",
            "--controllers", "first_principles", "--faults", KW["faults"], "--out", str(out_dir), "--quiet"]


def test_a_soak_killed_with_sigkill_resumes_to_the_uninterrupted_result(tmp_path):
    full = soak("cstr", 4, out=tmp_path / "full", progress=False, **KW)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(_soak_command(tmp_path / "cut"), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    records = tmp_path / "cut" / "records.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if records.exists() and len(records.read_bytes().splitlines()) >= 3:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(records.read_bytes().splitlines())
    assert 0 < done_before < 12, "the run was killed part-way"
    resumed = soak("cstr", 4, out=tmp_path / "cut", progress=False, **KW)
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    assert len(lines) == 12 and len({r["key"] for r in lines}) == 12  # none lost, none duplicated
    assert _episodes(lines) == _episodes(json.loads(x) for x in (tmp_path / "full" / "records.jsonl").open())
    for key in ("episodes", "successes", "fallbacks", "settled", "mean_cost", "unhandled", "hard_violations"):
        assert resumed[key] == full[key]


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c.scheduler_address


def _recs(path):
    return _episodes(json.loads(x) for x in (path / "records.jsonl").open())


def test_a_dask_cluster_of_two_workers_gives_the_same_episodes_as_one_process(tmp_path, cluster):
    kw = {**KW, "faults": "nominal,sensor_noise", "steps": 4}
    one = soak("cstr", 2, out=tmp_path / "one", progress=False, **kw)
    dask = soak("cstr", 2, cluster=cluster, out=tmp_path / "dask", progress=False, **kw)
    assert _recs(tmp_path / "one") == _recs(tmp_path / "dask") and len(_recs(tmp_path / "one")) == 4
    assert one["by_fault"].keys() == dask["by_fault"].keys() and one["mean_cost"] == dask["mean_cost"]


@pytest.mark.slow
def test_local_processes_give_the_same_episodes_as_one_process(tmp_path):
    soak("cstr", 2, out=tmp_path / "one", progress=False, **KW)
    soak("cstr", 2, workers=2, out=tmp_path / "two", progress=False, **KW)
    assert _recs(tmp_path / "one") == _recs(tmp_path / "two") and len(_recs(tmp_path / "one")) == 6
