"""The estimator interface: registry, results, seeds, budgets, checkpoint/resume,
compare, and the phylogenetic Problem (gradients, batches, model parameters)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from phylo.errors import CheckpointError, EstimatorError
from phylo.io.newick import parse_newick
from phylo.likelihood import simulate_alignment
from phylo.marginal import (ESTIMATORS, MarginalLikelihoodResult, PoissonGammaProblem, Problem,
                            SteppingStone, available_estimators, compare, get_estimator)

#: Relative agreement of analytic and finite-difference gradients.
GRAD_RTOL = 1e-5

NAMES = ["harmonic-mean", "stabilized-harmonic-mean", "naive-monte-carlo", "path-sampling",
         "modified-path-sampling", "stepping-stone", "generalized-stepping-stone",
         "bridge-sampling", "laplace", "gamma-laplus", "beta-prime-laplus", "gamma-laplus-is",
         "vb-is", "elbo", "cpo", "ppd", "nested-sampling", "maximum-posterior",
         "maximum-likelihood"]


@pytest.fixture(scope="module")
def toy():
    return PoissonGammaProblem.simulate(4, 6, seed=2)


@pytest.fixture(scope="module")
def five_taxa():
    tree = parse_newick("((A:0.1,B:0.05):0.03,C:0.2,(D:0.08,E:0.12):0.04);")
    aln = simulate_alignment(tree, "HKY{3}+F{0.3,0.2,0.2,0.3}+G4{0.7}", 300, seed=4)
    return aln, tree


def test_registry_has_all_nineteen():
    assert available_estimators() == NAMES
    for name in NAMES:
        est = get_estimator(name)
        assert est.name == name and type(est) is ESTIMATORS[name]


def test_registry_errors_list_names():
    with pytest.raises(EstimatorError, match="valid names: harmonic-mean"):
        get_estimator("stepping-stones-typo")
    with pytest.raises(EstimatorError, match="did you mean 'stepping-stone'"):
        get_estimator("steping-stone")
    with pytest.raises(EstimatorError, match="valid: n_steps"):
        get_estimator("stepping-stone", n_stepz=3)
    inst = SteppingStone(n_steps=4)
    assert get_estimator(inst) is inst
    assert get_estimator("Stepping_Stone").name == "stepping-stone"


def test_result_is_frozen_and_complete(toy):
    res = get_estimator("stepping-stone", n_steps=8, samples_per_step=50).run(toy, seed=1)
    assert isinstance(res, MarginalLikelihoodResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.log_marginal_likelihood = 0.0
    d = res.diagnostics
    assert len(d["ladder_betas"]) == 9 and len(d["ladder_contributions"]) == 8
    assert sum(d["ladder_contributions"]) == pytest.approx(res.log_marginal_likelihood)
    assert len(d["loglik_trace"]) == 50
    assert res.settings["n_steps"] == 8 and res.seed == 1
    assert res.to_dict()["estimator"] == "stepping-stone"


@pytest.mark.parametrize("name", ["stepping-stone", "bridge-sampling", "nested-sampling",
                                  "vb-is", "stabilized-harmonic-mean"])
def test_same_seed_same_result(toy, name):
    est = get_estimator(name, **({"mcmc_length": 30} if name == "nested-sampling" else {}))
    a, b = est.run(toy, seed=5), est.run(toy, seed=5)
    c = est.run(toy, seed=6)
    assert a.log_marginal_likelihood == b.log_marginal_likelihood
    assert a.likelihood_evaluations == b.likelihood_evaluations
    assert c.log_marginal_likelihood != a.log_marginal_likelihood


def test_python_and_numba_loops_agree(toy):
    from phylo.marginal.mcmc import Sampler
    rng1, rng2 = np.random.default_rng(3), np.random.default_rng(3)
    s1, s2 = Sampler(toy, backend="numba"), Sampler(toy, backend="python")
    r1 = s1.run(s1.initial_state(), beta=0.5, n_samples=40, thin=3, burnin=10, rng=rng1)
    r2 = s2.run(s2.initial_state(), beta=0.5, n_samples=40, thin=3, burnin=10, rng=rng2)
    assert np.allclose(r1.loglik, r2.loglik, rtol=0, atol=1e-9)


def test_bad_input_raises(toy):
    est = get_estimator("harmonic-mean")
    with pytest.raises(EstimatorError, match="seed"):
        est.run(toy)
    with pytest.raises(EstimatorError, match="budget"):
        est.run(toy, seed=1, budget=-3)
    with pytest.raises(EstimatorError, match="problem"):
        est.run("not a problem", seed=1)
    with pytest.raises(EstimatorError, match="n_steps"):
        get_estimator("stepping-stone", n_steps=0).run(toy, seed=1)


def test_budget_is_respected_roughly(toy):
    for name in ["stepping-stone", "harmonic-mean", "naive-monte-carlo"]:
        res = get_estimator(name).run(toy, seed=1, budget=200_000)
        assert res.likelihood_evaluations <= 1.2 * 200_000


def test_checkpoint_resume_equals_uninterrupted(toy, tmp_path):
    est = get_estimator("stepping-stone", n_steps=10, samples_per_step=60)
    full = est.run(toy, seed=9)
    ckpt = tmp_path / "ss.ckpt"
    with pytest.raises(KeyboardInterrupt):
        est.run(toy, seed=9, checkpoint=ckpt, stop_after=4)
    assert ckpt.exists()
    resumed = est.run(toy, seed=9, checkpoint=ckpt)
    assert resumed.diagnostics["resumed_steps"] == 4
    assert resumed.log_marginal_likelihood == full.log_marginal_likelihood
    assert resumed.diagnostics["ladder_contributions"] == full.diagnostics["ladder_contributions"]
    assert resumed.likelihood_evaluations == full.likelihood_evaluations
    # a different seed must not silently reuse the file
    with pytest.raises(CheckpointError, match="other settings"):
        est.run(toy, seed=10, checkpoint=ckpt)


def test_checkpoint_resume_generalized_ladder(toy, tmp_path):
    est = get_estimator("generalized-stepping-stone", n_steps=6, samples_per_step=50,
                        pilot_samples=100)
    full = est.run(toy, seed=4)
    ckpt = tmp_path / "gss.ckpt"
    with pytest.raises(KeyboardInterrupt):
        est.run(toy, seed=4, checkpoint=ckpt, stop_after=3)
    assert est.run(toy, seed=4, checkpoint=ckpt).log_marginal_likelihood == full.log_marginal_likelihood


def test_compare_tidy_rows(toy):
    table = compare({"a": toy, "b": PoissonGammaProblem.simulate(2, 3, seed=1, )},
                    ["gamma-laplus", get_estimator("naive-monte-carlo", n_samples=500)],
                    repeats=2, seed=3)
    assert len(table) == 8 and len(table.results) == 8
    keys = {"problem", "estimator", "repeat", "log_marginal_likelihood", "std_error",
            "likelihood_evaluations", "seconds"}
    assert all(keys <= set(row) for row in table)
    again = compare({"a": toy}, ["naive-monte-carlo"], repeats=2, seed=3)
    nmc = [r for r in table if r["problem"] == "a" and r["estimator"] == "naive-monte-carlo"]
    assert [r["seed"] for r in again] == [r["seed"] for r in nmc]
    with pytest.raises(EstimatorError):
        compare(toy, [], repeats=1)


def test_problem_gradients_and_batches(five_taxa):
    aln, tree = five_taxa
    p = Problem(aln, tree, "JC")
    rng = np.random.default_rng(0)
    z = np.log(rng.uniform(0.02, 0.3, p.dim))
    ll, g = p.log_likelihood_gradient(z)
    f, gp = p.log_posterior_gradient(z, beta=0.3)
    for i in range(p.dim):
        h = 1e-6
        e = np.zeros(p.dim)
        e[i] = h
        num = (p.log_posterior(z + e, 0.3) - p.log_posterior(z - e, 0.3)) / (2 * h)
        assert gp[i] == pytest.approx(num, rel=GRAD_RTOL, abs=1e-6)
    zs = np.log(rng.uniform(0.02, 0.3, (7, p.dim)))
    batch = p.log_likelihood_batch(zs)
    assert np.allclose(batch, [p.log_likelihood(r) for r in zs], rtol=1e-12, atol=1e-9)
    before = p.n_likelihood_evaluations
    p.log_likelihood_batch(zs)
    assert p.n_likelihood_evaluations - before == 7
    assert p.pattern_log_likelihoods(z) @ p.pattern_weights == pytest.approx(p.log_likelihood(z))


def test_problem_with_free_model_parameters(five_taxa):
    aln, tree = five_taxa
    p = Problem(aln, tree, "HKY+G4")
    assert p.n_model == 1 + 3 + 1  # kappa, frequencies, gamma shape
    assert p.numba_target() is None
    z = p.initial_point()
    assert np.isfinite(p.log_posterior(z))
    prior_draws = p.sample_prior(5, rng=np.random.default_rng(1))
    assert np.all(np.isfinite(p.log_prior_batch(prior_draws)))
    m = p.model_at(z[p.n_branches:])
    assert m.kappa > 0 and abs(m.frequencies.sum() - 1) < 1e-12
    res = get_estimator("gamma-laplus").run(p, seed=1)
    assert np.isfinite(res.log_marginal_likelihood)
    res = get_estimator("stepping-stone", n_steps=4, samples_per_step=20).run(p, seed=1)
    assert np.isfinite(res.log_marginal_likelihood)
    fixed = Problem(aln, tree, "HKY{3}+G4{0.7}", estimate_model=False)
    assert fixed.n_model == 0 and fixed.numba_target() is not None
