"""Net-Trim (Aghasi, Abdi, Romberg): prune a trained ReLU network layer by layer with a convex program.

`net_trim_layer` solves min ‖W‖₁ s.t. ‖(XW − Y)_Ω‖_F ≤ ε‖Y‖_F on the active set and XW ≤ V off it, by ADMM in
torch (`solve_layer` for the solve's facts; `net_trim_layer_cvxpy` is the conic reference). `net_trim` prunes a
whole `nn.Sequential` in the parallel or cascade scheme; `magnitude_prune` is the baseline at equal non-zeros.
"""

from icctrl.prune._admm import LayerResult, net_trim_layer, solve_layer
from icctrl.prune._certify import layer_program_certificate, network_facts
from icctrl.prune._data import accuracy, digits, mlp, spirals, train_classifier
from icctrl.prune._network import (
    SCHEMES,
    PruneReport,
    fine_tune,
    layer_nonzeros,
    magnitude_prune,
    net_trim,
    relative_discrepancy,
)
from icctrl.prune._reference import net_trim_layer_cvxpy

__all__ = ["net_trim_layer", "solve_layer", "LayerResult", "net_trim", "PruneReport", "SCHEMES", "magnitude_prune",
           "layer_nonzeros", "relative_discrepancy", "fine_tune", "net_trim_layer_cvxpy",
           "layer_program_certificate", "network_facts", "spirals", "digits", "mlp", "train_classifier", "accuracy"]
