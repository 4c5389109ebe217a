"""DDP: two CPU processes (gloo) train to the same weights as one process with the same global batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

import icctrl
from icctrl.nn import build
from icctrl.train import TrainConfig, train

_WORKER = textwrap.dedent("""
    import sys
    from icctrl.data import SequenceDataset
    from icctrl.train import TrainConfig, dist_info, train

    ds = SequenceDataset.load(sys.argv[1])
    cfg = TrainConfig(epochs=3, batch_size=16, lr=1e-2, seed=2, quiet=True, device="cpu")
    res = train("icrnn", ds, cfg, out=sys.argv[2], hidden=8, layers=2)
    info = dist_info()
    print(f"rank {info.rank}/{info.world} val {res.metrics['val_mse']:.6e}")
""")
_CFG = {"epochs": 3, "batch_size": 16, "lr": 1e-2, "seed": 2, "quiet": True, "device": "cpu"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env() -> dict:
    env = {
        k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_PORT")
    }
    env["OMP_NUM_THREADS"] = "1"
    return env


def _check_matches_single_process(dataset, out):
    single = train("icrnn", dataset, TrainConfig(**_CFG), hidden=8, layers=2)
    ddp = icctrl.load(out)
    assert ddp.info["metrics"]["world_size"] == 2 and single.metrics["world_size"] == 1
    torch.manual_seed(2)
    init = build("icrnn", 4, 2, hidden=8, layers=2, affine=4, weights="projected").state_dict()  # as train() builds it
    sa, sb = single.model.state_dict(), ddp.state_dict()
    assert any(not torch.allclose(sa["model." + k], v) for k, v in init.items())  # training moved the weights
    for k in sa:
        assert torch.allclose(sa[k], sb[k], rtol=1e-4, atol=1e-6), k
    assert ddp.info["metrics"]["val_mse"] == pytest.approx(single.metrics["val_mse"], rel=1e-4)


def test_two_gloo_processes_match_one_process(tiny_dataset, tmp_path):
    """The processes get the environment torchrun would give them (MASTER_ADDR/PORT, WORLD_SIZE, RANK)."""
    data, out, script = tmp_path / "ds.npz", tmp_path / "ddp.pt", tmp_path / "worker.py"
    tiny_dataset.save(data)
    script.write_text(_WORKER)
    port = str(_free_port())
    procs = []
    for rank in range(2):
        env = {
            **_clean_env(),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "WORLD_SIZE": "2",
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script), str(data), str(out)],
                env=env,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (_so, se) in zip(procs, outs):
        assert p.returncode == 0, se[-3000:]
    assert "rank 0/2" in outs[0][0] and "rank 1/2" in outs[1][0]
    _check_matches_single_process(tiny_dataset, out)


@pytest.mark.slow
def test_torchrun_launch_matches_one_process(tiny_dataset, tmp_path):
    data, out, script = tmp_path / "ds.npz", tmp_path / "ddp.pt", tmp_path / "worker.py"
    tiny_dataset.save(data)
    script.write_text(_WORKER)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        str(script),
        str(data),
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_clean_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 0/2" in proc.stdout and "rank 1/2" in proc.stdout
    _check_matches_single_process(tiny_dataset, out)
