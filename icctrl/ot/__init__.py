"""Neural optimal transport on the shared ICNN: W2 dual, displacement-sparse OT, Monge gap, and metrics.

Estimators (scikit-learn style: `fit(x, y, iters=...)` → self, `transport(x)` P→Q in the input's family):
`W2Dual`, `SparseW2Dual`, `MongeGapMap`. Metrics: `l2_uvp`, `cosine`, `monge_gap`, `displacement_dims`,
`support_recovery`, `marginal_w2`, `moved_coordinates` (which coordinates a map moves, read from the marginals).
Benchmarks: `gaussian_pair` (closed-form maps) and `w2bench` (Korotin et al. 2021).
Cost convention: c(x, y) = ½‖x − y‖²; W2² estimates are of the squared distance E‖X − T(X)‖².
"""

from icctrl.ot._base import DivergenceError, auto_budget, auto_lr
from icctrl.ot._dense_icnn import DenseICNN
from icctrl.ot._gaussian import GaussianPair, gaussian_pair, linear_map
from icctrl.ot._metrics import cosine, displacement_dims, l2_uvp, support_recovery
from icctrl.ot._monge import MongeGapMap, monge_gap
from icctrl.ot._penalties import PENALTIES, AdaptiveLambda, displacement_penalty
from icctrl.ot._sinkhorn import sinkhorn, sinkhorn_divergence
from icctrl.ot._sparse import SparseW2Dual, marginal_w2, moved_coordinates
from icctrl.ot._w2bench import W2Bench, w2bench
from icctrl.ot._w2dual import W2Dual

__all__ = ["W2Dual", "SparseW2Dual", "MongeGapMap", "monge_gap", "l2_uvp", "cosine", "displacement_dims",
           "support_recovery", "displacement_penalty", "PENALTIES", "AdaptiveLambda", "gaussian_pair",
           "GaussianPair", "linear_map", "DenseICNN", "DivergenceError", "auto_budget", "auto_lr", "w2bench", "W2Bench",
           "sinkhorn", "sinkhorn_divergence", "marginal_w2", "moved_coordinates"]
