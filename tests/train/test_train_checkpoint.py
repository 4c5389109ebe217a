"""Checkpoints: round trip through icctrl.load; hostile, corrupt, truncated or foreign files are refused."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

import icctrl
from icctrl.train import TrainConfig, checkpoint_info, read_checkpoint, save_checkpoint, train


@pytest.fixture
def saved(tiny_dataset, tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=16, quiet=True, device="cpu")
    res = train("iclstm", tiny_dataset, cfg, out=tmp_path / "m.pt", hidden=8, layers=2)
    return res, tmp_path / "m.pt"


def test_load_returns_the_same_model_in_physical_units(saved, tiny_dataset):
    res, path = saved
    m = icctrl.load(path)
    assert isinstance(m, icctrl.nn.Scaled) and not m.training
    assert m.input_names == tiny_dataset.input_names and m.output_names == tiny_dataset.output_names
    x = torch.as_tensor(tiny_dataset.arrays("test", scaled=False)[0], dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(m(x), res.model(x))
    info = checkpoint_info(path)
    assert info["dataset"]["hash"] == tiny_dataset.content_hash
    assert info["metrics"]["test_mse"] == pytest.approx(res.metrics["test_mse"])
    assert info["certificate"]["convex"] is False and info["certificate_per_step"]["convex"] is True
    assert info["config"]["name"] == "iclstm" and info["icctrl_version"] == icctrl.__version__
    assert info["train_config"]["epochs"] == 2
    assert info["scalers"]["output"]["scale"] == pytest.approx(tiny_dataset.output_scaler.scale.tolist())
    assert m.info["metrics"] == info["metrics"]


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    control = tmp_path / "control"

    def write(target, dest):
        payload = {"format": "icctrl.checkpoint", "format_version": 1, "state_dict": _Evil(target)}
        if writer == "pickle":
            dest.write_bytes(pickle.dumps(payload, protocol=2))
        else:
            torch.save(payload, dest)

    write(marker, path)
    with pytest.raises(icctrl.CheckpointError, match="refused"):
        icctrl.load(path)
    assert not marker.exists()
    # the same payload is live: an unrestricted unpickler runs the command
    pickle.loads(pickle.dumps({"state_dict": _Evil(control)}, protocol=2))
    assert control.exists()


def test_truncated_corrupt_empty_and_missing_files(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    cases = {
        "truncated.pt": data[: len(data) // 2],
        "corrupt.pt": data[:100] + b"\x00" * 64 + data[164:],
        "empty.pt": b"",
        "text.pt": b"not a checkpoint at all",
    }
    for name, blob in cases.items():
        p = tmp_path / name
        p.write_bytes(blob)
        with pytest.raises(icctrl.CheckpointError, match=name):
            icctrl.load(p)
    with pytest.raises(icctrl.CheckpointError, match="does not exist"):
        icctrl.load(tmp_path / "absent.pt")


def _rewrite(path, tmp_path, change):
    ckpt = read_checkpoint(path)
    change(ckpt)
    out = tmp_path / "edited.pt"
    torch.save(ckpt, out)
    return out


def test_wrong_version_format_and_inconsistent_content(saved, tmp_path):
    _, path = saved
    cases = [
        (lambda c: c.update(format_version=99), "format version 99"),
        (lambda c: c.update(format="something.else"), "not an icctrl model checkpoint"),
        (lambda c: c.pop("metrics"), "lacks the checkpoint entries"),
        (lambda c: c["config"].update(hidden=9), "cannot rebuild"),
        (lambda c: c["config"].update(name="nope"), "cannot rebuild"),
        (lambda c: c["scalers"]["input"].update(scale=[1.0, -1.0, 1.0, 1.0]), "cannot rebuild"),
        (
            lambda c: c["state_dict"].update({"model.w_out.bias": torch.full((2,), float("nan"))}),
            "non-finite",
        ),
        (lambda c: c.update(input_names=["a"]), "do not fit"),
    ]
    for change, msg in cases:
        with pytest.raises(icctrl.CheckpointError, match=msg):
            icctrl.load(_rewrite(path, tmp_path, change))
    with pytest.raises(icctrl.CheckpointError, match="holds a list"):
        torch.save([1, 2], tmp_path / "list.pt")
        icctrl.load(tmp_path / "list.pt")


def test_save_is_atomic_and_leaves_no_temporary_files(saved, tmp_path):
    res, path = saved
    before = path.read_bytes()

    class Boom(dict):
        pass

    bad = Boom(res.checkpoint())
    bad["oops"] = lambda: None  # not picklable
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        save_checkpoint(path, bad)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".m.pt")) == []


def test_checkpoint_bytes_do_not_depend_on_the_file_name(saved, tmp_path):
    res, path = saved
    a, b = res.save(tmp_path / "one.pt"), res.save(tmp_path / "sub" / "two.pt")
    assert a.read_bytes() == b.read_bytes()


def test_checkpoint_stores_the_training_region(saved, tiny_dataset):
    from icctrl.data import TrainingRegion

    region = TrainingRegion.from_dict(checkpoint_info(saved[1])["region"])
    x = tiny_dataset.arrays("train", scaled=False)[0][:, 0, :2]
    assert region.contains(x).all() and not region.contains([[0.5, 900.0]]).any()
