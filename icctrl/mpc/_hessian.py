"""The Hessian of an MPC problem's Lagrangian with the predictor's part read from its layers: the chain rule through
the prediction Y = F(x₀, U), with F's Jacobian and weighted Hessian from `HorizonModel.second_order` and CasADi's AD
for everything else (the cost and constraints as functions of w and Y, which are cheap). Exact, not an
approximation: a second route to the same matrix as CasADi's own `nlp_hess_l`, several times cheaper on network
predictors (tests/mpc/test_hessian.py compares the two)."""

from __future__ import annotations

import casadi as ca


def structured_hessian(problem) -> ca.Function | None:
    """nlp_hess_l (x, p, lam_f, lam_g) → ∇²ₓ(lam_f·J + lam_gᵀg) for a single-shooting problem on a flat horizon model
    (all N steps from one network call) whose inputs U are affine in the decision vector; None for any other."""
    if getattr(problem, "prediction", None) is None or not getattr(problem.predictor, "flat", False):
        return None  # a sequence model's Hessian is sparse over the steps, which CasADi's AD exploits and this does not
    Y, U, x0 = problem.prediction
    w, p = problem.w, problem.p
    nw = w.numel()
    u = ca.vec(U.T)
    G = ca.jacobian(u, w)
    if ca.depends_on(G, ca.vertcat(w, p)):
        return None
    G = ca.DM(ca.evalf(G))
    ys = ca.MX.sym("y", Y.numel())
    J, g = ca.graph_substitute([problem.J, problem.g], [Y], [ca.reshape(ys, Y.shape[1], Y.shape[0]).T])
    name = problem.predictor.f.name()
    if any(f.name() == name for f in ca.Function("rest", [w, p, ys], [J, g]).find_functions()):
        return None  # the prediction is used by another route than Y: leave the Hessian to CasADi
    lam_f, lam_g = ca.MX.sym("lam_f"), ca.MX.sym("lam_g", g.numel())
    lag = lam_f * J + ca.dot(lam_g, g)
    Hz, gz = ca.hessian(lag, ca.vertcat(w, ys))  # the rest, in (w, y)
    _, A, HF = problem.predictor.second_order()(x0, u, gz[nw:])
    Jz = ca.vertcat(ca.DM.eye(nw), ca.mtimes(A, G))
    H = ca.mtimes([Jz.T, Hz, Jz]) + ca.mtimes([G.T, HF, G])
    H = 0.5 * (H + H.T)  # exactly symmetric, as CasADi's (the products above round differently on each side)
    H = ca.Function("h", [w, p, lam_f, lam_g, ys], [H])(w, p, lam_f, lam_g, ca.vec(Y.T))
    return ca.Function("nlp_hess_l", [w, p, lam_f, lam_g], [H], ["x", "p", "lam_f", "lam_g"], ["hess_gamma_x_x"])
