"""Variational estimators: ELBO and variational-Bayes importance sampling (VBIS).

q(z) = N(μ, diag σ²) on z = (log t, u) — a mean-field log-normal on branch lengths,
as in Fourment et al. (2020). It maximises the evidence lower bound

    ELBO(μ, σ) = E_q[log p(D, z)] + Σ_i log σ_i + (d/2)(1 + log 2π)

(z-space joint density, Jacobian included). The expectation is a sample average
over ``n_fit_draws`` fixed standard-normal draws ε (reparametrisation, z = μ + σε),
so the objective is deterministic and L-BFGS applies ("sample average
approximation"); it starts from the z-space MAP with σ from the Hessian diagonal.

* ``elbo``: the ELBO of the fitted q on ``n_samples`` fresh draws (a lower bound of
  log Z; error sd/√n).
* ``vb-is``: log mean p(D, z_i)/q(z_i) over ``n_samples`` = 10⁴ draws from q
  (Fourment et al. 2020 "VBIS"; error by the delta method).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import optimize

from ...threads import single_thread_blas
from ..base import Estimate, MarginalLikelihoodEstimator, check_device_setting, check_positive, log_mean_se, logmeanexp
from ..base_problem import BaseProblem
from .optimum import maximize_unconstrained

#: Bounds on log σ during the fit (σ in log-branch-length units).
LOG_SIGMA_BOUNDS = (-12.0, 3.0)


@dataclass(frozen=True)
class MeanFieldNormal:
    """N(mu, diag sd²) on z, shapes (dim,)."""

    mu: np.ndarray
    sd: np.ndarray

    def log_density(self, z: np.ndarray) -> np.ndarray:
        r = (np.atleast_2d(z) - self.mu) / self.sd
        return (-0.5 * r * r - np.log(self.sd) - 0.5 * math.log(2 * math.pi)).sum(axis=1)

    def sample(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        return self.mu + self.sd * rng.standard_normal((n, self.mu.size))


def fit_mean_field(problem: BaseProblem, *, rng: np.random.Generator, n_fit_draws: int = 20,
                   max_iterations: int = 300) -> tuple[MeanFieldNormal, dict]:
    """Maximise the sample-average ELBO over (μ, log σ) with L-BFGS-B."""
    zhat, _ = maximize_unconstrained(problem)
    d = problem.dim
    # σ start: curvature of each coordinate at the mode
    g0 = problem.log_posterior_gradient(zhat)[1]
    diag = np.empty(d)
    for i in range(d):
        zp = zhat.copy()
        zp[i] += 1e-4
        diag[i] = (problem.log_posterior_gradient(zp)[1][i] - g0[i]) / 1e-4
    sd0 = 1.0 / np.sqrt(np.maximum(-diag, 1e-2))
    eps = rng.standard_normal((n_fit_draws, d))

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        mu, logs = x[:d], x[d:]
        s = np.exp(logs)
        val, gmu, gls = 0.0, np.zeros(d), np.zeros(d)
        for e in eps:
            f, g = problem.log_posterior_gradient(mu + s * e)
            if not np.isfinite(f):
                return 1e300, np.zeros_like(x)
            val += f
            gmu += g
            gls += g * e * s
        k = eps.shape[0]
        val = val / k + logs.sum()
        return -val, -np.concatenate([gmu / k, gls / k + 1.0])

    x0 = np.concatenate([zhat, np.log(sd0)])
    bounds = [(None, None)] * d + [LOG_SIGMA_BOUNDS] * d
    with single_thread_blas():      # see phylo.threads.single_thread_blas
        res = optimize.minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                                options={"maxiter": max_iterations, "ftol": 1e-12, "gtol": 1e-6})
    q = MeanFieldNormal(res.x[:d].copy(), np.exp(res.x[d:]))
    return q, {"fit_iterations": int(res.nit), "fit_converged": bool(res.success),
               "fit_elbo": float(-res.fun + 0.5 * d * (1 + math.log(2 * math.pi))),
               "q_mean": q.mu.tolist(), "q_sd": q.sd.tolist()}


@dataclass
class _Variational(MarginalLikelihoodEstimator):
    setting_roles: ClassVar[dict[str, str]] = {"samples": "n_samples"}
    warmup_settings: ClassVar[dict[str, Any]] = {"n_samples": 4, "n_fit_draws": 2,
                                                 "max_iterations": 2}
    n_samples: int = 10_000
    n_fit_draws: int = 20
    max_iterations: int = 300
    device: str = "cpu"

    def validate(self, problem: BaseProblem) -> None:
        check_positive(self.name, n_samples=self.n_samples, n_fit_draws=self.n_fit_draws)
        check_device_setting(self.name, self.device)

    def _weights(self, problem: BaseProblem, rng: np.random.Generator, budget: int | None
                 ) -> tuple[np.ndarray, dict]:
        start = problem.n_likelihood_evaluations
        q, diag = fit_mean_field(problem, rng=rng, n_fit_draws=self.n_fit_draws,
                                 max_iterations=self.max_iterations)
        n = self.n_samples if budget is None else max(2, budget - (problem.n_likelihood_evaluations - start))
        z = q.sample(n, rng=rng)
        logw = problem.log_posterior_batch(z, device=self.device) - q.log_density(z)
        diag["n_draws"] = n
        return np.where(np.isnan(logw), -np.inf, logw), diag


@dataclass
class ELBO(_Variational):
    """The evidence lower bound of the fitted mean-field q (a bound, not an estimate)."""

    name: ClassVar[str] = "elbo"
    consistent: ClassVar[bool] = False

    def _estimate(self, problem, *, rng, budget, progress, **options) -> Estimate:
        logw, diag = self._weights(problem, rng, budget)
        finite = logw[np.isfinite(logw)]
        return Estimate(float(finite.mean()), float(finite.std(ddof=1) / math.sqrt(finite.size)), diag)


@dataclass
class VariationalBayesIS(_Variational):
    """Importance sampling with the fitted mean-field q (Fourment et al. 2020 "VBIS")."""

    name: ClassVar[str] = "vb-is"

    def _estimate(self, problem, *, rng, budget, progress, **options) -> Estimate:
        logw, diag = self._weights(problem, rng, budget)
        return Estimate(logmeanexp(logw), log_mean_se(logw), diag)
