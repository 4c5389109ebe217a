"""How the derivatives of an RTI linearisation are evaluated: CasADi's MX virtual machine, its SX expansion,
or C code generated from the MX graph and compiled once with the system C compiler.

Compiled functions are cached under `cache_dir()` by the SHA-256 digest of the serialised CasADi function (the
model's weights and the problem's structure), so a model is compiled once, never inside a control step.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import casadi as ca
import numpy as np

from icctrl.errors import InvalidValueError, UnknownNameError
from icctrl.mpc._deadline import keep_keys

#: "tangent": numpy forward mode read from a learned model's graph; "differences": forward differences through the
#: same graph's batched values (faster for gated models, Jacobians to about 1e-7)
DERIVATIVES = ("mx", "sx", "codegen", "tangent", "differences")
CACHE_ENV = "ICCTRL_CACHE"
#: gcc flags of the compiled mode: -O2 compiles a 2×64 IC-LSTM linearisation in about 10 s here
CFLAGS = ("-O2", "-fPIC", "-shared")


def cache_dir() -> Path:
    """Where compiled derivatives live: $ICCTRL_CACHE/codegen, else ~/.cache/icctrl/codegen."""
    root = os.environ.get(CACHE_ENV)
    return (Path(root) if root else Path.home() / ".cache" / "icctrl") / "codegen"


def digest(f: ca.Function) -> str:
    """A short digest of a CasADi function's serialised graph (constants included)."""
    return hashlib.sha256(f.serialize().encode()).hexdigest()[:20]


def compiled(f: ca.Function, folder: Path | None = None) -> ca.Function:
    """`f` generated as C, compiled with gcc and loaded, reusing a cached shared library of the same digest."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise InvalidValueError("derivatives='codegen' needs a C compiler (gcc or cc) on the PATH; none found")
    folder = Path(folder) if folder is not None else cache_dir()
    name = f"{f.name()}_{digest(f)}"
    lib = folder / f"{name}.so"
    if not lib.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            ins = f.mx_in()  # renamed copy: the symbol name carries the digest
            g = ca.Function(name, ins, f.call(ins), f.name_in(), f.name_out())
            gen = ca.CodeGenerator(f"{name}.c", {"with_header": False})
            gen.add(g)
            gen.generate(f"{tmp}{os.sep}")
            out = Path(tmp) / f"{name}.so"
            proc = subprocess.run([cc, *CFLAGS, f"{name}.c", "-o", out.name], cwd=tmp, capture_output=True,
                                  text=True)
            if proc.returncode != 0:
                raise InvalidValueError(f"compiling {name}.c failed: {proc.stderr.strip()[:400]}")
            os.replace(out, lib)  # atomic: a concurrent process sees the old state or the whole library
    return ca.external(name, str(lib))


def evaluator(f: ca.Function, mode: str) -> ca.Function:
    """`f` as evaluated in the control loop: "mx" (as built), "sx" (expanded to scalar operations) or
    "codegen" (compiled C, cached by digest)."""
    if mode not in DERIVATIVES:
        raise UnknownNameError(f"unknown derivatives mode {mode!r}; choose one of {DERIVATIVES}")
    if mode == "sx":
        return f.expand()
    if mode == "codegen":
        return compiled(f)
    return f  # "mx"; "tangent" and "differences" apply to the period model only, the rest stays MX


class Buffered:
    """A casadi.Function called on numpy arrays through its buffer interface: no DM conversions, which cost
    more than a small QP itself. Inputs and outputs are the nonzeros in column-major order."""

    def __init__(self, f: ca.Function):
        self.f = f
        self.buf, self._eval = f.buffer()
        self.args = {n: np.zeros(f.nnz_in(n)) for n in f.name_in()}
        self.res = {n: np.zeros(f.nnz_out(n)) for n in f.name_out()}
        for i, n in enumerate(f.name_in()):
            self.buf.set_arg(i, memoryview(self.args[n]))
        for i, n in enumerate(f.name_out()):
            self.buf.set_res(i, memoryview(self.res[n]))

    def __call__(self, **args) -> dict[str, np.ndarray]:
        """Evaluate with the given inputs (others keep their last values); the outputs are overwritten by the
        next call."""
        for n, v in args.items():
            self.args[n][:] = np.ravel(v, order="F")
        self._eval()
        return self.res

    def stats(self) -> dict:
        return keep_keys(self.buf.stats())
