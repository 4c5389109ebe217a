"""Shipped defaults: they load ready, match their metadata, are small, and a damaged asset is refused."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import icctrl
from icctrl.convexity import certify
from icctrl.errors import UnknownNameError
from icctrl.train import DEFAULTS, asset_paths, default_names, train_default

NAMES = ("iclstm", "iclrnn", "lstm", "icrnn_cost")


def test_every_recipe_is_listed_and_every_listed_default_loads():
    assert set(NAMES) <= set(default_names("cstr"))
    assert DEFAULTS[("cstr", "icrnn_cost")].certify_wrt == (2, 3)
    for name in default_names("cstr"):
        pt, meta_path = asset_paths("cstr", name)
        meta = json.loads(meta_path.read_text())
        assert pt.stat().st_size < 1_000_000 and meta["sha256"]
        m = icctrl.load_default("cstr", name)
        assert m.info["certificate"] == meta["certificate"]
        assert m.info["dataset"]["hash"] == meta["dataset"]["hash"]


@pytest.mark.parametrize("name", NAMES)
def test_default_loads_ready_and_matches_its_metadata(name):
    pt, meta_path = asset_paths("cstr", name)
    meta = json.loads(meta_path.read_text())
    assert pt.stat().st_size < 1_000_000 and meta["size_bytes"] == pt.stat().st_size
    m = icctrl.load_default("cstr", name)
    assert isinstance(m, icctrl.nn.Scaled) and not m.training
    assert m.input_names == ("C_A", "T", "C_A0", "Q")
    assert m.output_names == (("V",) if name == "icrnn_cost" else ("C_A", "T"))
    assert m.info["metrics"]["test_mse"] == pytest.approx(meta["metrics"]["test_mse"])
    assert m.info["certificate"] == meta["certificate"]
    # one-step models: accurate; the cost model (convex in u, nondecreasing in x_0) only beats the mean
    assert meta["metrics"]["test_mse"] < (0.9 if name == "icrnn_cost" else 0.01)
    T = meta["recipe"]["window"]
    x = torch.tensor([[0.9, 420.0, 4.0, 0.0]], dtype=torch.float32).repeat(T, 1)[None]
    with torch.no_grad():
        y = m(x)
    assert y.shape == (1, T, len(m.output_names)) and bool(torch.isfinite(y).all())


def test_cost_model_is_certified_convex_in_the_inputs_u():
    m = icctrl.load_default("cstr", "icrnn_cost")
    cert = certify(m, wrt=[2, 3], window=10)
    assert cert.convex and cert.wrt == ("C_A0", "Q") and not cert.nondecreasing  # u enters as [u, −u]
    assert m.info["certificate"]["convex"] is True and m.info["certificate"]["wrt"] == ["C_A0", "Q"]
    in_x0 = certify(m, wrt=[0, 1], window=10)  # x_0 is not doubled: convex and nondecreasing in it
    assert in_x0.convex and in_x0.nondecreasing


def test_one_step_models_predict_the_plant(tmp_path):
    from plants import CSTR

    plant = CSTR()
    x0, u = plant.x_ss + [0.3, -10.0], plant.u_ss + [0.5, 1e4]
    target = plant.step(x0, u)
    for name in ("iclstm", "lstm", "iclrnn"):
        m = icctrl.load_default("cstr", name)
        T = m.info["dataset"]["meta"]["window"]
        x = torch.tensor([[*x0, *u]], dtype=torch.float64).repeat(T, 1)[None]
        with torch.no_grad():
            pred = m.double()(x)[0, -1].numpy()
        assert abs(pred[1] - target[1]) < 8.0 and abs(pred[0] - target[0]) < 0.3, (name, pred, target)


def test_damaged_or_unknown_default_is_refused(tmp_path):
    pt, meta = asset_paths("cstr", "lstm")
    shutil.copy(pt, tmp_path / pt.name)
    shutil.copy(meta, tmp_path / meta.name)
    assert icctrl.train.load_default("cstr", "lstm", folder=tmp_path).output_names == ("C_A", "T")
    data = bytearray((tmp_path / pt.name).read_bytes())
    data[-200] ^= 0xFF
    (tmp_path / pt.name).write_bytes(bytes(data))
    with pytest.raises(icctrl.CheckpointError, match="sha256"):
        icctrl.train.load_default("cstr", "lstm", folder=tmp_path)
    with pytest.raises(UnknownNameError, match="gru"):
        icctrl.load_default("cstr", "gru")
    with pytest.raises(icctrl.CheckpointError, match="missing"):
        icctrl.train.load_default("cstr", "iclstm", folder=tmp_path)


@pytest.mark.slow
def test_retraining_a_default_reproduces_the_weights(tmp_path):
    """Deterministic recipe: same machine and torch version give the same weights (short run of each)."""
    a = train_default("cstr", "lstm", folder=tmp_path / "a", epochs=2)
    b = train_default("cstr", "lstm", folder=tmp_path / "b", epochs=2)
    assert (tmp_path / "a" / "cstr_lstm.pt").read_bytes() == (tmp_path / "b" / "cstr_lstm.pt").read_bytes()
    assert a.metrics["test_mse"] == b.metrics["test_mse"]
