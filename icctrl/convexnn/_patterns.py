"""Activation patterns D = diag(1[X̃u ≥ 0]) of one ReLU layer on the data: sampled, or all of them."""

from __future__ import annotations

import itertools
import math

import numpy as np

from icctrl.errors import InvalidValueError

MAX_CANDIDATES = 200_000  # exact enumeration refuses beyond this many candidate patterns


def sampling_rule(dim: int, eta: float = 0.1, xi: float = 0.05) -> int:
    """Sampled gate directions after which, with probability 1 − xi, the patterns still missing carry at most an
    `eta` share of the Gaussian measure of directions: the scenario bound ⌈(2/η)(ln(1/ξ) + dim)⌉ that the
    stochastic approximation of the sampled program rests on (dim = gate-direction dimension, bias included)."""
    if not (0 < eta < 1 and 0 < xi < 1) or dim < 1:
        raise InvalidValueError(f"need 0 < eta < 1, 0 < xi < 1 and dim >= 1; got eta={eta!r}, xi={xi!r}, dim={dim!r}")
    return math.ceil(2.0 / eta * (math.log(1.0 / xi) + dim))


def _unique(masks: np.ndarray) -> np.ndarray:
    masks = masks[masks.any(1)]  # the all-off pattern contributes nothing
    return np.unique(masks, axis=0)


def sample_patterns(Xa: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Distinct patterns (as rows of 0/1, one per pattern) from `n` Gaussian gate directions."""
    U = np.random.default_rng(seed).standard_normal((Xa.shape[1], n))
    return _unique((Xa @ U >= 0).T)


def count_patterns(n: int, dim: int) -> int:
    """Regions of n central hyperplanes in general position in R^dim: 2 Σ_{k<dim} C(n−1, k)."""
    return 2 * sum(math.comb(n - 1, k) for k in range(min(dim, n)))


def enumerate_patterns(Xa: np.ndarray) -> np.ndarray:
    """Every pattern of the open regions of the arrangement {u : x̃_kᵀu = 0} (data in general position).

    Each region of an essential central arrangement has an edge where dim−1 hyperplanes meet; around that
    edge the other signs are fixed and the dim−1 meeting ones take every combination.
    """
    n, dim = Xa.shape
    if np.linalg.matrix_rank(Xa) < dim:
        raise InvalidValueError(f"exact enumeration needs data of full rank {dim}; got rank "
                                f"{np.linalg.matrix_rank(Xa)}")
    if dim == 1:
        return _unique(np.stack([Xa[:, 0] > 0, Xa[:, 0] < 0]))
    n_sub = math.comb(n, dim - 1)
    if n_sub * 2 ** dim > MAX_CANDIDATES:
        raise InvalidValueError(
            f"enumerating every pattern of {n} samples in {dim} dimensions means {n_sub * 2 ** dim} candidates "
            f"(limit {MAX_CANDIDATES}); pass n_patterns='auto' or an integer to sample them")
    combos = np.array(list(itertools.product((False, True), repeat=dim - 1)))
    out = []
    for S in itertools.combinations(range(n), dim - 1):
        S = list(S)
        u = np.linalg.svd(Xa[S])[2][-1]  # the edge direction: orthogonal to the dim−1 meeting hyperplanes
        for sgn in (1.0, -1.0):
            base = Xa @ (sgn * u) > 0
            block = np.repeat(base[None], len(combos), 0)
            block[:, S] = combos
            out.append(block)
    return _unique(np.concatenate(out))
