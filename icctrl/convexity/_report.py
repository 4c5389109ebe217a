"""`check_model`: the certificate, the numeric second opinion and the Lipschitz figures of one model."""

from __future__ import annotations

import math

import torch

from icctrl.convexity._certify import certify
from icctrl.convexity._lipschitz import lipschitz_bound
from icctrl.convexity._numeric import hessian_check, jensen_check, lipschitz_estimate, monotonicity_check
from icctrl.convexity._ops import facts
from icctrl.errors import IcctrlError


def _sampler(model, window: int):
    """Random windows in the model's own units: around its input scaler (offset ± 2·scale) when it has one."""
    n_in = model.n_in
    off = getattr(model, "in_offset", torch.zeros(n_in)).detach().double()
    scale = getattr(model, "in_scale", torch.ones(n_in)).detach().double()

    def sample(n, gen):
        return off + 2 * scale * torch.randn(n, window, n_in, generator=gen, dtype=torch.float64)

    return sample


def check_model(model, *, window: int | None = None, n: int = 512, seed: int = 0) -> dict:
    """Everything `icctrl check` reports, as a JSON-able dict with the keys `convex` and `lipschitz_bound`."""
    recurrent = bool(getattr(model, "recurrent", False))
    window = int(window or getattr(model, "window", None) or (4 if recurrent else 1))
    m = model.double().eval()
    cert = certify(m, window=window)
    sampler = _sampler(m, window)
    cvx = getattr(m, "convex_inputs", None) or range(m.n_in)
    mask = torch.zeros(window, m.n_in, dtype=torch.bool)
    mask[:, list(cvx)] = True
    report = {
        "model": getattr(m, "name", type(m).__name__),
        "window": window,
        "convex": bool(cert.convex),
        "nondecreasing": bool(cert.nondecreasing),
        "certificate": cert.to_dict(),
        "jensen": jensen_check(m, sampler, n, mask=mask, seed=seed).to_dict(),
        "monotonicity": monotonicity_check(m, sampler, max(n // 4, 16), mask=mask, seed=seed).to_dict(),
    }
    if recurrent:
        step = certify(m, per_step=True)
        report["certificate_per_step"] = step.to_dict()
        report["convex_per_step"] = bool(step.convex)
    act = facts(str((getattr(m, "config", {}) or {}).get("activation")), ())
    if act is not None and act.smooth:  # the op table says whether the Hessian is defined everywhere
        report["hessian"] = hessian_check(m, sampler, 16, mask=mask, seed=seed).to_dict()
    bound = lipschitz_bound(m, window)
    report["lipschitz_bound"] = bound if math.isfinite(bound) else float("inf")
    report["lipschitz_norms"] = (f"whole input window ({window} steps) to whole output window, 2-norms, in the "
                                 "model's (physical) units")
    try:
        report["lipschitz_estimate"] = lipschitz_estimate(m, sampler, min(n, 256), seed=seed, ascent_steps=10).worst
    except (IcctrlError, RuntimeError, ValueError) as exc:  # gradient ascent ran into non-finite Jacobians
        report["lipschitz_estimate"] = float("inf")
        report["lipschitz_estimate_note"] = f"the ascent diverged ({type(exc).__name__}): no finite constant found"
    if not math.isfinite(report["lipschitz_estimate"]):
        report["lipschitz_estimate"] = float("inf")
    return report


def format_report(r: dict) -> str:
    """Human-readable summary of `check_model`."""
    c = r["certificate"]
    lines = [f"{r['model']}: {'CONVEX' if r['convex'] else 'not certified convex'} ({c['curvature']}) {c['scope']}",
             f"  with respect to: {', '.join(c['wrt'])}; nondecreasing: {r['nondecreasing']}"]
    lines += [f"  reason: {x}" for x in c["reasons"][:6]]
    lines += [f"  note: {x}" for x in c.get("notes", [])]
    if "convex_per_step" in r:
        lines.append(f"  per step (output t in input t, past fixed): {'convex' if r['convex_per_step'] else 'not'}")
    for k in ("jensen", "monotonicity", "hessian"):
        if k in r:
            v = r[k]
            lines.append(f"  {k} check: {'pass' if v['passed'] else 'FAIL'} (worst {v['worst']:.3g}, n={v['n']})")
    lines.append(f"  Lipschitz: certified bound {r['lipschitz_bound']:.4g} ≥ empirical estimate "
                 f"{r['lipschitz_estimate']:.4g} ({r['lipschitz_norms']})")
    return "\n".join(lines)
