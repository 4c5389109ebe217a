"""The one place where convexity, monotonicity and Lipschitz questions are answered.

Symbolic: `certify` composes the declared facts of every layer (curvature, monotonicity, sign) through a
model or an assembled problem. Numeric second opinion: `jensen_check`, `monotonicity_check`,
`hessian_check`, `lipschitz_estimate`. Certified bound: `lipschitz_bound`.
"""

from icctrl.convexity._certify import Certificate, certify, register_rule, run_trace, summarize, trace_module
from icctrl.convexity._expr import Sym, Tracer
from icctrl.convexity._lattice import ATOMS, Atom, Curvature, Mono, Sign, sign_of
from icctrl.convexity._lipschitz import lipschitz_bound

__all__ = ["Certificate", "certify", "register_rule", "run_trace", "summarize", "trace_module", "Sym", "Tracer",
           "ATOMS", "Atom", "Curvature", "Mono", "Sign", "sign_of", "lipschitz_bound"]

from icctrl.convexity._numeric import (
           CheckResult,
           hessian_check,
           jensen_check,
           lipschitz_estimate,
           monotonicity_check,
)
from icctrl.convexity._report import check_model, format_report

__all__ += ["check_model", "format_report", "CheckResult", "hessian_check", "jensen_check", "lipschitz_estimate",
            "monotonicity_check"]
