"""Estimators from one posterior MCMC run (or prior draws): HM, stabilised HM,
naive Monte Carlo, bridge sampling, CPO and PPD (Fourment et al. 2020, §"Methods").

Defaults follow the paper: one posterior chain of 1000 kept samples after a
burn-in of 100, and 10⁴ prior draws for naive Monte Carlo. Thinning defaults to 10
sweeps (10 × dim generations) between kept samples. With a ``budget``
(likelihood evaluations) the thinning is chosen to spend it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np
from scipy import optimize

from ...errors import EstimatorError
from ..base import Estimate, MarginalLikelihoodEstimator, check_device_setting, check_positive, log_mean_se, logmeanexp
from ..base_problem import BaseProblem
from ..mcmc import ChainResult, effective_sample_size, sample_posterior

#: Batches for the batch-means standard error of nonlinear posterior-sample estimators.
N_BATCHES = 10
#: Sweeps between kept posterior samples by default.
DEFAULT_SWEEPS_PER_SAMPLE = 10


@dataclass
class _PosteriorSampleEstimator(MarginalLikelihoodEstimator):
    setting_roles: ClassVar[dict[str, str]] = {"samples": "n_samples", "burnin": "burnin",
                                               "thin": "thin"}
    warmup_settings: ClassVar[dict[str, Any]] = {"n_samples": 2 * N_BATCHES, "burnin": 1,
                                                 "thin": 1}

    n_samples: int = 1000
    burnin: int = 100
    thin: int | None = None

    def validate(self, problem: BaseProblem) -> None:
        check_positive(self.name, n_samples=self.n_samples)
        if self.n_samples < 2 * N_BATCHES:
            raise EstimatorError(f"{self.name}: n_samples must be at least {2 * N_BATCHES}")
        if self.burnin < 0 or (self.thin is not None and self.thin < 1):
            raise EstimatorError(f"{self.name}: burnin must be ≥ 0 and thin ≥ 1")

    def _thin(self, problem: BaseProblem, budget: int | None) -> int:
        if budget is not None:
            return max(1, budget // (self.n_samples + self.burnin))
        return self.thin if self.thin is not None else DEFAULT_SWEEPS_PER_SAMPLE * problem.dim

    def _chain(self, problem: BaseProblem, rng: np.random.Generator, budget: int | None,
               store_z: bool = False) -> ChainResult:
        return sample_posterior(problem, n_samples=self.n_samples, thin=self._thin(problem, budget),
                                burnin=self.burnin, rng=rng, store_z=store_z)


def _chain_diagnostics(chain: ChainResult) -> dict:
    return {"loglik_trace": chain.loglik.tolist(), "ess": chain.ess,
            "acceptance": float(np.mean(chain.acceptance))}


def batch_means_se(statistic: Callable[[slice], float], n: int, n_batches: int = N_BATCHES) -> float:
    """Standard error of a statistic of a chain from ``n_batches`` contiguous batches."""
    size = n // n_batches
    vals = np.array([statistic(slice(b * size, (b + 1) * size)) for b in range(n_batches)])
    vals = vals[np.isfinite(vals)]
    if vals.size < 2:
        return math.inf
    return float(vals.std(ddof=1) / math.sqrt(vals.size))


@dataclass
class HarmonicMean(_PosteriorSampleEstimator):
    """Harmonic mean (Newton & Raftery 1994): 1/Ẑ = mean over posterior draws of 1/L.

    log Ẑ = −log mean exp(−ℓ_i). Consistent but of infinite variance in practice:
    biased upwards for any feasible sample (Fourment et al. 2020).
    Error: delta method with the ESS of the trace.
    """

    name: ClassVar[str] = "harmonic-mean"

    def _estimate(self, problem, *, rng, budget, progress, **options) -> Estimate:
        chain = self._chain(problem, rng, budget)
        ll = chain.loglik
        return Estimate(-logmeanexp(-ll), log_mean_se(-ll, chain.ess), _chain_diagnostics(chain))


def _shm_log_z(ll: np.ndarray, delta: float, n_prior_equivalent: float) -> float:
    """Solve Newton & Raftery's (1994) stabilised fixed point (their eq. 16, a δ-mixture
    of prior and posterior) for log Z given posterior log-likelihoods ``ll``.

    Z = [δn/(1−δ) + Σ L_i/(δZ + (1−δ)L_i)] / [δn/((1−δ)Z) + Σ 1/(δZ + (1−δ)L_i)]
    """
    n = ll.shape[0]
    a = delta * n / (1.0 - delta) if n_prior_equivalent is None else n_prior_equivalent
    shift = float(np.max(ll))
    lls = ll - shift

    def g(c: float) -> float:
        den = np.logaddexp(math.log(delta) + c, math.log1p(-delta) + lls)
        num = np.logaddexp(math.log(a), _lse(lls - den))
        dnm = np.logaddexp(math.log(a) - c, _lse(-den))
        return num - dnm - c

    lo, hi = float(-logmeanexp(-lls)) - 1.0, 1.0
    glo, ghi = g(lo), g(hi)
    if glo * ghi > 0:
        lo = float(np.min(lls)) - 50.0
        glo = g(lo)
    if glo * ghi > 0:
        return float(-logmeanexp(-lls)) + shift
    return optimize.brentq(g, lo, hi, xtol=1e-12) + shift


def _lse(x: np.ndarray) -> float:
    m = float(np.max(x))
    return m + math.log(np.sum(np.exp(x - m)))


@dataclass
class StabilizedHarmonicMean(_PosteriorSampleEstimator):
    """Stabilised harmonic mean (Newton & Raftery 1994, estimator 4): the posterior
    draws are treated as if a fraction ``delta`` came from the prior, with
    δn/(1−δ) imaginary prior draws at their expected likelihood Z; solved as a fixed
    point. No extra likelihood evaluations. Error: batch means.
    """

    name: ClassVar[str] = "stabilized-harmonic-mean"
    delta: float = 0.1

    def validate(self, problem: BaseProblem) -> None:
        super().validate(problem)
        if not 0.0 < self.delta < 1.0:
            raise EstimatorError(f"{self.name}: delta must be in (0, 1), got {self.delta}")

    def _estimate(self, problem, *, rng, budget, progress, **options) -> Estimate:
        chain = self._chain(problem, rng, budget)
        ll = chain.loglik
        est = _shm_log_z(ll, self.delta, None)
        se = batch_means_se(lambda s: _shm_log_z(ll[s], self.delta, None), ll.shape[0])
        return Estimate(est, se, _chain_diagnostics(chain))


@dataclass
class NaiveMonteCarlo(MarginalLikelihoodEstimator):
    """Naive Monte Carlo: Ẑ = mean of L over ``n_samples`` exact prior draws.

    Unbiased for Z, hopeless for peaked likelihoods (biased downwards in log).
    Error: delta method.
    """

    name: ClassVar[str] = "naive-monte-carlo"
    setting_roles: ClassVar[dict[str, str]] = {"samples": "n_samples"}
    warmup_settings: ClassVar[dict[str, Any]] = {"n_samples": 4}
    n_samples: int = 10_000
    device: str = "cpu"

    def validate(self, problem: BaseProblem) -> None:
        check_positive(self.name, n_samples=self.n_samples)
        check_device_setting(self.name, self.device)

    def _estimate(self, problem, *, rng, budget, progress, **options) -> Estimate:
        n = self.n_samples if budget is None else max(2, budget)
        z = problem.sample_prior(n, rng=rng)
        ll = problem.log_likelihood_batch(z, device=self.device)
        return Estimate(logmeanexp(ll), log_mean_se(ll), {"n_draws": n, "max_loglik": float(ll.max())})


@dataclass
class BridgeSampling(_PosteriorSampleEstimator):
    """Bridge sampling (Meng & Wong 1996, iterative optimal bridge; Gronau et al. 2017).

    The first half of the posterior draws fits a full-covariance normal q on the
    unconstrained z (log branch lengths); the second half (n₁ draws) and n₂ = n₁
    (or ``n_proposal``) draws from q enter the iteration

    r ← [1/n₂ Σ_j ℓ₂ⱼ/(s₁ℓ₂ⱼ + s₂r)] / [1/n₁ Σ_i 1/(s₁ℓ₁ᵢ + s₂r)],  ℓ = p(D,z)/q(z).

    Error: Frühwirth-Schnatter's (2004) relative-MSE approximation, with the ESS of
    the posterior half.
    """

    name: ClassVar[str] = "bridge-sampling"
    n_proposal: int | None = None
    max_iterations: int = 1000
    device: str = "cpu"

    def validate(self, problem: BaseProblem) -> None:
        super().validate(problem)
        check_device_setting(self.name, self.device)

    def _estimate(self, problem, *, rng, budget, progress, **options) -> Estimate:
        chain = self._chain(problem, rng, budget, store_z=True)
        z = chain.z
        half = z.shape[0] // 2
        fit, post = z[:half], z[half:]
        mean = fit.mean(axis=0)
        cov = np.atleast_2d(np.cov(fit, rowvar=False)) + 1e-10 * np.eye(problem.dim)
        chol = np.linalg.cholesky(cov)
        logdet = 2.0 * np.log(np.diag(chol)).sum()

        def log_q(x: np.ndarray) -> np.ndarray:
            r = np.linalg.solve(chol, (x - mean).T)
            return -0.5 * (r * r).sum(axis=0) - 0.5 * logdet - 0.5 * problem.dim * math.log(2 * math.pi)

        n1 = post.shape[0]
        n2 = self.n_proposal or n1
        prop = mean + rng.standard_normal((n2, problem.dim)) @ chol.T
        l1 = chain.loglik[half:] + chain.logprior[half:] - log_q(post)
        l2 = (problem.log_likelihood_batch(prop, device=self.device)
              + problem.log_prior_batch(prop) - log_q(prop))
        l2 = np.where(np.isfinite(l2), l2, -np.inf)
        shift = float(np.median(l1))
        l1, l2 = l1 - shift, l2 - shift
        s1, s2 = n1 / (n1 + n2), n2 / (n1 + n2)
        logr = float(-logmeanexp(-l1))  # harmonic-mean start
        it = 0
        for it in range(1, self.max_iterations + 1):
            num = logmeanexp(l2 - np.logaddexp(math.log(s1) + l2, math.log(s2) + logr))
            den = logmeanexp(-np.logaddexp(math.log(s1) + l1, math.log(s2) + logr))
            new = float(num - den)
            if abs(new - logr) < 1e-10:
                logr = new
                break
            logr = new
        f1 = np.exp(l2 - np.logaddexp(math.log(s1) + l2, math.log(s2) + logr))
        f2 = np.exp(-np.logaddexp(math.log(s1) + l1, math.log(s2) + logr))
        ess2 = effective_sample_size(f2)
        re2 = f1.var() / (n2 * f1.mean() ** 2) + f2.var() / (max(ess2, 1.0) * f2.mean() ** 2)
        diag = _chain_diagnostics(chain)
        diag.update({"iterations": it, "n_posterior": n1, "n_proposal": n2})
        return Estimate(logr + shift, math.sqrt(re2), diag)


def _pattern_matrix(problem: BaseProblem, z: np.ndarray) -> np.ndarray:
    return np.stack([problem.pattern_log_likelihoods(row) for row in z])


@dataclass
class CPO(_PosteriorSampleEstimator):
    """Conditional predictive ordinates (Fourment et al. 2020; Geisser & Eddy 1979):
    Σ_sites log CPO_s, CPO_s = 1 / mean over posterior draws of 1/p(D_s|θ).

    A leave-one-out predictive score, not log Z; evaluated per site pattern and
    weighted by the pattern counts. Error: batch means.
    """

    name: ClassVar[str] = "cpo"
    consistent: ClassVar[bool] = False

    def _estimate(self, problem, *, rng, budget, progress, **options) -> Estimate:
        chain = self._chain(problem, rng, budget, store_z=True)
        pll = _pattern_matrix(problem, chain.z)
        w = problem.pattern_weights

        def stat(s: slice) -> float:
            return float(w @ -logmeanexp(-pll[s], axis=0))
        return Estimate(stat(slice(None)), batch_means_se(stat, pll.shape[0]), _chain_diagnostics(chain))


@dataclass
class PPD(_PosteriorSampleEstimator):
    """Log pointwise posterior predictive density (LPPD; Fourment et al. 2020):
    Σ_sites log mean over posterior draws of p(D_s|θ). Not log Z (uses the data
    twice, biased upwards). Error: batch means."""

    name: ClassVar[str] = "ppd"
    consistent: ClassVar[bool] = False

    def _estimate(self, problem, *, rng, budget, progress, **options) -> Estimate:
        chain = self._chain(problem, rng, budget, store_z=True)
        pll = _pattern_matrix(problem, chain.z)
        w = problem.pattern_weights

        def stat(s: slice) -> float:
            return float(w @ logmeanexp(pll[s], axis=0))
        return Estimate(stat(slice(None)), batch_means_se(stat, pll.shape[0]), _chain_diagnostics(chain))
