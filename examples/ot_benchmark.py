"""Evaluation grid of icctrl.ot with the bare calls: Gaussian pairs, the W2 benchmark, the sparse study.

    python examples/ot_benchmark.py --json icctrl-out/ot/w2bench.json --tasks w2bench [--dims 2 4 8 16 32 64]
        [--methods w2dual monge sparse] [--iters N] [--threads 1] [--device auto] [--settings '{"lr": 0.003}']
    python examples/ot_benchmark.py --json icctrl-out/ot/w2bench_gpu.json --tasks w2bench --dims 128 256 \\
        --device cuda      # the GPU part of the protocol (d = 256 needs its files, absent from the data snapshot)

Protocol of the W2 benchmark (Korotin et al. 2021): 20 000 training samples of P and of Q (independent), the
estimator's defaults (DenseICNN potentials), L2-UVP and cosine of the forward and inverse maps on 2^14 test
samples, beside the linear (Gaussian) baseline and the published figures. `--iters` caps the budget (default:
the estimator's own, `icctrl.ot.auto_budget(d)` with early stopping). The JSON is written atomically after
every finished run, so a long grid keeps what it has.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

import icctrl.ot as O
from icctrl._io import write_json
from icctrl.errors import DataError

#: Published L2-UVP (%) of the forward map on Mix3→Mix10 (Korotin et al. 2021, table of the high-dimensional
#: benchmark); only the entries this project has a source for are filled in.
PUBLISHED = {"W2": {2: 0.1, 16: 3.3, 64: 7.2}, "MM:R": {2: 0.1, 16: 1.9, 64: 4.5},
             "linear": {2: 14.1, 16: 41.6, 64: 63.9}}
N_TRAIN, N_TEST = 20000, 2**14
#: the bare calls compared (`sparse`: SparseW2Dual, which on a dense pair reads no sparsity and fits as W2Dual)
METHODS = {"w2dual": O.W2Dual, "monge": O.MongeGapMap, "sparse": O.SparseW2Dual}


def score(x_test, y_test, fwd, inv=None) -> dict:
    """L2-UVP (%) and cosine of the forward map (and of the inverse map when given) on the test samples."""
    tx = fwd(x_test)
    out = {"l2_uvp_fwd": O.l2_uvp(tx, y_test, y_test), "cos_fwd": O.cosine(x_test, tx, y_test)}
    if inv is not None:
        sy = inv(y_test)
        out.update(l2_uvp_inv=O.l2_uvp(sy, x_test, x_test), cos_inv=O.cosine(y_test, sy, x_test))
    return out


def run_pair(task: str, d: int, sample_p, true_map, methods, iters, device, sample_q=None,
             settings: dict | None = None) -> list[dict]:
    """The linear baseline and each method's bare call on one pair; one record per method."""
    x = sample_p(N_TRAIN, 1)
    y = sample_q(N_TRAIN, 2) if sample_q else true_map(sample_p(N_TRAIN, 2))  # independent samples of Q
    x_test = sample_p(N_TEST, 3)
    y_test = true_map(x_test).astype(np.float64)
    a, b = O.linear_map(x, y)
    ainv = np.linalg.inv(a)
    records = [{"task": task, "d": d, "method": "linear", "wall_s": 0.0,
                **score(x_test, y_test, lambda z: z @ a + b, lambda z: (z - b) @ ainv)}]
    for method in methods:
        model = METHODS[method](d, device=device, verbose=False, **(settings or {}))
        t0 = time.perf_counter()
        try:
            model.fit(x, y, iters=iters)
        except O.DivergenceError as exc:
            records.append({"task": task, "d": d, "method": method, "diverged": str(exc),
                            "wall_s": round(time.perf_counter() - t0, 1)})
            continue
        wall = time.perf_counter() - t0
        rec = {"task": task, "d": d, "method": method, "wall_s": round(wall, 1), "device": str(model.device),
               "iters": model.iters_, "budget": iters or O.auto_budget(d), "stop": model.stop_reason_,
               **score(x_test, y_test, model.transport, getattr(model, "inverse", None))}
        if method == "sparse":
            rec.update(read_sparse=model.moved_["sparse"], moved=int(model.moved_["moved"].size),
                       final_lambda=model.lam_)
        if method != "monge":
            rec["certified_convex"] = bool(model.certificates["f"].convex and model.certificates["g"].convex)
            rec["strong_convexity"] = list(model.quadratic_)
        records.append(rec)
    for r in records:
        print(f"{task} d={d} {r['method']}: " + ", ".join(
            f"{k} {r[k]:.3g}" for k in ("l2_uvp_fwd", "cos_fwd", "l2_uvp_inv", "wall_s") if k in r), flush=True)
    return records


def sparse_pair(n: int = 2000, dim: int = 2000, big: int = 100, seed: int = 0):
    """Source U[0,1)^dim; target = fresh U[0,1) draws + a per-coordinate shift: U(0, 100) on `big` coordinates,
    U(0, 1) on all the others. Returns x, y, the indices of the big shifts and the shift vector."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, dim)).astype(np.float32)
    big_idx = np.sort(rng.permutation(dim)[:big])
    shift = rng.uniform(0, 1, size=dim).astype(np.float32)
    shift[big_idx] = rng.uniform(0, 100, size=big)
    y = (rng.uniform(size=(n, dim)) + shift).astype(np.float32)
    return x, y, big_idx, shift


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True, help="where to write the results")
    ap.add_argument("--tasks", nargs="+", default=["gaussian", "w2bench"], choices=["gaussian", "w2bench"])
    ap.add_argument("--dims", nargs="+", type=int, default=[2, 4, 8, 16, 32, 64])
    ap.add_argument("--methods", nargs="+", default=["w2dual"], choices=list(METHODS))
    ap.add_argument("--iters", type=int, default=None, help="cap on outer iterations (default: auto budget)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared machine)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--settings", type=json.loads, default={},
                    help='estimator settings as JSON, e.g. \'{"conjugate_steps": 5}\' (default: none, the bare call)')
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {"device": args.device, "cuda": torch.cuda.is_available(), "threads": args.threads,
              "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
              "n_train": N_TRAIN, "n_test": N_TEST, "published_l2_uvp": PUBLISHED, "settings": args.settings,
              "runs": []}
    for task in args.tasks:
        for d in args.dims:
            if task == "gaussian":
                g = O.gaussian_pair(d, seed=0)
                runs = run_pair(task, d, g.sample, g.true_map, args.methods, args.iters, args.device, g.sample_q,
                                args.settings)
            else:
                try:
                    b = O.w2bench(d)
                except DataError as exc:
                    result["runs"].append({"task": task, "d": d, "skipped": str(exc)})
                    print(f"w2bench d={d}: skipped ({exc})")
                    continue
                runs = run_pair(task, d, b.sample, b.true_map, args.methods, args.iters, args.device,
                                settings=args.settings)
            result["runs"].extend(runs)
            write_json(args.json, result)
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
