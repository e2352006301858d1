"""Simulator statistics against their expectations."""
from __future__ import annotations

import numpy as np
import pytest

from phylo.errors import PhyloError
from phylo.noise import (MISSING, add_noise, add_parallel_mutations, is_conflict_free,
                         random_mutation_tree, simulate, tree_matrix)

#: absolute tolerance on an estimated rate: > 5 binomial standard errors here
RATE_TOL_SE = 5.0


def _within(k, n, p):
    se = np.sqrt(p * (1 - p) / n)
    return abs(k / n - p) <= RATE_TOL_SE * se + 1e-12


@pytest.mark.parametrize("lineage", ["coalescent", "birth-death", "random-tree"])
def test_true_matrix_conflict_free_and_tree(lineage):
    sim = simulate(40, 25, alpha=0.01, beta=0.1, missing=0.05, lineage=lineage, seed=3)
    assert sim.true.shape == (40, 25) and sim.observed.shape == (40, 25)
    assert is_conflict_free(sim.true)
    np.testing.assert_array_equal(tree_matrix(sim.parent, sim.attachment), sim.true)


def test_noise_and_missing_rates(rng):
    A = np.zeros((400, 250), dtype=np.int8)
    A[:, :100] = 1
    alpha, beta, miss = 0.02, 0.2, 0.1
    D = add_noise(A, alpha, beta, miss, seed=int(rng.integers(2**31)))
    obs = D != MISSING
    assert _within((~obs).sum(), D.size, miss)
    assert _within(((A == 0) & (D == 1)).sum(), (obs & (A == 0)).sum(), alpha)
    assert _within(((A == 1) & (D == 0)).sum(), (obs & (A == 1)).sum(), beta)


def test_seed_reproducible_and_int_only():
    a = simulate(20, 10, alpha=0.01, beta=0.2, seed=5)
    b = simulate(20, 10, alpha=0.01, beta=0.2, seed=5)
    np.testing.assert_array_equal(a.observed, b.observed)
    # like the rest of the package, seeds are keyword-only ints
    for bad in (np.random.default_rng(5), -1, 2.5):
        with pytest.raises(PhyloError, match="seed"):
            simulate(20, 10, alpha=0.01, beta=0.2, seed=bad)
    c = simulate(20, 10, alpha=0.01, beta=0.2, seed=6)
    assert not np.array_equal(a.observed, c.observed)


def test_random_recursive_tree_statistics(rng):
    """P(parent of mutation j is the root) = 1/(j+1); cells uniform over nodes."""
    reps, m = 3000, 5
    root_parent = np.zeros(m)
    att = np.zeros(m + 1)
    for _ in range(reps):
        parent, attachment, A = random_mutation_tree(4, m, seed=int(rng.integers(2**31)))
        assert (parent[np.arange(m)] < np.arange(m)).sum() + (parent == m).sum() == m
        root_parent += parent == m
        att += np.bincount(attachment, minlength=m + 1)
    for j in range(m):
        assert _within(root_parent[j], reps, 1 / (j + 1))
    for v in range(m + 1):
        assert _within(att[v], reps * 4, 1 / (m + 1))


def test_parallel_mutations_create_conflict():
    sim = simulate(30, 15, alpha=0.001, beta=0.01, lineage="coalescent", seed=2)
    B = add_parallel_mutations(sim.true, 2, seed=2)
    assert not is_conflict_free(B)


def test_bad_parameters():
    with pytest.raises(PhyloError):
        simulate(10, 5, alpha=1.5, beta=0.1, seed=1)
    with pytest.raises(PhyloError):
        simulate(0, 5, alpha=0.1, beta=0.1, seed=1)
    with pytest.raises(PhyloError):
        simulate(10, 5, alpha=0.1, beta=0.1, lineage="yule", seed=1)
