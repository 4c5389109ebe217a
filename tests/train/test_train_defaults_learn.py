"""Training with no settings: the affine model in closed form, step budgets, per-model rates, affine start."""

import math

import numpy as np
import pytest
import torch

from icctrl.errors import InvalidValueError
from icctrl.nn import AffinePlus, Linear
from icctrl.train import (
    DEFAULT_STEPS,
    DEFAULT_WEIGHTS,
    MODEL_LR,
    PROJECTED_LR,
    TrainConfig,
    default_model_kw,
    evaluate,
    train,
)


def test_linear_is_fitted_in_closed_form(tiny_dataset):
    res = train("linear", tiny_dataset, TrainConfig(quiet=True))
    assert isinstance(res.model.model, Linear) and res.model.model.lags == tiny_dataset.window
    assert res.metrics["epochs_run"] == 0 and res.certificate.convex
    x, y = tiny_dataset.arrays("train")
    design = np.concatenate([x[:, 0], np.ones((len(x), 1))], axis=1)  # held inputs: the whole-window fit
    coef = np.linalg.lstsq(design, y.reshape(len(y), -1), rcond=None)[0]
    best = float(((design @ coef - y.reshape(len(y), -1)) ** 2).mean())
    xt, yt = tiny_dataset.tensors("train")
    assert evaluate(res.model.model, xt, yt) == pytest.approx(best, rel=1e-4)


def test_budget_in_steps_and_rates_per_model():
    cfg = TrainConfig().resolve("iclstm", 672)
    assert cfg.lr == MODEL_LR["iclstm"] == 1e-2
    assert TrainConfig().resolve("iclstm", 672, weights="projected").lr == PROJECTED_LR
    assert TrainConfig(lr=0.5).resolve("iclstm", 672, weights="projected").lr == 0.5
    assert cfg.epochs == math.ceil(DEFAULT_STEPS / math.ceil(672 / cfg.batch_size))
    assert cfg.patience == max(20, math.ceil(cfg.epochs / 3))
    big = TrainConfig().resolve("lstm", 67200)
    assert big.lr == 3e-3 and big.epochs < cfg.epochs  # same number of steps, fewer passes
    assert TrainConfig(epochs=7, lr=0.5).resolve("icrnn", 10).epochs == 7
    with pytest.raises(InvalidValueError, match="not both"):
        TrainConfig(epochs=3, steps=10)
    with pytest.raises(InvalidValueError, match="steps"):
        TrainConfig(steps=0)


def test_input_convex_models_get_an_affine_path_by_name(tiny_dataset):
    assert default_model_kw("iclrnn", tiny_dataset) == {"affine": tiny_dataset.window, "weights": DEFAULT_WEIGHTS}
    assert default_model_kw("lstm", tiny_dataset) == {}
    res = train("icrnn", tiny_dataset, TrainConfig(quiet=True, steps=20), hidden=8, layers=1)
    assert isinstance(res.model.model, AffinePlus) and res.certificate.convex
    plain = train("icrnn", tiny_dataset, TrainConfig(quiet=True, steps=20), hidden=8, layers=1, affine=0)
    assert not isinstance(plain.model.model, AffinePlus)


def test_training_starts_at_the_affine_fit_and_never_ends_worse(tiny_dataset):
    lin = train("linear", tiny_dataset, TrainConfig(quiet=True))
    res = train("iclrnn", tiny_dataset, TrainConfig(quiet=True, steps=60), hidden=8, layers=2)
    assert res.metrics["val_mse"] <= 1.05 * lin.metrics["val_mse"]


def test_the_trainer_projects_non_negative_weights_after_every_step(tiny_dataset):
    res = train("iclrnn", tiny_dataset, TrainConfig(quiet=True, steps=40, lr=0.5), hidden=8, layers=2)
    inner = res.model.model.convex
    assert inner.config["weights"] == DEFAULT_WEIGHTS == "projected"
    projected = [getattr(m, n).detach().double() for m in inner.modules() for n in getattr(m, "_projected", {})]
    assert len(projected) == 5  # w_in ×2, w_rec ×2, w_out
    for w in projected:  # large steps would leave negative entries without the projection
        assert (w >= 0).all() and torch.linalg.matrix_norm(w, ord=2) <= 1 + 1e-6
    assert res.certificate.convex
