"""Empirical NTK Θ(x, x') = J(x)J(x')ᵀ of any torch model by torch.func, and the NTK-parameterised ReLU MLP whose
empirical kernel tends to `analytic_ntk` as the width grows."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jacrev, jvp, vjp, vmap

from icctrl.errors import InvalidValueError, ShapeError, UnknownNameError

MODES = ("full", "trace", "diagonal")
METHODS = ("jacobian", "ntvp")


class NTKMLP(nn.Module):
    """ReLU MLP in the NTK parameterisation of `stax`: h ← (W_std/√fan_in)·W h + b_std·b with W, b ~ N(0, 1).

    `depth` hidden Dense+ReLU pairs of `width` units, then a Dense(n_out) readout with the same stds.
    """

    def __init__(self, d_in: int, width: int = 512, depth: int = 1, w_std: float = math.sqrt(2.0),
                 b_std: float = 0.0, n_out: int = 1, seed: int | None = None, dtype: torch.dtype = torch.float32):
        super().__init__()
        for name, v, low in (("d_in", d_in, 1), ("width", width, 1), ("depth", depth, 0), ("n_out", n_out, 1)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise InvalidValueError(f"{name} must be an integer >= {low}, got {v!r}")
        if not (np.isfinite(w_std) and np.isfinite(b_std)) or w_std < 0 or b_std < 0:
            raise InvalidValueError(f"w_std and b_std must be finite and >= 0, got {w_std!r}, {b_std!r}")
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        dims = [d_in] + [width] * depth + [n_out]
        self.weights = nn.ParameterList([nn.Parameter(torch.randn(o, i, generator=gen, dtype=dtype))
                                         for i, o in zip(dims[:-1], dims[1:])])
        self.biases = nn.ParameterList([nn.Parameter(torch.randn(o, generator=gen, dtype=dtype)) for o in dims[1:]])
        self.w_std, self.b_std = float(w_std), float(b_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = (self.w_std / math.sqrt(w.shape[1])) * (h @ w.T) + self.b_std * b
            if i < len(self.weights) - 1:
                h = torch.relu(h)
        return h


def _check(x, what: str, dtype: torch.dtype) -> torch.Tensor:
    t = torch.as_tensor(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64))
    if t.dim() < 2 or t.shape[0] == 0:
        raise ShapeError(f"{what} must be (points, ...) with at least one point, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise InvalidValueError(f"{what} contains non-finite values")
    return t.to(dtype)


def empirical_ntk(model: nn.Module, x1, x2=None, mode: str = "trace", method: str = "jacobian",
                  batch_size: int | None = None, dtype: torch.dtype | None = None,
                  max_memory: float = 2**30) -> np.ndarray:
    """Θ over the model's trainable parameters between the points x1 and x2 (x2=None: x2 = x1).

    mode "full": (n1, n2, k, k); "trace": (n1, n2), summed over the k outputs; "diagonal": (n1, n2, k), Θ_jj per
    output. method "jacobian": contract per-point Jacobians (vmap of jacrev); "ntvp": NTK-vector products
    (vjp then jvp), no Jacobian is stored. Blocks of `batch_size` points, by default sized to `max_memory` bytes.
    `dtype=torch.float64` computes in double: large W_std overflows float32, which is refused, not returned.
    """
    if mode not in MODES:
        raise UnknownNameError(f"unknown NTK mode {mode!r}; choose one of {list(MODES)}")
    if method not in METHODS:
        raise UnknownNameError(f"unknown NTK method {method!r}; choose one of {list(METHODS)}")
    if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
        raise InvalidValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    p0 = next(iter(model.parameters()), None)
    if p0 is None:
        raise InvalidValueError(f"{type(model).__name__} has no parameters: its NTK is zero")
    dtype = dtype or p0.dtype
    params = {k: v.detach().to(dtype) for k, v in model.named_parameters() if v.requires_grad}
    buffers = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in model.named_buffers()}
    a = _check(x1, "x1", dtype)
    b = a if x2 is None else _check(x2, "x2", dtype)

    def f(p, x):  # one point → its k outputs
        return functional_call(model, (p, buffers), (x.unsqueeze(0),)).reshape(-1)

    n_par = sum(v.numel() for v in params.values())
    k_out = f(params, a[0]).numel()
    item = torch.finfo(dtype).bits // 8
    if batch_size is None:
        per_point = k_out * n_par * item  # one point's Jacobian; ntvp holds one parameter vector per pair instead
        batch_size = max(1, int(max_memory // (2 * per_point)) if method == "jacobian"
                         else int(math.isqrt(int(max_memory // (2 * n_par * item)))))
    eq = {"full": "aip,bjp->abij", "trace": "aip,bip->ab", "diagonal": "aip,bip->abi"}[mode]

    def jac(x):
        j = vmap(jacrev(f), (None, 0))(params, x)
        return [v.reshape(x.shape[0], k_out, -1) for v in j.values()]

    def block_jacobian(xa, xb):
        ja, jb = jac(xa), (jac(xb) if xb is not xa else None)
        return sum(torch.einsum(eq, u, v) for u, v in zip(ja, jb or ja))

    def block_ntvp(xa, xb):
        eye = torch.eye(k_out, dtype=dtype)

        def pair(xi, xj):  # Θ(xi, xj)[i, j] = Σ_p J(xi)_ip J(xj)_jp, one column j per basis vector
            _, pull = vjp(lambda p: f(p, xj), params)
            cols = vmap(lambda e: jvp(lambda p: f(p, xi), (params,), pull(e))[1])(eye)
            return cols.T
        full = vmap(vmap(pair, (None, 0)), (0, None))(xa, xb)
        return {"full": full, "trace": full.diagonal(dim1=-2, dim2=-1).sum(-1),
                "diagonal": full.diagonal(dim1=-2, dim2=-1)}[mode]

    block = block_jacobian if method == "jacobian" else block_ntvp
    rows = []
    for i in range(0, a.shape[0], batch_size):
        xa = a[i:i + batch_size]
        rows.append(torch.cat([block(xa, xa if (x2 is None and j == i) else b[j:j + batch_size])
                               for j in range(0, b.shape[0], batch_size)], dim=1))
    out = torch.cat(rows, dim=0)
    if not torch.isfinite(out).all():
        raise InvalidValueError(f"the empirical NTK has non-finite entries in {dtype} (large W_std or depth "
                                "overflows single precision); pass dtype=torch.float64")
    return out.numpy()
