"""Trainer: determinism, constraints after training, early stopping, resume, certificate, bad input."""

from __future__ import annotations

import pytest
import torch

from icctrl.errors import CheckpointError, InvalidValueError, ShapeError, UnknownNameError
from icctrl.nn import Scaled, build
from icctrl.train import TrainConfig, Trainer, evaluate, train


def _cfg(**kw):
    base = {"epochs": 3, "batch_size": 16, "lr": 1e-2, "quiet": True, "device": "cpu"}
    return TrainConfig(**{**base, **kw})


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_same_seed_gives_identical_weights(tiny_dataset):
    a = train("iclstm", tiny_dataset, _cfg(seed=3), hidden=8, layers=2)
    b = train("iclstm", tiny_dataset, _cfg(seed=3), hidden=8, layers=2)
    wa, wb = _weights(a.model), _weights(b.model)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c = train("iclstm", tiny_dataset, _cfg(seed=4), hidden=8, layers=2)
    assert any(not torch.equal(wa[k], v) for k, v in _weights(c.model).items())


def test_training_lowers_the_loss_and_returns_a_ready_model(tiny_dataset):
    res = train("lstm", tiny_dataset, _cfg(epochs=15, lr=1e-2), hidden=16, layers=1)
    hist = [h["train_mse"] for h in res.history]
    assert hist[-1] < 0.5 * hist[0]
    m = res.model
    assert isinstance(m, Scaled) and not m.training
    assert m.input_names == ("C_A", "T", "C_A0", "Q") and m.output_names == ("C_A", "T")
    x, y = tiny_dataset.arrays("test", scaled=False)
    with torch.no_grad():
        pred = m(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
    phys = ((pred - y) ** 2).mean(axis=(0, 1))
    assert phys[1] == pytest.approx(res.metrics["test_mse_physical"]["T"], rel=1e-3)
    assert res.metrics["test_mse"] == pytest.approx(
        float((((pred - y) / tiny_dataset.output_scaler.scale) ** 2).mean()), rel=1e-3
    )


@pytest.mark.parametrize("name", ["iclstm", "icrnn", "iclrnn"])
def test_weight_constraints_hold_after_training(tiny_dataset, name):
    res = train(name, tiny_dataset, _cfg(epochs=4, lr=5e-2), hidden=8, layers=2)
    inner = res.model.model
    checked = 0
    for mod_name, mod in inner.named_modules():
        if not hasattr(mod, "parametrizations") and "weight" not in getattr(mod, "_projected", {}):
            continue  # unconstrained (the affine path) or a parametrization on another tensor
        w = mod.weight.detach()
        assert bool((w >= 0).all()), f"{mod_name} has negative weights after training"
        if name == "iclrnn":
            assert float(torch.linalg.matrix_norm(w.double(), ord=2)) <= 1 + 1e-6, mod_name
        checked += 1
    assert checked >= 4
    assert res.certificate.convex is (name != "iclstm")  # IC-LSTM is convex per step only
    if name == "iclstm":
        assert res.extra["certificate_per_step"]["convex"] is True


def test_certificate_with_respect_to_the_inputs_asked(tiny_dataset):
    res = train("icrnn", tiny_dataset, _cfg(epochs=1, certify_wrt=[2, 3]), hidden=8, layers=1, doubled=[2, 3])
    assert res.certificate.convex
    assert res.certificate.wrt == ("C_A0", "Q")


def test_early_stopping_stops_and_keeps_the_best_weights(tiny_dataset):
    res = train("rnn", tiny_dataset, _cfg(epochs=50, patience=2, min_delta=1e9), hidden=8, layers=1)
    # the starting point competes: no epoch improves on it by min_delta, so the untrained weights are kept
    assert res.metrics["stopped_early"] and res.metrics["epochs_run"] == 2
    assert res.metrics["best_epoch"] == -1
    x, y = tiny_dataset.tensors("val")
    assert res.metrics["val_mse"] == pytest.approx(evaluate(res.model.model, x, y))
    assert all(h["val_mse"] != pytest.approx(res.metrics["val_mse"]) for h in res.history)


def test_resume_after_interruption_matches_an_uninterrupted_run(tiny_dataset, tmp_path):
    cfg = _cfg(epochs=5, seed=1)
    full = train("icrnn", tiny_dataset, cfg, hidden=8, layers=1)

    def stop_at_2(epoch, record):
        if epoch == 2:
            raise KeyboardInterrupt

    out = tmp_path / "m.pt"
    with pytest.raises(KeyboardInterrupt):
        train("icrnn", tiny_dataset, cfg, out=out, callbacks=[stop_at_2], hidden=8, layers=1)
    state = tmp_path / "m.pt.state"
    assert state.is_file() and not out.exists()
    resumed = train("icrnn", tiny_dataset, cfg, out=out, resume=True, hidden=8, layers=1)
    assert out.is_file() and not state.exists()
    assert [h["epoch"] for h in resumed.history] == list(range(5))
    wa, wb = _weights(full.model), _weights(resumed.model)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_refuses_a_state_of_other_settings(tiny_dataset, dataset_factory, tmp_path):
    out = tmp_path / "m.pt"

    def stop(epoch, record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train("rnn", tiny_dataset, _cfg(lr=1e-2), out=out, callbacks=[stop], hidden=8, layers=1)
    with pytest.raises(CheckpointError, match="lr=0.01"):
        train("rnn", tiny_dataset, _cfg(lr=1e-3), out=out, resume=True, hidden=8, layers=1)
    with pytest.raises(CheckpointError, match="another dataset"):
        train("rnn", dataset_factory(seed=5), _cfg(lr=1e-2), out=out, resume=True, hidden=8, layers=1)


def test_bad_input_raises_specific_errors(tiny_dataset):
    with pytest.raises(ShapeError, match="3 → 2"):
        Trainer(build("rnn", 3, 2, hidden=4, layers=1), tiny_dataset, _cfg())
    inner = build("rnn", 4, 2, hidden=4, layers=1)
    with pytest.raises(InvalidValueError, match="Scaled"):
        Trainer(Scaled(inner, 0, 1, 0, 1), tiny_dataset, _cfg())
    with pytest.raises(InvalidValueError, match="lr"):
        TrainConfig(lr=-1)
    with pytest.raises(InvalidValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(UnknownNameError, match="tpu"):
        TrainConfig(device="tpu")
    with pytest.raises(UnknownNameError, match="epoch"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(UnknownNameError, match="nope"):
        train("nope", tiny_dataset, _cfg())
    if not torch.cuda.is_available():
        with pytest.raises(InvalidValueError, match="CUDA is not available"):
            train("rnn", tiny_dataset, _cfg(device="cuda"), hidden=4, layers=1)


def test_config_round_trips_through_a_dict():
    cfg = _cfg(certify_wrt=[2, 3], tags={"plant": "cstr"})
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_keep_best_false_keeps_the_last_weights(tiny_dataset):
    res = train("rnn", tiny_dataset, _cfg(epochs=4, keep_best=False, lr=5e-2), hidden=8, layers=1)
    last = res.history[-1]["val_mse"]
    assert res.metrics["val_mse"] == pytest.approx(last)
    x, y = tiny_dataset.tensors("val")
    from icctrl.train import evaluate

    assert evaluate(res.model.model, x, y) == pytest.approx(last, rel=1e-6)


def test_an_initialisation_that_overflows_is_refused_before_training(dataset_factory):
    long = dataset_factory(n=48, T=14)
    torch.manual_seed(0)
    model = build("iclstm", long.inputs.shape[-1], long.targets.shape[-1], hidden=64, layers=2)
    with torch.no_grad():  # gate scales far above one: the forget gate compounds over the window
        for g in model.gates:
            g.weight = torch.full_like(g.weight, 8.0)
    with pytest.raises(InvalidValueError, match="blows up on windows this long"):
        train(model, long, _cfg())
