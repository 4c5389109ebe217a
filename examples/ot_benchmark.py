"""Evaluation grid of icctrl.ot: Gaussian pairs, the W2 benchmark (Mix3→Mix10) and sparse single-cell-like data.

    python examples/ot_benchmark.py --json icctrl-out/ot/benchmark.json [--tasks gaussian w2bench sparse]
        [--dims 2 16 64] [--iters 300] [--threads 1]

Writes the JSON atomically after every finished run, so a long grid keeps what it has.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

import icctrl.ot as O
from icctrl._io import write_json

PUBLISHED = {  # L2-UVP (%) on Mix3→Mix10, Korotin et al. 2021
    "W2": {2: 0.1, 16: 3.3, 64: 7.2}, "MM:R": {2: 0.1, 16: 1.9, 64: 4.5}, "linear": {2: 14.1, 16: 41.6, 64: 63.9},
}


def _w2dual(d: int, iters: int, quadratic: float, seed: int) -> tuple[O.W2Dual, dict]:
    kw = dict(hidden=max(64, 2 * d), layers=3, activation="celu", quadratic=quadratic, lr=3e-3, batch_size=256,
              inner_iters=10, pretrain_iters=200, seed=seed, verbose=False)
    return O.W2Dual(d, **kw), kw


def _monge(d: int, iters: int, seed: int) -> tuple[O.MongeGapMap, dict]:
    kw = dict(hidden=max(128, 2 * d), layers=3, lam=1.0, epsilon=0.05, lr=3e-3, batch_size=256, seed=seed,
              verbose=False)
    return O.MongeGapMap(d, **kw), kw


def _score(model, x_test, y_test, inverse: bool) -> dict:
    tx = model.transport(x_test)
    out = {"l2_uvp_fwd": O.l2_uvp(tx, y_test, y_test), "cos_fwd": O.cosine(x_test, tx, y_test)}
    if inverse:
        sy = model.inverse(y_test)
        out.update(l2_uvp_inv=O.l2_uvp(sy, x_test, x_test), cos_inv=O.cosine(y_test, sy, x_test))
    return out


def run_pair(name: str, d: int, sample_p, true_map, iters: int, quadratic: float, n_train: int = 20000) -> list:
    """Fit W2Dual and MongeGapMap on one pair; return one record per method."""
    x = sample_p(n_train, 1)
    y = true_map(sample_p(n_train, 2))  # independent samples of Q = T*#P
    x_test = sample_p(4096, 3)
    y_test = true_map(x_test)
    lin_a, lin_b = _linear(x, y)
    records = [{"task": name, "d": d, "method": "linear (Gaussian fit)", "iters": 0, "wall_s": 0.0,
                **_score_fn(lambda z: z @ lin_a + lin_b, x_test, y_test)}]
    for method in ("W2Dual", "MongeGapMap"):
        model, kw = _w2dual(d, iters, quadratic, 0) if method == "W2Dual" else _monge(d, iters, 0)
        t0 = time.perf_counter()
        model.fit(x, y, iters=iters)
        wall = time.perf_counter() - t0
        rec = {"task": name, "d": d, "method": method, "iters": iters, "wall_s": round(wall, 1), "settings": kw,
               **_score(model, x_test, y_test, inverse=method == "W2Dual")}
        if method == "W2Dual":
            rec["certified_convex"] = bool(model.certificates["f"].convex and model.certificates["g"].convex)
        rec["monge_gap"] = O.monge_gap(model.transport, x_test[:512], epsilon=0.01)
        records.append(rec)
        print(f"{name} d={d} {method}: L2-UVP {rec['l2_uvp_fwd']:.2f} %, cos {rec['cos_fwd']:.3f}, {wall:.0f} s")
    return records


def _linear(x: np.ndarray, y: np.ndarray):
    import ot

    xd, yd = x.astype(np.float64), y.astype(np.float64)
    return ot.gaussian.bures_wasserstein_mapping(xd.mean(0), yd.mean(0), np.cov(xd.T), np.cov(yd.T))


def _score_fn(T, x_test, y_test) -> dict:
    tx = T(x_test.astype(np.float64))
    return {"l2_uvp_fwd": O.l2_uvp(tx, y_test, y_test), "cos_fwd": O.cosine(x_test, tx, y_test)}


def sparse_cells(n: int = 2000, genes: int = 3000, big: int = 100, small: int = 2000, seed: int = 0):
    """Source U[0,1)^genes; target = fresh U[0,1) + a per-gene shift: U[0,100) on `big` genes, U[0,1) on `small`."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, genes)).astype(np.float32)
    perm = rng.permutation(genes)
    big_idx, small_idx = np.sort(perm[:big]), perm[big:big + small]
    shift = np.zeros(genes, dtype=np.float32)
    shift[big_idx] = rng.uniform(0, 100, size=big)
    shift[small_idx] = rng.uniform(0, 1, size=small)
    y = (rng.uniform(size=(n, genes)) + shift).astype(np.float32)
    return x, y, big_idx, shift


def run_sparse(iters: int, penalty: str = "l0", threshold: float = 0.1) -> list[dict]:
    """SparseW2Dual on the synthetic cells (adaptive λ aiming at ~100 displaced genes per cell) and the same
    dual without penalty (λ = 1e-9) as the dense baseline. Displaced = |Δᵢ| > `threshold`."""
    import ot

    x, y, big_idx, shift = sparse_cells()
    out = []
    for label, extra in (("adaptive", dict(lam=1e-3, target_dim=120, warmup=20)), ("no penalty", dict(lam=1e-9))):
        kw = dict(epsilon=1.0, threshold=threshold, check_every=10, hidden=64, layers=2, lr=1e-2,
                  inner_iters=3, batch_size=128, pretrain_iters=50, verbose=False, **extra)
        model = O.SparseW2Dual(x.shape[1], penalty, **kw)
        t0 = time.perf_counter()
        model.fit(x, y, iters=iters)
        wall = time.perf_counter() - t0
        tx = model.transport(x[:500])
        dims = O.displacement_dims(x[:500], tx, threshold=threshold)
        rec = O.support_recovery(x[:500], tx, big_idx, threshold=threshold)
        w_fit = float(ot.emd2([], [], ot.dist(tx.astype(np.float64), y[:500].astype(np.float64))))
        w_id = float(ot.emd2([], [], ot.dist(x[:500].astype(np.float64), y[:500].astype(np.float64))))
        out.append({"task": "sparse_cells", "method": f"SparseW2Dual({penalty}, {label})", "iters": iters,
                    "wall_s": round(wall, 1), "settings": kw, "threshold": threshold,
                    "dims_mean": float(dims.mean()), "dims_p75": float(np.percentile(dims, 75)),
                    "precision": rec["precision"], "recall": rec["recall"], "found": rec["found"],
                    "final_lambda": model.lam_, "emd_sq_to_target": w_fit, "emd_sq_identity": w_id,
                    "big_shift_recovered": float((tx - x[:500]).mean(0)[big_idx].sum() / shift[big_idx].sum())})
        print(f"sparse cells ({label}): precision {rec['precision']:.2f} recall {rec['recall']:.2f} dims "
              f"{dims.mean():.0f} (p75 {np.percentile(dims, 75):.0f}), {wall:.0f} s")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True, help="where to write the results")
    ap.add_argument("--tasks", nargs="+", default=["gaussian", "w2bench", "sparse"],
                    choices=["gaussian", "w2bench", "sparse"])
    ap.add_argument("--dims", nargs="+", type=int, default=[2, 16, 64])
    ap.add_argument("--iters", type=int, default=300, help="outer iterations (f steps / map steps)")
    ap.add_argument("--sparse-iters", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared machine)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = {"device": device, "cpu": platform.processor() or platform.machine(), "threads": args.threads,
              "torch": torch.__version__, "published_l2_uvp": PUBLISHED, "runs": []}
    for task in args.tasks:
        if task == "sparse":
            result["runs"].extend(run_sparse(args.sparse_iters))
            write_json(args.json, result)
            continue
        for d in args.dims:
            if task == "gaussian":
                g = O.gaussian_pair(d, seed=0)
                runs = run_pair("gaussian", d, lambda n, s, g=g: g.sample(n, s), g.true_map, args.iters, 0.5)
            else:
                b = O.w2bench(d)
                runs = run_pair("w2bench", d, b.sample, b.true_map, args.iters, 0.02)
            result["runs"].extend(runs)
            write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
