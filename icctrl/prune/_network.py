"""Net-Trim over a whole network (parallel and cascade schemes), the magnitude-pruning baseline and the
measures they are compared by (non-zeros per layer, relative discrepancy, masked fine-tuning)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from icctrl.errors import InvalidValueError, ShapeError, UnknownNameError
from icctrl.prune._admm import LayerResult, solve_layer
from icctrl.prune._certify import layer_program_certificate

SCHEMES = ("parallel", "cascade")


@dataclass
class PruneReport:
    """Per-layer facts of one Net-Trim run."""

    scheme: str
    epsilon: list[float] = field(default_factory=list)  # relative ε each layer was solved with
    layers: list[LayerResult] = field(default_factory=list)
    certificates: list = field(default_factory=list)  # the core's verdict on each layer program solved

    def to_dict(self) -> dict:
        return {"scheme": self.scheme, "epsilon": self.epsilon,
                "programs_convex": [c.convex for c in self.certificates],
                "layers": [{"nonzeros": r.nonzeros, "iterations": r.iterations, "converged": r.converged,
                            "seconds": r.seconds, "discrepancy": r.discrepancy, "violation": r.violation}
                           for r in self.layers]}


def _blocks(model: nn.Module) -> list[tuple[nn.Linear, bool]]:
    """(Linear, followed by ReLU) for each layer of an nn.Sequential of Linear and ReLU modules."""
    if not isinstance(model, nn.Sequential):
        raise UnknownNameError(f"net_trim needs an nn.Sequential of Linear and ReLU layers, got {type(model).__name__}")
    mods, out = list(model), []
    for i, m in enumerate(mods):
        if isinstance(m, nn.Linear):
            out.append((m, i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU)))
        elif not isinstance(m, nn.ReLU) or i == 0 or not isinstance(mods[i - 1], nn.Linear):
            raise UnknownNameError(f"layer {i} ({type(m).__name__}) is not a Linear or a ReLU after a Linear")
    if not out:
        raise UnknownNameError("the model has no Linear layer to prune")
    return out


def _augment(X: torch.Tensor, lin: nn.Linear) -> torch.Tensor:
    return X if lin.bias is None else torch.cat([X, torch.ones(X.shape[0], 1, dtype=X.dtype)], 1)


def _weights(lin: nn.Linear, dtype) -> torch.Tensor:
    """The layer as one (n_in [+1], n_out) matrix acting on the (augmented) input."""
    W = lin.weight.detach().T.to(dtype)
    return W if lin.bias is None else torch.cat([W, lin.bias.detach().to(dtype)[None]], 0)


def _assign(lin: nn.Linear, W: torch.Tensor) -> None:
    with torch.no_grad():
        n = lin.in_features
        lin.weight.copy_(W[:n].T.to(lin.weight.dtype))
        if lin.bias is not None:
            lin.bias.copy_(W[n].to(lin.bias.dtype))


def net_trim(model: nn.Module, X, *, epsilon, scheme: str = "cascade", gamma: float = 1.1,
             return_report: bool = False, **options):
    """A pruned copy of an nn.Sequential of Linear and ReLU layers, layer by layer with Net-Trim.

    `parallel`: each layer keeps the original network's response on the original signal, V = 0 and
    ε = epsilon·‖Y‖. `cascade`: each layer sees the pruned network's own signal X̂, keeps V = W_origᵀX̂ on the
    inactive set, and ε is `gamma` times the original layer's discrepancy on X̂ (epsilon for the first layer).
    `epsilon` may be one relative ε per layer; in the cascade a later layer then takes the larger of its own ε and
    `gamma` times the discrepancy, so the original weights stay feasible (a number ε means [ε, 0, …, 0] there).
    Biases sit against a column of ones and are not in the l1 norm. `options` go to `solve_layer`.
    """
    if scheme not in SCHEMES:
        raise UnknownNameError(f"scheme={scheme!r} is not known; use one of {list(SCHEMES)}")
    if not gamma >= 1:
        raise InvalidValueError(f"gamma must be >= 1 (the original layer must stay feasible), got {gamma!r}")
    dtype = options.get("dtype", torch.float64)
    blocks = _blocks(model)
    per_layer = torch.as_tensor(epsilon, dtype=torch.float64).flatten().tolist()
    if len(per_layer) == 1:
        per_layer = per_layer + [epsilon if scheme == "parallel" else 0.0] * (len(blocks) - 1)
    if len(per_layer) != len(blocks) or not all(e >= 0 for e in per_layer):
        raise InvalidValueError(f"epsilon must be >= 0, one number or one per Linear layer ({len(blocks)}), "
                                f"got {epsilon!r}")
    X = torch.as_tensor(X).detach().to(dtype)
    if X.ndim != 2 or X.shape[1] != blocks[0][0].in_features:
        raise ShapeError(f"X must be (samples, {blocks[0][0].in_features}), got {tuple(X.shape)}")
    pruned = copy.deepcopy(model)
    report = PruneReport(scheme)
    x_orig, x_hat = X, X
    for k, ((lin, relu), (new, _)) in enumerate(zip(blocks, _blocks(pruned))):
        W0 = _weights(lin, dtype)
        Xa, Xh = _augment(x_orig, lin), _augment(x_hat, lin)
        pre = Xa @ W0
        Y = torch.relu(pre) if relu else pre
        free = 0 if lin.bias is None else 1
        if scheme == "parallel":
            eps, V, Xin = per_layer[k], None, Xa
        else:
            pre_hat = Xh @ W0
            active = Y > 0 if relu else torch.ones_like(Y, dtype=torch.bool)
            disc = float(torch.linalg.norm((pre_hat - Y)[active]) / torch.linalg.norm(Y).clamp_min(1e-12))
            eps = per_layer[k] if k == 0 else max(per_layer[k], gamma * disc)
            V, Xin = (pre_hat if relu else None), Xh
        res = solve_layer(Xin, Y, epsilon=eps, relu=relu, V=V, free_rows=free, **options)
        report.epsilon.append(float(eps))
        report.layers.append(res)
        report.certificates.append(layer_program_certificate(relu))
        _assign(new, res.W.cpu())
        x_orig = Y
        x_hat = (torch.relu(Xh @ res.W.cpu()) if relu else Xh @ res.W.cpu())
    return (pruned, report) if return_report else pruned


def magnitude_prune(model: nn.Module, nonzeros: list[int]) -> nn.Module:
    """A copy keeping, in each Linear layer, its `nonzeros[k]` weights of largest magnitude (biases kept)."""
    blocks = _blocks(model)
    if len(nonzeros) != len(blocks):
        raise ShapeError(f"nonzeros has {len(nonzeros)} entries for {len(blocks)} Linear layers")
    pruned = copy.deepcopy(model)
    for (lin, _), k in zip(_blocks(pruned), nonzeros):
        w = lin.weight.detach()
        if not 0 <= k <= w.numel():
            raise InvalidValueError(f"cannot keep {k} of the {w.numel()} weights of a layer")
        mask = torch.zeros(w.numel(), dtype=torch.bool)
        mask[torch.argsort(w.abs().flatten(), descending=True)[:k]] = True
        with torch.no_grad():
            lin.weight.mul_(mask.view_as(w).to(w.dtype))
    return pruned


def layer_nonzeros(model: nn.Module) -> list[int]:
    """Non-zero weights (biases excluded) of each Linear layer."""
    return [int((lin.weight != 0).sum()) for lin, _ in _blocks(model)]


def relative_discrepancy(pruned: nn.Module, model: nn.Module, X) -> float:
    """‖f_pruned(X) − f(X)‖_F / ‖f(X)‖_F at the network's output."""
    X = torch.as_tensor(X).to(next(model.parameters()).dtype)
    with torch.no_grad():
        y, yp = model(X), pruned(X.to(next(pruned.parameters()).dtype)).to(X.dtype)
    return float(torch.linalg.norm(yp - y) / torch.linalg.norm(y).clamp_min(1e-12))


def fine_tune(model: nn.Module, X, y, *, epochs: int = 30, lr: float = 1e-3, batch_size: int = 128,
              validation: float = 0.0, patience: int = 20, seed: int = 0) -> nn.Module:
    """A copy retrained with cross-entropy, its zero weights held at zero (the sparsity pattern is kept).

    With `validation` > 0 that share of (X, y) is held out: training runs up to `epochs` epochs, stops once the
    held-out loss has not improved for `patience` epochs, and the epoch of the lowest held-out loss is returned."""
    if not 0 <= validation < 1:
        raise InvalidValueError(f"validation must be a share in [0, 1), got {validation!r}")
    torch.manual_seed(seed)
    tuned = copy.deepcopy(model)
    lins = [lin for lin, _ in _blocks(tuned)]
    masks = [(lin.weight != 0).to(lin.weight.dtype) for lin in lins]
    X = torch.as_tensor(X).to(lins[0].weight.dtype)
    y = torch.as_tensor(y).long()
    order = torch.randperm(len(X))
    n_val = int(round(validation * len(X)))
    val, tr = order[:n_val], order[n_val:]
    Xv, yv, X, y = X[val], y[val], X[tr], y[tr]
    best, best_state, since = float("inf"), None, 0
    opt = torch.optim.Adam(tuned.parameters(), lr=lr)
    for _ in range(epochs):
        for idx in torch.randperm(len(X)).split(batch_size):
            opt.zero_grad()
            nn.functional.cross_entropy(tuned(X[idx]), y[idx]).backward()
            opt.step()
            with torch.no_grad():
                for lin, m in zip(lins, masks):
                    lin.weight.mul_(m)
        if n_val:
            with torch.no_grad():
                loss = float(nn.functional.cross_entropy(tuned(Xv), yv))
            if loss < best:
                best, best_state, since = loss, copy.deepcopy(tuned.state_dict()), 0
            else:
                since += 1
                if since >= patience:
                    break
    if best_state is not None:
        tuned.load_state_dict(best_state)
    return tuned
