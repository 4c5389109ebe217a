"""The ICLRNN paper's robustness study on the CSTR: train RNN, LSTM, LRNN, ICRNN, ICLRNN on data whose
training targets carry Gaussian noise (std in scaled units), test on clean data, and estimate each model's
Lipschitz constant empirically (icctrl.convexity.lipschitz_estimate on clean test windows)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from icctrl.convexity import lipschitz_bound
from icctrl.errors import InvalidValueError, UnknownNameError
from icctrl.train._config import TrainConfig

STUDY_MODELS = ("rnn", "lstm", "lrnn", "icrnn", "iclrnn")
NOISE_LEVELS = (0.0, 0.3, 0.6, 0.9)
#: Adam learning rate per model: the non-negative weights are softplus(V), whose updates are multiplicative,
#: so the input-convex models need a larger step to move as far.
STUDY_LR = {"rnn": 3e-3, "lstm": 3e-3, "lrnn": 3e-3, "icrnn": 1e-2, "iclrnn": 1e-2}
#: The ICLRNN paper's CSTR table (test MSE at noise 0 and 0.9, Lipschitz estimate at 0.9).
PAPER = {
    "rnn": {"mse_0": 1.5e-6, "mse_0.9": 0.067, "lipschitz": 67.0},
    "lstm": {"mse_0": 5e-7, "mse_0.9": 0.131, "lipschitz": 137.0},
    "lrnn": {"mse_0": 1.3e-5, "mse_0.9": 0.0020, "lipschitz": 0.72},
    "icrnn": {"mse_0": 9e-5, "mse_0.9": 2.9e-4, "lipschitz": 0.64},
    "iclrnn": {"mse_0": 3.0e-4, "mse_0.9": 4.1e-4, "lipschitz": 0.98},
}


def robustness_study(
    models: Sequence[str] = STUDY_MODELS,
    noise: Sequence[float] = NOISE_LEVELS,
    *,
    hidden: int = 32,
    layers: int = 2,
    window: int = 5,
    epochs: int = 30,
    batch_size: int = 64,
    n_traj: int = 300,
    input_grid: int = 3,
    lipschitz_n: int = 128,
    seed: int = 0,
    patience: int | None = None,
    lr: dict[str, float] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Train every model at every noise level on the CSTR one-step data; returns rows and the setting.

    Every model trains for `epochs` on the noisy targets and keeps its LAST weights: no model selection on the
    clean validation split (that would hand every model clean information and hide overfitting to noise)."""
    from icctrl.data import cstr_dataset
    from icctrl.train._trainer import AFFINE_START, train

    models = [str(m).lower() for m in models]
    bad = [m for m in models if m not in STUDY_LR]
    if bad:
        raise UnknownNameError(f"robustness_study models {bad} unknown; choose from {list(STUDY_LR)}")
    noise = [float(s) for s in noise]
    if not noise or any(not math.isfinite(s) or s < 0 for s in noise):
        raise InvalidValueError(f"noise levels must be finite and >= 0, got {noise}")
    rates = {**STUDY_LR, **(lr or {})}
    rows = []
    for s in noise:
        ds = cstr_dataset(window=window, n_traj=n_traj, input_grid=input_grid, noise_std=s, seed=seed)
        for name in models:
            t0 = time.perf_counter()
            cfg = TrainConfig(
                epochs=epochs,
                lr=rates[name],
                batch_size=batch_size,
                patience=patience,
                lr_final=0.05,
                seed=seed,
                quiet=True,
                device="cpu",
                keep_best=False,
            )
            # the papers' architectures: no affine path and softplus weights (train()'s defaults for input-convex
            # models built by name are an affine path and projected weights)
            plain = {"affine": 0, "weights": "softplus"} if name in AFFINE_START else {}
            res = train(name, ds, cfg, hidden=hidden, layers=layers, **plain)
            lip = empirical_lipschitz(res.model.model, ds, n=lipschitz_n, seed=seed)
            row = {
                "model": name,
                "noise": s,
                "test_mse": res.metrics["test_mse"],
                "test_mse_last_step": res.metrics["test_mse_last_step"],
                "lipschitz": lip,
                "lipschitz_bound": _finite(lipschitz_bound(res.model.model, window)),
                "epochs_run": res.metrics["epochs_run"],
                "seconds": round(time.perf_counter() - t0, 2),
                "convex": res.certificate.convex,
            }
            rows.append(row)
            if log:
                log(
                    f"noise {s:.1f} {name:7s} test MSE {row['test_mse']:.3e}  L≈{lip:.3g}  "
                    f"({row['seconds']} s)"
                )
    setting = {
        "models": models,
        "noise": noise,
        "hidden": hidden,
        "layers": layers,
        "window": window,
        "epochs": epochs,
        "batch_size": batch_size,
        "n_traj": n_traj,
        "input_grid": input_grid,
        "lipschitz_n": lipschitz_n,
        "seed": seed,
        "patience": patience,
        "keep_best": False,
        "lr": {m: rates[m] for m in models},
        "mse_units": "scaled (train-fitted standardisation), all sub-steps of the window",
        "lipschitz": "lipschitz_estimate on clean test windows, whole scaled window in and out, 2-norms",
    }
    return {"setting": setting, "rows": rows, "paper": PAPER, "ordering": ordering(rows)}


def empirical_lipschitz(model: torch.nn.Module, dataset: Any, n: int = 128, seed: int = 0) -> float:
    """Empirical (lower) Lipschitz estimate of a model in scaled units around clean test windows."""
    from icctrl.convexity import lipschitz_estimate

    x, _ = dataset.tensors("test", dtype=torch.float64)
    if len(x) == 0:
        x, _ = dataset.tensors("train", dtype=torch.float64)
    net = copy.deepcopy(model).double().eval()

    def sampler(k: int, gen: torch.Generator) -> torch.Tensor:
        return x[torch.randint(len(x), (k,), generator=gen)]

    return float(lipschitz_estimate(net, sampler, n=n, seed=seed, ascent_steps=10).worst)


def ordering(rows: list[dict]) -> dict:
    """The paper's qualitative claims checked on our rows (None where a model or level is missing)."""
    top = max(r["noise"] for r in rows)
    at = {r["model"]: r for r in rows if r["noise"] == top}
    clean = {r["model"]: r for r in rows if r["noise"] == min(r["noise"] for r in rows)}

    def cmp(group_a, group_b, key, table):
        a = [table[m][key] for m in group_a if m in table]
        b = [table[m][key] for m in group_b if m in table]
        return None if not a or not b else bool(max(a) < min(b))

    growth = {m: at[m]["test_mse"] / max(clean[m]["test_mse"], 1e-300) for m in at if m in clean}
    return {
        "noise": top,
        "lipschitz_constrained_below_unconstrained": cmp(
            ("lrnn", "icrnn", "iclrnn"), ("rnn", "lstm"), "lipschitz", at
        ),
        "iclrnn_mse_below_rnn_lstm_at_top_noise": cmp(("iclrnn",), ("rnn", "lstm"), "test_mse", at),
        "mse_growth_factor": growth,
    }


def to_markdown(result: dict) -> str:
    """Table: test MSE (clean test data) and Lipschitz estimate per model and noise level, with the paper."""
    noise = result["setting"]["noise"]
    by = {(r["model"], r["noise"]): r for r in result["rows"]}
    head = (
        "| model | "
        + " | ".join(f"MSE σ={s:g}" for s in noise)
        + f" | L̂ σ={noise[-1]:g} | paper MSE σ=0 → 0.9 "
        "(L) |"
    )
    lines = [head, "|" + "---|" * (len(noise) + 3)]
    for m in result["setting"]["models"]:
        cells = [f"{by[(m, s)]['test_mse']:.2e}" if (m, s) in by else "—" for s in noise]
        lip = f"{by[(m, noise[-1])]['lipschitz']:.3g}" if (m, noise[-1]) in by else "—"
        p = result["paper"].get(m)
        paper = f"{p['mse_0']:.1e} → {p['mse_0.9']:.2g} ({p['lipschitz']:g})" if p else "—"
        lines.append(f"| {m.upper()} | " + " | ".join(cells) + f" | {lip} | {paper} |")
    return "\n".join(lines)


def plot(result: dict, path: str | Path) -> Path:
    """Two panels: clean-test MSE and Lipschitz estimate against the training noise, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from icctrl._io import atomic_write

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for m in result["setting"]["models"]:
        rows = sorted((r for r in result["rows"] if r["model"] == m), key=lambda r: r["noise"])
        xs = [r["noise"] for r in rows]
        axes[0].plot(xs, [r["test_mse"] for r in rows], marker="o", label=m.upper())
        axes[1].plot(xs, [r["lipschitz"] for r in rows], marker="o", label=m.upper())
    for ax, title in zip(axes, ("test MSE on clean data (scaled)", "empirical Lipschitz estimate")):
        ax.set_yscale("log")
        ax.set_xlabel("training-target noise std (scaled units)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.suptitle("CSTR robustness study (examples/robustness_study.py)")
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format=path.suffix.lstrip(".") or "png"))
    plt.close(fig)
    return path


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None
