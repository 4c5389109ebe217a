"""The one place where convexity, monotonicity and Lipschitz questions are answered.

Every answer is a reading of one representation: the aten graph of the forward that actually runs
(`capture`), with the current parameter values, interpreted against one table of op facts (`facts`).
Symbolic: `certify` (curvature, monotonicity, sign) and `lipschitz_bound`. Numeric second opinion:
`jensen_check`, `monotonicity_check`, `hessian_check`, `lipschitz_estimate`. Soundness: `fuzz_module` draws
modules from a grammar built to fool the certificate, `check_module` looks for counterexamples to its verdicts.
"""

from icctrl.convexity._certify import Certificate, certify, run_trace, summarize
from icctrl.convexity._expr import Sym, Tracer
from icctrl.convexity._graph import Graph, GraphError, capture, digest
from icctrl.convexity._lattice import Curvature, Mono, Sign, sign_of
from icctrl.convexity._lipschitz import lipschitz_bound
from icctrl.convexity._ops import Facts, facts
from icctrl.convexity._read import Domain, interpret

__all__ = ["Certificate", "certify", "run_trace", "summarize", "Sym", "Tracer", "Graph", "GraphError", "capture",
           "digest", "Curvature", "Mono", "Sign", "sign_of", "lipschitz_bound", "Facts", "facts", "Domain",
           "interpret"]

from icctrl.convexity._fuzz import Verdict, check_module, fuzz_module
from icctrl.convexity._numeric import (
           CheckResult,
           hessian_check,
           jensen_check,
           lipschitz_estimate,
           monotonicity_check,
)
from icctrl.convexity._report import check_model, format_report

__all__ += ["Verdict", "check_module", "fuzz_module", "check_model", "format_report",
            "CheckResult", "hessian_check", "jensen_check", "lipschitz_estimate",
            "monotonicity_check"]
