"""Scaler: fit statistics, numpy/torch round trips, JSON form, and errors naming the bad value."""

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from icctrl.data import Scaler
from icctrl.errors import DataError, InvalidValueError, ShapeError


def test_fit_is_mean_and_std_over_all_but_last_axis():
    rng = np.random.default_rng(0)
    v = rng.normal([1.0, -3.0, 100.0], [2.0, 0.5, 30.0], size=(40, 7, 3))
    s = Scaler.fit(v)
    np.testing.assert_allclose(s.offset, v.reshape(-1, 3).mean(0))
    np.testing.assert_allclose(s.scale, v.reshape(-1, 3).std(0))
    z = s.transform(v)
    np.testing.assert_allclose(z.reshape(-1, 3).mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(z.reshape(-1, 3).std(0), 1, atol=1e-12)


def test_constant_feature_gets_positive_scale():
    v = np.stack([np.linspace(0, 1, 10), np.full(10, 7.0)], axis=1)
    s = Scaler.fit(v)
    assert s.scale[1] == 1.0 and s.offset[1] == 7.0
    assert np.all(np.isfinite(s.transform(v)))


def test_torch_transform_keeps_dtype_and_matches_numpy():
    s = Scaler(offset=[1.0, 2.0], scale=[4.0, 0.5])
    v = np.array([[[3.0, 1.0], [5.0, 2.5]]])
    t = torch.tensor(v, dtype=torch.float32)
    zt = s.transform(t)
    assert zt.dtype == torch.float32
    np.testing.assert_allclose(zt.numpy(), s.transform(v), rtol=1e-6)
    np.testing.assert_allclose(s.inverse(zt).numpy(), v, rtol=1e-6)
    np.testing.assert_allclose(s.transform(v)[0, 0], [0.5, -2.0])


def test_dict_round_trip_through_json():
    s = Scaler(offset=np.array([0.1, -2.0]), scale=np.array([3.0, 1e-3]))
    back = Scaler.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back == s


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, (6, 3), elements=st.floats(-1e6, 1e6)))
def test_inverse_undoes_transform(v):
    s = Scaler.fit(v)
    assert np.all(s.scale > 0)
    np.testing.assert_allclose(s.inverse(s.transform(v)), v, rtol=1e-9, atol=1e-6)


def test_errors_name_the_value():
    with pytest.raises(InvalidValueError, match=r"-1\.0"):
        Scaler(offset=[0.0], scale=[-1.0])
    with pytest.raises(ShapeError, match=r"\(2,\).*\(3,\)"):
        Scaler(offset=[0.0, 0.0], scale=[1.0, 1.0, 1.0])
    with pytest.raises(InvalidValueError, match="nan"):
        Scaler.fit(np.array([[1.0, np.nan]]))
    with pytest.raises(ShapeError, match="3 features"):
        Scaler(offset=[0, 0, 0], scale=[1, 1, 1]).transform(np.zeros((4, 2)))
    with pytest.raises(DataError, match="offset"):
        Scaler.from_dict({"offset": [0.0]})
