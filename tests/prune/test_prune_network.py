"""Net-Trim over a network: both schemes, the magnitude baseline, and what the core says of the result."""

import numpy as np
import pytest
import torch

from icctrl.errors import InvalidValueError, UnknownNameError
from icctrl.prune import (
    fine_tune,
    layer_nonzeros,
    magnitude_prune,
    mlp,
    net_trim,
    network_facts,
    relative_discrepancy,
    spirals,
    train_classifier,
)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    X, y = spirals(150, seed=0)
    return train_classifier(mlp([2, 16, 16, 2]), X, y, epochs=40), X


@pytest.mark.parametrize("scheme", ["parallel", "cascade"])
def test_net_trim_prunes_and_keeps_the_response(trained, scheme):
    model, X = trained
    before = [p.detach().clone() for p in model.parameters()]
    pruned, rep = net_trim(model, X, epsilon=0.02, scheme=scheme, return_report=True, max_iter=400, tol=1e-3)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # a copy, the model untouched
    kept, total = layer_nonzeros(pruned), layer_nonzeros(model)
    assert sum(kept) < 0.5 * sum(total)
    assert relative_discrepancy(pruned, model, X) < 0.15
    assert len(rep.layers) == 3 and rep.epsilon[0] == 0.02
    assert all(c.convex for c in rep.certificates) and rep.to_dict()["programs_convex"] == [True] * 3
    # at equal non-zeros, magnitude pruning moves the output further
    mag = magnitude_prune(model, kept)
    assert layer_nonzeros(mag) == kept
    assert relative_discrepancy(mag, model, X) > relative_discrepancy(pruned, model, X)


def test_per_layer_epsilon_loosens_only_its_layer(trained):
    model, X = trained
    opts = {"max_iter": 400, "tol": 1e-3}
    _, one = net_trim(model, X, epsilon=0.02, return_report=True, **opts)
    pruned, per = net_trim(model, X, epsilon=[0.02, 0.2, 0.0], return_report=True, **opts)
    assert per.epsilon[0] == one.epsilon[0] == 0.02 and per.epsilon[1] == 0.2 > one.epsilon[1]
    assert per.layers[1].nonzeros < one.layers[1].nonzeros  # the looser middle layer keeps fewer weights
    assert per.epsilon[2] > 0  # ε = 0 asked, the cascade floor (gamma × discrepancy) keeps the original feasible
    _, par = net_trim(model, X, epsilon=[0.05, 0.01, 0.01], scheme="parallel", return_report=True, **opts)
    assert par.epsilon == [0.05, 0.01, 0.01]
    with pytest.raises(InvalidValueError, match="one per Linear layer"):
        net_trim(model, X, epsilon=[0.1, 0.1])
    with pytest.raises(InvalidValueError, match="epsilon"):
        net_trim(model, X, epsilon=[0.1, -0.1, 0.1])


def test_fine_tune_keeps_the_mask_and_stops_on_the_held_out_loss(trained):
    model, X = trained
    _, y = spirals(150, seed=0)
    mag = magnitude_prune(model, [10, 40, 10])
    stopped = fine_tune(mag, X, y, epochs=500, validation=0.2, patience=3)
    assert all(bool((b.weight[a.weight == 0] == 0).all()) for a, b in zip(mag[::2], stopped[::2]))
    loss = torch.nn.functional.cross_entropy
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    with torch.no_grad():
        assert loss(stopped(Xt), yt) < loss(mag(Xt), yt)
    with pytest.raises(InvalidValueError, match="validation"):
        fine_tune(mag, X, y, validation=1.0)


def test_network_facts_name_the_convexity_of_the_result(trained):
    model, _ = trained
    facts = network_facts(model)
    assert facts["convex_in_input"] is False  # mixed-sign hidden weights: a ReLU MLP is not convex in x
    assert np.isfinite(facts["lipschitz_bound"])
    icnn = mlp([2, 5, 1])
    with torch.no_grad():
        icnn[2].weight.abs_()
    assert network_facts(icnn)["convex_in_input"] is True  # non-negative output layer over ReLU: convex


def test_bad_models_and_arguments(trained):
    model, X = trained
    with pytest.raises(UnknownNameError, match="scheme"):
        net_trim(model, X, epsilon=0.1, scheme="serial")
    with pytest.raises(UnknownNameError, match="Sequential"):
        net_trim(torch.nn.Linear(2, 2), X, epsilon=0.1)
    with pytest.raises(UnknownNameError, match="Tanh"):
        net_trim(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh()), X, epsilon=0.1)
    with pytest.raises(InvalidValueError, match="gamma"):
        net_trim(model, X, epsilon=0.1, gamma=0.5)
    with pytest.raises(InvalidValueError, match="keep"):
        magnitude_prune(model, [10 ** 6, 1, 1])
