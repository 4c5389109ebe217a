"""Space folds of ReLU networks: activation patterns along paths, the range measure χ, CantorNet."""

from icctrl.analysis._digits import digits_data, digits_fold_study, relu_mlp, train_classifier
from icctrl.analysis._folds import (
    FoldSummary,
    cantornet,
    chi,
    chi_of_patterns,
    fold_summary,
    path_patterns,
    path_points,
    sample_pairs,
)
from icctrl.analysis._patterns import PIECEWISE_LINEAR, ActivationPatterns, activation_patterns

__all__ = ["activation_patterns", "ActivationPatterns", "PIECEWISE_LINEAR", "path_points", "path_patterns",
           "chi_of_patterns", "chi", "fold_summary", "FoldSummary", "sample_pairs", "cantornet",
           "digits_fold_study", "digits_data", "relu_mlp", "train_classifier"]
