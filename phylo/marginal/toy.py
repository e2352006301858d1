"""Closed-form targets with the interface of a phylogenetic problem (for tests and docs).

:class:`PoissonGammaProblem`: ``n`` positive "branch lengths" θ_i with i.i.d.
Exponential(rate λ) priors and counts y_ij ~ Poisson(θ_i e_j), j = 1..m. The
posterior of θ_i is Gamma(1 + Y_i, λ + E) (Y_i = Σ_j y_ij, E = Σ_j e_j) and

    log Z = Σ_i [log λ + log Γ(1 + Y_i) − (1 + Y_i) log(λ + E)] + Σ_ij [y_ij log e_j − log y_ij!].

Each count is a "site" (pattern weight 1).
"""
from __future__ import annotations

import numpy as np
from scipy import special

from .._kernels.densities import exp_prior_z, toy_poisson_loglik
from ..errors import EstimatorError
from .base_problem import BaseProblem, NumbaTarget
from .priors import ExponentialPrior


class PoissonGammaProblem(BaseProblem):
    """Poisson counts with Exponential priors: a conjugate toy with known log Z."""

    def __init__(self, counts: np.ndarray, exposures: np.ndarray, *, rate: float = 10.0,
                 name: str = "poisson-gamma") -> None:
        super().__init__()
        counts = np.asarray(counts, dtype=np.float64)
        exposures = np.asarray(exposures, dtype=np.float64)
        if counts.ndim != 2 or counts.shape[1] != exposures.shape[0] or np.any(counts < 0):
            raise EstimatorError("counts must be (n, m) non-negative with m exposures")
        self.counts, self.exposures = counts, exposures
        self.n_branches = counts.shape[0]
        self.branch_prior = ExponentialPrior(rate, counts.shape[0])
        self.name = name
        self.pattern_weights = np.ones(counts.size)
        self._y = counts.sum(axis=1)
        self._e = float(exposures.sum())
        self._c = float((special.xlogy(counts, exposures[None, :]) - special.gammaln(counts + 1)).sum())

    @classmethod
    def simulate(cls, n: int, m: int, *, seed: int, rate: float = 10.0, exposure: float = 20.0
                 ) -> "PoissonGammaProblem":
        rng = np.random.default_rng(seed)
        theta = rng.exponential(1.0 / rate, size=n) + 0.05
        e = np.full(m, exposure)
        return cls(rng.poisson(theta[:, None] * e[None, :]), e, rate=rate)

    def exact_log_z(self) -> float:
        lam, a = self.branch_prior.rate, 1.0 + self._y
        return float(np.sum(np.log(lam) + special.gammaln(a) - a * np.log(lam + self._e)) + self._c)

    def posterior_shape_rate(self) -> tuple[np.ndarray, np.ndarray]:
        return 1.0 + self._y, np.full(self.n_branches, self.branch_prior.rate + self._e)

    def initial_point(self) -> np.ndarray:
        return np.log((self._y + 1.0) / (self._e + self.branch_prior.rate))

    def numba_target(self) -> NumbaTarget:
        return NumbaTarget(toy_poisson_loglik, (self._y, self._e, self._c),
                           exp_prior_z, (float(self.branch_prior.rate), int(self.n_branches)))

    def _log_likelihood(self, t, u) -> float:
        return float(np.sum(self._y * np.log(t) - self._e * t) + self._c)

    def _log_likelihood_batch(self, t, u) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return (self._y * np.log(t) - self._e * t).sum(axis=1) + self._c

    def _log_likelihood_gradient(self, t, u):
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._log_likelihood(t, u), self._y / t - self._e

    def _pattern_log_likelihoods(self, t, u) -> np.ndarray:
        lam = t[:, None] * self.exposures[None, :]
        return (special.xlogy(self.counts, lam) - lam - special.gammaln(self.counts + 1)).ravel()
