"""The reference path as a baseline: the trained torch model called as a black box inside Ipopt.

What the IC-LSTM/ICLRNN reference code does: the network stays in torch, the MPC rollout (one-period model,
prediction fed back) is one forward pass per call, first derivatives come from central finite differences (one
torch rollout per perturbed point, two per decision variable), and Ipopt runs with a limited-memory (L-BFGS)
Hessian. It is wired into CasADi as a `casadi.Callback`, so the NLP (cost, LMPC constraint, bounds) is the
very problem the exported controllers solve, only the predictions and their derivatives differ.
"""

from __future__ import annotations

import casadi as ca
import numpy as np
import torch

from icctrl.mpc import OneStepModel, Predictor

#: Ipopt options of the reference path (added to the controller's own tolerances and limits).
BLACKBOX_IPOPT = {"ipopt.hessian_approximation": "limited-memory"}
#: The offset-free disturbance estimate `default_controller` gives one-period state models, kept identical.
BLACKBOX_OFFSET_FREE = 1.0


class TorchRollout:
    """Numeric rollout of a one-period torch model: x_(k+1) = model([x_k, u_k] held over the window)[-1]."""

    def __init__(self, model: torch.nn.Module, nx: int, nu: int, window: int):
        self.model, self.nx, self.nu, self.window = model, nx, nu, int(window)
        self.calls = 0  # torch rollouts made (each is N forward passes of the model)

    @torch.no_grad()
    def __call__(self, x0: np.ndarray, U: np.ndarray) -> np.ndarray:
        self.calls += 1
        x = torch.as_tensor(np.asarray(x0, float).reshape(1, self.nx))
        Ut = torch.as_tensor(np.asarray(U, float))
        out = []
        for k in range(Ut.shape[0]):
            row = torch.cat([x, Ut[k : k + 1]], dim=1)
            x = self.model(row[:, None, :].expand(1, self.window, self.nx + self.nu).contiguous())[:, -1, :]
            out.append(x)
        return torch.cat(out, dim=0).numpy()


def _fd_steps(z: np.ndarray) -> np.ndarray:
    """Central-difference steps: cube root of machine epsilon, relative to the magnitude of each entry."""
    return np.cbrt(np.finfo(float).eps) * np.maximum(1.0, np.abs(z))


class _Jacobian(ca.Callback):
    """d(vec Y)/d(x0, vec U) by central finite differences on the torch rollout (output argument unused)."""

    def __init__(self, owner: _RolloutCallback, opts: dict):
        ca.Callback.__init__(self)
        self.owner = owner
        self.construct(f"{owner.name()}_fd_jac", opts)

    def get_n_in(self):
        return 3

    def get_n_out(self):
        return 2

    def get_sparsity_in(self, i):
        o = self.owner
        return [ca.Sparsity.dense(o.nx, 1), ca.Sparsity.dense(o.N, o.nu), ca.Sparsity.dense(o.N, o.nx)][i]

    def get_sparsity_out(self, i):
        o = self.owner
        return ca.Sparsity.dense(o.N * o.nx, [o.nx, o.N * o.nu][i])

    def eval(self, arg):
        o = self.owner
        x0, U = np.array(arg[0]).reshape(-1), np.array(arg[1]).reshape(o.N, o.nu)
        key = (x0.tobytes(), U.tobytes())
        if o.jac_cache is not None and o.jac_cache[0] == key:
            return list(o.jac_cache[1])
        z = np.concatenate([x0, U.T.reshape(-1)])  # CasADi's column-major vec(U)
        cols = []
        for i, h in enumerate(_fd_steps(z)):
            up, dn = z.copy(), z.copy()
            up[i] += h
            dn[i] -= h
            cols.append((o.vec(*o.split(up)) - o.vec(*o.split(dn))) / (2 * h))
        J = np.stack(cols, axis=1)
        out = [ca.DM(J[:, : o.nx]), ca.DM(J[:, o.nx :])]
        o.jac_cache = (key, out)
        return list(out)


class _RolloutCallback(ca.Callback):
    """(x0, U) → Y (N × nx) through torch; its Jacobian is the finite-difference `_Jacobian`."""

    def __init__(self, rollout: TorchRollout, horizon: int, name: str = "torch_rollout"):
        ca.Callback.__init__(self)
        self.rollout, self.N, self.nx, self.nu = rollout, int(horizon), rollout.nx, rollout.nu
        self.jac_cache = None
        self._jacobians: list[_Jacobian] = []  # CasADi does not own Python callbacks: keep every one alive
        self.construct(name, {"enable_fd": False})

    def get_n_in(self):
        return 2

    def get_n_out(self):
        return 1

    def get_sparsity_in(self, i):
        return ca.Sparsity.dense(self.nx, 1) if i == 0 else ca.Sparsity.dense(self.N, self.nu)

    def get_sparsity_out(self, i):
        return ca.Sparsity.dense(self.N, self.nx)

    def split(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return z[: self.nx], z[self.nx :].reshape(self.nu, self.N).T

    def vec(self, x0: np.ndarray, U: np.ndarray) -> np.ndarray:
        return self.rollout(x0, U).T.reshape(-1)  # column-major vec(Y)

    def eval(self, arg):
        return [ca.DM(self.rollout(np.array(arg[0]).reshape(-1), np.array(arg[1]).reshape(self.N, self.nu)))]

    def has_jacobian(self):
        return True

    def get_jacobian(self, name, inames, onames, opts):
        self._jacobians.append(_Jacobian(self, opts))
        return self._jacobians[-1]


class BlackBoxPredictor(Predictor):
    """The papers' one-step formulation with the model left in torch (no export): predictions and their
    finite-difference Jacobians come from torch forward passes. Its certificate is the exported model's."""

    def __init__(self, model, nx: int, nu: int, window: int):
        self.model, self.nx, self.nu, self.n_out, self.window = model, nx, nu, nx, int(window)
        self.rollout = TorchRollout(model, nx, nu, self.window)
        self._callbacks: list[_RolloutCallback] = []
        self._reference = OneStepModel(model, nx, nu, window=self.window)  # for the certificate only
        self.label = f"{getattr(model, 'name', 'model')} black box (torch + finite differences)"

    def predict(self, x0, U):
        cb = _RolloutCallback(self.rollout, U.shape[0], f"torch_rollout_{len(self._callbacks)}")
        self._callbacks.append(cb)
        return cb(x0, U)

    def step_function(self):
        """One period through torch (the controller's offset-free estimate evaluates it once per step)."""
        cb = _RolloutCallback(self.rollout, 1, f"torch_period_{len(self._callbacks)}")
        self._callbacks.append(cb)
        x, u = ca.MX.sym("x", self.nx), ca.MX.sym("u", self.nu)
        return ca.Function("period", [x, u], [cb(x, u.T).T])

    def trace(self, tr, x0, us):
        return self._reference.trace(tr, x0, us)
