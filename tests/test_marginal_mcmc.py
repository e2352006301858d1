"""The MCMC sampler of phylo.marginal.mcmc: likelihood evaluations counted exactly,
whatever the engine (compiled incremental tree loop, compiled generic loop, Python)."""
from __future__ import annotations

import numpy as np
import pytest

from phylo.io.newick import parse_newick
from phylo.likelihood import simulate_alignment
from phylo.marginal import PoissonGammaProblem, Problem, SteppingStone
from phylo.marginal.mcmc import Sampler, beta_ladder, run_ladder

#: A small ladder: K steps, S kept samples per step, thinning T, burn-in B (samples).
K, S, T, B = 4, 12, 3, 5


def ladder_evaluations(n_steps: int, samples: int, thin: int, burnin: int) -> int:
    """Likelihood evaluations of :func:`run_ladder` from β = 1 down to β = 0: one for
    the initial state, one per generation at every β > 0 (the first step burns in
    5 × ``burnin`` samples, the others ``burnin``), and ``samples`` exact draws at β = 0."""
    return (1 + (5 * burnin + samples) * thin + (n_steps - 1) * (burnin + samples) * thin
            + samples)


@pytest.fixture(scope="module")
def five_taxa():
    tree = parse_newick("((A:0.1,B:0.05):0.03,C:0.2,(D:0.08,E:0.12):0.04);")
    aln = simulate_alignment(tree, "HKY{3}+F{0.3,0.2,0.2,0.3}+G4{0.7}", 200, seed=4)
    return aln, tree


def _problem(kind: str, five_taxa):
    aln, tree = five_taxa
    if kind == "toy":
        return PoissonGammaProblem.simulate(3, 5, seed=2)
    return Problem(aln, tree, kind)


@pytest.mark.parametrize("kind, backend, engine", [
    ("toy", "numba", "generic compiled loop"),
    ("toy", "python", "Python loop"),
    ("JC", "auto", "incremental compiled tree loop"),
    ("JC", "python", "Python loop"),
    ("HKY+G4", "auto", "free model parameters"),
    ("HKY+G4", "python", "Python loop"),
])
def test_ladder_counts_every_generation(kind, backend, engine, five_taxa):
    problem = _problem(kind, five_taxa)
    before = problem.n_likelihood_evaluations
    lad = run_ladder(problem, beta_ladder(K, 0.3), samples_per_step=S, thin=T, burnin=B,
                     rng=np.random.default_rng(1), backend=backend)
    expected = ladder_evaluations(K, S, T, B)
    assert lad.evaluations == expected, engine
    assert problem.n_likelihood_evaluations - before == expected


@pytest.mark.parametrize("kind", ["JC", "HKY+G4"])
def test_estimator_reports_exact_count(kind, five_taxa):
    """The defect seen in ``phylo compare``: HKY+G4 reported 201 evaluations (the
    initial state and the β = 0 draws) for a whole ladder run in Python."""
    problem = _problem(kind, five_taxa)
    est = SteppingStone(n_steps=K, samples_per_step=S, burnin=B, thin=T)
    res = est.run(problem, seed=3)
    assert res.likelihood_evaluations == ladder_evaluations(K, S, T, B)


@pytest.mark.parametrize("backend", ["numba", "python"])
def test_sampler_run_counts_burnin_and_samples(backend):
    problem = PoissonGammaProblem.simulate(3, 5, seed=2)
    sampler = Sampler(problem, backend=backend)
    state = sampler.initial_state()
    res = sampler.run(state, beta=0.7, n_samples=17, thin=4, burnin=6,
                      rng=np.random.default_rng(5))
    assert res.evaluations == (17 + 6) * 4


#: A first run that compiles spends at least this many times longer compiling than
#: estimating (the compiled generic loop takes ~1-3 s to compile for a new
#: log-likelihood; the run itself a few ms): compilation must not land in ``seconds``.
COMPILE_DOMINANCE = 5.0


def test_compile_time_is_reported_apart_from_the_runtime():
    """A log-likelihood the process has never compiled: the first run compiles the
    generic chain loop for it (``compile_seconds``), the second compiles nothing; the
    estimate is the same, and ``seconds`` excludes compilation."""
    from numba import njit

    from phylo._kernels.densities import exp_prior_z
    from phylo.marginal import get_estimator
    from phylo.marginal.base_problem import NumbaTarget

    @njit(cache=False)
    def fresh_loglik(z, args):       # a new function: a new specialisation of run_chain
        return args[0] * z[0] - args[1] * np.exp(z[0])

    class Fresh(PoissonGammaProblem):
        def numba_target(self):
            return NumbaTarget(fresh_loglik, (float(self._y[0]), self._e), exp_prior_z,
                               (float(self.branch_prior.rate), 1))

    problem = Fresh(np.array([[3.0, 5.0]]), np.array([10.0, 10.0]))
    est = get_estimator("harmonic-mean", n_samples=50)
    first = est.run(problem, seed=4)
    second = est.run(problem, seed=4)
    assert first.log_marginal_likelihood == second.log_marginal_likelihood
    assert first.compile_seconds > COMPILE_DOMINANCE * first.seconds, \
        (first.compile_seconds, first.seconds)
    assert second.compile_seconds == 0.0
    assert first.to_dict()["compile_seconds"] == first.compile_seconds


def test_free_model_parameters_run_compiled_and_agree_with_python(five_taxa):
    """HKY+G4 (κ, frequencies, Γ shape free): the compiled tree loop with model moves
    between its calls follows the same chain as the Python loop (same proposals and
    acceptance rule; the likelihoods agree to rounding)."""
    problem = _problem("HKY+G4", five_taxa)
    compiled, python = Sampler(problem), Sampler(problem, backend="python")
    assert compiled.backend == "numba" and python.backend == "python"
    runs = []
    for sampler in (compiled, python):
        state = sampler.initial_state()
        runs.append(sampler.run(state, beta=0.6, n_samples=40, thin=problem.dim, burnin=5,
                                rng=np.random.default_rng(8), store_z=True))
    a, b = runs
    assert np.allclose(a.loglik, b.loglik, rtol=0, atol=1e-8)
    assert np.allclose(a.z, b.z, rtol=0, atol=1e-12)
    assert np.array_equal(a.acceptance, b.acceptance)
    moved = a.z[:, problem.n_branches:]
    assert np.all(np.ptp(moved, axis=0) > 0)          # every model coordinate moved
