"""Corrupt, truncated, wrong-version and hostile checkpoints, and dataset files that fail their content hash,
are refused with CheckpointError / DataError naming the file; nothing inside a hostile file is executed."""

from __future__ import annotations

import builtins
import io
import json
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import icctrl
from icctrl.data import Scaler, SequenceDataset
from icctrl.data._cache import load_cached
from icctrl.errors import CheckpointError, DataError
from icctrl.train import read_checkpoint

ASSET = Path(icctrl.__file__).parent / "assets" / "cstr_iclstm.pt"
FAST = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def good_bytes() -> bytes:
    return ASSET.read_bytes()


@pytest.fixture(scope="module")
def good_ckpt() -> dict:
    return read_checkpoint(ASSET)


class Hostile:
    """Unpickling this object would create `target` (the marker the tests look for)."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (builtins.open, (str(self.target), "w"))


def _refused(path: Path) -> CheckpointError:
    with pytest.raises(CheckpointError) as err:
        icctrl.load(path)
    assert str(path) in str(err.value)
    return err.value


# ---- checkpoints ----
@pytest.mark.parametrize("how", ["pickle", "torch.save", "inside_a_valid_checkpoint"])
def test_a_hostile_checkpoint_is_refused_and_runs_nothing(tmp_path, good_ckpt, how):
    marker = tmp_path / "marker"
    path = tmp_path / "hostile.pt"
    if how == "pickle":
        path.write_bytes(pickle.dumps({"format": "icctrl.checkpoint", "x": Hostile(marker)}, protocol=2))
    elif how == "torch.save":
        torch.save({"format": "icctrl.checkpoint", "state_dict": Hostile(marker)}, path)
    else:
        torch.save({**good_ckpt, "metrics": {"test_mse": Hostile(marker)}}, path)
    assert not marker.exists()  # writing the file ran nothing
    err = _refused(path)
    assert "open" in str(err) or "builtins" in str(err)
    assert not marker.exists()


@FAST
@given(frac=st.floats(0.0, 0.999))
def test_a_truncated_checkpoint_is_refused(tmp_path, good_bytes, frac):
    path = tmp_path / "cut.pt"
    path.write_bytes(good_bytes[: int(len(good_bytes) * frac)])
    _refused(path)


@FAST
@given(blob=st.binary(min_size=0, max_size=2048))
def test_random_bytes_are_refused_never_another_exception(tmp_path, blob):
    path = tmp_path / "noise.pt"
    path.write_bytes(blob)
    _refused(path)


@FAST
@given(offset=st.integers(0, 10**9), flip=st.integers(1, 255))
def test_a_checkpoint_with_a_flipped_byte_is_refused_or_loads_intact(tmp_path, good_bytes, offset, flip):
    """A flipped byte either breaks the archive (refused) or lands in a tensor value and is caught by the
    finiteness check or yields a model that still loads; it never raises anything but CheckpointError."""
    data = bytearray(good_bytes)
    data[offset % len(data)] ^= flip
    path = tmp_path / "flip.pt"
    path.write_bytes(bytes(data))
    try:
        model = icctrl.load(path)
    except CheckpointError as exc:
        assert str(path) in str(exc)
    else:
        assert all(torch.isfinite(p).all() for p in model.state_dict().values() if p.is_floating_point())


@pytest.mark.parametrize("change, needle", [
    ({"format_version": 99}, "format version 99"),
    ({"format": "someone.else"}, "not an icctrl model checkpoint"),
    ({"config": {"name": "transformer", "n_in": 4, "n_out": 2}}, "transformer"),
    ({"scalers": {"input": {"offset": [0.0], "scale": [1.0]}}}, "cannot rebuild"),
])
def test_wrong_version_or_foreign_checkpoint_is_refused(tmp_path, good_ckpt, change, needle):
    path = tmp_path / "other.pt"
    torch.save({**good_ckpt, **change}, path)
    assert needle in str(_refused(path))


def test_non_finite_or_missing_weights_are_refused(tmp_path, good_ckpt):
    state = dict(good_ckpt["state_dict"])
    key = next(k for k, v in state.items() if v.is_floating_point())
    bad = state[key].clone()
    bad.view(-1)[0] = float("nan")
    torch.save({**good_ckpt, "state_dict": {**state, key: bad}}, tmp_path / "nan.pt")
    assert key in str(_refused(tmp_path / "nan.pt"))
    torch.save({k: v for k, v in good_ckpt.items() if k != "state_dict"}, tmp_path / "missing.pt")
    assert "state_dict" in str(_refused(tmp_path / "missing.pt"))
    partial = {k: v for k, v in state.items() if k != key}
    torch.save({**good_ckpt, "state_dict": partial}, tmp_path / "part.pt")
    assert "cannot rebuild" in str(_refused(tmp_path / "part.pt"))


def test_a_checkpoint_missing_a_weight_names_the_missing_key(tmp_path, good_ckpt):
    state = dict(good_ckpt["state_dict"])
    key = sorted(state)[-1]
    partial = {k: v for k, v in state.items() if k != key}
    torch.save({**good_ckpt, "state_dict": partial}, tmp_path / "part.pt")
    assert key in str(_refused(tmp_path / "part.pt"))


def test_missing_empty_or_directory_paths_are_refused(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    assert "empty" in str(_refused(tmp_path / "empty.pt"))
    assert "does not exist" in str(_refused(tmp_path / "nope.pt"))
    (tmp_path / "dir.pt").mkdir()
    _refused(tmp_path / "dir.pt")


def test_the_intact_asset_still_loads(tmp_path, good_bytes):
    shutil.copy(ASSET, tmp_path / "ok.pt")
    m = icctrl.load(tmp_path / "ok.pt")
    assert m.n_in == 4 and m.n_out == 2


# ---- datasets ----
def _dataset(n: int = 12, T: int = 3) -> SequenceDataset:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(n, T, 4)), rng.normal(size=(n, T, 2))
    splits = {"train": np.arange(0, 8), "val": np.arange(8, 10), "test": np.arange(10, 12)}
    return SequenceDataset(x, y, np.arange(n), ("a", "b", "c", "d"), ("p", "q"), splits, Scaler.fit(x[:8]),
                           Scaler.fit(y[:8]), {"source": "test"})


def _rewrite(path: Path, **changes) -> None:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


@pytest.mark.parametrize("what", ["inputs", "targets", "split_test", "meta"])
def test_a_dataset_file_that_fails_its_content_hash_is_refused(tmp_path, what):
    path = _dataset().save(tmp_path / "d.npz")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if what == "meta":
        header = json.loads(str(arrays["header"]))
        header["meta"]["source"] = "edited"
        change = {"header": np.array(json.dumps(header, sort_keys=True))}
    elif what == "split_test":
        change = {"split_test": arrays["split_test"][:1]}
    else:
        a = arrays[what].copy()
        a[0, 0, 0] += 1e-9
        change = {what: a}
    _rewrite(path, **change)
    with pytest.raises(DataError, match="content hash") as err:
        SequenceDataset.load(path)
    assert str(path) in str(err.value)


def test_truncated_or_pickled_dataset_files_are_refused_and_run_nothing(tmp_path):
    path = _dataset().save(tmp_path / "d.npz")
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.npz"):
        SequenceDataset.load(tmp_path / "cut.npz")
    marker = tmp_path / "marker"
    evil = np.empty(1, dtype=object)
    evil[0] = Hostile(marker)
    buf = io.BytesIO()
    np.save(buf, evil, allow_pickle=True)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("inputs_evil.npy", buf.getvalue())
    with pytest.raises(DataError, match="d.npz"):
        SequenceDataset.load(path)
    assert not marker.exists()


def test_a_bad_cached_dataset_is_warned_about_and_regenerated(tmp_path):
    path = _dataset().save(tmp_path / "c.npz")
    _rewrite(path, traj_id=np.arange(12)[::-1].copy())
    with pytest.warns(UserWarning, match="regenerating"):
        assert load_cached(path, "any-key") is None
