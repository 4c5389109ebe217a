"""The figures of docs/wgf.md: OU against the published SymKL, porous medium against Barenblatt, heat flow, and the
time per JKO step against d. Each part writes docs/wgf/<part>.json (atomically) as it finishes; `--plot` redraws
the PNGs from whatever JSON exists.

    python examples/wgf_figures.py --parts ou,porous,timing,heat --ou-dims 2,6,12,16
    python examples/wgf_figures.py --plot
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from icctrl._io import atomic_write, write_json
from icctrl.wgf import _experiments as E

OUT = Path(__file__).resolve().parent.parent / "docs" / "wgf"


def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v]


def compute(parts: list[str], ou_dims: list[int], porous_dims: list[int], timing_dims: list[int]) -> None:
    for part in parts:
        if part == "ou":
            for d in ou_dims:
                r = E.ou_run(d)
                write_json(OUT / f"ou_d{d}.json", r)
                print(f"ou d={d}: log10 SymKL {r['log10_symkl']:.3f} (published {r['published_log10_symkl']}), "
                      f"{r['seconds_per_step']:.1f} s/step", flush=True)
        elif part == "porous":
            for d in porous_dims:
                r = E.porous_run(d)
                write_json(OUT / f"porous_d{d}.json", r)
                print(f"porous d={d}: L1 {r['l1'][0]:.3f} → {r['l1'][-1]:.3f}", flush=True)
        elif part == "timing":
            r = E.timing_run(timing_dims, steps=2)
            write_json(OUT / "timing.json", r)
            print("timing:", [(row["dim"], round(row["seconds_per_step"], 1)) for row in r["rows"]], flush=True)
        elif part == "heat":
            r = E.heat_run(2)
            write_json(OUT / "heat_d2.json", r)
            print(f"heat d=2: log10 SymKL {r['log10_symkl']:.3f}", flush=True)


def _save(fig, name: str) -> None:
    atomic_write(OUT / name, lambda p: fig.savefig(p, dpi=120, bbox_inches="tight", format="png"))


def plot() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    load = lambda p: json.loads(p.read_text())  # noqa: E731
    ou = sorted((load(p) for p in OUT.glob("ou_d*.json")), key=lambda r: r["dim"])
    if ou:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot([r["dim"] for r in ou], [r["log10_symkl"] for r in ou], "o-", label="icctrl.wgf (1 seed)")
        pub = E.PUBLISHED_OU
        ax.plot(list(pub), list(pub.values()), "s--", label="variational WGF, published (15 seeds)")
        icnn = E.PUBLISHED_OU_JKO_ICNN
        ax.plot(list(icnn), list(icnn.values()), "^:", label="JKO-ICNN, published")
        ax.plot([r["dim"] for r in ou], [r["log10_symkl_discrete_floor"] for r in ou], "k.", label="exact JKO steps")
        ax.set(xlabel="dimension d", ylabel="log10 SymKL at t = 0.9", title="Ornstein–Uhlenbeck")
        ax.legend(fontsize=7)
        _save(fig, "ou_symkl.png")
    por = sorted((load(p) for p in OUT.glob("porous_d*.json")), key=lambda r: r["dim"])
    if por:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        for r in por:
            line, = axes[0].plot(r["times"], r["l1"], "o-", ms=3, label=f"d = {r['dim']} (critic density)")
            axes[0].plot(r["times"], r["l1_radial"], "--", color=line.get_color(), label=f"d = {r['dim']} (radius law)")
            axes[1].plot(r["times"], r["entropy_rel_error"], "o-", ms=3, label=f"d = {r['dim']}")
        axes[0].set(xlabel="t", ylabel="L1 error", title="Porous medium vs Barenblatt")
        axes[1].set(xlabel="t", ylabel="relative entropy error", yscale="log", title="∫ρ² estimate")
        axes[0].legend(fontsize=7)
        axes[1].legend(fontsize=7)
        _save(fig, "porous.png")
    if (OUT / "timing.json").exists():
        r = load(OUT / "timing.json")
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot([row["dim"] for row in r["rows"]], [row["seconds_per_step"] for row in r["rows"]], "o-",
                label=f"icctrl.wgf, {r['device']}, {r['iters']} map updates")
        ax.set(xlabel="dimension d", ylabel="seconds per JKO step", title="Time per JKO step", ylim=(0, None))
        ax.legend(fontsize=7)
        _save(fig, "timing.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="ou,porous,timing,heat")
    ap.add_argument("--ou-dims", default="2,6,12,16")
    ap.add_argument("--porous-dims", default="1,3,6")
    ap.add_argument("--timing-dims", default="2,6,12,16,32")
    ap.add_argument("--plot", action="store_true", help="only redraw the figures from the JSON files")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not args.plot:
        compute(args.parts.split(","), _ints(args.ou_dims), _ints(args.porous_dims), _ints(args.timing_dims))
    plot()


if __name__ == "__main__":
    main()
