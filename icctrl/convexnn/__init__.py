"""Convex one-hidden-layer ReLU networks (Pilanci–Ergen), robust to ℓ∞ perturbations (Bai, Gautam, Sojoudi).

`ConvexReLU(...).fit(X, y)` solves the group-lasso program over activation patterns with cvxpy (Clarabel) and
recovers the equivalent ReLU network (`to_torch`); `facts()` gives the certificate of the program it solved and
the recovered network's facts. Patterns: `enumerate_patterns`, `sample_patterns`, `sampling_rule`.
Baselines: `sgd_objectives`, `adversarial_train` (FGSM / PGD), scored by `scores` under `pgd_attack`.
"""

from icctrl.convexnn._baselines import adversarial_train, pgd_attack, scores, sgd_objectives
from icctrl.convexnn._certify import network_facts, program_certificate
from icctrl.convexnn._model import LOSSES, ConvexReLU, regularised_objective
from icctrl.convexnn._patterns import count_patterns, enumerate_patterns, sample_patterns, sampling_rule

__all__ = ["ConvexReLU", "LOSSES", "regularised_objective", "enumerate_patterns", "sample_patterns",
           "sampling_rule", "count_patterns", "program_certificate", "network_facts", "sgd_objectives",
           "adversarial_train", "pgd_attack", "scores"]
