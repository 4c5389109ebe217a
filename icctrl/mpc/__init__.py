"""Real-time MPC: problems assembled once, certified by the convexity core, solved every step with warm
starts and a safe fallback."""

from icctrl.mpc._closed_loop import Episode, plot_episodes, run_episode, stage_cost
from icctrl.mpc._controller import EXTRAPOLATION_POLICIES, SUCCESS, Controller, ExtrapolationWarning
from icctrl.mpc._defaults import cstr_problem, default_controller
from icctrl.mpc._factory import controller
from icctrl.mpc._predictors import FirstPrinciples, HorizonModel, OneStepModel, Predictor, rollout
from icctrl.mpc._problem import Ellipsoid, Lyapunov, MPCProblem, PathConstraint
from icctrl.mpc._rti import RTI_METHODS, RTISolver
from icctrl.mpc._solvers import SOLVERS

__all__ = ["Episode", "plot_episodes", "run_episode", "stage_cost", "EXTRAPOLATION_POLICIES", "SUCCESS",
           "Controller", "ExtrapolationWarning", "cstr_problem", "default_controller", "controller",
           "FirstPrinciples", "HorizonModel", "OneStepModel", "Predictor", "rollout", "Ellipsoid", "Lyapunov",
           "MPCProblem", "PathConstraint", "SOLVERS", "RTI_METHODS", "RTISolver"]
