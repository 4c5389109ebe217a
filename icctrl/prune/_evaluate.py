"""The evaluation of docs/prune.md: Net-Trim against magnitude pruning on digits and spirals, parallel against
cascade, runtime per layer, ADMM scaling, and the sparse-recovery test of the O(s log(N/s)) sample claim."""

from __future__ import annotations

import time

import numpy as np
import torch
from tqdm import tqdm

from icctrl.errors import UnknownNameError
from icctrl.prune._admm import solve_layer
from icctrl.prune._certify import layer_program_certificate, network_facts
from icctrl.prune._data import accuracy, digits, mlp, spirals, train_classifier
from icctrl.prune._network import fine_tune, layer_nonzeros, magnitude_prune, net_trim, relative_discrepancy

# The Net-Trim paper's cascade result on its 2-200-200-2 spiral network (weights, biases excluded).
PUBLISHED_SPIRAL = {"kept": [362, 2663, 131], "total": [397, 39770, 399], "relative_discrepancy": 0.046}


def _compare(model, Xtr, ytr, Xte, yte, epsilon, scheme: str, options: dict, tune_epochs: int,
             tune: dict | None = None) -> dict:
    """Net-Trim at `epsilon` (a number or one per layer) and magnitude pruning at the same non-zeros per layer,
    before and after the same masked fine-tuning (`tune`: `fine_tune`'s validation and patience)."""
    pruned, rep = net_trim(model, Xtr, epsilon=epsilon, scheme=scheme, return_report=True, **options)
    pruned = pruned.float()
    nnz = layer_nonzeros(pruned)
    mag = magnitude_prune(model, nnz)
    out = {"scheme": scheme, "epsilon": epsilon, "nonzeros": nnz, "total": layer_nonzeros(model),
           "kept_fraction": sum(nnz) / sum(layer_nonzeros(model)),
           "relative_discrepancy": relative_discrepancy(pruned, model, Xtr), "report": rep.to_dict(),
           "seconds_per_layer": [r.seconds for r in rep.layers]}
    for name, net in (("net_trim", pruned), ("magnitude", mag)):
        out[name] = {"test_accuracy": accuracy(net, Xte, yte),
                     "relative_discrepancy": relative_discrepancy(net, model, Xtr)}
        if tune_epochs:
            tuned = fine_tune(net, Xtr, ytr, epochs=tune_epochs, **(tune or {}))
            out[name]["test_accuracy_fine_tuned"] = accuracy(tuned, Xte, yte)
    return out


def evaluate_digits(epsilons=(0.02, 0.05, 0.1), *, hidden: int = 200, epochs: int = 100, tune_epochs: int = 20,
                    tune: dict | None = None, options: dict | None = None, seed: int = 0) -> dict:
    """A 64-h-h-10 MLP on scikit-learn's digits, pruned by cascade Net-Trim at each ε (a number or one per layer;
    parallel at the middle one); `tune` goes to `fine_tune` for both Net-Trim and magnitude pruning."""
    Xtr, ytr, Xte, yte = digits(seed)
    model = train_classifier(mlp([64, hidden, hidden, 10], seed), Xtr, ytr, epochs=epochs, seed=seed)
    base = accuracy(model, Xte, yte)
    runs = [_compare(model, Xtr, ytr, Xte, yte, e, "cascade", options or {}, tune_epochs, tune)
            for e in tqdm(epsilons, desc="digits cascade", leave=False)]
    runs.append(_compare(model, Xtr, ytr, Xte, yte, epsilons[len(epsilons) // 2], "parallel", options or {},
                         tune_epochs, tune))
    return {"architecture": [64, hidden, hidden, 10], "train_samples": len(Xtr), "test_samples": len(Xte),
            "test_accuracy": base, "fine_tuning": {"epochs": tune_epochs, **(tune or {})}, "runs": runs}


def evaluate_spirals(epsilon=0.02, *, n: int = 2000, epochs: int = 300, tune_epochs: int = 20,
                     options: dict | None = None, seed: int = 0) -> dict:
    """The paper's 2-200-200-2 spiral network next to the published counts: cascade Net-Trim at each `epsilon`
    (a number or a sequence), parallel at the middle one."""
    eps = [float(epsilon)] if np.ndim(epsilon) == 0 else [float(e) for e in epsilon]
    X, y = spirals(n, seed=seed)
    Xte, yte = spirals(n, seed=seed + 1)
    model = train_classifier(mlp([2, 200, 200, 2], seed), X, y, epochs=epochs, seed=seed)
    runs = [_compare(model, X, y, Xte, yte, e, "cascade", options or {}, tune_epochs)
            for e in tqdm(eps, desc="spirals cascade", leave=False)]
    runs.append(_compare(model, X, y, Xte, yte, eps[len(eps) // 2], "parallel", options or {}, tune_epochs))
    cascade = [r for r in runs if r["scheme"] == "cascade"]
    at_published = [r for r in cascade if r["relative_discrepancy"] <= PUBLISHED_SPIRAL["relative_discrepancy"]]
    best = min(at_published, key=lambda r: sum(r["nonzeros"])) if at_published else None
    return {"samples": n, "test_accuracy": accuracy(model, Xte, yte), "runs": runs, "published": PUBLISHED_SPIRAL,
            "sparsest_cascade_at_published_discrepancy": best and {
                "epsilon": best["epsilon"], "nonzeros": best["nonzeros"],
                "relative_discrepancy": best["relative_discrepancy"],
                "as_sparse_in_every_layer": all(a <= b for a, b in zip(best["nonzeros"], PUBLISHED_SPIRAL["kept"]))},
            "network_facts": network_facts(model.double()),
            "pruned_network_facts": {"nonzeros": cascade[0]["nonzeros"]}}


def sparse_recovery(N: int = 100, s: int = 5, samples=(10, 20, 30, 40, 50, 60, 80), trials: int = 10,
                    seed: int = 0, options: dict | None = None) -> dict:
    """Plant an s-sparse ReLU unit w in R^N, observe y = relu(Xw) for P Gaussian samples, solve Net-Trim with
    ε = 0 and count exact recoveries (relative error < 1e-2) against P; s·log(N/s) is quoted alongside."""
    rng = np.random.default_rng(seed)
    rates = []
    for P in tqdm(samples, desc="sparse recovery", leave=False):
        ok = 0
        for _ in range(trials):
            w = np.zeros((N, 1))
            w[rng.choice(N, s, replace=False), 0] = rng.standard_normal(s)
            X = rng.standard_normal((P, N))
            r = solve_layer(X, np.maximum(X @ w, 0), epsilon=1e-6, **(options or {}))
            ok += float(np.linalg.norm(r.W.cpu().numpy() - w) / np.linalg.norm(w)) < 1e-2
        rates.append(ok / trials)
    return {"N": N, "s": s, "samples": list(samples), "trials": trials, "recovery_rate": rates,
            "s_log_N_over_s": s * float(np.log(N / s))}


def scaling(sizes=((250, 2500), (500, 5000), (1000, 10000)), *, density: float = 0.1, epsilon: float = 0.02,
            max_iter: int = 1000, tol: float = 1e-4, seed: int = 0, dtype=torch.float32) -> dict:
    """ADMM run to its stopping rule on planted n × n ReLU layers (a `density` share of non-zero weights) with P
    Gaussian samples: wall and CPU seconds for the setup (Gram matrix, spectrum, factor), per iteration, in all."""
    rng = np.random.default_rng(seed)
    rows = []
    for n, P in tqdm(sizes, desc="scaling", leave=False):
        X = rng.standard_normal((P, n)).astype(np.float32)
        W = rng.standard_normal((n, n)) * (rng.uniform(size=(n, n)) < density) / np.sqrt(density * n)
        Y = np.maximum(X @ W.astype(np.float32), 0)
        c0 = time.process_time()
        setup = solve_layer(X, Y, epsilon=epsilon, max_iter=1, tol=tol, dtype=dtype).seconds
        c1 = time.process_time()
        r = solve_layer(X, Y, epsilon=epsilon, max_iter=max_iter, tol=tol, dtype=dtype)
        cpu = time.process_time() - c1  # CPU time of the one thread: what the solve costs, whatever the load
        rows.append({"n": n, "samples": P, "iterations": r.iterations, "converged": r.converged,
                     "seconds": r.seconds, "setup_seconds": setup, "cpu_seconds": cpu, "setup_cpu_seconds": c1 - c0,
                     "seconds_per_iteration": (r.seconds - setup) / max(r.iterations - 1, 1),
                     "cpu_seconds_per_iteration": (cpu - (c1 - c0)) / max(r.iterations - 1, 1),
                     "nonzeros": r.nonzeros, "planted_nonzeros": int((W != 0).sum()),
                     "discrepancy": r.discrepancy, "violation": r.violation})
    return {"dtype": str(dtype), "threads": torch.get_num_threads(), "density": density, "epsilon": epsilon,
            "tol": tol, "max_iter": max_iter, "rows": rows}


PARTS = ("spirals", "digits", "sparse_recovery", "scaling")


def evaluate(quick: bool = False, seed: int = 0, parts=PARTS, on_part=None, spiral_epsilon=(0.01, 0.015, 0.02),
             digits_epsilons=(0.1, 0.15, 0.2, 0.3, (0.2, 0.5, 0.0)),
             scaling_sizes=((250, 2500), (500, 5000), (1000, 10000)),
             scaling_max_iter: int = 1000, digits_tune: dict | None = None) -> dict:
    """Everything docs/prune.md quotes, part by part (`on_part(out)` after each); `quick` makes a smoke run.
    `digits_tune`: `tune_epochs`, `validation` and `patience` of the digits fine-tuning."""
    tune = {"validation": 0.15, "patience": 20, **(digits_tune or {})}
    tune_epochs = tune.pop("tune_epochs", 300)
    opts = {"max_iter": 300 if quick else 3000, "tol": 1e-4}
    out = {"program_certificate": layer_program_certificate().to_dict(), "admm_options": opts}
    for part in parts:
        if part == "digits":
            out[part] = (evaluate_digits((0.05,), hidden=32, epochs=5, tune_epochs=1, options=opts, seed=seed)
                         if quick else evaluate_digits(tuple(digits_epsilons), tune_epochs=tune_epochs, tune=tune,
                                              options=opts, seed=seed))
        elif part == "spirals":
            out[part] = (evaluate_spirals(n=300, epochs=5, tune_epochs=1, options=opts, seed=seed) if quick
                         else evaluate_spirals(spiral_epsilon, n=1000, epochs=300, options=opts, seed=seed))
        elif part == "sparse_recovery":
            out[part] = (sparse_recovery(N=30, s=2, samples=(5, 20), trials=2, seed=seed, options=opts) if quick
                         else sparse_recovery(samples=(10, 20, 30, 40, 60, 80), trials=8, seed=seed))
        elif part == "scaling":
            out[part] = (scaling(((50, 200),), max_iter=20, seed=seed) if quick
                         else scaling(tuple(scaling_sizes), max_iter=scaling_max_iter, seed=seed))
        else:
            raise UnknownNameError(f"part {part!r} is not known; use some of {list(PARTS)}")
        if on_part is not None:
            on_part(out)
    return out
