"""Per-evaluation time of the CasADi function read from the graph against a hand-written export (one run).

    nice python examples/casadi_speed.py --legacy <(git show 494530f:icctrl/export/_casadi.py) --out speed.json

`--legacy` is a copy of the hand-written translator (main before the graph readings, commit 494530f); its
`_build(model, window, name)` is loaded from that file. For each zoo model (hidden 64, 2 layers, window 10, seed
0) both functions are built once; then, interleaved over `--repeats` rounds, each is timed on a batch of 256
windows (`Function.map`, the CasADi VM without Python overhead) and on its Jacobian (what an SQP or RTI
step evaluates). Prints medians and the ratio derived / hand-written; writes the samples as JSON (atomically).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import casadi as ca
import numpy as np
import torch

from icctrl._io import write_json
from icctrl.export._casadi import _build
from icctrl.nn import build

MODELS = {"icnn": {}, "icrnn": {}, "iclrnn": {}, "iclstm": {}, "picnn": {"convex_inputs": [0, 1]}, "lstm": {},
          "icrnn+affine": {"affine": 3}}


def _legacy(path: str):
    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / "legacy_casadi.py"
        shutil.copyfile(path, dst)
        spec = importlib.util.spec_from_file_location("legacy_casadi", dst)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    return mod


def _timed(fn, arg, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn(arg)
    return (time.perf_counter() - start) / calls


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--legacy", required=True, help="file with the hand-written translator (_build)")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--window", type=int, default=10)
    p.add_argument("--out", default="casadi_speed.json")
    args = p.parse_args()
    legacy = _legacy(args.legacy)
    T, batch = args.window, 256
    rng = np.random.default_rng(0)
    cells = {}
    for name, kw in MODELS.items():
        torch.manual_seed(0)
        base = name.split("+")[0]
        model = build(base, 3, 2, hidden=64, layers=2, **kw).double().eval()
        fns = {"derived": _build(model, T, f"{base}_derived")}
        try:
            fns["hand-written"] = legacy._build(model, T, f"{base}_hand")
        except Exception as exc:  # the hand-written export did not know this model
            print(f"{name}: no hand-written export ({type(exc).__name__}: {exc})")
        X = ca.MX.sym("X", T, 3)
        cell = {}
        for k, f in fns.items():
            jac = ca.Function(k.replace('-', '_') + '_jac', [X], [ca.jacobian(ca.vec(f(X)), ca.vec(X))])
            cell[k] = {"map": f.map(batch), "jac": jac, "instructions": f.n_instructions(),
                       "jac_instructions": jac.n_instructions()}
        x1 = rng.standard_normal((T, 3))
        xb = np.tile(x1, (1, batch)) + 0.1 * rng.standard_normal((T, 3 * batch))
        y = model(torch.as_tensor(x1)[None])[0].detach().numpy()
        for k, c in cell.items():
            c["parity"] = float(np.abs(np.array(fns[k](x1)) - y).max())
        cells[name] = (cell, x1, xb)
    samples = {n: {k: {"map": [], "jac": []} for k in c} for n, (c, _, _) in cells.items()}
    for _ in range(args.repeats):  # interleaved: every cell and implementation once per round
        for name, (cell, x1, xb) in cells.items():
            for k, c in cell.items():
                samples[name][k]["map"].append(_timed(c["map"], xb, 5) / batch)
                samples[name][k]["jac"].append(_timed(c["jac"], x1, 20))
    out = {"window": T, "batch": batch, "repeats": args.repeats, "models": {}}
    print(f"{'model':14s} {'impl':13s} {'eval µs':>9s} {'jac µs':>9s} {'instr':>7s} {'parity':>9s}")
    for name, (cell, _, _) in cells.items():
        rec = {}
        for k, c in cell.items():
            med = {m: statistics.median(samples[name][k][m]) for m in ("map", "jac")}
            rec[k] = {"eval_s_median": med["map"], "jac_s_median": med["jac"], "instructions": c["instructions"],
                      "jac_instructions": c["jac_instructions"], "parity": c["parity"], "samples": samples[name][k]}
            print(f"{name:14s} {k:13s} {1e6 * med['map']:9.2f} {1e6 * med['jac']:9.1f} {c['instructions']:7d} "
                  f"{c['parity']:9.1e}")
        if "hand-written" in rec:
            rec["ratio_eval"] = rec["derived"]["eval_s_median"] / rec["hand-written"]["eval_s_median"]
            rec["ratio_jac"] = rec["derived"]["jac_s_median"] / rec["hand-written"]["jac_s_median"]
            print(f"{'':14s} ratio derived/hand-written: eval {rec['ratio_eval']:.2f}, jac {rec['ratio_jac']:.2f}")
        out["models"][name] = rec
    write_json(args.out, out)


if __name__ == "__main__":
    main()
