"""Training throughput: IC-LSTM vs torch.nn.LSTM on the same data in one run (figures, not a timed test)."""

from __future__ import annotations

import statistics

import pytest
import torch

from icctrl.errors import InvalidValueError
from icctrl.train import benchmark_training, throughput


def test_throughput_reports_both_models_and_their_ratio(tiny_dataset):
    threads = torch.get_num_threads()
    res = throughput(
        ("iclstm", "lstm"), hidden=8, layers=1, batch_size=16, n_samples=64, repeats=3, dataset=tiny_dataset
    )
    assert torch.get_num_threads() == threads  # restored
    assert set(res["samples_per_s"]) == {"iclstm", "lstm"} and all(
        v > 0 for v in res["samples_per_s"].values()
    )
    assert len(res["runs"]["iclstm"]) == 3
    ratios = [a / b for a, b in zip(res["runs"]["iclstm"], res["runs"]["lstm"])]
    assert res["ratio"] == pytest.approx(statistics.median(ratios))
    assert res["ratio_name"] == "iclstm/lstm" and res["goal"] == 0.5 and isinstance(res["meets_goal"], bool)
    assert res["setting"]["window"] == tiny_dataset.window and res["device"] == "cpu"


def test_benchmark_training_per_device(tiny_dataset):
    res = benchmark_training("small", repeats=1, hidden=4, layers=1, n_samples=32, dataset=tiny_dataset)
    assert "cpu" in res["per_device"] and res["setting"] == "small"
    assert ("gpu_vs_cpu" in res) == torch.cuda.is_available()
    with pytest.raises(InvalidValueError, match="huge"):
        benchmark_training("huge")
    with pytest.raises(InvalidValueError, match="repeats"):
        throughput(repeats=0, dataset=tiny_dataset)
