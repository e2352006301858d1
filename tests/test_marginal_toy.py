"""Closed-form targets through the estimator interface (Poisson–Gamma conjugate toy),
priors, the β ladder and the ESS."""
from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import integrate

from phylo.marginal import (DirichletPrior, ExponentialPrior, GammaPrior, LogNormalPrior,
                            PoissonGammaProblem, UniformPrior, available_estimators, beta_ladder,
                            effective_sample_size, get_estimator)

#: Consistent estimators must land within this many reported standard errors.
N_SE = 4.0
#: Absolute slack (nats) added to N_SE·SE: the delta-method / batch-means errors
#: of importance-sampling and MCMC estimators understate heavy-tailed weights.
ABS_SLACK = 0.05
#: Deterministic approximations that are exact for a Gamma posterior (Gamma Laplus).
EXACT_TOL = 1e-6
#: Laplace-type approximations on this well-identified toy (3 parameters, ~100 counts).
APPROX_TOL = 0.25
#: Small settings so that the whole module runs in a few seconds.
FAST = {"stepping-stone": {"samples_per_step": 300}, "path-sampling": {"samples_per_step": 300},
        "modified-path-sampling": {"samples_per_step": 300},
        "generalized-stepping-stone": {"samples_per_step": 300},
        "nested-sampling": {"mcmc_length": 100}}
#: Estimators of log Z with a reported error that must cover the truth.
CONSISTENT = ["naive-monte-carlo", "path-sampling", "modified-path-sampling", "stepping-stone",
              "generalized-stepping-stone", "bridge-sampling", "gamma-laplus-is", "vb-is",
              "nested-sampling"]


@pytest.fixture(scope="module")
def toy() -> PoissonGammaProblem:
    return PoissonGammaProblem.simulate(3, 5, seed=11)


@pytest.mark.parametrize("name", CONSISTENT)
def test_consistent_estimators_cover_exact_log_z(toy, name):
    est = get_estimator(name, **FAST.get(name, {}))
    res = est.run(toy, seed=3)
    assert res.std_error is not None and res.std_error > 0
    assert abs(res.log_marginal_likelihood - toy.exact_log_z()) < N_SE * res.std_error + ABS_SLACK


def test_gamma_laplus_is_exact_for_gamma_posterior(toy):
    res = get_estimator("gamma-laplus").run(toy, seed=1)
    assert res.log_marginal_likelihood == pytest.approx(toy.exact_log_z(), abs=EXACT_TOL)


@pytest.mark.parametrize("name", ["laplace", "beta-prime-laplus"])
def test_approximations_close(toy, name):
    res = get_estimator(name).run(toy, seed=1)
    assert res.std_error is None
    assert abs(res.log_marginal_likelihood - toy.exact_log_z()) < APPROX_TOL


def test_bounds_and_biases(toy):
    exact = toy.exact_log_z()
    elbo = get_estimator("elbo").run(toy, seed=1)
    assert elbo.log_marginal_likelihood < exact + N_SE * elbo.std_error
    ml = get_estimator("maximum-likelihood").run(toy, seed=1).log_marginal_likelihood
    mp = get_estimator("maximum-posterior").run(toy, seed=1).log_marginal_likelihood
    assert ml > exact and mp > exact
    hm = get_estimator("harmonic-mean").run(toy, seed=1).log_marginal_likelihood
    assert hm > exact  # the harmonic mean's well-known upward bias


def test_every_estimator_runs_on_toy(toy):
    for name in available_estimators():
        started = time.perf_counter()
        res = get_estimator(name, **FAST.get(name, {})).run(toy, seed=2)
        wall = time.perf_counter() - started
        assert np.isfinite(res.log_marginal_likelihood)
        assert res.likelihood_evaluations > 0
        # the reported time is the run's own: positive, and within the call's wall time
        assert 0 < res.seconds <= wall


@pytest.mark.parametrize("prior", [ExponentialPrior(10.0, 1), GammaPrior(2.0, 3.0),
                                   LogNormalPrior(1.0, 1.25), UniformPrior()])
def test_unconstrained_densities_integrate_to_one(prior):
    val, _ = integrate.quad(lambda u: np.exp(prior.log_density_unconstrained(np.array([u]))),
                            -60, 60, limit=400, points=[-5, 0, 5])
    assert val == pytest.approx(1.0, abs=1e-6)


def test_dirichlet_alr_roundtrip_and_normalisation(rng):
    prior = DirichletPrior(size=3)
    x = rng.dirichlet(np.ones(3))
    assert np.allclose(prior.to_constrained(prior.to_unconstrained(x)), x)
    # 2-D integral of the u-density over a wide box is 1
    val, _ = integrate.dblquad(lambda a, b: np.exp(prior.log_density_unconstrained(np.array([a, b]))),
                               -30, 30, -30, 30, epsabs=1e-8)
    assert val == pytest.approx(1.0, abs=1e-4)


def test_beta_ladder_matches_mrbayes(shared_dir):
    """MrBayes 3.2.7a prints β_k of its ladder (alpha 0.4, 50 steps) to 4 decimals."""
    import json
    ref = json.loads((shared_dir / "reference/primates/mrbayes_ss/marginal.json").read_text())
    mb = np.array(ref["stepping_stone"]["beta_values"])
    ours = beta_ladder(50, 0.4)[::-1][1:]
    assert np.allclose(ours, mb, atol=6e-5)


def test_ess_of_ar1_close_to_theory():
    rng = np.random.default_rng(5)
    phi, n = 0.9, 200_000
    e = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = e[0]
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    theory = n * (1 - phi) / (1 + phi)
    assert effective_sample_size(x) == pytest.approx(theory, rel=0.1)
    assert effective_sample_size(rng.standard_normal(5000)) == pytest.approx(5000, rel=0.1)
