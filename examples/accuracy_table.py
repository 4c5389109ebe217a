"""How good are the input-convex models, trained with defaults, against the affine fit? One run per plant.

    python examples/accuracy_table.py                          # CSTR and the van de Vusse reactor
    python examples/accuracy_table.py --plant cstr --out f.json
    python examples/accuracy_table.py --weights exp --models icnn,icrnn    # another weight parametrisation

For each plant (one_step windows of 5 sub-steps) it fits the affine least-squares model, an unconstrained
and a convex (P ⪰ 0, cvxpy) quadratic in the held input [x_k, u_k], and trains with `train(name, dataset)`
and no settings: an ICNN over the flattened window, ICRNN, IC-LSTM, ICLRNN and the LSTM. Test MSE is in the
dataset's scaled units over every sub-step, the same for every row. Writes JSON and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cvxpy as cp
import numpy as np
import torch

from icctrl._io import write_json
from icctrl.data import cstr_dataset, window_flat
from icctrl.nn import WEIGHTS
from icctrl.train import AFFINE_START, TrainConfig, train

MODELS = ("icnn", "icrnn", "iclstm", "iclrnn", "lstm")


def plants() -> dict:
    from own_plant import dataset as van_de_vusse

    return {"cstr": lambda: cstr_dataset(layout="one_step", window=5), "van_de_vusse": van_de_vusse}


def scaled_test_mse(ds, pred_physical: np.ndarray) -> float:
    """MSE of physical-unit predictions on the test windows, in the dataset's scaled units."""
    _, y = ds.arrays("test")
    return float(((ds.output_scaler.transform(pred_physical) - y) ** 2).mean())


def quadratic_fits(ds) -> dict:
    """Least-squares quadratics of the held input predicting every sub-step (scaled units): free and P ⪰ 0."""
    (xtr, ytr), (xte, yte) = ds.arrays("train"), ds.arrays("test")
    ztr, zte = xtr[:, 0], xte[:, 0]
    n, m = ytr.shape[0], ztr.shape[1]
    Ytr, Yte = ytr.reshape(n, -1), yte.reshape(len(yte), -1)
    iu = np.triu_indices(m)

    def features(z):
        return np.concatenate([np.ones((len(z), 1)), z, (z[:, :, None] * z[:, None, :])[:, iu[0], iu[1]]], axis=1)

    coef = np.linalg.lstsq(features(ztr), Ytr, rcond=None)[0]
    free = float(((features(zte) @ coef - Yte) ** 2).mean())
    pred = np.empty_like(Yte)
    for j in range(Ytr.shape[1]):
        P, q, r = cp.Variable((m, m), PSD=True), cp.Variable(m), cp.Variable()
        fit = cp.sum(cp.multiply(ztr @ P, ztr), axis=1) + ztr @ q + r
        cp.Problem(cp.Minimize(cp.sum_squares(fit - Ytr[:, j]))).solve()
        pred[:, j] = np.einsum("ni,ij,nj->n", zte, P.value, zte) + zte @ q.value + r.value
    return {"quadratic": free, "convex_quadratic": float(((pred - Yte) ** 2).mean())}


def run(plant: str, steps: int | None = None, weights: str | None = None, models=MODELS) -> dict:
    """Every row of one plant's table; `weights` overrides the input-convex models' parametrisation."""
    torch.set_num_threads(1)
    ds = plants()[plant]()
    cfg = TrainConfig(quiet=True, steps=steps)
    rows = {}
    t0 = time.perf_counter()
    lin = train("linear", ds, cfg)
    rows["linear"] = {"test_mse": lin.metrics["test_mse"], "seconds": round(time.perf_counter() - t0, 2),
                      "convex": lin.certificate.convex}
    t0 = time.perf_counter()
    for k, v in quadratic_fits(ds).items():
        rows[k] = {"test_mse": v, "seconds": round(time.perf_counter() - t0, 2), "convex": k == "convex_quadratic"}
    for name in models:
        t0 = time.perf_counter()
        data = window_flat(ds) if name == "icnn" else ds
        kw = {"weights": weights} if weights and name in AFFINE_START else {}
        res = train(name, data, cfg, **kw)
        x, _ = ds.arrays("test", scaled=False)
        with torch.no_grad():
            pred = res.model.double()(torch.as_tensor(x[:, :1] if name == "icnn" else x)).numpy()
        cert = (res.extra["certificate_per_step"] if name == "iclstm" else res.certificate.to_dict())
        pred = pred.reshape(ds.arrays("test")[1].shape)
        err = (ds.output_scaler.transform(pred) - ds.arrays("test")[1]) ** 2
        rows[name] = {
            "test_mse": scaled_test_mse(ds, pred),
            "test_mse_per_output": dict(zip(ds.output_names, err.mean(axis=(0, 1)).tolist())),
            "seconds": round(time.perf_counter() - t0, 1),
            "train_seconds": res.metrics["train_seconds"],
            "epochs": res.metrics["epochs_run"],
            "best_epoch": res.metrics["best_epoch"],
            "lr": res.config.lr,
            "weights": res.model.config.get("weights"),
            "size": f"{res.model.config.get('layers')}x{res.model.config.get('hidden')}",
            "convex": bool(cert["convex"]),
            "convex_scope": cert["scope"],
        }
        print(f"{plant} {name}: {rows[name]['test_mse']:.3e} ({rows[name]['seconds']} s)", flush=True)
    affine = rows["linear"]["test_mse"]
    for r in rows.values():
        r["vs_affine"] = r["test_mse"] / affine
    return {"dataset": ds.summary(), "rows": rows}


def markdown(results: dict) -> str:
    lines = ["| plant | model | test MSE (scaled) | × affine | certified convex | training s |",
             "|---|---|---|---|---|---|"]
    for plant, res in results.items():
        for name, r in res["rows"].items():
            lines.append(f"| {plant} | {name} | {r['test_mse']:.2e} | {r['vs_affine']:.2f} | "
                         f"{'yes' if r['convex'] else 'no'} | {r.get('train_seconds', r['seconds'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plant", action="append", choices=sorted(plants()), help="plant (repeatable; default all)")
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps (default: the trainer's)")
    parser.add_argument("--weights", choices=WEIGHTS, default=None,
                        help="non-negative weight parametrisation of the input-convex models (default: the trainer's)")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {','.join(MODELS)}")
    parser.add_argument("--out", default="docs/training_accuracy.json", help="JSON results")
    args = parser.parse_args()
    models = tuple(m for m in args.models.split(",") if m)
    bad = sorted(set(models) - set(MODELS))
    if bad:
        parser.error(f"unknown models {bad}; choose from {list(MODELS)}")
    results = {p: run(p, args.steps, args.weights, models) for p in args.plant or sorted(plants())}
    write_json(Path(args.out), {"command": "python examples/accuracy_table.py " + " ".join(sys.argv[1:]),
                                "steps": args.steps, "weights": args.weights, "results": results})
    print(markdown(results))


if __name__ == "__main__":
    main()
