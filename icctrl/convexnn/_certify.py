"""What the convexity core says about the convex ReLU program (as solved) and the network recovered from it."""

from __future__ import annotations

from torch import nn

from icctrl.convexity import Certificate, Curvature, Facts, Sign, Tracer, certify, facts, lipschitz_bound, summarize

NORM = Facts("norm", convex=True, concave=False, nondecreasing=False, nonincreasing=False, sign="nonneg",
             lipschitz=1.0, smooth=False)  # a norm: convex, not monotone
ABS = facts("abs", ())


def program_certificate(loss: str, robust: bool) -> Certificate:
    """Compose the objective and every constraint g ≤ 0 of the program in its variables (v, w[, r])."""
    tr = Tracer(("v,w",))
    vw = tr.input("v,w", "(v_i, w_i)")
    f = tr.linear(vw, Sign.UNKNOWN, "f = Σ D_i X̃ (v_i − w_i)")
    spread = tr.linear(tr.apply(tr.linear(vw, Sign.UNKNOWN, "Σ_i d_ik (v_i − w_i)"), NORM,
                                     "‖Σ_i d_ik (v_i − w_i)‖₁"), Sign.NONNEG, "ε‖·‖₁") if robust else None
    reg = tr.linear(tr.apply(vw, NORM, "‖v_i‖₂ + ‖w_i‖₂"), Sign.NONNEG, "β Σ (‖v_i‖₂ + ‖w_i‖₂)")
    cons = []
    if loss == "hinge":
        margin = tr.add(tr.constant("1"), tr.neg(tr.linear(f, Sign.UNKNOWN, "y ⊙ f"), "−y ⊙ f"),
                        *([spread] if robust else []), label="1 − y f (+ ε‖·‖₁)")
        data = tr.apply(margin, facts("relu", ()),
                             "hinge loss Σ max(0, ·)")
    elif robust:  # epigraph: ½‖r‖² with |f − y| + ε‖·‖₁ − r ≤ 0
        r = tr.input("v,w", "r")
        data = tr.square_norm(r, "½‖r‖²")
        cons.append(tr.add(tr.apply(tr.add(f, tr.constant("−y"), label="f − y"), ABS, "|f − y|"), spread,
                           tr.neg(r, "−r"), label="|f − y| + ε‖·‖₁ − r ≤ 0"))
    else:
        data = tr.square_norm(tr.add(f, tr.constant("−y"), label="f − y"), "½‖f − y‖²")
    cone = tr.neg(tr.linear(vw, Sign.UNKNOWN, "(2D_i − I) X̃ v_i"), "−(2D_i − I) X̃ v_i")
    if robust:
        cone = tr.add(cone, tr.linear(tr.apply(vw, NORM, "‖v_i‖₁"), Sign.NONNEG, "ε‖v_i‖₁"),
                      label="ε‖v_i‖₁ − (2D_i − I) X̃ v_i ≤ 0")
    cons.append(cone)
    for c in cons:
        if c.curvature not in (Curvature.CONVEX, Curvature.AFFINE, Curvature.CONSTANT):
            tr.reasons.append(f"{c.label}: a {c.curvature.value} function bounded above is not a convex set")
    objective = tr.add(data, reg, label="objective")
    name = f"convex ReLU program ({loss} loss{', robust' if robust else ''})"
    return summarize(tr, [objective, *cons], ("v,w",), "jointly in the program's variables", name)


def network_facts(net: nn.Module) -> dict:
    """The recovered network's certificate in its input and its certified Lipschitz bound."""
    cert = certify(net)
    return {"certificate": cert.to_dict(), "convex_in_input": cert.convex, "lipschitz_bound": lipschitz_bound(net)}
