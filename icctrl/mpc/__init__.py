"""Real-time MPC: problems assembled once, certified by the convexity core, solved every step with warm
starts and a safe fallback."""

from icctrl.mpc._closed_loop import Episode, plot_episodes, run_episode, stage_cost
from icctrl.mpc._controller import SUCCESS, Controller
from icctrl.mpc._defaults import cstr_problem, default_controller
from icctrl.mpc._predictors import FirstPrinciples, HorizonModel, OneStepModel, Predictor, rollout
from icctrl.mpc._problem import Lyapunov, MPCProblem
from icctrl.mpc._solvers import SOLVERS

__all__ = ["Episode", "plot_episodes", "run_episode", "stage_cost", "SUCCESS", "Controller", "cstr_problem",
           "default_controller", "FirstPrinciples",
           "HorizonModel", "OneStepModel", "Predictor", "rollout", "Lyapunov", "MPCProblem", "SOLVERS"]
