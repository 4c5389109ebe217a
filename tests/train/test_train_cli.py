"""`icctrl train`: trains, writes a checkpoint, prints the test MSE and certificate; errors are one line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import icctrl
from icctrl.cli import main


def test_train_cstr_writes_a_checkpoint_and_reports(tmp_path, capsys):
    out = tmp_path / "m.pt"
    rc = main(
        [
            "train",
            "--plant",
            "cstr",
            "--model",
            "iclstm",
            "--hidden",
            "4",
            "--layers",
            "1",
            "--epochs",
            "2",
            "--device",
            "auto",
            "--out",
            str(out),
            "--n-traj",
            "12",
            "--window",
            "3",
            "--quiet",
            "--json",
            str(tmp_path / "m.json"),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "test MSE (scaled):" in text and "certificate: Scaled is NOT certified convex" in text
    assert "per step: convex" in text
    m = icctrl.load(out)
    assert m.input_names == ("C_A", "T", "C_A0", "Q") and m.output_names == ("C_A", "T")
    report = json.loads((tmp_path / "m.json").read_text())
    assert report["metrics"]["test_mse"] == pytest.approx(m.info["metrics"]["test_mse"])
    assert m.info["dataset"]["meta"]["window"] == 3 and m.info["train_config"]["epochs"] == 2


def test_train_multi_step_lyapunov_target_certifies_convex_in_u(tmp_path, capsys):
    out = tmp_path / "cost.pt"
    rc = main(
        [
            "train",
            "--model",
            "icrnn",
            "--layout",
            "multi_step",
            "--window",
            "3",
            "--target",
            "lyapunov",
            "--doubled",
            "2,3",
            "--certify-wrt",
            "2,3",
            "--hidden",
            "4",
            "--layers",
            "1",
            "--epochs",
            "1",
            "--n-traj",
            "60",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "certificate: Scaled is convex" in text and "C_A0, Q" in text
    m = icctrl.load(out)
    assert m.output_names == ("V",) and m.info["certificate"]["convex"] is True


def test_train_from_a_table(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 240
    u = np.repeat(rng.uniform(-1, 1, n // 8), 8)
    y = np.zeros(n)
    for k in range(1, n):
        y[k] = 0.9 * y[k - 1] + 0.2 * u[k - 1]
    path = tmp_path / "log.csv"
    pd.DataFrame({"t": np.arange(n) * 0.5, "u": u, "y": y}).to_csv(path, index=False)
    out = tmp_path / "t.pt"
    rc = main(
        [
            "train",
            "--data",
            str(path),
            "--inputs",
            "u",
            "--outputs",
            "y",
            "--time",
            "t",
            "--model",
            "rnn",
            "--layout",
            "multi_step",
            "--window",
            "4",
            "--hidden",
            "4",
            "--layers",
            "1",
            "--epochs",
            "1",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    m = icctrl.load(out)
    assert m.output_names == ("y",) and "test MSE" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--device", "cuda"], "CUDA is not available"),
        (["--plant", "nope"], "unknown plant 'nope'"),
        (["--lr", "-1"], "lr must be"),
        (["--data", "missing.csv", "--inputs", "u", "--outputs", "y"], "does not exist"),
        (["--data", "x.csv"], "--data needs --inputs and --outputs"),
        (["--doubled", "a,b"], "--doubled expects"),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path, capsys, argv, message):
    import torch

    if argv[:2] == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("CUDA is present")
    rc = main(
        [
            "train",
            "--epochs",
            "1",
            "--n-traj",
            "4",
            "--window",
            "2",
            "--out",
            str(tmp_path / "m.pt"),
            "--quiet",
            *argv,
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "m.pt").exists()


def test_unknown_model_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--model", "transformer"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err
