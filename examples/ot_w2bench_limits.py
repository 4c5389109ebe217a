"""What limits W2Dual's forward map on the W2 benchmark: the bare call beside variants that each remove one suspect.

    python examples/ot_w2bench_limits.py --variant reversed --dims 16 --json icctrl-out/ot/limits_reversed_16.json
    python examples/ot_w2bench_limits.py --variant supervised --dims 2 --iters 3000

Variants (everything else is the bare call `W2Dual(d).fit(x, y)` of examples/ot_benchmark.py, same samples):
- `reversed`: Q on f's side and P on g's, so the forward map is ∇g, the potential trained in the inner loop
  (the benchmark's "MM:R" arrangement);
- `preconditioned`: each conjugate step is x ← x − s·(∇f(x) − y)·A⁻¹ with A the start (Bures) map, s halved per
  sample on a rejected step, instead of the scalar step 1/λ_max(A) (A's eigenvalue ratio is 0.014 at d = 64);
- `forced_decay`: the learning rate also drops tenfold at 60 % and 80 % of the budget when no plateau did;
- `scheduled`: no plateau test and no early stop: every one of `--iters` f steps, the learning rate ÷10 at 60 % and
  85 % of them (the supervised schedule below): whether the dual, given that many steps, gets where the regression
  does;
- `conjugate_of_g`: the bare fit, then the forward map (∇g)⁻¹(x), solved by L-BFGS from ∇f(x), and the inverse
  map (∇f)⁻¹(y) from ∇g(y);
- `samples`: the bare call on `--n-train` samples of each measure instead of 20 000;
- `supervised`: no OT at all: the same DenseICNN regressed onto the true map, ∇f(x) ≈ T*(x), on 200 000 samples
  for `--iters` Adam steps (lr ÷10 at 60 % and 85 %): what the architecture can reach with that many steps.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

import icctrl.ot as O
from icctrl._io import write_json
from icctrl.ot._base import Standardizer
from icctrl.ot._dense_icnn import DenseICNN
from icctrl.ot._w2dual import W2Dual, potential_grad

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ot_benchmark as B  # noqa: E402  (the bare call's protocol and samples)


class Reversed(W2Dual):
    """Q on f's side, P on g's: the forward map is ∇g."""

    _sides = ("y", "x")

    def _forward_net(self):
        return self.g

    def _inverse_net(self):
        return self.f


class Preconditioned(W2Dual):
    """Conjugate steps preconditioned by the inverse of the start map."""

    def _start_map(self, p, q):
        a = super()._start_map(p, q)
        self._pre = torch.linalg.inv(a).to(p) if a is not None else None
        return a

    def _conjugate(self, y, x):
        if not self.conjugate_steps or self._pre is None:
            return super()._conjugate(y, x)
        with torch.no_grad():
            value = (x * y).sum(1) - self.f(x).squeeze(1)
        scale = torch.ones_like(value)
        for _ in range(self.conjugate_steps):
            trial = (x - scale[:, None] * ((potential_grad(self.f, x) - y) @ self._pre)).detach()
            with torch.no_grad():
                new = (trial * y).sum(1) - self.f(trial).squeeze(1)
                better = new > value
                x = torch.where(better[:, None], trial, x)
                value = torch.where(better, new, value)
                scale = torch.where(better, scale, 0.5 * scale)
        return x


class _Budgeted(W2Dual):
    """A W2Dual that knows its budget and counts the learning-rate drops it forced."""

    def _train(self, p_data, q_data, p_hold, q_hold, iters):
        self._budget, self._drops = iters, 0
        return super()._train(p_data, q_data, p_hold, q_hold, iters)


class ForcedDecay(_Budgeted):
    """The plateau schedule, plus drops at 60 % and 80 % of the budget when no plateau came first."""

    def _check(self, it, hold, second):
        plateau = super()._check(it, hold, second)
        frac = (it + 1) / self._budget
        forced = (self._drops == 0 and frac >= 0.6) or (self._drops == 1 and frac >= 0.8)
        if forced or (plateau and self._drops < 2):
            self._drops += 1
            return True
        return plateau


class Scheduled(_Budgeted):
    """The whole budget, lr ÷10 at 60 % and 85 % of it; the held-out checks only test for divergence."""

    def _check(self, it, hold, second):
        super()._check(it, hold, second)  # the divergence tests; its plateau verdict is not used
        frac = (it + 1) / self._budget
        if (self._drops == 0 and frac >= 0.6) or (self._drops == 1 and frac >= 0.85):
            self._drops += 1
            return True
        return False


def _inverse_of_gradient(net, u: torch.Tensor, start: torch.Tensor, steps: int) -> torch.Tensor:
    """argmax_v ⟨u, v⟩ − net(v) per row, i.e. (∇net)⁻¹(u), by L-BFGS from `start`."""
    v = start.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([v], lr=1, max_iter=steps, tolerance_grad=1e-10, tolerance_change=1e-14,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (net(v).squeeze(1) - (u * v).sum(1)).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return v.detach()


def conjugate_maps(d: int, steps: int = 100) -> list[dict]:
    """The bare fit's four maps on the test samples: ∇f, ∇g, (∇g)⁻¹ and (∇f)⁻¹."""
    b = O.w2bench(d)
    x, y = b.sample(B.N_TRAIN, 1), b.true_map(b.sample(B.N_TRAIN, 2))
    x_test = b.sample(B.N_TEST, 3)
    y_test = b.true_map(x_test).astype(np.float64)
    m = O.W2Dual(d, verbose=False)
    t0 = time.perf_counter()
    m.fit(x, y)
    wall = time.perf_counter() - t0
    sc = m.scaler_
    ux = sc.to_u(torch.as_tensor(x_test, dtype=torch.float32), "x")
    uy = sc.to_u(torch.as_tensor(y_test, dtype=torch.float32), "y")
    t0 = time.perf_counter()
    fwd = torch.cat([_inverse_of_gradient(m.g, c, potential_grad(m.f, c), steps) for c in torch.split(ux, 4096)])
    inv = torch.cat([_inverse_of_gradient(m.f, c, potential_grad(m.g, c), steps) for c in torch.split(uy, 4096)])
    lbfgs_s = time.perf_counter() - t0
    rec = {"task": "w2bench", "d": d, "method": "conjugate_of_g", "wall_s": round(wall, 1), "iters": m.iters_,
           "stop": m.stop_reason_, **B.score(x_test, y_test, m.transport, m.inverse),
           "l2_uvp_fwd_inverse_of_grad_g": O.l2_uvp(sc.from_u(fwd, "y").numpy(), y_test, y_test),
           "l2_uvp_inv_inverse_of_grad_f": O.l2_uvp(sc.from_u(inv, "x").numpy(), x_test, x_test),
           "lbfgs_steps": steps, "lbfgs_wall_s": round(lbfgs_s, 1)}
    print(rec, flush=True)
    return [rec]


def supervised(d: int, iters: int, lr: float = 1e-2, n: int = 200_000) -> list[dict]:
    """The DenseICNN regressed onto the true map (the bare call's standardized units, strong convexity and start)."""
    b = O.w2bench(d)
    x = b.sample(n, 1)
    y = b.true_map(x)
    x_test = b.sample(B.N_TEST, 3)
    y_test = b.true_map(x_test)
    tx, ty = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    sc = Standardizer(tx, ty)  # W2Dual's units
    xu, yu = sc.to_u(tx, "x"), sc.to_u(ty, "y")
    xt = sc.to_u(torch.tensor(x_test, dtype=torch.float32), "x")
    a, _ = O.linear_map(xu.numpy(), yu.numpy())
    f = DenseICNN(d, quadratic=0.25 * float(np.linalg.eigvalsh(a).min()))
    f.set_quadratic_form(torch.tensor(a))
    opt = torch.optim.Adam(f.parameters(), lr=lr, betas=(0.5, 0.9))
    gen = torch.Generator().manual_seed(0)
    records, t0 = [], time.perf_counter()
    for it in range(iters):
        if it in (int(0.6 * iters), int(0.85 * iters)):
            for group in opt.param_groups:
                group["lr"] *= 0.1
        idx = torch.randint(0, n, (512,), generator=gen)
        loss = ((potential_grad(f, xu[idx], create_graph=True) - yu[idx]) ** 2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (it + 1) % max(iters // 4, 1) == 0 or it + 1 == iters:
            pred = sc.from_u(potential_grad(f, xt), "y").detach().numpy()
            records.append({"task": "w2bench", "d": d, "method": "supervised", "iters": it + 1,
                            "wall_s": round(time.perf_counter() - t0, 1), "l2_uvp_fwd": O.l2_uvp(pred, y_test, y_test)})
            print(records[-1], flush=True)
    return records


VARIANTS = {"reversed": Reversed, "preconditioned": Preconditioned, "forced_decay": ForcedDecay,
            "scheduled": Scheduled}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", required=True, choices=[*VARIANTS, "conjugate_of_g", "samples", "supervised"])
    ap.add_argument("--dims", nargs="+", type=int, default=[16])
    ap.add_argument("--iters", type=int, default=None, help="cap on f steps (supervised: its steps, default 3000)")
    ap.add_argument("--n-train", type=int, default=200_000, help="samples of each measure for --variant samples")
    ap.add_argument("--settings", default="{}", help="JSON of W2Dual settings for the variants")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    runs = []
    for d in args.dims:
        if args.variant == "supervised":
            runs += supervised(d, args.iters or 3000)
        elif args.variant == "conjugate_of_g":
            runs += conjugate_maps(d)
        else:
            if args.variant == "samples":
                B.N_TRAIN = args.n_train
            else:
                B.METHODS["w2dual"] = VARIANTS[args.variant]
            b = O.w2bench(d)
            runs += B.run_pair("w2bench", d, b.sample, b.true_map, ["w2dual"], args.iters, "cpu",
                               settings=json.loads(args.settings))
        if args.json:
            write_json(args.json, {"variant": args.variant, "n_train": B.N_TRAIN, "settings": json.loads(args.settings),
                                   "runs": runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
