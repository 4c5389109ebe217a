"""What the convexity core says about Net-Trim: the layer program it solves, and the network it returns."""

from __future__ import annotations

from torch import nn

from icctrl.convexity import Certificate, Curvature, Facts, Sign, Tracer, certify, facts, lipschitz_bound, summarize

ABS = facts("abs", ())
NORM = Facts("frobenius_norm", convex=True, concave=False, nondecreasing=False, nonincreasing=False, sign="nonneg",
             lipschitz=1.0, smooth=False)  # a norm: convex, not monotone


def layer_program_certificate(relu: bool = True) -> Certificate:
    """Compose the program min ‖W‖₁ s.t. ‖(XW − Y)_Ω‖_F ≤ ε, (XW − V)_Ωᶜ ≤ 0 in the weights W."""
    tr = Tracer(("W",))
    w = tr.input("W", "W")
    xw = tr.linear(w, Sign.UNKNOWN, "XW (samples times weights)")
    objective = tr.apply(w, ABS, "‖W‖₁ (sum of |w|)")
    residual = tr.add(xw, tr.constant("−Y"), label="(XW − Y)_Ω")
    parts = [objective, tr.apply(residual, NORM, "‖(XW − Y)_Ω‖_F ≤ ε")]
    if relu:
        parts.append(tr.add(xw, tr.constant("−V"), label="(XW − V)_Ωᶜ ≤ 0"))
    for c in parts[1:]:
        if c.curvature not in (Curvature.CONVEX, Curvature.AFFINE, Curvature.CONSTANT):
            tr.reasons.append(f"{c.label}: a {c.curvature.value} function bounded above is not a convex set")
    name = "Net-Trim layer program" + (" (ReLU layer)" if relu else " (linear layer)")
    return summarize(tr, parts, ("W",), "jointly in the layer's weights", name)


def network_facts(model: nn.Module) -> dict:
    """The pruned network's certificate in its input, its certified Lipschitz bound and its non-zeros."""
    cert = certify(model)
    return {"certificate": cert.to_dict(), "convex_in_input": cert.convex, "lipschitz_bound": lipschitz_bound(model),
            "nonzeros": [int((m.weight != 0).sum()) for m in model.modules() if isinstance(m, nn.Linear)]}
