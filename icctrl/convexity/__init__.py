"""The one place where convexity, monotonicity and Lipschitz questions are answered."""
