"""Reference NNGP/NTK values from neural-tangents' stax (not an icctrl dependency), for test_analysis_ntk.

    python -m venv /tmp/nt && /tmp/nt/bin/pip install "jax[cpu]==0.4.23" jaxlib==0.4.23 neural-tangents==0.6.5 \
        "numpy<2" "scipy<1.13"
    /tmp/nt/bin/python tests/analysis/data/make_stax_reference.py   # writes stax_reference.json beside itself
"""

import json
from pathlib import Path

import jax
import numpy as np
from neural_tangents import stax

jax.config.update("jax_enable_x64", True)
CONFIGS = [(0, 1.0, 0.0), (1, 2**0.5, 0.0), (1, 1.3, 0.4), (3, 2**0.5, 0.1), (5, 0.8, 1.2)]


def main() -> None:
    x1 = np.random.default_rng(0).normal(size=(5, 3))
    x2 = np.concatenate([x1[:1], np.random.default_rng(1).normal(size=(3, 3))])  # x2[0] == x1[0]
    out = {"x1": x1.tolist(), "x2": x2.tolist(), "cases": []}
    for depth, w, b in CONFIGS:
        layers = [l for _ in range(depth) for l in (stax.Dense(512, W_std=w, b_std=b), stax.Relu())]
        _, _, kernel_fn = stax.serial(*layers, stax.Dense(1, W_std=w, b_std=b))
        k = kernel_fn(x1, x2, ("nngp", "ntk"))
        out["cases"].append({"depth": depth, "w_std": w, "b_std": b, "nngp": np.asarray(k.nngp).tolist(),
                             "ntk": np.asarray(k.ntk).tolist()})
    (Path(__file__).parent / "stax_reference.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
