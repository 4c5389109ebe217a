"""The JKO scheme on samples: T_k = argmin_T (1/2a)·E_{P_k}‖X − T(X)‖² + F(T#P_k), P_(k+1) = T_k#P_k."""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from icctrl.errors import InvalidValueError, ShapeError
from icctrl.ot._arrays import resolve_device, to_points
from icctrl.wgf._functionals import Functional
from icctrl.wgf._maps import ICNNMap, make_map

_CHUNK = 16384  # particles pushed through the maps at once


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _positive(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(f"{name} must be a positive number, got {value!r}") from exc
    if not (v > 0 and math.isfinite(v)):
        raise InvalidValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


class JKOResult(list):
    """The particles after each step (entry 0 is x0), with the step times, the wall time per step and F's estimate."""

    def __init__(self, particles: list[np.ndarray], step_size: float, seconds: list[float], values: list[float],
                 device: str, certificates: list | None = None):
        super().__init__(particles)
        self.step_size = step_size
        self.times = step_size * np.arange(len(particles))
        self.seconds = list(seconds)
        self.values = list(values)
        self.device = device
        self.certificates = certificates or []

    @property
    def seconds_per_step(self) -> float:
        """Median wall time of one JKO step."""
        return float(np.median(self.seconds)) if self.seconds else float("nan")


class JKO:
    """Variational JKO steps of a `Functional` with step size a (Fan, Zhang, Taghvaei & Chen, ICML 2022).

    Each step trains a map T (`map="mlp"`: residual MLP; `"icnn"`: gradient of a certified ICNN potential),
    warm-started from the previous step's, against the critics of the functional's variational terms
    (`inner_iters` critic steps per T step, batches of `batch_size`). Batches of P_k are fresh rows of x0 pushed
    through the maps so far, so nothing but the maps is stored between steps.
    """

    def __init__(self, functional: Functional, step_size: float, *, seed: int = 0, device: str = "auto",
                 verbose: bool = False, map: str = "mlp", hidden: int = 64, layers: int = 3, iters: int = 200,
                 inner_iters: int = 3, batch_size: int = 512, lr: float = 2e-3, critic_lr: float = 2e-3,
                 critic_hidden: int = 64, warm_start: bool = True):
        if not isinstance(functional, Functional):
            raise InvalidValueError(f"functional must be an icctrl.wgf functional, got {type(functional).__name__}")
        self.functional = functional
        self.step_size = _positive("step_size", step_size)
        self.seed = int(seed)
        self.device = resolve_device(device)
        self.verbose = bool(verbose)
        self.map = map
        make_map(map, 1, 1, 1)  # unknown names fail here, not after the first step
        self.hidden = _positive_int("hidden", hidden)
        self.layers = _positive_int("layers", layers)
        self.iters = _positive_int("iters", iters)
        self.inner_iters = _positive_int("inner_iters", inner_iters)
        self.batch_size = _positive_int("batch_size", batch_size)
        self.lr = _positive("lr", lr)
        self.critic_lr = _positive("critic_lr", critic_lr)
        self.critic_hidden = _positive_int("critic_hidden", critic_hidden)
        self.warm_start = bool(warm_start)
        self.maps_: list[torch.nn.Module] = []
        self.critics_: list[torch.nn.Module | None] = []
        self.result_: JKOResult | None = None

    # -- sampling ------------------------------------------------------------------------------------------------
    def _push(self, x: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """x ~ P_0 pushed through the first `upto` maps (all by default), without gradients."""
        with torch.no_grad():
            for t in self.maps_[:upto]:
                x = torch.cat([t(c) for c in torch.split(x, _CHUNK)])
        return x

    def _base_batch(self, n: int) -> torch.Tensor:
        idx = torch.randint(0, self._base.shape[0], (n,), generator=self._gen)
        return self._base[idx.to(self._base.device)]

    def sample(self, n: int, step: int | None = None) -> np.ndarray:
        """n fresh draws of P_step (default: the last step): rows of x0 resampled and pushed through the maps."""
        if self.result_ is None:
            raise InvalidValueError("JKO has not run yet; call run(x0, steps) first")
        n = _positive_int("n", n)
        step = len(self.maps_) if step is None else step
        if not 0 <= step <= len(self.maps_):
            raise InvalidValueError(f"step must be in [0, {len(self.maps_)}], got {step}")
        return self._push(self._base_batch(n), step).cpu().numpy()

    # -- one step ------------------------------------------------------------------------------------------------
    def _critic_step(self, terms, opt, y) -> None:
        loss = sum(t.critic_loss(y, c, self._gen) for t, c in zip(terms, self.critics_) if c is not None)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def _pretrain_identity(self, t: ICNNMap, x: torch.Tensor) -> None:
        """Fit ∇φ ≈ id before the first step (the ICNN's gradient is not zero at initialisation)."""
        opt = torch.optim.Adam(t.parameters(), lr=self.lr)
        for _ in range(200):
            xb = x[torch.randint(0, x.shape[0], (self.batch_size,), generator=self._gen).to(x.device)]
            loss = (t(xb) - xb).pow(2).sum(1).mean() / t.scale**2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def _step(self, k: int, terms, critic_opt, bar) -> float:
        d = self._base.shape[1]
        prev = self.maps_[-1] if self.maps_ else None
        t = copy.deepcopy(prev) if (self.warm_start and prev is not None) else make_map(
            self.map, d, self.hidden, self.layers).to(self.device)
        for p in t.parameters():
            p.requires_grad_(True)
        xs = self._push(self._base_batch(min(8192, 16 * self.batch_size)))
        t.standardise_on(xs)
        if isinstance(t, ICNNMap) and prev is None:
            self._pretrain_identity(t, xs)
        with torch.no_grad():
            ys = t(xs)
        for term in terms:
            term.begin_step(ys)
        opt = torch.optim.Adam(t.parameters(), lr=self.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.iters, eta_min=0.02 * self.lr)
        a = self.step_size
        for it in range(self.iters):
            x = self._push(self._base_batch(self.batch_size))
            if critic_opt is not None:
                with torch.no_grad():
                    y0 = t(x)
                for _ in range(self.inner_iters):
                    self._critic_step(terms, critic_opt, y0)
            y = t(x)
            loss = (x - y).pow(2).sum(1).mean() / (2 * a) + sum(term.objective(y, c)
                                                                 for term, c in zip(terms, self.critics_))
            if not torch.isfinite(loss):
                raise InvalidValueError(f"JKO step {k} diverged at iteration {it}: loss {float(loss)}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
        for p in t.parameters():
            p.requires_grad_(False)
        t.eval()
        self.maps_.append(t)
        with torch.no_grad():
            ys = t(xs)
            return sum(term.value(ys, c, self._gen) for term, c in zip(terms, self.critics_))

    # -- the flow ------------------------------------------------------------------------------------------------
    def run(self, x0, steps: int, callback=None) -> JKOResult:
        """`steps` JKO steps from the particles x0 (n, d); returns steps + 1 numpy arrays, entry 0 is x0 itself.

        `callback(k, jko, particles, value)`, when given, runs after step k (0-based) with its particles and F's
        estimate, while the step's critics and reference laws are still those of that step.
        """
        steps = _positive_int("steps", steps)
        if not isinstance(x0, np.ndarray):
            raise ShapeError(f"x0 must be a numpy array of shape (n, d), got {type(x0).__name__}")
        if x0.ndim != 2:
            raise ShapeError(f"x0 must have shape (n, d), got {x0.shape}")
        if x0.shape[0] < 2:
            raise ShapeError(f"x0 needs at least 2 particles, got {x0.shape[0]}")
        base, _ = to_points(x0, "x0", device=self.device)
        torch.manual_seed(self.seed)
        self._gen = torch.Generator().manual_seed(self.seed)
        self._base = base
        self.maps_ = []
        terms = self.functional.terms()
        self.critics_ = [term.make_critic(base.shape[1], self.critic_hidden) if term.has_critic else None
                         for term in terms]
        self.critics_ = [c.to(self.device) if c is not None else None for c in self.critics_]
        params = [p for c in self.critics_ if c is not None for p in c.parameters()]
        critic_opt = torch.optim.Adam(params, lr=self.critic_lr) if params else None
        particles, seconds, values, certs = [x0], [], [], []
        x = base
        with tqdm(total=steps * self.iters, desc="JKO", disable=not self.verbose, dynamic_ncols=True) as bar:
            for k in range(steps):
                t0 = time.perf_counter()
                values.append(self._step(k, terms, critic_opt, bar))
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                seconds.append(time.perf_counter() - t0)
                if isinstance(self.maps_[-1], ICNNMap):
                    certs.append(self.maps_[-1].certificate())
                with torch.no_grad():
                    x = torch.cat([self.maps_[-1](c) for c in torch.split(x, _CHUNK)])
                particles.append(x.cpu().numpy().astype(x0.dtype if x0.dtype.kind == "f" else np.float64))
                bar.set_postfix(step=k + 1, F=f"{values[-1]:.4g}", s=f"{seconds[-1]:.1f}")
                if callback is not None:
                    callback(k, self, particles[-1], values[-1])
        self.result_ = JKOResult(particles, self.step_size, seconds, values, str(self.device), certs)
        return self.result_
