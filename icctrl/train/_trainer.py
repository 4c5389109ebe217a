"""Trainer: Adam on the scaled mean squared error, early stopping, clipping, AMP on GPU, DDP under torchrun,
resumable state, and a re-certified Scaled model (physical units) at the end."""

from __future__ import annotations

import contextlib
import copy
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from icctrl.errors import CheckpointError, InvalidValueError, ShapeError
from icctrl.nn import Linear, project_
from icctrl.train import _checkpoint as ck
from icctrl.train import _ddp
from icctrl.train._config import TrainConfig

# Settings a resumed run must share with the interrupted one (they change the arithmetic).
_RESUME_KEYS = (
    "epochs",
    "lr",
    "batch_size",
    "seed",
    "weight_decay",
    "clip_norm",
    "lr_final",
    "min_delta",
    "amp",
    "keep_best",
)
_EVAL_BATCH = 4096


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """`auto` → CUDA when present (this process's GPU under DDP), else CPU; `cuda` without CUDA: an error."""
    name = str(name)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InvalidValueError(f"device {name!r} requested but CUDA is not available on this machine")
        return torch.device(name if ":" in name else f"cuda:{local_rank}")
    return torch.device("cpu")


@dataclass
class TrainResult:
    """A trained model in physical units with everything its checkpoint records."""

    model: Any
    metrics: dict
    certificate: Any
    history: list[dict]
    config: TrainConfig
    dataset: dict
    extra: dict = field(default_factory=dict)

    def checkpoint(self) -> dict:
        """The checkpoint dict (weights + metadata)."""
        return ck.make_checkpoint(
            self.model,
            train_config=self.config.to_dict(),
            dataset=self.dataset,
            metrics=self.metrics,
            certificate=self.certificate.to_dict(),
            extra={"history": self.history, **self.extra},
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the checkpoint atomically; `icctrl.load(path)` returns the model."""
        return ck.save_checkpoint(path, self.checkpoint())


class Trainer:
    """Train `model` (a zoo model in scaled units) on `dataset` (an icctrl SequenceDataset).

    `state_path`: where a resume state is written every `config.state_every` epochs (atomically) and read by
    `fit(resume=True)`. `callbacks`: functions `(epoch, record)` called after each epoch (record holds the
    losses); an exception they raise interrupts training like Ctrl-C would.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        dataset: Any,
        config: TrainConfig | None = None,
        *,
        state_path: str | os.PathLike | None = None,
        callbacks: Sequence[Callable[[int, dict], None]] = (),
    ):
        from icctrl.nn import Scaled, SequenceModel

        if isinstance(model, Scaled):
            raise InvalidValueError(
                "Trainer takes the model in scaled units (the trainer adds the dataset's "
                "scalers); pass model.model, not the Scaled wrapper"
            )
        if not isinstance(model, SequenceModel):
            raise InvalidValueError(f"Trainer needs an icctrl.nn model, got {type(model).__name__}")
        for attr in ("inputs", "targets", "input_scaler", "output_scaler", "tensors"):
            if not hasattr(dataset, attr):
                raise InvalidValueError(
                    f"Trainer needs an icctrl SequenceDataset, got {type(dataset).__name__}"
                )
        n_in, n_out = dataset.inputs.shape[-1], dataset.targets.shape[-1]
        if (model.n_in, model.n_out) != (n_in, n_out):
            raise ShapeError(
                f"model maps {model.n_in} → {model.n_out} features but the dataset has {n_in} inputs "
                f"{tuple(dataset.input_names)} and {n_out} outputs {tuple(dataset.output_names)}"
            )
        self.model, self.dataset = model, dataset
        config = config if config is not None else TrainConfig()
        if not isinstance(config, TrainConfig):
            raise InvalidValueError(f"config must be a TrainConfig, got {type(config).__name__}")
        if len(dataset.indices("train")) == 0:
            raise InvalidValueError("the dataset's train split is empty")
        self.config = config.resolve(model.config["name"], len(dataset.indices("train")), model.config.get("weights"))
        self.state_path = Path(state_path) if state_path is not None else None
        self.callbacks = tuple(callbacks)
        self.dist = _ddp.dist_info()

    # ------------------------------------------------------------------------------------------------ fit
    def fit(self, resume: bool = False) -> TrainResult:
        """Train, keep the best weights on the validation split, evaluate on test, certify the result."""
        cfg, info = self.config, self.dist
        device = resolve_device(cfg.device, info.local_rank)
        threads = torch.get_num_threads()
        if cfg.threads is not None and device.type == "cpu":
            torch.set_num_threads(cfg.threads)
        created = _ddp.init_distributed(info, device)
        try:
            return self._fit(device, resume)
        finally:
            _ddp.close_distributed(created)
            torch.set_num_threads(threads)

    def _fit(self, device: torch.device, resume: bool) -> TrainResult:
        cfg, info, model, ds = self.config, self.dist, self.model, self.dataset
        model.to(device).train()
        xtr, ytr = ds.tensors("train", device=device)
        xva, yva = ds.tensors("val", device=device)
        net = _ddp.wrap(model, info, device)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: _cosine(e, cfg.epochs, cfg.lr_final))
        amp_dtype = _amp_dtype(cfg.amp, device)
        scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
        st = {
            "epoch": 0,
            "best_val": math.inf,
            "best_epoch": -1,
            "bad": 0,
            "history": [],
            "best_state": copy.deepcopy(model.state_dict()),
            "seconds": 0.0,
        }
        if resume:
            self._restore(st, model, opt, sched, scaler)
        has_val = len(xva) > 0
        if isinstance(model, Linear):  # the affine baseline: closed-form least squares, no optimiser steps
            model.fit(xtr, ytr)
            st.update(best_val=evaluate(model, xva, yva) if has_val else math.inf,
                      best_state=copy.deepcopy(model.state_dict()))
            return self._finish(st, False, device)
        if st["epoch"] == 0:
            _check_initial_outputs(model, xtr)
            if has_val:  # the starting point competes: training keeps it unless it improves on it
                st["best_val"] = evaluate(model, xva, yva)
        bar = _progress(cfg, info, st["epoch"], type(model).__name__)
        stopped = False
        try:
            for epoch in range(st["epoch"], cfg.epochs):
                t0 = time.perf_counter()
                train_loss = self._epoch(net, model, opt, scaler, amp_dtype, xtr, ytr, epoch, device)
                sched.step()
                val_loss = evaluate(model, xva, yva) if has_val else train_loss
                st["seconds"] += time.perf_counter() - t0
                improved = val_loss < st["best_val"] - cfg.min_delta
                if improved:
                    st.update(
                        best_val=val_loss,
                        best_epoch=epoch,
                        bad=0,
                        best_state=copy.deepcopy(model.state_dict()),
                    )
                else:
                    st["bad"] += 1
                record = {
                    "epoch": epoch,
                    "train_mse": train_loss,
                    "val_mse": val_loss if has_val else None,
                    "lr": opt.param_groups[0]["lr"],
                    "seconds": round(time.perf_counter() - t0, 4),
                }
                st["history"].append(record)
                st["epoch"] = epoch + 1
                if bar is not None:
                    bar.set_postfix(
                        train=f"{train_loss:.3e}", val=f"{val_loss:.3e}", best=f"{st['best_val']:.3e}"
                    )
                    bar.update(1)
                if self.state_path is not None and info.main and (st["epoch"] % cfg.state_every == 0):
                    self._save_state(st, model, opt, sched, scaler)
                for cb in self.callbacks:
                    cb(epoch, dict(record))
                if cfg.patience is not None and st["bad"] >= cfg.patience:
                    stopped = True
                    break
        finally:
            if bar is not None:
                bar.close()
        if cfg.keep_best:
            model.load_state_dict(st["best_state"])
        return self._finish(st, stopped, device)

    def _epoch(self, net, model, opt, scaler, amp_dtype, xtr, ytr, epoch: int, device: torch.device) -> float:
        """One pass over the training split in a seeded order; returns the mean squared error (scaled)."""
        cfg, info = self.config, self.dist
        n, per_sample = len(xtr), ytr.shape[1] * ytr.shape[2]
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        perm = torch.randperm(n, generator=gen)
        total = torch.zeros((), dtype=torch.float64, device=device)
        counted = 0
        model.train()
        for start in range(0, n, cfg.batch_size):
            batch = perm[start : start + cfg.batch_size]
            if info.active and len(batch) < info.world:
                continue  # a tail too small to split over the processes is skipped by every process
            mine = _ddp.shard(batch, info).to(device)
            x, y = xtr[mine], ytr[mine]
            with _autocast(device, amp_dtype):
                out = net(x)
            sse = ((out.float() - y) ** 2).sum()
            loss = sse * (info.world / (len(batch) * per_sample))
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.clip_norm is not None:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
            scaler.step(opt)
            scaler.update()
            project_(model)  # projected non-negative weights back to W >= 0 (parametrized ones need nothing)
            total += sse.detach().double()
            counted += len(batch)
        if info.active:
            import torch.distributed as dist

            dist.all_reduce(total)
        if counted == 0:
            raise InvalidValueError(f"no training batch: {n} windows, batch_size={cfg.batch_size}")
        loss = float(total) / (counted * per_sample)
        if not math.isfinite(loss):
            raise InvalidValueError(f"training diverged at epoch {epoch}: loss {loss}; lower lr={cfg.lr}")
        return loss

    # ------------------------------------------------------------------------------------------- finish
    def _finish(self, st: dict, stopped: bool, device: torch.device) -> TrainResult:
        from icctrl.convexity import certify
        from icctrl.nn import Scaled

        cfg, ds = self.config, self.dataset
        model = self.model.to("cpu").eval()
        for p in model.parameters():
            p.requires_grad_(True)
        wrapped = Scaled(
            model,
            ds.input_scaler.offset,
            ds.input_scaler.scale,
            ds.output_scaler.offset,
            ds.output_scaler.scale,
        ).eval()
        names_in, names_out = tuple(ds.input_names), tuple(ds.output_names)
        for m in (model, wrapped):
            m.input_names, m.output_names = names_in, names_out
        metrics = self._metrics(model, wrapped, st, stopped, device)
        cert = certify(wrapped, wrt=cfg.certify_wrt)
        extra = {"region": ck.training_region(ds)}
        if getattr(model, "recurrent", False):
            extra["certificate_per_step"] = certify(wrapped, wrt=cfg.certify_wrt, per_step=True).to_dict()
        dataset = {
            "hash": ds.content_hash,
            "meta": ds.meta,
            "input_names": list(names_in),
            "output_names": list(names_out),
            "sizes": {s: int(len(ds.indices(s))) for s in ("train", "val", "test")},
        }
        if self.state_path is not None and self.dist.main:
            self.state_path.unlink(missing_ok=True)  # the run finished: nothing left to resume
        result = TrainResult(wrapped, metrics, cert, st["history"], cfg, dataset, extra)
        if not cfg.quiet and self.dist.main:
            print(
                f"test MSE (scaled) {metrics['test_mse']}; best epoch {metrics['best_epoch']}",
                file=sys.stderr,
            )
        return result

    def _metrics(self, model, wrapped, st: dict, stopped: bool, device: torch.device) -> dict:
        ds = self.dataset
        last_val = st["history"][-1]["val_mse"] if st["history"] else None
        out = {
            "train_mse": st["history"][-1]["train_mse"] if st["history"] else None,
            "val_mse": (st["best_val"] if self.config.keep_best else last_val)
            if len(ds.indices("val"))
            else None,
            "best_epoch": st["best_epoch"],
            "epochs_run": st["epoch"],
            "stopped_early": stopped,
            "train_seconds": round(st["seconds"], 3),
            "device": str(device),
            "world_size": self.dist.world,
            "n_params": int(sum(p.numel() for p in model.parameters())),
        }
        n_train = len(ds.indices("train"))
        out["samples_per_second"] = (
            round(n_train * st["epoch"] / st["seconds"], 1) if st["seconds"] > 0 else None
        )
        if len(ds.indices("test")):
            x, y = ds.tensors("test")
            out["test_mse"] = evaluate(model, x, y)
            out["test_mse_last_step"] = evaluate(model, x, y, last=True)
            xp, yp = ds.arrays("test", scaled=False)
            dtype = next(model.parameters()).dtype
            with torch.no_grad():
                pred = _batched(wrapped.double(), torch.as_tensor(xp)).numpy()
            wrapped.to(dtype)
            err = pred - yp
            out["test_mse_physical"] = {
                n: float((err[..., i] ** 2).mean()) for i, n in enumerate(ds.output_names)
            }
            out["test_rel_error"] = float((err**2).sum() ** 0.5 / max((yp**2).sum() ** 0.5, 1e-300))
        else:
            out["test_mse"] = out["test_mse_last_step"] = out["test_rel_error"] = None
            out["test_mse_physical"] = {}
        return out

    # ------------------------------------------------------------------------------------------- resume
    def _state_dict(self, st, model, opt, sched, scaler) -> dict:
        return {
            "format": ck.STATE_FORMAT,
            "format_version": ck.FORMAT_VERSION,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "grad_scaler": scaler.state_dict(),
            "best_state": st["best_state"],
            "progress": ck.plain(
                {k: st[k] for k in ("epoch", "best_val", "best_epoch", "bad", "history", "seconds")}
            ),
            "config": ck.plain(self.config.to_dict()),
            "model_config": ck.plain(model.config),
            "dataset_hash": self.dataset.content_hash,
        }

    def _save_state(self, st, model, opt, sched, scaler) -> None:
        ck.save_checkpoint(self.state_path, self._state_dict(st, model, opt, sched, scaler))

    def _restore(self, st, model, opt, sched, scaler) -> None:
        if self.state_path is None or not self.state_path.is_file():
            return  # nothing to resume: a fresh start
        p = str(self.state_path)
        state = ck.read_file(self.state_path, "training state")
        if state.get("format") != ck.STATE_FORMAT or state.get("format_version") != ck.FORMAT_VERSION:
            raise CheckpointError(f"{p!r} is not an icctrl training state of version {ck.FORMAT_VERSION}")
        if state.get("dataset_hash") != self.dataset.content_hash:
            raise CheckpointError(
                f"{p!r} was written for another dataset (hash {str(state.get('dataset_hash'))[:12]}"
                f"…, this one {self.dataset.content_hash[:12]}…); delete it or drop --resume"
            )
        if state.get("model_config") != ck.plain(self.model.config):
            raise CheckpointError(
                f"{p!r} was written for the model {state.get('model_config')}, not {self.model.config}"
            )
        old, new = state.get("config") or {}, self.config.to_dict()
        diff = [k for k in _RESUME_KEYS if old.get(k) != new.get(k)]
        if diff:
            raise CheckpointError(
                f"{p!r}: cannot resume with changed settings "
                + ", ".join(f"{k}={old.get(k)!r}→{new.get(k)!r}" for k in diff)
            )
        try:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["grad_scaler"])
            prog = state["progress"]
            st.update({k: prog[k] for k in ("epoch", "best_val", "best_epoch", "bad", "history", "seconds")})
            st["best_state"] = state["best_state"]
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise CheckpointError(
                f"{p!r}: inconsistent training state ({type(exc).__name__}: {exc})"
            ) from None
        if not self.config.quiet and self.dist.main:
            print(f"resuming from {p} at epoch {st['epoch']}", file=sys.stderr)


def _check_initial_outputs(model: torch.nn.Module, x: torch.Tensor, limit: float = 1e6) -> None:
    """Refuse to start from weights whose outputs already overflow on the training windows (scaled units)."""
    with torch.no_grad():
        peak = float(_batched(model, x[:256]).abs().max())
    if not math.isfinite(peak) or peak > limit:
        raise InvalidValueError(
            f"the untrained {type(model).__name__}'s outputs reach {peak:.3g} on training windows of "
            f"{x.shape[1]} steps (targets are standardised): its initialisation blows up on windows this "
            "long; use a shorter window or a smaller model"
        )


def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, last: bool = False) -> float:
    """Mean squared error of `model` on (x, y) (all steps, or the last step only), in batches, no grad."""
    if len(x) == 0:
        return math.nan
    was = model.training
    model.eval()
    with torch.no_grad():
        pred = _batched(model, x)
    model.train(was)
    if last:
        pred, y = pred[:, -1], y[:, -1]
    return float(((pred.double() - y.double()) ** 2).mean())


def _batched(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([model(x[i : i + _EVAL_BATCH]) for i in range(0, len(x), _EVAL_BATCH)])


def _cosine(epoch: int, epochs: int, final: float) -> float:
    """Learning-rate factor: cosine from 1 to `final` over `epochs`."""
    if final >= 1.0:
        return 1.0
    frac = min(epoch / max(epochs - 1, 1), 1.0)
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * frac))


def _autocast(device: torch.device, dtype: torch.dtype | None):
    """Mixed-precision context on CUDA when AMP is on, else nothing."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _amp_dtype(amp: bool, device: torch.device) -> torch.dtype | None:
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _progress(cfg: TrainConfig, info: _ddp.DistInfo, start: int, name: str):
    if cfg.quiet or not info.main:
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=cfg.epochs,
        initial=start,
        desc=f"train {name}",
        unit="epoch",
        file=sys.stderr,
        dynamic_ncols=True,
    )


#: Zoo models that get an affine path started at the least-squares fit when built by name (`affine=0`: none).
AFFINE_START = ("icnn", "icrnn", "iclstm", "iclrnn")
#: Parametrisation of the non-negative weights those models get when built by name (measured against softplus
#: and exp in docs/training.md: a projected step moves small weights as fast as large ones).
DEFAULT_WEIGHTS = "projected"


def default_model_kw(name: str, dataset: Any) -> dict:
    """Keyword arguments `train(name, dataset)` builds a zoo model with unless told otherwise: for the
    input-convex models a causal affine path over the dataset's window and projected non-negative weights;
    the window as the affine model's taps."""
    name = str(name).lower()
    if name == "linear":
        return {"lags": dataset.window}
    return {"affine": dataset.window, "weights": DEFAULT_WEIGHTS} if name in AFFINE_START else {}


def train(
    model: str | torch.nn.Module,
    dataset: Any,
    config: TrainConfig | None = None,
    *,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    state_path: str | os.PathLike | None = None,
    callbacks: Sequence[Callable[[int, dict], None]] = (),
    **model_kw: Any,
) -> TrainResult:
    """Build (by zoo name, seeded by `config.seed`, with `default_model_kw` under `model_kw`) or take a model,
    train it, and write `out` when given. A model built by name with an affine path starts at the affine fit.

    The resume state goes to `state_path` (default `<out>.state` when `out` is given)."""
    from icctrl.nn import AffinePlus, affine_start_, build

    config = config if config is not None else TrainConfig()
    if isinstance(model, str):
        torch.manual_seed(config.seed)
        model_kw = {**default_model_kw(model, dataset), **model_kw}
        model = build(model, dataset.inputs.shape[-1], dataset.targets.shape[-1], **model_kw)
        if isinstance(model, AffinePlus):
            affine_start_(model, *dataset.tensors("train"))
    elif model_kw:
        raise InvalidValueError(f"model keyword arguments {sorted(model_kw)} need a model name, not a module")
    if state_path is None and out is not None:
        state_path = f"{os.fspath(out)}.state"
    result = Trainer(model, dataset, config, state_path=state_path, callbacks=callbacks).fit(resume=resume)
    if out is not None and _ddp.dist_info().main:
        result.save(out)
    return result
