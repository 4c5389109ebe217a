"""The W2-benchmark loader: files read with weights_only, the P sampler and the linear baseline of the README."""

import numpy as np
import ot
import pytest
import torch

import icctrl.ot as O
from icctrl.errors import DataError
from icctrl.ot._w2bench import default_root

pytestmark = pytest.mark.skipif(not (default_root() / "Mix3toMix10" / "2_v1.pt").is_file(),
                                reason="w2bench data not present")


def test_loader_uses_weights_only(monkeypatch):
    seen = []
    real = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    O.w2bench(2)
    assert seen == [True, True]


def test_sampler_moments_and_linear_baseline():
    b = O.w2bench(2)
    x = b.sample(2**15, seed=1)
    assert x.shape == (2**15, 2) and x.dtype == np.float32
    np.testing.assert_allclose(x.mean(0), 0.0, atol=0.03)
    assert x.var(0).sum() == pytest.approx(2.0, rel=0.03)
    y = b.true_map(x).astype(np.float64)
    assert y.var(0).sum() == pytest.approx(2.0, rel=0.03)
    xd = x.astype(np.float64)
    a, c = ot.gaussian.bures_wasserstein_mapping(xd.mean(0), y.mean(0), np.cov(xd.T), np.cov(y.T))
    lin = xd @ a + c
    assert O.l2_uvp(lin, y, y) == pytest.approx(14.1, rel=0.04)  # README table, d = 2
    assert O.l2_uvp(xd, y, y) == pytest.approx(32.6, rel=0.04)  # identity map
    assert O.cosine(xd, lin, y) == pytest.approx(0.76, abs=0.02)


def test_true_map_keeps_the_array_family():
    b = O.w2bench(2)
    x = b.sample(7, seed=0)
    yt = b.true_map(torch.from_numpy(x))
    assert isinstance(yt, torch.Tensor) and yt.shape == (7, 2)
    np.testing.assert_allclose(yt.numpy(), b.true_map(x), rtol=1e-6)


def test_missing_files_name_the_path(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path)):
        O.w2bench(2, root=tmp_path)
    with pytest.raises(DataError, match="3_v1.pt"):
        O.w2bench(3)
