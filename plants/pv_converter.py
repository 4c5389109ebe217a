"""Solar-PV array feeding a battery bus through an averaged DC-DC (buck) converter with duty cycle u."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from icctrl.errors import InvalidValueError, UnknownNameError
from plants._weather import Site, weather_frame
from plants.base import Plant

__all__ = ["PVConverter", "MPP"]

DEFAULT_MODULE = "Canadian_Solar_Inc__CS6K_300M"  # 300 W, 60-cell mono-Si, from pvlib's CEC table
K_BOLTZMANN_EV = 8.617333262e-5  # eV/K, as in pvlib.pvsystem.calcparams_desoto
T_REF_K = 298.15
EG_REF, DEG_DT = 1.121, -0.0002677  # silicon band gap and its temperature coefficient (pvlib defaults)


class MPP(NamedTuple):
    """Maximum power point of the array and the duty cycle that holds it (v_b = u·v_mp)."""

    v_mp: Any
    i_mp: Any
    p_mp: Any
    duty: Any


@lru_cache(maxsize=8)
def _module_params(module: str) -> dict[str, float]:
    """CEC single-diode reference parameters of a module shipped with pvlib (read offline)."""
    from pvlib.pvsystem import retrieve_sam

    table = retrieve_sam("CECMod")
    if module not in table.columns:
        raise UnknownNameError(f"module {module!r} is not in pvlib's CEC module table")
    col = table[module]
    keys = ("alpha_sc", "a_ref", "I_L_ref", "I_o_ref", "R_sh_ref", "R_s", "V_oc_ref", "I_sc_ref", "STC")
    return {k: float(col[k]) for k in keys}


class PVConverter(Plant):
    """PV array → averaged buck converter → battery bus, time in seconds.

    dv_pv/dt = (i_pv − u i_s)/C,   di_s/dt = (u v_pv − v_b)/L,   dv_c/dt = (i_s − i_L)/C_b

    x = (v_pv [V] array voltage, i_s [A] inductor current, v_c [V] bus-buffer voltage), u = duty cycle in
    [0.05, 0.95], d = (irradiance [W/m2] in the array plane, cell temperature [°C]).

    i_pv is pvlib's single-diode model: De Soto parameters (`pvsystem.calcparams_desoto`) of the CEC module
    `module` (default Canadian Solar CS6K-300M: 300 W, V_oc 39.1 V, I_sc 9.78 A), scaled to
    n_series × n_parallel modules (default 4 × 2 = 2.4 kW, V_mp ≈ 130 V), evaluated with
    `pvsystem.i_from_v` (Lambert W). The CasADi twin solves the same single-diode equation implicitly by
    `newton_iterations` unrolled Newton steps on the diode voltage, started above the root so the iterates
    fall monotonically onto it (the equation is concave and decreasing there); it matches pvlib to 1e-6 A.

    Default components (a 2.4 kW, 20 kHz buck charger): C = 1 mF input capacitor, L = 1 mH inductor,
    v_b = 48 V battery, C_b = 165 F bus buffer (a 48 V ultracapacitor module) taking the mismatch between
    converter output i_s and load i_L; v_c does not feed back (the battery clamps the converter output at
    v_b) and measures the energy the buffer absorbs. i_L defaults to the converter output at the nominal
    maximum power point (d_nom = 1000 W/m2, 25 °C), so (x_ss, u_ss) is an equilibrium. The LC pair rings at
    u/(2π√(LC)) ≈ 60 Hz and is damped only by the array's own conductance (the averaged model is lossless),
    so dt = 1 ms (20 switching periods per sample, ~17 samples per oscillation). `step` uses scipy LSODA with
    rtol = 1e-8, atol = 1e-8; `casadi_step` RK4 with 10 substeps.
    """

    name = "pv_converter"
    state_names = ("v_pv", "i_s", "v_c")
    state_units = ("V", "A", "V")
    input_names = ("duty",)
    input_units = ("-",)
    disturbance_names = ("irradiance", "temp_cell")
    disturbance_units = ("W/m2", "degC")
    time_unit = "s"
    dt = 1e-3
    ivp_method = "LSODA"
    rtol = 1e-8
    atol = 1e-8
    rk4_substeps = 10
    newton_iterations = 8

    def __init__(
        self,
        module: str = DEFAULT_MODULE,
        n_series: int = 4,
        n_parallel: int = 2,
        C: float = 1e-3,
        L: float = 1e-3,
        C_b: float = 165.0,
        v_b: float = 48.0,
        i_L: float | None = None,
        d_nom: tuple[float, float] = (1000.0, 25.0),
    ) -> None:
        for label, val in (("n_series", n_series), ("n_parallel", n_parallel)):
            if int(val) != val or val < 1:
                raise InvalidValueError(f"{label} must be a positive integer, got {val!r}")
        for label, val in (("C", C), ("L", L), ("C_b", C_b), ("v_b", v_b)):
            if not np.isfinite(val) or val <= 0:
                raise InvalidValueError(f"{label} must be positive, got {val!r}")
        self.module = module
        self.mod = _module_params(module)
        self.n_series, self.n_parallel = int(n_series), int(n_parallel)
        self.C, self.L, self.C_b, self.v_b = float(C), float(L), float(C_b), float(v_b)
        self.d_lb = np.array([0.0, -40.0])
        self.d_ub = np.array([1500.0, 90.0])
        self.d_nom = self.check_disturbance(np.asarray(d_nom, dtype=float))
        self.u_lb, self.u_ub = np.array([0.05]), np.array([0.95])
        v_oc = self.mod["V_oc_ref"] * self.n_series
        self.x_lb = np.array([0.0, -500.0, 0.0])
        self.x_ub = np.array([1.3 * v_oc, 500.0, 100.0])
        nominal = self.mpp(*self.d_nom)
        if not self.u_lb[0] <= nominal.duty <= self.u_ub[0]:
            raise InvalidValueError(
                f"v_b = {v_b} V needs duty {float(nominal.duty):.3f} at the nominal MPP, outside [0.05, 0.95]"
            )
        i_s_ss = float(nominal.p_mp) / self.v_b
        self.i_L = i_s_ss if i_L is None else float(i_L)
        self.u_ss = np.array([float(nominal.duty)])
        self.x_ss = np.array([float(nominal.v_mp), i_s_ss, self.v_b])
        self._param_cache: tuple[tuple[float, float], tuple] | None = None

    # ------------------------------------------------------------------ the array
    def diode_params(self, irradiance: Any, temp_cell: Any) -> tuple:
        """Module De Soto parameters (I_L, I_0, R_s, R_sh, nNsVth) from pvlib at these conditions."""
        from pvlib.pvsystem import calcparams_desoto

        m = self.mod
        g = np.asarray(irradiance, dtype=float)
        return calcparams_desoto(
            g, np.asarray(temp_cell, dtype=float), m["alpha_sc"], m["a_ref"], m["I_L_ref"], m["I_o_ref"],
            m["R_sh_ref"], m["R_s"], EgRef=EG_REF, dEgdT=DEG_DT,
        )  # fmt: skip

    def _params_for(self, d: np.ndarray) -> tuple:
        key = (float(d[0]), float(d[1]))
        if self._param_cache is None or self._param_cache[0] != key:
            self._param_cache = (key, tuple(float(p) for p in self.diode_params(*key)))
        return self._param_cache[1]

    def i_pv(self, v_pv: Any, irradiance: Any, temp_cell: Any) -> np.ndarray:
        """Array current [A] at array voltage v_pv [V] (pvlib single-diode, Lambert W), broadcasting."""
        from pvlib.pvsystem import i_from_v

        params = self.diode_params(irradiance, temp_cell)
        v_mod = np.asarray(v_pv, dtype=float) / self.n_series
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            return self.n_parallel * np.asarray(i_from_v(v_mod, *params), dtype=float)

    def mpp(self, irradiance: Any, temp_cell: Any) -> MPP:
        """Array maximum power point from pvlib (`pvsystem.max_power_point`) and the duty v_b/v_mp."""
        from pvlib.pvsystem import max_power_point

        res = max_power_point(*self.diode_params(irradiance, temp_cell), method="newton")
        v_mp = np.asarray(res["v_mp"], dtype=float) * self.n_series
        i_mp = np.asarray(res["i_mp"], dtype=float) * self.n_parallel
        with np.errstate(divide="ignore"):
            duty = np.where(v_mp > 0, self.v_b / np.where(v_mp > 0, v_mp, 1.0), np.inf)
        return MPP(v_mp, i_mp, v_mp * i_mp, duty)

    def pv_power(self, x: Any, d: Any = None) -> np.ndarray:
        """Power the array delivers, v_pv·i_pv [W], for states x (..., 3)."""
        d = self.d_nom if d is None else np.asarray(d, dtype=float)
        v = np.asarray(x, dtype=float)[..., 0]
        return v * self.i_pv(v, d[..., 0], d[..., 1])

    def power_to_load(self, x: Any) -> np.ndarray:
        """Power the converter delivers to the battery bus, v_b·i_s [W], for states x (..., 3)."""
        return self.v_b * np.asarray(x, dtype=float)[..., 1]

    # ------------------------------------------------------------------ dynamics
    def _rhs(self, x: np.ndarray, u: np.ndarray, d: np.ndarray) -> np.ndarray:
        from pvlib.pvsystem import i_from_v

        v_pv, i_s = x[0], x[1]
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            i_pv = self.n_parallel * float(i_from_v(v_pv / self.n_series, *self._params_for(d)))
        return np.array(
            [(i_pv - u[0] * i_s) / self.C, (u[0] * v_pv - self.v_b) / self.L, (i_s - self.i_L) / self.C_b]
        )

    def _casadi_diode_params(self, g: Any, temp_cell: Any) -> tuple:
        """calcparams_desoto written in CasADi; returns (I_L, I_0, R_s, G_sh = 1/R_sh, nNsVth)."""
        import casadi as ca

        m = self.mod
        tk = temp_cell + 273.15
        eg = EG_REF * (1 + DEG_DT * (tk - T_REF_K))
        i_l = g / 1000.0 * (m["I_L_ref"] + m["alpha_sc"] * (tk - T_REF_K))
        i_0 = (
            m["I_o_ref"]
            * (tk / T_REF_K) ** 3
            * ca.exp(EG_REF / (K_BOLTZMANN_EV * T_REF_K) - eg / (K_BOLTZMANN_EV * tk))
        )
        g_sh = g / (1000.0 * m["R_sh_ref"])
        return i_l, i_0, m["R_s"], g_sh, m["a_ref"] * tk / T_REF_K

    def casadi_i_pv(self, v_pv: Any, g: Any, temp_cell: Any) -> Any:
        """Array current as a CasADi expression: unrolled Newton on the single-diode equation."""
        import casadi as ca

        i_l, i_0, r_s, g_sh, a = self._casadi_diode_params(g, temp_cell)
        v = v_pv / self.n_series
        # both starts give h(vd) <= 0 (for v >= 0), so Newton decreases monotonically onto the root
        vd = ca.fmin(v + r_s * (i_l + i_0), a * ca.log1p((i_l + v / r_s) / i_0))
        for _ in range(self.newton_iterations):
            e = i_0 * ca.exp(vd / a)
            h = i_l - (e - i_0) - vd * g_sh - (vd - v) / r_s
            dh = -e / a - g_sh - 1.0 / r_s
            vd = vd - h / dh
        return self.n_parallel * (vd - v) / r_s

    def _casadi_rhs_expr(self, x: Any, u: Any, d: Any) -> Any:
        import casadi as ca

        i_pv = self.casadi_i_pv(x[0], d[0], d[1])
        return ca.vertcat(
            (i_pv - u[0] * x[1]) / self.C, (u[0] * x[0] - self.v_b) / self.L, (x[1] - self.i_L) / self.C_b
        )

    # ------------------------------------------------------------------ disturbances
    def disturbance(self, t: float, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """d_nom plus sensor-level fluctuation (std 20 W/m2 and 0.5 °C), clipped to the valid range.

        Use `weather` for daily irradiance and temperature profiles.
        """
        rng = np.random.default_rng(rng)
        d = self.d_nom + rng.standard_normal(2) * np.array([20.0, 0.5])
        return np.clip(d, self.d_lb, self.d_ub)

    def weather(
        self,
        start: Any = "2024-06-21",
        periods: int = 24 * 60,
        freq: str = "1min",
        site: str | Site = "golden",
        seed: int | np.random.Generator | None = 0,
        **kwargs: Any,
    ) -> Any:
        """Seedable irradiance and cell temperature (pvlib clear sky + Markov clouds) at a named site.

        Returns a pandas DataFrame with columns `irradiance` (plane of array, W/m2) and `temp_cell` (°C),
        the disturbance d of this plant, plus the underlying ghi/dni/dhi, clear_sky_index and temp_air.
        """
        frame = weather_frame(start, periods, freq, site, seed, **kwargs)
        frame.insert(0, "irradiance", np.clip(frame["poa_global"].to_numpy(), self.d_lb[0], self.d_ub[0]))
        frame.insert(1, "temp_cell", frame.pop("temp_cell"))
        return frame
