"""The neural tangent kernel (Jacot et al. 2018): analytic NNGP/NTK of ReLU MLPs in the `stax` NTK
parameterisation, the empirical NTK of any torch model, and closed-form gradient-descent MSE predictions."""

from icctrl.analysis._ntk_analytic import analytic_ntk, relu_step
from icctrl.analysis._ntk_empirical import METHODS, MODES, NTKMLP, empirical_ntk
from icctrl.analysis._ntk_predict import GDPrediction, gd_predict
from icctrl.analysis._ntk_study import circle_points, ntk_training_study, ntk_width_study

__all__ = ["analytic_ntk", "relu_step", "empirical_ntk", "NTKMLP", "MODES", "METHODS", "gd_predict", "GDPrediction",
           "ntk_width_study", "ntk_training_study", "circle_points"]
