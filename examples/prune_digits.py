"""Net-Trim on scikit-learn's digits: train a 64-200-200-10 MLP, prune it (cascade), compare with magnitude
pruning at the same non-zeros per layer.

    python examples/prune_digits.py [--epsilon 0.05]
"""

from __future__ import annotations

import argparse

import torch

import icctrl.prune as P


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epsilon", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    Xtr, ytr, Xte, yte = P.digits()
    model = P.train_classifier(P.mlp([64, 200, 200, 10]), Xtr, ytr, epochs=100)
    pruned = P.net_trim(model, Xtr, epsilon=args.epsilon, scheme="cascade", max_iter=1000, tol=1e-4).float()
    kept = P.layer_nonzeros(pruned)
    magnitude = P.magnitude_prune(model, kept)
    print(f"kept {kept} of {P.layer_nonzeros(model)} weights")
    print(f"test accuracy: unpruned {P.accuracy(model, Xte, yte):.4f}, Net-Trim {P.accuracy(pruned, Xte, yte):.4f}, "
          f"magnitude {P.accuracy(magnitude, Xte, yte):.4f}")
    print(P.layer_program_certificate())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
