"""Three-gametes and linearity tests against their pairwise definitions."""
from __future__ import annotations

import numpy as np
import pytest

from phylo.errors import GenotypeError
from phylo.noise import (MISSING, is_conflict_free, linearity, perfect_phylogeny,
                         random_mutation_tree, tree_matrix)

import naive_noise as naive

N_RANDOM = 300


def _random_binary(rng, max_cells=8, max_muts=7, p=None):
    n, m = rng.integers(1, max_cells + 1), rng.integers(1, max_muts + 1)
    return (rng.random((n, m)) < (p if p is not None else rng.random())).astype(np.int8)


def test_three_gametes_matches_pairwise_definition(rng):
    for _ in range(N_RANDOM):
        A = _random_binary(rng)
        pairs = naive.three_gametes_pairs(A)
        pp = perfect_phylogeny(A)
        assert pp.conflict_free == (not pairs)
        if pairs:
            assert pp.conflicting_pair in pairs
        else:
            np.testing.assert_array_equal(tree_matrix(pp.parent, pp.attachment), A)


def test_perfect_phylogeny_of_tree_matrices(rng):
    """Tree matrices (with duplicate and empty columns) are conflict-free and
    the returned tree reproduces them."""
    for _ in range(100):
        n, m = rng.integers(1, 30), rng.integers(1, 20)
        parent, att, A = random_mutation_tree(n, m, seed=int(rng.integers(2**31)))
        pp = perfect_phylogeny(A)
        assert pp.conflict_free
        np.testing.assert_array_equal(tree_matrix(pp.parent, pp.attachment), A)
        # duplicating and zeroing columns keeps it conflict-free
        B = np.hstack([A, A[:, :1], np.zeros((n, 1), np.int8)])
        pp = perfect_phylogeny(B)
        assert pp.conflict_free
        np.testing.assert_array_equal(tree_matrix(pp.parent, pp.attachment), B)


def test_linearity_matches_pairwise_definition(rng):
    for _ in range(N_RANDOM):
        A = _random_binary(rng, max_cells=6, max_muts=5)
        lin = linearity(A)
        assert lin.linear == naive.is_linear(A)
        if not lin.linear:
            a, b = lin.unnested_pair
            x, y = A[:, a] == 1, A[:, b] == 1
            assert not ((x <= y).all() or (y <= x).all())


def test_linear_chain_matrix():
    A = np.tril(np.ones((5, 4), dtype=np.int8))
    assert linearity(A).linear and is_conflict_free(A)
    B = np.array([[1, 0], [0, 1], [0, 0]], dtype=np.int8)  # branching, conflict-free
    assert is_conflict_free(B) and not linearity(B).linear
    assert linearity(B).unnested_pair == (0, 1)


def test_checks_reject_missing_and_bad_entries():
    with pytest.raises(GenotypeError, match="missing"):
        perfect_phylogeny(np.array([[0, MISSING]]))
    with pytest.raises(GenotypeError, match="0, 1 or 2"):
        linearity(np.array([[0, 5]]))
    # a homozygous call (2) is a mutated entry
    assert linearity(np.array([[1, 2], [0, 1]])).linear
    assert perfect_phylogeny(np.array([[2, 0], [0, 2], [2, 2]])).conflicting_pair == (0, 1)
    with pytest.raises(GenotypeError, match="non-empty"):
        perfect_phylogeny(np.zeros((0, 3)))
