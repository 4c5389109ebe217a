"""`lipschitz_bound`: a certified upper bound from spectral norms through the layers."""

from __future__ import annotations

from torch import nn

from icctrl.errors import UnknownNameError

_ONE_LIPSCHITZ = (nn.ReLU, nn.Softplus, nn.Tanh, nn.Identity, nn.LeakyReLU, nn.ELU, nn.CELU)


def lipschitz_bound(model, window: int = 1) -> float:
    """Upper bound on ‖f(X) − f(X')‖₂ / ‖X − X'‖₂ with X the whole input window of `window` steps and f(X) the
    whole output window (2-norms). `inf` when no finite global constant is certified (gated products,
    quadratic terms, modules without a rule)."""
    if hasattr(model, "lipschitz_bound"):
        return float(model.lipschitz_bound(window))
    if not isinstance(model, nn.Module):
        raise UnknownNameError(f"lipschitz_bound() needs a torch module, got {type(model).__name__}")
    return _sequential_bound(model)


def _sequential_bound(m: nn.Module) -> float:
    import torch

    if isinstance(m, nn.Sequential):
        out = 1.0
        for child in m:
            out *= _sequential_bound(child)
        return out
    if isinstance(m, nn.Linear):
        return float(torch.linalg.matrix_norm(m.weight.detach().double(), ord=2))
    if isinstance(m, _ONE_LIPSCHITZ):
        return 1.0
    if isinstance(m, nn.Sigmoid):
        return 0.25
    return float("inf")
