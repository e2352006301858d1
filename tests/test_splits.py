"""Bitset splits, topology keys, the row hash table, split frequencies."""
from __future__ import annotations

import numpy as np
import pytest

from phylo.io.newick import parse_newick
from phylo.trees.splits import (RowTable, bitset, members, n_words, normalize_splits,
                                popcount, split_frequencies, topology_sample_from_trees,
                                tree_splits)


def test_bitsets_many_words():
    s = 130
    assert n_words(s) == 3
    row = bitset([0, 63, 64, 129], s)
    assert members(row) == [0, 63, 64, 129]
    assert popcount(row[None, :])[0] == 4
    norm = normalize_splits(row[None, :], s)[0]
    assert 0 not in members(norm) and len(members(norm)) == s - 4


def test_tree_splits_unrooted_and_rooted():
    t = parse_newick("((A,B),C,(D,E));")
    sp = tree_splits(t)
    assert sp.shape == (2, 1)
    got = sorted(tuple(members(r)) for r in sp)
    assert got == [(2, 3, 4), (3, 4)]          # {A,B} normalised to CDE; {D,E}
    r = parse_newick("(((A,B),C),(D,E));", rooted=True)
    clades = sorted(tuple(members(x)) for x in tree_splits(r))
    assert clades == [(0, 1), (0, 1, 2), (3, 4)]
    # same unrooted topology written differently
    assert tree_splits(parse_newick("(D,E,(C,(B,A)));")).tobytes() == sp.tobytes()
    assert tree_splits(r.unrooted()).tobytes() == sp.tobytes()


def test_row_table_grows_and_looks_up(rng):
    rows = rng.integers(0, 2**63, size=(5000, 3), dtype=np.uint64)
    rows = np.concatenate([rows, rows[:100]])
    tab = RowTable(3, capacity=4)
    ids = tab.add(rows)
    assert len(tab) == 5000
    assert np.array_equal(ids[5000:], ids[:100])
    assert np.array_equal(tab.keys[ids], rows)
    assert np.all(tab.get(rng.integers(0, 2**63, size=(10, 3), dtype=np.uint64)) == -1)


def test_topology_counting_and_split_frequencies():
    trees = [parse_newick(s) for s in ["((A,B),C,(D,E));", "(C,(B,A),(E,D));",
                                       "((A,C),B,(D,E));"]]
    smp = topology_sample_from_trees(trees)
    assert smp.n_topologies == 2 and sorted(smp.counts.tolist()) == [1.0, 2.0]
    rows, freq = split_frequencies(smp)
    d = {tuple(members(r)): f for r, f in zip(rows, freq)}
    assert d[(3, 4)] == pytest.approx(1.0)
    assert d[(2, 3, 4)] == pytest.approx(2 / 3)
    assert d[(1, 3, 4)] == pytest.approx(1 / 3)
