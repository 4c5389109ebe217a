"""Network analysis: space folds (activation patterns, χ, CantorNet) and the neural tangent kernel."""
