"""The test problems with exact answers, run end to end: OU, heat flow, porous medium, time per step against d."""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from icctrl.wgf._barenblatt import Barenblatt
from icctrl.wgf._functionals import KL, Entropy, PorousMedium
from icctrl.wgf._gaussian import HeatProblem, ou_problem, symkl_gaussian
from icctrl.wgf._jko import JKO

#: log10 SymKL at t = 0.9 published for variational WGF (15 seeds) and JKO-ICNN (Mokrov et al. 2021)
PUBLISHED_OU = {2: -3.34, 6: -2.99, 12: -2.54, 16: -2.36, 32: -2.06, 64: -1.37}
PUBLISHED_OU_JKO_ICNN = {2: -2.45, 6: -1.98, 12: -1.75}


def _log10(v: float) -> float:
    return math.log10(max(v, 1e-300))


def ou_run(dim: int, *, steps: int = 18, step_size: float = 0.05, particles: int = 100_000, seed: int = 0,
           **jko) -> dict:
    """OU flow to N(m, Σ) from N(0, I), `steps` JKO steps; log10 SymKL to the exact law at t = steps·a."""
    prob = ou_problem(dim, seed=seed)
    x0 = np.random.default_rng(seed + 1).standard_normal((particles, dim)).astype(np.float32)
    t0 = time.perf_counter()
    res = JKO(KL(prob.potential), step_size, seed=seed, **jko).run(x0, steps)
    wall = time.perf_counter() - t0
    t_end = steps * step_size
    per_step = [_log10(prob.symkl(x, t)) for x, t in zip(res[1:], res.times[1:])]
    return {"dim": dim, "steps": steps, "step_size": step_size, "t": t_end, "particles": particles,
            "log10_symkl": per_step[-1], "log10_symkl_per_step": per_step,
            "log10_symkl_discrete_floor": _log10(symkl_gaussian(*prob.jko_exact(step_size, steps), *prob.exact(t_end))),
            "log10_symkl_x0": _log10(prob.symkl(x0, 0.0)),
            "published_log10_symkl": PUBLISHED_OU.get(dim), "published_jko_icnn": PUBLISHED_OU_JKO_ICNN.get(dim),
            "seconds_per_step": res.seconds_per_step, "seconds": res.seconds, "wall_s": wall, "device": res.device}


def heat_run(dim: int, *, steps: int = 10, step_size: float = 0.05, particles: int = 50_000, seed: int = 0,
             **jko) -> dict:
    """Heat flow (entropy) from a seeded N(m₀, C₀); log10 SymKL to N(m₀, C₀ + 2tI) after each step."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((dim, dim)) / math.sqrt(dim)
    prob = HeatProblem(mean=rng.uniform(-1, 1, dim), cov=0.25 * np.eye(dim) + 0.25 * a @ a.T)
    x0 = rng.multivariate_normal(prob.mean, prob.cov, particles).astype(np.float32)
    res = JKO(Entropy(), step_size, seed=seed, **jko).run(x0, steps)
    per_step = [_log10(prob.symkl(x, t)) for x, t in zip(res[1:], res.times[1:])]
    return {"dim": dim, "steps": steps, "step_size": step_size, "log10_symkl_per_step": per_step,
            "log10_symkl": per_step[-1], "seconds_per_step": res.seconds_per_step, "device": res.device}


def porous_run(dim: int, *, t0: float = 1e-3, step_size: float = 5e-4, steps: int = 20, particles: int = 50_000,
               seed: int = 0, probe: int = 200_000, **jko) -> dict:
    """Porous medium (m = 2) from the Barenblatt profile at t0; after each step the L1 error of the critic's
    density estimate (Monte Carlo on its box), the L1 error of the radius law of the particles (and its
    sampling floor from exact draws), and the entropy (1/(m−1))∫ρ^m against the exact value."""
    bb = Barenblatt(dim, 2.0)
    x0 = bb.sample(particles, t0, seed=seed + 1).astype(np.float32)
    func = PorousMedium(2.0)
    l1, l1_radial, floor, ent = [], [], [], []
    gen = np.random.default_rng(seed + 2)

    def on_step(k: int, jko: JKO, x: np.ndarray, value: float) -> None:
        t = t0 + (k + 1) * step_size
        center, half = func.center.cpu().numpy(), func.half.cpu().numpy()
        z = (gen.uniform(-1, 1, (probe, dim)) * half + center).astype(np.float32)
        with torch.no_grad():
            h = func.density(torch.from_numpy(z).to(jko.device), jko.critics_[0]).cpu().numpy()
        volume = float(np.prod(2 * half))
        inside = volume * bb.density(z, t).mean()  # exact mass in the box (≈ 1); the rest counts fully
        l1.append(float(volume * np.abs(h - bb.density(z, t)).mean() + max(0.0, 1 - inside)))
        l1_radial.append(bb.radial_l1(x, t))
        floor.append(bb.radial_l1(bb.sample(len(x), t, seed=seed + 100 + k), t))
        ent.append(value)

    res = JKO(func, step_size, seed=seed, **jko).run(x0, steps, callback=on_step)
    times = [t0 + (k + 1) * step_size for k in range(steps)]
    exact = [bb.entropy(t) for t in times]
    return {"dim": dim, "m": 2.0, "t0": t0, "step_size": step_size, "steps": steps, "particles": particles,
            "times": times, "l1": l1, "l1_radial": l1_radial, "l1_radial_floor": floor, "entropy": ent,
            "entropy_exact": exact, "entropy_rel_error": [abs(e - x) / x for e, x in zip(ent, exact)],
            "seconds_per_step": res.seconds_per_step, "device": res.device}


def timing_run(dims=(2, 6, 12, 16, 32), *, steps: int = 3, iters: int = 200, step_size: float = 0.05,
               particles: int = 20_000, seed: int = 0, **jko) -> dict:
    """Median wall time of a JKO step of the OU problem at each d (same iterations, batch and networks)."""
    rows, device = [], None
    for d in dims:
        prob = ou_problem(d, seed=seed)
        x0 = np.random.default_rng(seed + 1).standard_normal((particles, d)).astype(np.float32)
        res = JKO(KL(prob.potential), step_size, seed=seed, iters=iters, **jko).run(x0, steps)
        rows.append({"dim": d, "seconds_per_step": res.seconds_per_step, "seconds": res.seconds})
        device = res.device
    return {"steps": steps, "iters": iters, "step_size": step_size, "particles": particles, "rows": rows,
            "device": device}
