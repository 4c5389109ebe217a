"""generate / cstr_dataset: layouts, designs, splits, noise, drop rules, determinism, caching, errors."""

import warnings

import numpy as np
import pytest

from icctrl.data import REGION_MARGIN, Scaler, SequenceDataset, cstr_dataset, generate
from icctrl.data._cache import cache_dir
from icctrl.errors import DataError, InvalidValueError, ShapeError, UnknownNameError
from plants import CSTR


@pytest.fixture(scope="module")
def cstr():
    return CSTR()


def test_one_step_grid_matches_the_plant_integrator(linear_plant):
    ds = generate(linear_plant, layout="one_step", n_traj=4, input_grid=3, window=5, cache=False)
    assert ds.meta["n_traj"] == 12 and len(ds) == 12 and ds.inputs.shape == (12, 5, 3)
    assert ds.input_names == ("x1", "x2", "u") and ds.output_names == ("x1", "x2")
    # every window: inputs constant, last target = one full sampling period of the plant
    np.testing.assert_array_equal(ds.inputs, np.broadcast_to(ds.inputs[:, :1], ds.inputs.shape))
    for w in range(len(ds)):
        x0, u = ds.inputs[w, 0, :2], ds.inputs[w, 0, 2:]
        np.testing.assert_allclose(ds.targets[w, -1], linear_plant.step(x0, u, linear_plant.dt), rtol=1e-10)
        np.testing.assert_allclose(ds.targets[w, 0], linear_plant.step(x0, u, linear_plant.dt / 5), rtol=1e-10)
    # the 3-point grid over [-1, 1] crossed with each initial state
    assert sorted(np.unique(ds.inputs[:, 0, 2]).tolist()) == [-1.0, 0.0, 1.0]


def test_cstr_one_step_last_substep_is_the_scipy_step(cstr):
    ds = generate(cstr, layout="one_step", n_traj=3, input_grid=2, window=10, cache=False, val_frac=0, test_frac=0)
    assert ds.meta["sub_dt"] == pytest.approx(cstr.dt / 10)
    for w in range(len(ds)):
        x0, u = ds.inputs[w, 0, :2], ds.inputs[w, 0, 2:]
        np.testing.assert_allclose(ds.targets[w, -1], cstr.step(x0, u), rtol=1e-6)
    V0 = cstr.lyapunov(ds.inputs[:, 0, :2])
    assert np.all(V0 < cstr.rho_stability)


def test_multi_step_windows_follow_the_trajectory(linear_plant):
    ds = generate(linear_plant, layout="multi_step", design="steps", n_traj=6, steps=12, window=4,
                  hold=(2, 3), cache=False)
    assert ds.inputs.shape == (18, 4, 3)
    for w in range(len(ds)):
        x = ds.inputs[w, 0, :2]
        np.testing.assert_array_equal(ds.inputs[w, :, :2], np.broadcast_to(x, (4, 2)))
        for k in range(4):
            x = linear_plant.step(x, ds.inputs[w, k, 2:])
            np.testing.assert_allclose(ds.targets[w, k], x, rtol=1e-10)


def test_steps_and_prbs_designs(linear_plant):
    ds = generate(linear_plant, layout="multi_step", design="steps", n_traj=5, steps=40, window=40,
                  hold=(3, 6), cache=False, val_frac=0, test_frac=0)
    u = ds.inputs[:, :, 2]
    for row in u:
        change = np.flatnonzero(np.diff(row) != 0) + 1
        runs = np.diff(np.concatenate([[0], change]))
        assert np.all((runs >= 3) & (runs <= 6))
    prbs = generate(linear_plant, layout="multi_step", design="prbs", n_traj=4, steps=40, window=20,
                    hold=(2, 2), u_range=([-0.5], [0.25]), cache=False, val_frac=0, test_frac=0)
    levels = np.unique(prbs.inputs[:, :, 2])
    np.testing.assert_array_equal(levels, [-0.5, 0.25])
    assert np.all(prbs.inputs[:, ::2, 2] == prbs.inputs[:, 1::2, 2])  # each bit held 2 periods


def test_split_by_trajectory_and_train_only_scalers(linear_plant):
    ds = generate(linear_plant, layout="multi_step", n_traj=20, steps=9, window=3, cache=False)
    sets = {k: set(ds.traj_id[v].tolist()) for k, v in ds.splits.items()}
    assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"])
    assert not (sets["val"] & sets["test"])
    assert [len(sets[k]) for k in ("train", "val", "test")] == [14, 3, 3]
    tr = ds.splits["train"]
    assert ds.input_scaler == Scaler.fit(ds.inputs[tr])
    assert ds.output_scaler == Scaler.fit(ds.targets[tr])
    assert ds.meta["sizes"] == {k: len(v) for k, v in ds.splits.items()}


def test_noise_only_on_training_targets_in_scaled_units(linear_plant):
    kw = {"layout": "multi_step", "n_traj": 60, "steps": 20, "window": 5, "cache": False}
    clean = generate(linear_plant, **kw)
    noisy = generate(linear_plant, noise_std=0.6, **kw)
    np.testing.assert_array_equal(clean.inputs, noisy.inputs)
    for split in ("val", "test"):
        np.testing.assert_array_equal(clean.arrays(split)[1], noisy.arrays(split)[1])
    assert clean.output_scaler == noisy.output_scaler
    err = noisy.arrays("train")[1] - clean.arrays("train")[1]
    assert err.std() == pytest.approx(0.6, rel=0.05) and abs(err.mean()) < 0.03
    assert noisy.meta["noise_std"] == 0.6
    again = generate(linear_plant, noise_std=0.6, **kw)
    assert again.content_hash == noisy.content_hash


def test_same_seed_same_data_other_seed_other_data(linear_plant):
    kw = {"layout": "multi_step", "n_traj": 8, "steps": 6, "window": 3, "cache": False}
    a, b = generate(linear_plant, seed=3, **kw), generate(linear_plant, seed=3, **kw)
    assert a.content_hash == b.content_hash
    np.testing.assert_array_equal(a.targets, b.targets)
    assert generate(linear_plant, seed=4, **kw).content_hash != a.content_hash


def test_cstr_drift_is_dropped_and_counted(cstr):
    ds = generate(cstr, layout="multi_step", design="steps", n_traj=40, steps=10, window=10, hold=(1, 3),
                  cache=False, seed=1)
    m = ds.meta
    assert m["n_dropped"] > 0 and m["n_candidates"] == 40 == m["n_dropped"] + len(ds)
    assert m["region_level"] == pytest.approx(REGION_MARGIN * cstr.rho_stability)
    assert np.all(cstr.lyapunov(ds.targets) <= m["region_level"])
    assert m["n_dropped"] == m["n_dropped_region"] + m["n_dropped_invalid"]
    loose = generate(cstr, layout="multi_step", design="steps", n_traj=40, steps=10, window=10, hold=(1, 3),
                     cache=False, seed=1, region_margin=None)
    assert len(loose) > len(ds)


def test_lyapunov_targets_for_a_learned_cost(cstr):
    ds = generate(cstr, layout="multi_step", n_traj=6, steps=4, window=4, cache=False,
                  target_fn=cstr.lyapunov, target_names=("V",), u_range=(cstr.u_ss - 0.2 * cstr.du_max,
                                                                          cstr.u_ss + 0.2 * cstr.du_max))
    assert ds.output_names == ("V",) and ds.targets.shape[2] == 1
    x = ds.inputs[0, 0, :2]
    for k in range(4):
        x = cstr.step(x, ds.inputs[0, k, 2:])
        assert ds.targets[0, k, 0] == pytest.approx(float(cstr.lyapunov(x)), rel=1e-5)


def test_cache_second_call_is_read_from_the_cache_and_identical(linear_plant, _tmp_cache):
    kw = {"layout": "multi_step", "n_traj": 30, "steps": 10, "window": 5}
    first = generate(linear_plant, **kw)
    calls = linear_plant.calls
    assert calls > 0 and cache_dir() == _tmp_cache and len(list(_tmp_cache.glob("linear-*.npz"))) == 1
    second = generate(linear_plant, **kw)
    assert linear_plant.calls == calls  # nothing simulated: read from the cache
    assert second.content_hash == first.content_hash
    np.testing.assert_array_equal(second.inputs, first.inputs)
    generate(linear_plant, noise_std=0.3, **kw)  # another spec, another file
    assert len(list(_tmp_cache.glob("linear-*.npz"))) == 2


def test_corrupt_cache_file_is_regenerated(linear_plant, _tmp_cache):
    kw = {"layout": "multi_step", "n_traj": 10, "steps": 4, "window": 2}
    first = generate(linear_plant, **kw)
    (path,) = _tmp_cache.glob("linear-*.npz")
    path.write_bytes(b"not a zip file")
    with pytest.raises(DataError, match=path.name):
        SequenceDataset.load(path)
    with pytest.warns(UserWarning, match=path.name):
        again = generate(linear_plant, **kw)
    assert again.content_hash == first.content_hash
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert SequenceDataset.load(path).content_hash == first.content_hash


def test_bad_arguments_are_named(linear_plant, cstr):
    with pytest.raises(UnknownNameError, match="'sideways'"):
        generate(linear_plant, layout="sideways")
    with pytest.raises(UnknownNameError, match="'chirp'"):
        generate(linear_plant, design="chirp")
    with pytest.raises(InvalidValueError, match="-0.1"):
        generate(linear_plant, dt=-0.1)
    with pytest.raises(InvalidValueError, match="-0.01"):
        generate(cstr, dt=-0.01, cache=False)
    with pytest.raises(InvalidValueError, match="n_traj.*0"):
        generate(linear_plant, n_traj=0)
    with pytest.raises(InvalidValueError, match="noise_std.*-1"):
        generate(linear_plant, noise_std=-1)
    with pytest.raises(InvalidValueError, match="state T = 150.0"):
        generate(cstr, n_traj=2, x0=[2.0, 150.0], cache=False)
    with pytest.raises(ShapeError, match=r"\(3, 2\)"):
        generate(cstr, n_traj=2, x0=np.ones((3, 2)), cache=False)
    with pytest.raises(InvalidValueError, match="Q.*900000"):
        generate(cstr, u_range=([0.5, -5e5], [7.5, 9e5]), cache=False)
    with pytest.raises(InvalidValueError, match="target_names"):
        generate(linear_plant, target_names=("V",))
    with pytest.raises(InvalidValueError, match="val_frac"):
        generate(linear_plant, val_frac=0.6, test_frac=0.5)


def test_cstr_dataset_default_size_and_cache(_tmp_cache):
    ds = cstr_dataset()
    assert len(ds) > 4000 and ds.meta["layout"] == "one_step" and ds.window == 10
    assert cstr_dataset().content_hash == ds.content_hash
    assert len(list(_tmp_cache.glob("*.npz"))) == 1  # the second call read the cached file


def test_cstr_multi_step_default_has_thousands_of_windows(cstr):
    ds = cstr_dataset("multi_step")
    assert len(ds) > 2500 and ds.meta["n_dropped"] > 0 and ds.inputs.shape[1:] == (10, 4)
    assert np.all(cstr.lyapunov(ds.targets) <= ds.meta["region_level"])
    with pytest.raises(InvalidValueError, match="stride=2"):
        cstr_dataset("one_step", stride=2)
