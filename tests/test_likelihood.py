"""Tests of phylo.likelihood against brute-force summation, references and each other."""
from __future__ import annotations

import json

import numpy as np
import pytest

from naive_likelihood import (brute_force_pattern_likelihoods,
                              log_space_pattern_log_likelihoods)
from phylo.errors import ModelError, TaxonMismatchError, TreeError
from phylo.io.alignment import Alignment, read_alignment
from phylo.io.newick import parse_newick
from phylo.likelihood import TreeLikelihood, log_likelihood
from phylo.likelihood.simulate import simulate_alignment
from phylo.models import Model
from phylo.trees.random import random_tree

BRUTE_TOL = 1e-9        # relative, per-pattern: two exact methods, double round-off only
REFERENCE_TOL = 1e-6    # absolute ln L vs BEAGLE 3.1.2 (the brief's contract)
FD_STEP = 1e-6          # central difference step (branch lengths ~0.1)
FD_TOL = 1e-5           # relative: O(h^2) truncation + O(eps/h) cancellation
LARGE_TREE_TOL = 1e-9   # relative ln L on 2,000 taxa vs log-space pruning
EXACT = 1e-10           # identities that hold up to summation order

MODELS = ["JC", "F81+F{0.1,0.2,0.3,0.4}", "K80{3.5}", "HKY{2.5}+F{0.35,0.15,0.2,0.3}",
          "GTR{1.5,4,0.5,0.8,6}+F{0.35,0.15,0.2,0.3}"]
SUFFIXES = ["", "+G4{0.7}", "+I{0.25}", "+I{0.25}+G4{0.7}"]


def random_alignment(taxa, n_sites, rng, p_ambiguous=0.2) -> Alignment:
    """Random states with ambiguity codes and gaps (mask 15) mixed in."""
    states = (1 << rng.integers(0, 4, size=(len(taxa), n_sites))).astype(np.uint8)
    amb = rng.random(states.shape) < p_ambiguous
    states[amb] = rng.integers(1, 16, size=amb.sum())
    # a few constant columns so that +I matters
    states[:, :5] = 1 << rng.integers(0, 4, size=5)
    return Alignment.from_states(list(taxa), states)


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("base", MODELS)
def test_against_brute_force(base, suffix, rng):
    model = Model.from_string(base + suffix)
    for n_taxa, rooted in ((3, False), (4, True), (5, False), (6, False)):
        tree = random_tree(n_taxa, rng=rng, rooted=rooted, branch_length_rate=5.0)
        aln = random_alignment(tree.taxa[::-1], 40, rng)  # rows in another order than leaves
        tl = TreeLikelihood(aln, tree, model)
        expect = brute_force_pattern_likelihoods(aln, tree, model)
        got = tl.pattern_log_likelihoods()
        np.testing.assert_allclose(got, np.log(expect), rtol=0, atol=BRUTE_TOL)
        assert abs(tl.log_likelihood() - aln.weights @ np.log(expect)) < BRUTE_TOL * aln.n_sites


@pytest.mark.parametrize("model", ["JC", "GTR{1.5,4,0.5,0.8,6}+F{0.35,0.15,0.2,0.3}+I{0.2}+G4{0.5}"])
def test_root_position_irrelevant(model, rng):
    tree = random_tree(9, rng=rng)
    aln = random_alignment(tree.taxa, 60, rng)
    ref = TreeLikelihood(aln, tree, model).log_likelihood()
    for node in range(tree.n_leaves, tree.n_nodes):
        assert abs(TreeLikelihood(aln, tree.rerooted(node), model).log_likelihood() - ref) < EXACT
    # a rooted version (root on any branch) gives the same value too
    rooted = random_tree(9, rng=rng, rooted=True)
    aln2 = random_alignment(rooted.taxa, 60, rng)
    assert abs(TreeLikelihood(aln2, rooted, model).log_likelihood()
               - TreeLikelihood(aln2, rooted.unrooted(), model).log_likelihood()) < EXACT


@pytest.mark.parametrize("model", ["JC", "K80{3}+G4{0.4}", "HKY{2}+F{0.3,0.2,0.1,0.4}+I{0.3}",
                                   "F81+F{0.1,0.2,0.3,0.4}+I{0.1}+G4{0.7}",
                                   "GTR{1.5,4,0.5,0.8,6}+F{0.35,0.15,0.2,0.3}+I{0.2}+G4{0.5}"])
@pytest.mark.parametrize("rooted", [False, True])
def test_gradient_finite_differences(model, rooted, rng):
    tree = random_tree(12, rng=rng, rooted=rooted)
    aln = random_alignment(tree.taxa, 80, rng)
    tl = TreeLikelihood(aln, tree, model)
    bl = tl.tree.branch_lengths + 0.02
    value, grad = tl.gradient(bl)
    assert abs(value - tl.log_likelihood(bl)) < EXACT
    fd = np.empty_like(grad)
    for v in range(bl.size):
        e = np.zeros_like(bl)
        e[v] = FD_STEP
        fd[v] = (tl.log_likelihood(bl + e) - tl.log_likelihood(bl - e)) / (2 * FD_STEP)
    np.testing.assert_allclose(grad, fd, rtol=FD_TOL, atol=FD_TOL * np.abs(fd).max())


def test_batch_site_and_pattern_consistency(rng):
    tree = random_tree(10, rng=rng)
    aln = random_alignment(tree.taxa, 100, rng)
    tl = TreeLikelihood(aln, tree, "HKY{2}+F{0.3,0.2,0.1,0.4}+G4{0.5}+I{0.1}")
    bls = rng.exponential(0.1, size=(7, tl.n_branches))
    looped = np.array([tl.log_likelihood(b) for b in bls])
    np.testing.assert_allclose(tl.log_likelihood_batch(bls), looped, rtol=0, atol=EXACT)
    np.testing.assert_allclose(tl.log_likelihood_batch(bls, parallel=False), looped, rtol=0, atol=EXACT)
    assert tl.log_likelihood_batch(np.empty((0, tl.n_branches))).shape == (0,)
    sites = tl.site_log_likelihoods(bls[0])
    assert sites.shape == (aln.n_sites,)
    assert abs(sites.sum() - looped[0]) < EXACT
    assert abs(aln.weights @ tl.pattern_log_likelihoods(bls[0]) - looped[0]) < EXACT
    assert abs(tl.log_likelihood() - log_likelihood(aln, tree, tl.model)) < EXACT
    other = tl.with_model("JC")
    assert abs(other.log_likelihood() - TreeLikelihood(aln, tree, "JC").log_likelihood()) < EXACT
    assert abs(tl.log_likelihood() - TreeLikelihood(aln, tree, tl.model).log_likelihood()) < EXACT


def test_empirical_frequencies_resolved(rng):
    tree = random_tree(5, rng=rng)
    aln = random_alignment(tree.taxa, 50, rng)
    tl = TreeLikelihood(aln, tree, "GTR+F")
    assert tl.model.frequency_mode == "fixed"
    assert abs(tl.model.frequencies.sum() - 1) < EXACT


def test_large_tree_rescaling():
    tree = random_tree(2000, seed=7, branch_length_rate=5.0)
    model = Model.from_string("HKY{3}+F{0.3,0.2,0.2,0.3}+G4{0.5}")
    aln = simulate_alignment(tree, model, 200, seed=8)
    tl = TreeLikelihood(aln, tree, model)
    got = tl.pattern_log_likelihoods()
    assert np.all(np.isfinite(got)) and got.min() < -1000  # would underflow without rescaling
    ref = log_space_pattern_log_likelihoods(aln, tree, model)
    np.testing.assert_allclose(got, ref, rtol=LARGE_TREE_TOL)
    # the rare path ran: some nodes' bounds fell below the threshold and were rescaled
    assert tl.state.sflag.any()
    # and incremental updates through rescaled nodes still equal full evaluations
    bl = tl.tree.branch_lengths.copy()
    tl.set_branch_lengths(bl)
    for j in (0, 1500, 2500, bl.size - 1):
        bl[j] *= 1.7
        got = tl.propose_branch(j, bl[j])
        tl.accept()
        assert got == tl.log_likelihood(bl)
    value, grad = tl.gradient()
    assert np.isfinite(value) and np.all(np.isfinite(grad))


def test_scale_bound_is_a_lower_bound(rng):
    """pruning.scale_bound: min_p max_i of (P_a x_a) ∘ (P_b x_b) is at least the bound
    for random matrices (short and long branches) and partials with known minima."""
    from phylo._kernels.pruning import scale_bound
    for _ in range(200):
        model = Model.from_string("GTR{%.3f,%.3f,1,0.7,2}+F{0.1,0.2,0.3,0.4}" % tuple(rng.uniform(0.2, 5, 2)))
        pa, pb = (model.transition_matrices(np.array([t]))[0, 0]
                  for t in 10.0 ** rng.uniform(-6, 1, 2))
        xa = rng.random((4, 500)) ** 8
        xb = rng.random((4, 500)) ** 8
        z = (pa @ xa) * (pb @ xb)
        bound = scale_bound(pa, pb, xa.max(axis=0).min(), xb.max(axis=0).min())
        assert 0 < bound <= z.max(axis=0).min()


def _model_string(spec: dict) -> str:
    """Build IQ-TREE syntax from the explicit parameters of a reference case."""
    text = {"JC69": "JC", "F81": "F81", "HKY85": "HKY", "GTR": "GTR"}[spec["substitution"]]
    if "kappa" in spec:
        text += "{%r}" % spec["kappa"]
    if "exchangeabilities" in spec:
        text += "{" + ",".join(map(repr, spec["exchangeabilities"])) + "}"
    if "pi" in spec:
        text += "+F{" + ",".join(map(repr, spec["pi"])) + "}"
    if "pinv" in spec:
        text += "+I{%r}" % spec["pinv"]
    if "alpha" in spec:
        text += "+G%d{%r}" % (spec["ncat"], spec["alpha"])
    return text


def test_primates_references(shared_dir):
    base = shared_dir / "reference/primates"
    ref = json.loads((base / "likelihood.json").read_text())
    aln = read_alignment(base / ref["alignment"])
    assert aln.n_patterns == ref["npatterns"]
    trees = {k: parse_newick((base / v).read_text(), source=str(base / v))
             for k, v in ref["trees"].items()}
    for case in ref["cases"]:
        model = Model.from_string(_model_string(case["model"]))
        tl = TreeLikelihood(aln, trees[case["tree"]], model)
        np.testing.assert_allclose(model.category_rates() * (1 - model.pinv),
                                   case["model"]["category_rates"], atol=1e-12)
        assert abs(tl.log_likelihood() - case["reference_lnL"]) < REFERENCE_TOL, case["name"]


# -- bad input -------------------------------------------------------------------
def _small():
    aln = Alignment.from_sequences({"a": "ACGT", "b": "ACGA", "c": "ACTT", "d": "GCGT"})
    return aln


def test_negative_and_missing_branch_lengths():
    aln = _small()
    with pytest.raises(TreeError, match="negative.*'b'"):
        TreeLikelihood(aln, parse_newick("((a:0.1,b:-0.2):0.1,c:0.1,d:0.1);"), "JC")
    with pytest.raises(TreeError, match="missing.*'c'"):
        TreeLikelihood(aln, parse_newick("((a:0.1,b:0.2):0.1,c,d:0.1);"), "JC")
    tl = TreeLikelihood(aln, parse_newick("((a:0.1,b:0.2):0.1,c:0.1,d:0.1);"), "JC")
    bl = tl.tree.branch_lengths.copy()
    for bad in (-0.1, np.nan, np.inf):
        b = bl.copy()
        b[1] = bad
        with pytest.raises(TreeError):
            tl.log_likelihood(b)
        with pytest.raises(TreeError, match="row 1"):
            tl.log_likelihood_batch(np.vstack([bl, b]))
    with pytest.raises(TreeError, match="expected 5 branch lengths"):
        tl.log_likelihood(bl[:3])
    notl = TreeLikelihood(aln, parse_newick("((a,b),c,d);"), "JC")
    with pytest.raises(TreeError, match="no branch lengths"):
        notl.log_likelihood()
    assert np.isfinite(notl.log_likelihood(bl))


def test_taxa_mismatch_and_non_binary():
    aln = _small()
    with pytest.raises(TaxonMismatchError, match="'e'"):
        TreeLikelihood(aln, parse_newick("((a:1,b:1):1,c:1,e:1);", source="t.nwk"), "JC")
    with pytest.raises(TreeError, match="not binary"):
        TreeLikelihood(aln, parse_newick("(a:1,b:1,c:1,d:1);"), "JC")
    with pytest.raises(ModelError, match="valid names"):
        TreeLikelihood(aln, parse_newick("((a:1,b:1):1,c:1,d:1);"), "LG+G4")


def test_zero_likelihood_is_minus_infinity_not_nan():
    aln = Alignment.from_sequences({"a": "A", "b": "C", "c": "A"})
    tl = TreeLikelihood(aln, parse_newick("(a:0,b:0,c:0);"), "JC")
    assert tl.log_likelihood() == -np.inf


def test_kernels_are_cached():
    from phylo._kernels import gradient, pruning
    # Dispatcher.stats names the on-disk cache of a function compiled with cache=True
    # (and is empty for one compiled without it).
    for f in (pruning.log_likelihood, pruning.log_likelihood_batch, gradient.gradient):
        assert f.stats.cache_path, f"{f.__name__} is compiled without an on-disk cache"


INCREMENTAL_TOL = 1e-9  # relative: path-to-root updates vs a fresh full evaluation


@pytest.mark.parametrize("model", ["JC", "HKY{2}+F{0.3,0.2,0.1,0.4}+I{0.2}+G4{0.5}"])
@pytest.mark.parametrize("n_taxa,rooted", [(9, False), (12, True), (300, False)])
def test_incremental_updates_match_full_evaluation(model, n_taxa, rooted, rng):
    """Random accepted/rejected single-branch (and all-branch) proposals: the
    incremental ln L equals a fresh full evaluation (also after rejections)."""
    tree = random_tree(n_taxa, rng=rng, rooted=rooted)
    aln = random_alignment(tree.taxa, 60, rng)
    tl = TreeLikelihood(aln, tree, model)
    fresh = TreeLikelihood(aln, tree, model)
    bl = tl.tree.branch_lengths + 0.01
    if n_taxa == 300:
        bl = bl * 20.0  # long branches: rescaling on the path
    value = tl.set_branch_lengths(bl)
    assert abs(value - fresh.log_likelihood(bl)) <= INCREMENTAL_TOL * abs(value)
    for step in range(60):
        if step % 15 == 7:
            prop = bl * np.exp(0.1 * rng.standard_normal(bl.size))
            got = tl.propose_all(prop)
        else:
            j = int(rng.integers(bl.size))
            prop = bl.copy()
            prop[j] = bl[j] * np.exp(rng.uniform(-1, 1))
            got = tl.propose_branch(j, prop[j])
        expect = fresh.log_likelihood(prop)
        assert abs(got - expect) <= INCREMENTAL_TOL * abs(expect)
        if rng.random() < 0.5:
            tl.accept()
            bl = prop
        else:
            tl.reject()
        np.testing.assert_array_equal(tl.current_branch_lengths, bl)
    # the state after the sequence evaluates like a fresh one
    j = 0
    got = tl.propose_branch(j, bl[j])
    assert abs(got - fresh.log_likelihood(bl)) <= INCREMENTAL_TOL * abs(got)
    tl.reject()


def test_incremental_bit_identical_to_full(rng):
    """Exact power-of-two rescaling and identical node arithmetic: an incremental update
    gives the full evaluation's value bit for bit (what checkpoint/resume relies on)."""
    tree = random_tree(40, rng=rng)
    aln = random_alignment(tree.taxa, 50, rng)
    tl = TreeLikelihood(aln, tree, "GTR{1.5,4,0.5,0.8,6}+F{0.35,0.15,0.2,0.3}+G4{0.5}")
    bl = tl.tree.branch_lengths * 10 + 0.01
    tl.set_branch_lengths(bl)
    for j in rng.integers(bl.size, size=20):
        bl[j] *= 1.3
        got = tl.propose_branch(int(j), bl[j])
        tl.accept()
        assert got == tl.log_likelihood(bl)


def test_kernel_arguments_are_private(rng):
    tree = random_tree(6, rng=rng)
    aln = random_alignment(tree.taxa, 20, rng)
    tl = TreeLikelihood(aln, tree, "JC")
    a, b = tl.kernel_arguments(), tl.kernel_arguments()
    from phylo._kernels import pruning
    # the data (children, n_children, tips, model, weights, +I) is shared, buffers are not
    assert all(x is y for x, y in zip(a.data, b.data))
    assert all(x is not y for x, y in zip(a.state, b.state))
    assert all(x is not y for x, y in zip(a.incremental[1:], b.incremental[1:]))
    assert len(a.loglik_args()) == pruning.N_LOGLIK_ARGS
    bl = tl.tree.branch_lengths
    assert abs(pruning.log_likelihood(bl, *a.loglik_args()) - tl.log_likelihood(bl)) < EXACT


RESCALED_FD_TOL = 1e-4  # relative: central differences of ln L ~ -1e5 (cancellation ~ eps·|lnL|/h)


def _check_branches_by_finite_differences(tl, bl, grad, rng, n_branches=8):
    """grad against central differences (step 1e-5 relative) on randomly chosen branches."""
    for v in rng.choice(bl.size, size=n_branches, replace=False):
        h = 1e-5 * max(bl[v], 1e-3)
        e = np.zeros_like(bl)
        e[v] = h
        fd = (tl.log_likelihood(bl + e) - tl.log_likelihood(bl - e)) / (2 * h)
        assert abs(grad[v] - fd) <= RESCALED_FD_TOL * max(1.0, abs(fd)), (v, grad[v], fd)


def test_gradient_with_rescaling_matches_finite_differences():
    """The pre-order rescaling path (partials and pre-order partials scaled by powers
    of two) on a tree deep enough to need it: gradient vs central differences."""
    tree = random_tree(600, seed=11, branch_length_rate=5.0)
    model = Model.from_string("HKY{3}+F{0.3,0.2,0.2,0.3}+G4{0.5}")
    aln = simulate_alignment(tree, model, 60, seed=12)
    tl = TreeLikelihood(aln, tree, model)
    bl = tl.tree.branch_lengths
    tl.log_likelihood(bl)
    assert np.any(tl.state.sflag)  # some node was rescaled (sflag)
    value, grad = tl.gradient(bl)
    assert abs(value - tl.log_likelihood(bl)) < EXACT * abs(value)
    _check_branches_by_finite_differences(tl, bl, grad, np.random.default_rng(3))


def test_gradient_fast_path_at_tiny_pattern_likelihoods():
    """The gradient's fast path (no rescaled node; one 1/L_p per pattern instead of
    per-branch denominators) where pattern likelihoods are far below the rescaling
    threshold's range (ln L_p < -200) but no node needed rescaling: vs central
    differences."""
    from phylo._kernels.gradient import FAST_LOG_L_MIN
    tree = random_tree(200, seed=5, branch_length_rate=1.0)
    model = Model.from_string("HKY{3}+F{0.3,0.2,0.2,0.3}+G4{0.5}")
    aln = simulate_alignment(tree, model, 30, seed=6)
    tl = TreeLikelihood(aln, tree, model)
    bl = tl.tree.branch_lengths
    tl.log_likelihood(bl)
    lnl = tl.pattern_log_likelihoods(bl)
    assert not np.any(tl.state.sflag)                     # no node rescaled
    assert FAST_LOG_L_MIN < lnl.min() < -200              # the fast path, at tiny L_p
    value, grad = tl.gradient(bl)
    _check_branches_by_finite_differences(tl, bl, grad, np.random.default_rng(4))


@pytest.mark.parametrize("n_taxa", [5, 12, 60])
def test_mcmc_layout_is_a_reroot_with_the_same_likelihood(n_taxa, rng):
    """kernel_arguments' MCMC layout (the tree re-rooted at its median node): same
    leaves, bmap a permutation of the branches, the same ln L, and a mean
    branch-to-root path no longer than the user's layout."""
    from phylo._kernels import pruning
    tree = random_tree(n_taxa, rng=rng)
    aln = random_alignment(tree.taxa, 40, rng)
    tl = TreeLikelihood(aln, tree, "HKY{2}+F{0.3,0.2,0.1,0.4}+G4{0.5}")
    a = tl.kernel_arguments()
    children, n_children, parent, bmap = a.layout
    n = tl.tree.n_nodes
    assert sorted(bmap.tolist()) == list(range(n - 1))

    def mean_path(par):
        total = 0
        for v in range(n - 1):
            u = par[v]
            while u != n - 1:
                total += 1
                u = par[u]
        return total / (n - 1)
    assert mean_path(parent) <= mean_path(tl.tree.parent)
    bl = tl.tree.branch_lengths + 0.01
    internal = np.empty_like(bl)
    internal[bmap] = bl
    d = a.data
    got = pruning.log_likelihood(internal, children, n_children, d.tipx, d.tipc, d.model,
                                 d.weights, d.inv, *a.state)
    assert abs(got - tl.log_likelihood(bl)) < EXACT * abs(got)


def test_incremental_chain_matches_full_evaluations(rng):
    """The compiled incremental chain (on its re-rooted layout) reports, for every kept
    state, the ln L of a fresh full evaluation in the user's layout."""
    from phylo.marginal import Problem
    from phylo.marginal.mcmc import Sampler
    tree = random_tree(15, rng=rng)
    aln = random_alignment(tree.taxa, 80, rng)
    problem = Problem(aln, tree, "JC")
    sampler = Sampler(problem)
    state = sampler.initial_state()
    res = sampler.run(state, beta=0.7, n_samples=30, thin=7, burnin=5, store_z=True,
                      rng=np.random.default_rng(3))
    for z, ll in zip(res.z, res.loglik):
        expect = problem.log_likelihood(z)
        assert abs(ll - expect) <= INCREMENTAL_TOL * abs(expect)
