"""Our Monge gap beside OTT-JAX's `monge_gap_from_samples` on the same pairs and maps (needs the ottjax extra).

    python examples/ot_monge_ottjax.py --json icctrl-out/ot/monge_ottjax.json [--n 1000] [--dims 2 16] \\
        [--pairs gaussian w2bench] [--maps identity "true map" "linear baseline" "true map + rotation"]

Pairs: `gaussian_pair(d, 0)` and the W2 benchmark in R^d. Maps: identity, the true (optimal) map, the linear
(Gaussian) baseline, and the true map followed by a rotation in the first two coordinates (not a gradient,
so not optimal for its own push-forward). Ours: c = ½‖·‖², ε = 0.01 × mean cost, the plan's transport cost
subtracted. OTT: its defaults (c = ‖·‖², ε = 0.05 × mean cost, the entropic value `ent_reg_cost` subtracted);
`ott_half` is OTT's value divided by 2 to put it on our cost scale.
"""

from __future__ import annotations

import argparse

import numpy as np

MAPS = ("identity", "true map", "linear baseline", "true map + rotation")


def main(argv: list[str] | None = None) -> int:
    import jax.numpy as jnp
    from ott.geometry import pointcloud
    from ott.solvers import linear

    def monge_gap_from_samples(source, target):
        """OTT's Monge gap with its defaults, as in `ott.neural.methods.monge_gap` (which also needs flax)."""
        direct = jnp.mean(jnp.sum((source - target) ** 2, axis=1))  # SqEuclidean, OTT's default cost
        return direct - linear.solve(pointcloud.PointCloud(source, target)).ent_reg_cost

    import icctrl.ot as O
    from icctrl._io import write_json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--dims", nargs="+", type=int, default=[2, 16])
    ap.add_argument("--pairs", nargs="+", default=["gaussian", "w2bench"], choices=["gaussian", "w2bench"])
    ap.add_argument("--maps", nargs="+", default=list(MAPS), choices=list(MAPS), help="rows to compute (all)")
    args = ap.parse_args(argv)
    rows = []
    for pair in args.pairs:
        for d in args.dims:
            if pair == "gaussian":
                g = O.gaussian_pair(d, seed=0)
                sample, true_map = g.sample, g.true_map
            else:
                b = O.w2bench(d)
                sample, true_map = b.sample, b.true_map
            x = sample(args.n, 5).astype(np.float64)
            fit_x, fit_y = sample(20000, 1), true_map(sample(20000, 2))
            a, c = O.linear_map(fit_x, fit_y)
            rot = np.eye(d)
            rot[:2, :2] = [[0.0, -1.0], [1.0, 0.0]]
            maps = {"identity": lambda z: z, "true map": true_map,
                    "linear baseline": lambda z, a=a, c=c: z @ a + c,
                    "true map + rotation": lambda z, t=true_map, r=rot: t(z) @ r.T}
            for name in args.maps:
                T = maps[name]
                ours = O.monge_gap(T, x)
                theirs = float(monge_gap_from_samples(jnp.asarray(x), jnp.asarray(np.asarray(T(x)))))
                cost = float(0.5 * ((x - T(x)) ** 2).sum(1).mean())
                rows.append({"pair": pair, "d": d, "map": name, "ours": ours, "ott": theirs, "ott_half": theirs / 2,
                             "mean_half_cost": cost})
                print(f"{pair} d={d} {name:>20}: ours {ours:9.4f}  OTT/2 {theirs / 2:9.4f}  (½ cost {cost:.3f})",
                      flush=True)
                write_json(args.json, {"n": args.n, "rows": rows})  # atomically, after every row
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
