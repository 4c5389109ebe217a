"""Training throughput (samples/s) of zoo models on the same data in one run: IC-LSTM vs torch.nn.LSTM.

Epochs of the compared models are interleaved and the ratio is the median of per-round ratios, so a load
change on a shared machine hits both sides of each ratio alike.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from icctrl.errors import InvalidValueError
from icctrl.train._trainer import resolve_device

SETTINGS = {
    "small": {"hidden": 64, "layers": 2, "batch_size": 64, "window": 10, "n_samples": 2048},
    "large": {"hidden": 256, "layers": 2, "batch_size": 1024, "window": 10, "n_samples": 16384},
}
GOAL_CPU_RATIO = 0.5


def throughput(
    models: tuple[str, ...] = ("iclstm", "lstm"),
    *,
    hidden: int = 64,
    layers: int = 2,
    batch_size: int = 64,
    window: int = 10,
    n_samples: int = 2048,
    repeats: int = 5,
    threads: int | None = 1,
    device: str = "cpu",
    dataset: Any = None,
    seed: int = 0,
) -> dict:
    """Samples/s of one training epoch (forward, backward, Adam step) per model, median over `repeats`.

    Data: the CSTR one-step dataset (`window` sub-steps), first `n_samples` training windows, or `dataset`.
    `ratio` is models[0] over models[1] (median of per-round ratios)."""
    for name, v in (("repeats", repeats), ("n_samples", n_samples), ("batch_size", batch_size)):
        if not isinstance(v, int) or v < 1:
            raise InvalidValueError(f"{name} must be a positive integer, got {v!r}")
    if len(models) < 1:
        raise InvalidValueError("throughput needs at least one model name")
    from icctrl.nn import build

    dev = resolve_device(device)
    if dataset is None:
        from icctrl.data import cstr_dataset

        dataset = cstr_dataset(window=window)
    x, y = dataset.tensors("train")
    reps = -(-n_samples // len(x))
    x, y = x.repeat(reps, 1, 1)[:n_samples].to(dev), y.repeat(reps, 1, 1)[:n_samples].to(dev)
    old_threads = torch.get_num_threads()
    if threads is not None and dev.type == "cpu":
        torch.set_num_threads(threads)
    try:
        nets, opts = {}, {}
        for name in models:
            torch.manual_seed(seed)
            nets[name] = build(name, x.shape[-1], y.shape[-1], hidden=hidden, layers=layers).to(dev).train()
            opts[name] = torch.optim.Adam(nets[name].parameters(), lr=1e-3)
        rates: dict[str, list[float]] = {n: [] for n in models}
        for r in range(repeats + 1):  # round 0 warms up (allocator, kernels) and is not counted
            for name in models:
                rate = _epoch_rate(nets[name], opts[name], x, y, batch_size, dev)
                if r:
                    rates[name].append(rate)
    finally:
        torch.set_num_threads(old_threads)
    out: dict[str, Any] = {
        "device": str(dev),
        "threads": torch.get_num_threads() if threads is None else threads,
        "setting": {
            "hidden": hidden,
            "layers": layers,
            "batch_size": batch_size,
            "window": int(x.shape[1]),
            "n_samples": n_samples,
            "repeats": repeats,
            "n_in": int(x.shape[-1]),
            "n_out": int(y.shape[-1]),
        },
        "samples_per_s": {n: statistics.median(v) for n, v in rates.items()},
        "epoch_seconds": {n: n_samples / statistics.median(v) for n, v in rates.items()},
        "runs": rates,
    }
    if len(models) >= 2:
        a, b = models[0], models[1]
        out["ratio_name"] = f"{a}/{b}"
        out["ratio"] = statistics.median(p / q for p, q in zip(rates[a], rates[b]))
        if dev.type == "cpu" and (a, b) == ("iclstm", "lstm"):
            out["goal"] = GOAL_CPU_RATIO
            out["meets_goal"] = bool(out["ratio"] >= GOAL_CPU_RATIO)
    return out


def _epoch_rate(net, opt, x, y, batch_size: int, dev: torch.device) -> float:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    for i in range(0, len(x), batch_size):
        opt.zero_grad(set_to_none=True)
        loss = ((net(x[i : i + batch_size]) - y[i : i + batch_size]) ** 2).mean()
        loss.backward()
        opt.step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return len(x) / (time.perf_counter() - t0)


def benchmark_training(
    setting: str = "small",
    *,
    devices: tuple[str, ...] | None = None,
    repeats: int = 3,
    models: tuple[str, ...] = ("iclstm", "lstm"),
    threads: int | None = 1,
    **overrides: Any,
) -> dict:
    """`icctrl bench train`: throughput per device for a named setting ("small": 2×64, batch 64; "large":
    2×256, batch 1024), and the GPU-vs-CPU speed-up per model when CUDA is present."""
    if setting not in SETTINGS:
        raise InvalidValueError(
            f"unknown training benchmark setting {setting!r}; choose one of {sorted(SETTINGS)}"
        )
    kw = {**SETTINGS[setting], **overrides}
    devices = devices or (("cpu", "cuda") if torch.cuda.is_available() else ("cpu",))
    out: dict[str, Any] = {"setting": setting, "per_device": {}}
    for dev in devices:
        out["per_device"][dev] = throughput(
            models, repeats=repeats, device=dev, threads=threads if dev == "cpu" else None, **kw
        )
    cpu, gpu = out["per_device"].get("cpu"), out["per_device"].get("cuda")
    if cpu and gpu:
        out["gpu_vs_cpu"] = {m: gpu["samples_per_s"][m] / cpu["samples_per_s"][m] for m in models}
    return out
