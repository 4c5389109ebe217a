"""Network analysis of ReLU networks: space folds (`icctrl.analysis.folds`: activation patterns, the range measure
χ, CantorNet, the digits study) and the neural tangent kernel (`icctrl.analysis.ntk`: analytic NNGP/NTK, empirical
NTK by torch.func, gradient-descent predictions)."""

from icctrl.analysis import folds, ntk
from icctrl.analysis.folds import activation_patterns, cantornet, chi, fold_summary
from icctrl.analysis.ntk import analytic_ntk, empirical_ntk, gd_predict

__all__ = ["folds", "ntk", "activation_patterns", "cantornet", "chi", "fold_summary", "analytic_ntk",
           "empirical_ntk", "gd_predict"]
