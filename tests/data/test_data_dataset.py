"""SequenceDataset: split views, scaling, tensors, content hash, and safe save/load."""

import zipfile

import numpy as np
import pytest
import torch

from icctrl.data import Scaler, SequenceDataset
from icctrl.errors import DataError, ShapeError, UnknownNameError


def _dataset(seed=0, meta=None):
    rng = np.random.default_rng(seed)
    x = rng.normal(5.0, 2.0, size=(10, 4, 3))
    y = rng.normal(-1.0, 0.1, size=(10, 4, 2))
    traj = np.repeat(np.arange(5), 2)
    splits = {"train": np.arange(6), "val": np.array([6, 7]), "test": np.array([8, 9])}
    return SequenceDataset(
        inputs=x,
        targets=y,
        traj_id=traj,
        input_names=("a", "b", "c"),
        output_names=("p", "q"),
        splits=splits,
        input_scaler=Scaler.fit(x[:6]),
        output_scaler=Scaler.fit(y[:6]),
        meta=meta or {"note": "test", "n": np.int64(3)},
    )


def test_arrays_are_scaled_with_train_statistics():
    ds = _dataset()
    x, y = ds.arrays("train")
    np.testing.assert_allclose(x.reshape(-1, 3).mean(0), 0, atol=1e-12)
    xr, yr = ds.arrays("val", scaled=False)
    np.testing.assert_array_equal(xr, ds.inputs[[6, 7]])
    np.testing.assert_allclose(ds.output_scaler.inverse(ds.arrays("test")[1]), ds.targets[[8, 9]])
    assert len(ds.arrays("all")[0]) == 10
    with pytest.raises(UnknownNameError, match="'valid'"):
        ds.arrays("valid")


def test_tensors_default_to_float32_cpu():
    ds = _dataset()
    x, y = ds.tensors("train")
    assert x.dtype == torch.float32 and x.device.type == "cpu" and tuple(y.shape) == (6, 4, 2)
    x64, _ = ds.tensors("val", scaled=False, dtype=torch.float64)
    np.testing.assert_array_equal(x64.numpy(), ds.inputs[[6, 7]])


def test_hash_is_stable_and_sensitive():
    a, b = _dataset(), _dataset()
    assert a.content_hash == b.content_hash and len(a.content_hash) == 64
    assert _dataset(seed=1).content_hash != a.content_hash
    assert _dataset(meta={"note": "other"}).content_hash != a.content_hash
    b.targets[0, 0, 0] += 1e-12
    assert b.content_hash != a.content_hash


def test_save_load_round_trip(tmp_path):
    ds = _dataset()
    path = ds.save(tmp_path / "d.npz")
    back = SequenceDataset.load(path)
    assert back.content_hash == ds.content_hash
    np.testing.assert_array_equal(back.inputs, ds.inputs)
    assert back.input_names == ds.input_names and back.meta == ds.meta and back.meta["n"] == 3
    assert back.input_scaler == ds.input_scaler
    for k in ds.splits:
        np.testing.assert_array_equal(back.splits[k], ds.splits[k])


def test_tampered_truncated_or_missing_files_raise_data_error(tmp_path):
    ds = _dataset()
    path = ds.save(tmp_path / "d.npz")
    data = dict(np.load(path))
    data["targets"] = data["targets"] + 1.0
    bad = tmp_path / "tampered.npz"
    np.savez(bad, **data)
    with pytest.raises(DataError, match="tampered.npz.*hash"):
        SequenceDataset.load(bad)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match="cut.npz"):
        SequenceDataset.load(cut)
    with pytest.raises(DataError, match="nowhere.npz"):
        SequenceDataset.load(tmp_path / "nowhere.npz")
    noheader = tmp_path / "noheader.npz"
    np.savez(noheader, inputs=data["inputs"])
    with pytest.raises(DataError, match="lacks arrays"):
        SequenceDataset.load(noheader)
    assert zipfile.is_zipfile(path)


def test_pickled_object_arrays_are_refused(tmp_path):
    ds = _dataset()
    path = ds.save(tmp_path / "d.npz")
    data = dict(np.load(path))
    data["inputs"] = np.array([object()], dtype=object)
    evil = tmp_path / "evil.npz"
    np.savez(evil, **data)
    with pytest.raises(DataError, match="evil.npz"):
        SequenceDataset.load(evil)


def test_construction_checks():
    ds = _dataset()
    with pytest.raises(ShapeError, match="traj_id"):
        SequenceDataset(ds.inputs, ds.targets, ds.traj_id[:3], ds.input_names, ds.output_names, ds.splits,
                        ds.input_scaler, ds.output_scaler, {})
    overlapping = {"train": np.arange(6), "val": np.array([5, 6]), "test": np.array([8, 9])}
    with pytest.raises(DataError, match="'val'"):
        SequenceDataset(ds.inputs, ds.targets, ds.traj_id, ds.input_names, ds.output_names, overlapping,
                        ds.input_scaler, ds.output_scaler, {})
    with pytest.raises(ShapeError, match="input names"):
        SequenceDataset(ds.inputs, ds.targets, ds.traj_id, ("a",), ds.output_names, ds.splits,
                        ds.input_scaler, ds.output_scaler, {})
