"""A 3-taxon JC69 problem (3 branches, 100 simulated sites) whose log Z is known from
deterministic quadrature (tests/naive_marginal.py): every estimator against it. And a
3-taxon K80 problem with κ free under its LogNormal prior (the free-model-parameter
path of the sampler), against a 4-dimensional quadrature over κ and the branches."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest

from phylo.io.newick import parse_newick
from phylo.likelihood import simulate_alignment
from phylo.marginal import Problem, available_estimators, get_estimator
from phylo.marginal.estimators.laplace import GammaLaplusIS, fit_laplus
from phylo.marginal.psis import KHAT_UNRELIABLE

from naive_marginal import (jc3_log_z_quadrature, jc3_pattern_log_likelihoods,
                            k80_3_log_likelihood, k80_3_log_z_quadrature)

#: Consistent estimators: within N_SE reported standard errors plus ABS_SLACK nats
#: (the delta-method/batch-means errors of IS and MCMC understate heavy tails a little).
N_SE = 4.0
ABS_SLACK = 0.05
#: Quadrature accuracy (nats): doubling the nodes changes log Z by < 1e-10.
QUADRATURE_TOL = 1e-6
#: Deterministic approximations (Laplace family), stated tolerance on this problem:
#: the posterior of 100 sites is close to log-normal/Gamma; 0.25 nats is what the
#: paper calls a good fast estimate.
APPROX_TOL = 0.25
#: The ELBO is a lower bound: it may not exceed log Z by more than its Monte Carlo error.
CONSISTENT = ["naive-monte-carlo", "path-sampling", "modified-path-sampling", "stepping-stone",
              "generalized-stepping-stone", "bridge-sampling", "gamma-laplus-is", "vb-is",
              "nested-sampling"]
#: K80 quadrature: 24 centre + 2 × 8 tail nodes per axis against 16 + 2 × 6 changes
#: log Z by 4e-3 nats (32 + 2 × 12: 1e-4 more); the estimators' errors are ≥ 0.01.
K80_QUADRATURE_TOL = 0.01
#: Estimators checked on the K80 problem, with settings that keep each under ~10 s.
K80_ESTIMATORS = {
    "stepping-stone": dict(n_steps=20, samples_per_step=400),
    "generalized-stepping-stone": dict(n_steps=10, samples_per_step=400, pilot_samples=500),
    "bridge-sampling": dict(),
}
APPROXIMATE = ["laplace", "gamma-laplus", "beta-prime-laplus"]
NOT_LOG_Z = ["harmonic-mean", "stabilized-harmonic-mean", "cpo", "ppd", "maximum-posterior",
             "maximum-likelihood", "elbo"]


@pytest.fixture(scope="module")
def jc3():
    tree = parse_newick("(A:0.1,B:0.2,C:0.15);")
    aln = simulate_alignment(tree, "JC", 100, seed=3)
    problem = Problem(aln, tree, "JC", branch_prior_rate=10.0)
    exact = jc3_log_z_quadrature(aln.patterns, aln.weights, 10.0)
    return problem, exact


@pytest.fixture(scope="module")
def k80():
    tree = parse_newick("(A:0.1,B:0.2,C:0.15);")
    aln = simulate_alignment(tree, "K80{4}", 150, seed=3)
    problem = Problem(aln, tree, "K80", branch_prior_rate=10.0)
    prior = problem._blocks[0].prior                      # the κ prior the sampler uses
    exact = k80_3_log_z_quadrature(aln.patterns, aln.weights, rate=10.0,
                                   kappa_mu=prior.mu, kappa_sigma=prior.sigma)
    return problem, exact


def test_categories_cover_registry():
    assert sorted(CONSISTENT + APPROXIMATE + NOT_LOG_Z) == sorted(available_estimators())


def test_kernel_matches_naive_three_taxon_likelihood(jc3):
    problem, _ = jc3
    rng = np.random.default_rng(1)
    for _ in range(5):
        z = np.log(rng.uniform(0.01, 0.5, 3))
        naive = jc3_pattern_log_likelihoods(problem.alignment.patterns, np.exp(z)[None, :])
        assert problem.log_likelihood(z) == pytest.approx(float((naive @ problem.pattern_weights)[0]), abs=1e-9)


def test_quadrature_converged(jc3):
    problem, exact = jc3
    finer = jc3_log_z_quadrature(problem.alignment.patterns, problem.alignment.weights, 10.0,
                                 width=9.0, n_center=80, n_tail=28)
    assert finer == pytest.approx(exact, abs=QUADRATURE_TOL)


@pytest.mark.parametrize("name", CONSISTENT)
def test_consistent_within_reported_error(jc3, name):
    problem, exact = jc3
    res = get_estimator(name).run(problem, seed=7)
    assert abs(res.log_marginal_likelihood - exact) < N_SE * res.std_error + ABS_SLACK, \
        (res.log_marginal_likelihood, res.std_error, exact)


@pytest.mark.parametrize("name", APPROXIMATE)
def test_approximations_within_stated_tolerance(jc3, name):
    problem, exact = jc3
    res = get_estimator(name).run(problem, seed=7)
    assert abs(res.log_marginal_likelihood - exact) < APPROX_TOL


def test_known_biases(jc3):
    problem, exact = jc3
    r = {n: get_estimator(n).run(problem, seed=7) for n in NOT_LOG_Z}
    assert r["harmonic-mean"].log_marginal_likelihood > exact        # upward bias
    assert r["maximum-likelihood"].log_marginal_likelihood > exact
    assert r["ppd"].log_marginal_likelihood > exact                   # data used twice
    elbo = r["elbo"]
    assert elbo.log_marginal_likelihood < exact + N_SE * elbo.std_error


# -- K80 with κ integrated over its prior --------------------------------------------
def test_k80_kernel_matches_naive_likelihood(k80):
    problem, _ = k80
    assert problem.n_model == 1 and problem.parameter_names()[-1] == "u_kappa0"
    rng = np.random.default_rng(2)
    for _ in range(5):
        z = np.log(np.append(rng.uniform(0.01, 0.5, 3), rng.uniform(0.5, 20)))
        naive = k80_3_log_likelihood(problem.alignment.patterns, problem.alignment.weights,
                                     np.exp(z[:3]), float(np.exp(z[3])))
        assert problem.log_likelihood(z) == pytest.approx(naive, abs=1e-9)


def test_k80_quadrature_converged(k80):
    problem, exact = k80
    coarser = k80_3_log_z_quadrature(problem.alignment.patterns, problem.alignment.weights,
                                     n_center=16, n_tail=6)
    assert coarser == pytest.approx(exact, abs=K80_QUADRATURE_TOL)


@pytest.mark.parametrize("name", list(K80_ESTIMATORS))
def test_k80_free_kappa_within_reported_error(k80, name):
    """Stepping stone, generalised stepping stone and bridge sampling with κ sampled
    (branch and κ moves in one compiled loop) agree with the quadrature."""
    problem, exact = k80
    res = get_estimator(name, **K80_ESTIMATORS[name]).run(problem, seed=7)
    assert abs(res.log_marginal_likelihood - exact) < N_SE * res.std_error + ABS_SLACK, \
        (res.log_marginal_likelihood, res.std_error, exact)


# -- importance-weight tail diagnostics of Gamma-Laplus IS -------------------------------
#: A proposal with the Gamma Laplus product's modes but rates × NARROW (each Gamma
#: about 1/√NARROW as wide): the weights p/q grow without bound in the tails.
NARROW = 16.0


@dataclass
class _NarrowGammaLaplusIS(GammaLaplusIS):
    """Gamma-Laplus IS with a deliberately too narrow proposal (heavy-tailed weights)."""

    def _proposal(self, problem):
        q, f0, diag = fit_laplus(problem, "gamma")
        m = np.asarray(diag["map_branch_lengths"])
        fam = np.array(q.family)
        b = np.where((fam == "gamma") | (fam == "exponential"), q.b * NARROW, q.b)
        a = np.where(fam == "gamma", b * m + 1.0, q.a)
        return dataclasses.replace(q, a=a, b=b), f0, diag


def test_gamma_laplus_is_reports_tail_diagnostics(jc3):
    problem, _ = jc3
    d = get_estimator("gamma-laplus-is").run(problem, seed=7).diagnostics
    assert d["pareto_k"] < KHAT_UNRELIABLE
    assert 0.5 * d["n_draws"] < d["importance_ess"] <= d["n_draws"]
    assert d["warnings"] == []


def test_gamma_laplus_is_warns_on_heavy_tailed_weights(jc3):
    problem, _ = jc3
    d = _NarrowGammaLaplusIS().run(problem, seed=7).diagnostics
    assert d["pareto_k"] > KHAT_UNRELIABLE
    assert d["importance_ess"] < 0.2 * d["n_draws"]
    assert len(d["warnings"]) == 1 and "Pareto k-hat" in d["warnings"][0]



@pytest.mark.parametrize("loc, scale", [(-0.002, 0.0035), (0.01, 0.02), (-0.3, 0.02)])
def test_truncated_normal_proposal_density_and_draws(loc, scale):
    """The 'truncnormal' family of the product proposal (branches at the bound) against
    scipy.stats.truncnorm: log density, and draws (Kolmogorov-Smirnov), including a bound
    15 standard deviations above the centre."""
    from scipy import stats
    from phylo.marginal.estimators.laplace import ProductApproximation
    q = ProductApproximation(("truncnormal",), np.array([loc]), np.array([scale]),
                             np.zeros(0), np.zeros(0))
    ref = stats.truncnorm(-loc / scale, np.inf, loc=loc, scale=scale)
    x = ref.ppf(np.linspace(0.001, 0.999, 50))[:, None]
    assert np.allclose(q.log_density(x, np.zeros((50, 0))), ref.logpdf(x[:, 0]), rtol=1e-9, atol=1e-9)
    t, _ = q.sample(20_000, rng=np.random.default_rng(4))
    assert t.min() >= 0.0
    assert stats.kstest(t[:, 0], ref.cdf).pvalue > 1e-3


def test_boundary_normals_only_for_concave_bound_branches():
    from phylo.marginal.estimators.laplace import (BOUNDARY_NORMAL_MAX_ALPHA, ProductApproximation,
                                                   with_boundary_normals)
    q = ProductApproximation(("gamma", "exponential", "exponential", "exponential"),
                             np.array([3.0, 1.0, 1.0, 1.0]), np.array([30.0, 500.0, 900.0, 400.0]),
                             np.zeros(0), np.zeros(0))
    g = np.array([0.0, -500.0, -900.0, -400.0])
    h = np.array([-1e4, -8e4, 300.0, -(400.0 / (2 * BOUNDARY_NORMAL_MAX_ALPHA)) ** 2])
    out, n = with_boundary_normals(q, g, h)
    # gamma kept; concave bound branch replaced; convex one and a far-out one keep the exponential
    assert out.family == ("gamma", "truncnormal", "exponential", "exponential") and n == 1
    assert out.b[1] == pytest.approx(1 / np.sqrt(8e4)) and out.a[1] == pytest.approx(-500 / 8e4)


def test_defensive_mixture_density_and_draws():
    """MixtureApproximation (the proposal when branches sit at the bound): density is the
    equal mixture of its components', draws follow it (Kolmogorov-Smirnov)."""
    from scipy import stats
    from phylo.marginal.estimators.laplace import MixtureApproximation, ProductApproximation
    none = np.zeros(0)
    expo = ProductApproximation(("exponential",), np.array([1.0]), np.array([500.0]), none, none)
    tn = ProductApproximation(("truncnormal",), np.array([-0.002]), np.array([0.0035]), none, none)
    mix = MixtureApproximation((expo, tn))
    ref_e = stats.expon(scale=1 / 500.0)
    ref_t = stats.truncnorm(0.002 / 0.0035, np.inf, loc=-0.002, scale=0.0035)
    x = np.linspace(1e-5, 0.02, 40)[:, None]
    want = np.log(0.5 * ref_e.pdf(x[:, 0]) + 0.5 * ref_t.pdf(x[:, 0]))
    assert np.allclose(mix.log_density(x, np.zeros((40, 0))), want, rtol=1e-10)
    t, _ = mix.sample(20_000, rng=np.random.default_rng(5))
    assert stats.kstest(t[:, 0], lambda v: 0.5 * ref_e.cdf(v) + 0.5 * ref_t.cdf(v)).pvalue > 1e-3
