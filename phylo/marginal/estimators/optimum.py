"""Maximum posterior and maximum likelihood "estimators", and the optimisers they share.

Fourment et al. (2020) include the two optima as naive baselines: log p(D, θ_MAP)
and log p(D | θ_ML), where θ are the branch lengths in their natural
parametrisation (t ≥ 0, expected substitutions per site). Neither is a consistent
estimator of log Z: the first ignores the posterior's volume, the second also the
prior. The MAP optimiser here is shared by the Laplus approximations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import optimize

from ...threads import single_thread_blas
from ..base import Estimate, MarginalLikelihoodEstimator
from ..base_problem import BaseProblem

#: Lower bound of branch lengths during optimisation (substitutions per site): keeps
#: the objective finite (a zero branch between differing tips has likelihood 0);
#: branches that end here are "at zero" for the Laplus fallbacks.
MIN_BRANCH = 1e-10
#: Bounds of log branch lengths in the z-space optimiser.
LOG_BRANCH_BOUNDS = (math.log(MIN_BRANCH), math.log(100.0))
#: Convergence tolerance of L-BFGS-B on the projected gradient (log-density units
#: per substitution per site).
GRADIENT_TOLERANCE = 1e-7


@dataclass(frozen=True)
class Optimum:
    """A maximum in natural coordinates: branch lengths ``t`` (n_branches,) ≥ 0,
    unconstrained model parameters ``u`` (n_model,), the objective value and the
    optimiser's iterations."""

    t: np.ndarray
    u: np.ndarray
    value: float
    iterations: int
    converged: bool


def maximize_natural(problem: BaseProblem, *, include_prior: bool = True,
                     max_iterations: int = 2000, start: np.ndarray | None = None) -> Optimum:
    """Maximise log p(D|t,u) [+ log p(t) + log p(u)] over t ≥ 0 and u (L-BFGS-B).

    Returns the optimum; branch lengths may sit exactly at 0 (the bound).
    """
    nb = problem.n_branches
    x0 = np.concatenate([np.exp(problem.initial_point()[:nb]), problem.initial_point()[nb:]]) \
        if start is None else np.asarray(start, dtype=np.float64)
    x0[:nb] = np.maximum(x0[:nb], MIN_BRANCH)

    def f(x: np.ndarray) -> tuple[float, np.ndarray]:
        t, u = np.maximum(x[:nb], MIN_BRANCH), x[nb:]
        if include_prior:
            val, gt, gu = problem.log_joint_natural_gradient(t, u)
        else:
            val, gt, gu = problem._gradient_natural(t, u)
        if not np.isfinite(val):
            return 1e300, np.zeros_like(x)
        return -val, -np.concatenate([gt, gu])

    bounds = [(MIN_BRANCH, None)] * nb + [(None, None)] * problem.n_model
    with single_thread_blas():      # see phylo.threads.single_thread_blas
        res = optimize.minimize(f, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                                options={"maxiter": max_iterations, "gtol": GRADIENT_TOLERANCE,
                                         "ftol": 1e-13, "maxfun": 2 * max_iterations})
    x = res.x
    return Optimum(np.maximum(x[:nb], MIN_BRANCH), x[nb:], float(-res.fun), int(res.nit), bool(res.success))


def maximize_unconstrained(problem: BaseProblem, *, max_iterations: int = 2000) -> tuple[np.ndarray, float]:
    """Maximise the z-space posterior log p(D|z) + log p(z) (BFGS); returns (z*, value)."""
    def f(z: np.ndarray) -> tuple[float, np.ndarray]:
        val, g = problem.log_posterior_gradient(z)
        if not np.isfinite(val):
            return 1e300, np.zeros_like(z)
        return -val, -g

    bounds = [LOG_BRANCH_BOUNDS] * problem.n_branches + [(None, None)] * problem.n_model
    z0 = np.clip(problem.initial_point(), *([LOG_BRANCH_BOUNDS[0], LOG_BRANCH_BOUNDS[1]]))
    z0[problem.n_branches:] = problem.initial_point()[problem.n_branches:]
    with single_thread_blas():
        res = optimize.minimize(f, z0, jac=True, method="L-BFGS-B", bounds=bounds,
                                options={"maxiter": max_iterations, "gtol": GRADIENT_TOLERANCE,
                                         "ftol": 1e-14, "maxfun": 2 * max_iterations})
    return res.x, float(-res.fun)


@dataclass
class MaximumPosterior(MarginalLikelihoodEstimator):
    """log p(D, θ_MAP) = log p(D|θ*) + log p(θ*) at the joint posterior mode in
    natural branch lengths (Fourment et al. 2020, "MAP"). Deterministic; no error."""

    name: ClassVar[str] = "maximum-posterior"
    consistent: ClassVar[bool] = False
    max_iterations: int = 2000

    def _estimate(self, problem, *, rng, budget, progress, **options) -> Estimate:
        opt = maximize_natural(problem, include_prior=True,
                               max_iterations=self.max_iterations if budget is None else min(self.max_iterations, budget))
        return Estimate(opt.value, None, {"map_branch_lengths": opt.t.tolist(),
                                          "iterations": opt.iterations, "converged": opt.converged})


@dataclass
class MaximumLikelihood(MarginalLikelihoodEstimator):
    """log p(D | θ_ML), the maximised log-likelihood (Fourment et al. 2020, "ML")."""

    name: ClassVar[str] = "maximum-likelihood"
    consistent: ClassVar[bool] = False
    max_iterations: int = 2000

    def _estimate(self, problem, *, rng, budget, progress, **options) -> Estimate:
        opt = maximize_natural(problem, include_prior=False,
                               max_iterations=self.max_iterations if budget is None else min(self.max_iterations, budget))
        return Estimate(opt.value, None, {"ml_branch_lengths": opt.t.tolist(),
                                          "iterations": opt.iterations, "converged": opt.converged})
