"""Space folds: patterns match a hand computation, χ reproduces CantorNet's published values, works on the zoo."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from icctrl.analysis.folds import (
    activation_patterns,
    cantornet,
    chi,
    chi_of_patterns,
    fold_summary,
    path_patterns,
    path_points,
    sample_pairs,
)
from icctrl.errors import InvalidValueError, ShapeError
from icctrl.nn import build

# Lewandowski et al., along (0, 3/4) → (1, 3/4), k = 1…5.
PUBLISHED = {10_001: [0.50, 0.69, 0.81, 0.88, 0.93], 11: [0.50, 0.69, 0.75, 0.81, 0.83]}


@pytest.mark.parametrize("n_points", sorted(PUBLISHED))
def test_cantornet_reproduces_published_chi(n_points):
    got = [chi(cantornet(k), (0.0, 0.75), (1.0, 0.75), n_points) for k in range(1, 6)]
    assert got == pytest.approx(PUBLISHED[n_points], abs=0.005 + 1e-9)


def test_cantornet_weights_and_output():
    net = cantornet(2)
    assert [m.out_features for m in net if isinstance(m, nn.Linear)] == [3, 2, 3, 2, 1]
    x = torch.tensor([[0.0, 0.75], [0.5, 0.75], [1 / 6, 0.75]], dtype=torch.float64)
    # Block map x ↦ relu(3x − 2) + relu(1 − 3x): 0 → 1 → 1; 1/2 → 0 → 1; 1/6 → 1/2 → 0.
    assert net(x).flatten().tolist() == pytest.approx([0.0, 0.0, 0.25])


def test_patterns_match_hand_computation():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 1))
    x = torch.randn(50, 3)
    h1 = net[0](x)
    h2 = net[2](torch.relu(h1))
    p = activation_patterns(net, x)
    assert p.units == 9 and p.layers == (("1 (ReLU): relu #0", 5), ("3 (ReLU): relu #1", 4))
    assert torch.equal(p.bits, torch.cat([h1 > 0, h2 > 0], dim=1))


def test_relu_on_weights_is_not_a_unit():
    class ReluWeight(nn.Module):
        def forward(self, w):
            return torch.relu(w)

    lin = nn.Linear(3, 4)
    parametrize.register_parametrization(lin, "weight", ReluWeight())
    net = nn.Sequential(lin, nn.ReLU(), nn.Linear(4, 1))
    assert activation_patterns(net, torch.randn(7, 3)).units == 4


def test_one_hidden_layer_never_folds_but_deeper_nets_do():
    # Along a line each first-layer unit switches at most once, so r₁ = r₂ and χ = 0 exactly: the measure is not
    # positive by construction, and CantorNet (k = 1, two ReLU layers) folds.
    torch.manual_seed(1)
    shallow = nn.Sequential(nn.Linear(4, 200), nn.ReLU(), nn.Linear(200, 1))
    x0, x1 = torch.randn(20, 4) * 3, torch.randn(20, 4) * 3
    assert fold_summary(shallow, x0, x1, 2001).max == 0.0
    assert chi(cantornet(1), (0, 0.75), (1, 0.75), 101) > 0.4


def test_chi_of_patterns_by_hand():
    # start 00, then 10, 11, 01, 00: r₁ = 2 (at 11), r₂ = 4, χ = 1/2
    bits = torch.tensor([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]])
    assert chi_of_patterns(bits) == 0.5
    assert chi_of_patterns(torch.zeros(5, 3)) == 0.0


@pytest.mark.parametrize("name,kw,shape", [("icnn", {}, (3,)), ("icrnn", {}, (4, 3)), ("iclrnn", {}, (4, 3)),
                                           ("picnn", {"convex_inputs": [0, 1]}, (3,)),
                                           ("iclstm", {}, (4, 3))])
def test_works_on_icctrl_relu_models(name, kw, shape):
    torch.manual_seed(0)
    model = build(name, n_in=3, n_out=2, hidden=16, layers=2, **kw)
    x0, x1 = torch.randn(*shape) * 2, torch.randn(*shape) * 2
    bits = path_patterns(model, x0, x1, 501)
    assert bits.shape[0] == 501 and bits.shape[1] > 0
    assert 0.0 <= chi(model, x0, x1, 501) < 1.0
    # the patterns at the path's end are those of the model at x1
    assert torch.equal(bits[-1], activation_patterns(model, x1.unsqueeze(0)).bits[0])


def test_fold_summary_and_pairs():
    x = torch.randn(40, 2).numpy()
    labels = [i % 2 for i in range(40)]
    a, b = sample_pairs(x, labels, n_pairs=12, seed=3)
    assert a.shape == b.shape == (12, 2)
    s = fold_summary(cantornet(3), a, b, 301)
    assert s.n_paths == 12 and 0 <= s.mean <= s.max < 1 and 0 <= s.share_folding <= 1
    assert set(s.as_dict()) == {"max", "mean", "share_folding", "n_paths", "n_points"}


def test_bad_input_is_refused():
    with pytest.raises(InvalidValueError, match="n_points"):
        chi(cantornet(1), (0, 0), (1, 1), 1)
    with pytest.raises(ShapeError, match="one shape"):
        path_points((0, 0), (1, 1, 1), 5)
    with pytest.raises(InvalidValueError, match="non-finite"):
        chi(cantornet(1), (0, float("nan")), (1, 1), 5)
    with pytest.raises(InvalidValueError, match="no ReLU"):
        chi(build("lstm", 3, 1, hidden=4, layers=1), torch.zeros(2, 3), torch.ones(2, 3), 5)
    with pytest.raises(InvalidValueError, match="k must be"):
        cantornet(0)
