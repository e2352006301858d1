"""Constrained neighbour joining: every constraint split is in the result."""
from __future__ import annotations


import numpy as np
import pytest

from phylo.errors import PhyloError
from phylo.io.newick import parse_newick
from phylo.models import Model
from phylo.likelihood.simulate import simulate_alignment
from phylo.trees.nj import constraint_splits, neighbor_joining, nj_tree
from phylo.trees.random import random_tree


def splits_of(tree, taxa=None):
    """Non-trivial splits of a tree as frozensets of names, restricted to ``taxa``."""
    taxa = frozenset(tree.taxa if taxa is None else taxa)
    below = [frozenset([tree.taxa[v]]) if v < tree.n_leaves else frozenset()
             for v in range(tree.n_nodes)]
    for v in range(tree.n_leaves, tree.n_nodes):
        below[v] = frozenset().union(*(below[c] for c in tree.children[v, :tree.n_children[v]]))
    out = set()
    for v in range(tree.n_nodes - 1):
        side = below[v] & taxa
        other = taxa - side
        if len(side) > 1 and len(other) > 1:
            out.add(min(side, other, key=lambda s: sorted(s)))
    return out


@pytest.fixture(scope="module")
def alignment():
    tree = random_tree(12, seed=5)
    return simulate_alignment(tree, Model.from_string("JC"), 300, seed=6)


@pytest.mark.parametrize("seed", range(6))
def test_result_contains_every_constraint_split(alignment, seed):
    rng = np.random.default_rng(seed)
    # a random partial constraint: a random tree on a random subset, collapsed at random
    names = list(rng.choice(alignment.taxa, size=int(rng.integers(4, 10)), replace=False))
    constraint = random_tree(names, seed=int(rng.integers(1 << 30)))
    tree = nj_tree(alignment, constraint=constraint)
    assert tree.is_binary() and tree.taxa == alignment.taxa
    wanted = splits_of(constraint)
    assert wanted <= splits_of(tree, names)


def test_unconstrained_is_plain_nj(alignment):
    a = nj_tree(alignment)
    b = nj_tree(alignment, constraint=parse_newick("(%s);" % ",".join(alignment.taxa)))
    assert splits_of(a) == splits_of(b)


def test_constraint_overrides_distances():
    """Four taxa where distances say AB|CD; the constraint AC|BD must win."""
    d = np.array([[0, 1, 4, 4], [1, 0, 4, 4], [4, 4, 0, 1], [4, 4, 1, 0]], dtype=float)
    taxa = ["A", "B", "C", "D"]
    free = neighbor_joining(d, taxa)
    assert splits_of(free) == {frozenset("AB")}
    splits = constraint_splits(parse_newick("((A,C),(B,D));"), taxa)
    forced = neighbor_joining(d, taxa, constraints=splits)
    assert splits_of(forced) == {frozenset("AC")}


def test_bad_constraints(alignment):
    with pytest.raises(PhyloError, match="not in the alignment: 'zz'"):
        nj_tree(alignment, constraint=parse_newick("((zz,t1),t2,t3);"))
    t = alignment.taxa
    incompatible = [(frozenset([0, 1]), frozenset(range(4))), (frozenset([0, 2]), frozenset(range(4)))]
    with pytest.raises(PhyloError, match="incompatible"):
        neighbor_joining(np.ones((4, 4)) - np.eye(4), list(t[:4]), constraints=incompatible)
