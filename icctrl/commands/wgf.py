"""`icctrl wgf`: Wasserstein gradient flows by variational JKO steps on the test problems with exact answers.

  ou       Ornstein–Uhlenbeck flow to N(m, Σ): log10 symmetric KL to the exact law at t = steps·a
  heat     heat flow from a Gaussian: log10 symmetric KL to the exact law after each step
  porous   porous medium (m = 2) from the Barenblatt profile: L1 and entropy errors against time
  timing   seconds per JKO step against the dimension
"""

from __future__ import annotations

import argparse


def _common(p: argparse.ArgumentParser, steps: int, step_size: float, particles: int) -> None:
    p.add_argument("--steps", type=int, default=steps, help="JKO steps")
    p.add_argument("--step-size", type=float, default=step_size, help="JKO step size a")
    p.add_argument("--particles", type=int, default=particles, help="particles in x0 (and in the result)")
    p.add_argument("--iters", type=int, default=200, help="map updates per JKO step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (0: torch's default)")
    p.add_argument("--json", default=None, help="write the results as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def register(subparsers) -> None:
    """Add the `wgf` sub-command and its problems."""
    p = subparsers.add_parser("wgf", help="Wasserstein gradient flows (variational JKO)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="problem", metavar="PROBLEM", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter
    ou = sub.add_parser("ou", help="Ornstein–Uhlenbeck flow", formatter_class=fmt)
    ou.add_argument("--dim", type=int, default=2, help="dimension d")
    _common(ou, 18, 0.05, 100_000)
    heat = sub.add_parser("heat", help="heat flow from a Gaussian", formatter_class=fmt)
    heat.add_argument("--dim", type=int, default=2, help="dimension d")
    _common(heat, 10, 0.05, 50_000)
    por = sub.add_parser("porous", help="porous medium against the Barenblatt profile", formatter_class=fmt)
    por.add_argument("--dim", type=int, default=1, help="dimension d")
    por.add_argument("--t0", type=float, default=1e-3, help="Barenblatt time of x0")
    _common(por, 20, 5e-4, 50_000)
    tim = sub.add_parser("timing", help="seconds per JKO step against d", formatter_class=fmt)
    tim.add_argument("--dims", default="2,6,12,16,32", help="comma-separated dimensions")
    _common(tim, 3, 0.05, 20_000)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run one problem, print its figures, optionally write JSON."""
    import torch

    from icctrl._io import write_json
    from icctrl.errors import InvalidValueError
    from icctrl.wgf import _experiments as E

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    jko = dict(device=args.device, verbose=not args.quiet, iters=args.iters)
    if args.problem == "timing":
        try:
            dims = [int(v) for v in args.dims.split(",")]
        except ValueError:
            raise InvalidValueError(f"--dims must be comma-separated integers, got {args.dims!r}") from None
        out = E.timing_run(dims, steps=args.steps, iters=args.iters, step_size=args.step_size,
                           particles=args.particles, seed=args.seed, device=args.device, verbose=not args.quiet)
        for r in out["rows"]:
            print(f"d = {r['dim']:>3}: {r['seconds_per_step']:.2f} s per JKO step ({args.iters} map updates)")
    elif args.problem == "ou":
        full = E.ou_run(args.dim, steps=args.steps, step_size=args.step_size, particles=args.particles,
                        seed=args.seed, **jko)
        out = {k: full[k] for k in ("dim", "steps", "log10_symkl", "seconds_per_step")}
        print(f"OU d = {args.dim}, t = {full['t']:.3g}: log10 SymKL {full['log10_symkl']:.3f} (published "
              f"{full['published_log10_symkl']}, time discretisation alone {full['log10_symkl_discrete_floor']:.3f}),"
              f" {full['seconds_per_step']:.2f} s per step on {full['device']}")
    elif args.problem == "heat":
        out = E.heat_run(args.dim, steps=args.steps, step_size=args.step_size, particles=args.particles,
                         seed=args.seed, **jko)
        print(f"heat d = {args.dim}: log10 SymKL per step {[round(v, 2) for v in out['log10_symkl_per_step']]}")
    else:
        out = E.porous_run(args.dim, t0=args.t0, step_size=args.step_size, steps=args.steps,
                           particles=args.particles, seed=args.seed, **jko)
        for t, l1, lr, e in zip(out["times"], out["l1"], out["l1_radial"], out["entropy_rel_error"]):
            print(f"t = {t:.4g}: L1 {l1:.4f}, radial L1 {lr:.4f}, entropy rel. error {e:.4f}")
    if args.json:
        write_json(args.json, out)
    return 0
