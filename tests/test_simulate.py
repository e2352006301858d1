"""Tests of phylo.likelihood.simulate and phylo.trees.random."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2, chisquare

from phylo.errors import ModelError, TreeError
from phylo.io.newick import parse_newick
from phylo.likelihood import TreeLikelihood
from phylo.likelihood.simulate import simulate_alignment
from phylo.models import Model
from phylo.trees.random import random_tree

ALPHA = 1e-4  # significance level of the goodness-of-fit tests (fixed seeds: deterministic)


def _splits(tree):
    """Canonical set of non-trivial splits (as frozensets of taxon names not containing taxa[0])."""
    s = tree.n_leaves
    below = [frozenset([tree.taxa[v]]) if v < s else frozenset() for v in range(tree.n_nodes)]
    for u in range(s, tree.n_nodes):
        below[u] = frozenset().union(*(below[c] for c in tree.children[u, :tree.n_children[u]]))
    everything = frozenset(tree.taxa)
    out = set()
    for v in range(s, tree.n_nodes - 1):
        side = below[v] if tree.taxa[0] not in below[v] else everything - below[v]
        if 1 < len(side) < s - 1:
            out.add(side)
    return frozenset(out)


def test_uniform_unrooted_topologies():
    rng = np.random.default_rng(11)
    counts: dict = {}
    n = 3000
    for _ in range(n):
        key = _splits(random_tree(5, rng=rng))
        counts[key] = counts.get(key, 0) + 1
    assert len(counts) == 15
    assert chisquare(list(counts.values())).pvalue > ALPHA


def test_uniform_rooted_topologies():
    rng = np.random.default_rng(12)
    counts: dict = {}
    for _ in range(1500):
        t = random_tree(4, rng=rng, rooted=True)
        key = (_splits(t), frozenset(frozenset(t.taxa[c] for c in _leaves(t, k))
                                     for k in t.children[t.root, :2]))
        counts[key] = counts.get(key, 0) + 1
    assert len(counts) == 15   # (2*4-3)!! rooted 4-taxon topologies
    assert chisquare(list(counts.values())).pvalue > ALPHA


def _leaves(t, v):
    if v < t.n_leaves:
        return [v]
    return [x for c in t.children[v, :t.n_children[v]] for x in _leaves(t, c)]


def test_random_tree_shapes_and_lengths():
    for model in ("uniform", "yule"):
        for rooted in (False, True):
            t = random_tree(["a", "b", "c", "d", "e", "f", "g"], seed=3, model=model, rooted=rooted)
            assert t.is_binary() and t.rooted == rooted
            assert t.n_branches == (12 if rooted else 11)
            assert np.all(t.branch_lengths > 0)
    lengths = np.concatenate([random_tree(50, seed=s).branch_lengths for s in range(20)])
    assert abs(lengths.mean() - 0.1) < 0.01  # Exp(rate 10)
    a = random_tree(30, seed=5, model="yule")
    b = random_tree(30, seed=5, model="yule")
    assert a.to_newick() == b.to_newick()
    with pytest.raises(TreeError):
        random_tree(2, seed=1)
    with pytest.raises(TreeError):
        random_tree(5, seed=1, model="coalescent")


@pytest.mark.parametrize("model", ["JC", "HKY{4}+F{0.4,0.1,0.2,0.3}+G4{0.5}",
                                   "GTR{1,3,0.5,2,4}+F{0.3,0.2,0.3,0.2}+I{0.3}+G4{1.5}"])
def test_pattern_frequencies_match_likelihoods(model):
    tree = parse_newick("(a:0.2,b:0.05,c:0.4);")
    n = 40000
    aln = simulate_alignment(tree, model, n, seed=21)
    tl = TreeLikelihood(aln, tree, model)
    expected = np.exp(tl.pattern_log_likelihoods()) * n
    assert abs(np.exp(tl.pattern_log_likelihoods()).sum() - 1) < 0.05  # most of 64 patterns seen
    stat = ((aln.weights - expected) ** 2 / expected).sum()
    # all 64 patterns (unseen ones contribute their expected count)
    unseen = n - expected.sum()
    stat += unseen
    assert chi2.sf(stat, df=63) > ALPHA


def test_simulation_reproducible_and_validated():
    tree = random_tree(6, seed=1)
    a = simulate_alignment(tree, "K80{2}+G4", 50, seed=9)
    b = simulate_alignment(tree, "K80{2}+G4", 50, seed=9)
    assert np.array_equal(a.states(), b.states()) and a.taxa == tree.taxa
    assert not np.array_equal(a.states(), simulate_alignment(tree, "K80{2}+G4", 50, seed=10).states())
    with pytest.raises(ModelError):
        simulate_alignment(tree, "GTR+F", 10, seed=1)
    with pytest.raises(TreeError):
        simulate_alignment(parse_newick("(a:1,b:-1,c:1);"), "JC", 10, seed=1)


def test_invariant_sites_are_constant():
    tree = random_tree(8, seed=2, branch_length_rate=0.5)   # long branches
    aln = simulate_alignment(tree, Model.from_string("JC+I{0.6}"), 4000, seed=3)
    states = aln.states()
    constant = np.all(states == states[0], axis=0).mean()
    assert 0.55 < constant < 0.75
