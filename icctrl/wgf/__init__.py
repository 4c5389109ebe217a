"""Wasserstein gradient flows by variational JKO steps on samples (Fan, Zhang, Taghvaei & Chen, ICML 2022).

`JKO(functional, step_size).run(x0, steps)` returns the particles after each step. Functionals: `KL(potential)`,
`Entropy()`, `PorousMedium(m)`, `PotentialEnergy(potential)`, `InteractionEnergy(kernel)`, and their sums.
Test problems with exact laws: `ou_problem` (Ornstein–Uhlenbeck), `HeatProblem`, `Barenblatt` (porous medium).
"""

from icctrl.wgf._barenblatt import Barenblatt
from icctrl.wgf._functionals import KL, Entropy, Functional, InteractionEnergy, PorousMedium, PotentialEnergy, Sum
from icctrl.wgf._gaussian import HeatProblem, OUProblem, fit_gaussian, ou_problem, symkl_gaussian
from icctrl.wgf._jko import JKO, JKOResult
from icctrl.wgf._maps import MAPS, ICNNMap, ResidualMap

__all__ = ["JKO", "JKOResult", "Functional", "Sum", "KL", "Entropy", "PorousMedium", "PotentialEnergy",
           "InteractionEnergy", "Barenblatt", "MAPS", "ResidualMap", "ICNNMap", "ou_problem", "OUProblem",
           "HeatProblem", "fit_gaussian", "symkl_gaussian"]
