"""Figures of the analysis studies, written atomically (PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from icctrl._io import atomic_write


def _save(fig, path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)
    return path


def plot_digits_folds(result: dict, path) -> Path:
    """Mean χ and share of folding paths against depth, one line per width; trained solid, at init dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    depths = sorted({r["depth"] for r in rows})
    widths = sorted({r["width"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    panels = (("chi_mean", axes[0], "mean χ over paths"), ("share_folding", axes[1], "share of paths with χ > 0"))
    for key, ax, label in panels:
        for i, w in enumerate(widths):
            c = f"C{i}"
            for prefix, style in (("", "-"), ("init_", "--")):
                m = [np.mean([r[prefix + key] for r in rows if r["depth"] == d and r["width"] == w]) for d in depths]
                ax.plot(depths, m, style, color=c, marker="o" if not prefix else None,
                        label=f"width {w}" if not prefix else None)
        ax.set_xlabel("hidden layers")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(title="trained (dashed: at init)", fontsize=8)
    fig.suptitle(f"Space folds of ReLU MLPs on the digits ({result['n_paths']} same-class test paths, "
                 f"{result['n_points']} points each)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_ntk(width_result: dict, training_result: dict, path) -> Path:
    """Left: empirical-to-analytic NTK distance against width (log-log, slope fit). Middle: training loss of the
    networks and of their NTK predictions. Right: the widest network's test function against its prediction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    w = np.asarray(width_result["widths"])
    ax = axes[0]
    for s_i in range(len(width_result["seeds"])):
        ax.scatter(w, [width_result["rel_error"][str(v)][s_i] for v in w], s=8, color="0.6")
    med = np.asarray(width_result["median_rel_error"])
    ax.loglog(w, med, "o-", label=f"median, slope {width_result['slope']:.2f}")
    ax.loglog(w, med[0] * (w / w[0]) ** -0.5, "k:", label="slope −1/2")
    ax.set_xlabel("width")
    ax.set_ylabel("‖Θ_emp − Θ‖_F / ‖Θ‖_F")
    ax.set_title(f"depth {width_result['depth']}, {width_result['n_points']} points", fontsize=9)
    ax.legend(fontsize=8)
    tr = training_result
    ax = axes[1]
    for i, (wd, net) in enumerate(tr["networks"].items()):
        ax.loglog(tr["steps"], net["train_loss"], "-", color=f"C{i}", label=f"width {wd}: network")
        ax.loglog(tr["steps"], net["ntk_train_loss"], "--", color=f"C{i}", label=f"width {wd}: NTK prediction")
    ax.set_xlabel("GD step")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=8)
    ax = axes[2]
    wd, net = list(tr["networks"].items())[-1]
    ang = np.asarray(tr["x_test_angle"])
    order = np.argsort(ang)
    ax.plot(ang[order], np.sin(2 * ang[order]), "k:", label="target sin 2γ")
    ax.plot(ang[order], np.asarray(net["test_final"])[order], "-", label=f"width {wd} network")
    ax.plot(ang[order], np.asarray(net["ntk_test_final"])[order], "--", label="its NTK prediction")
    ax.plot(ang[order], np.asarray(tr["analytic"]["test_final"])[order], "-.", label="analytic NTK (mean)")
    ax.set_xlabel("angle γ on the circle")
    ax.set_title(f"after {tr['steps'][-1]} steps", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
