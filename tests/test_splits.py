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


def _brute_split_freqs(trees):
    """Split → frequency by exact bitsets of every tree (the reference)."""
    from collections import Counter
    c = Counter()
    for t in trees:
        for row in tree_splits(t, rooted=False):
            c[row.tobytes()] += 1
    return {k: v / len(trees) for k, v in c.items()}


def test_canonical_keys_identify_topologies_exactly():
    """Same topology written differently (child order, rooting of an unrooted tree,
    bifurcating root) gives one key; different topologies give different keys
    (checked against the sorted split bitsets on random trees of 3-9 taxa)."""
    from phylo.io.newick import parse_newick
    from phylo.trees.random import random_tree
    from phylo.trees.splits import canonical_keys
    def key(text, rooted, taxa=None):
        t = parse_newick(text, taxa=taxa, rooted=rooted)
        par = np.full((1, 2 * t.n_leaves - 1), -2, dtype=np.int32)
        par[0, :t.n_nodes] = t.parent
        return canonical_keys(par, np.array([t.n_nodes]), t.n_leaves, rooted=rooted)[0]
    same = ["((A,B),(C,D),E);", "(E,(D,C),(B,A));", "((A,B),((C,D),E));",
            "(A,(B,((C,D),E)));"]
    assert len({key(x, False).tobytes() for x in same}) == 1
    assert key("((A,B),(C,D));", True).tobytes() == key("((D,C),(B,A));", True).tobytes()
    assert key("((A,B),(C,D));", True).tobytes() != key("(A,(B,(C,D)));", True).tobytes()
    rng = np.random.default_rng(11)
    for s in range(3, 10):
        taxa = [f"x{i}" for i in range(s)]
        trees = [random_tree(taxa, rng=rng) for _ in range(40)]
        for rooted in (False, True):
            ts = [t if rooted else t.unrooted() for t in trees]
            if rooted:
                ts = [t for t in ts if t.rooted]
            by_key = {}
            for t in ts:
                par = np.full((1, 2 * s - 1), -2, dtype=np.int32)
                par[0, :t.n_nodes] = t.parent
                k = canonical_keys(par, np.array([t.n_nodes]), s, rooted=rooted)[0].tobytes()
                by_key.setdefault(k, set()).add(tree_splits(t, rooted=rooted).tobytes())
            assert all(len(v) == 1 for v in by_key.values())       # one topology per key
            n_topo = len({tree_splits(t, rooted=rooted).tobytes() for t in ts})
            assert len(by_key) == n_topo                          # one key per topology


def test_split_fingerprints_match_exact_bitsets_many_taxa():
    """Split frequencies by fingerprint (split_counts, asdsf) equal the exact bitset
    count on 300-taxon samples, and the bitsets rebuilt from references are exact."""
    from phylo.diagnostics import split_table
    from phylo.trees.random import random_tree
    from phylo.trees.splits import split_counts, topology_sample_from_trees
    rng = np.random.default_rng(5)
    taxa = [f"t{i}" for i in range(300)]
    base = [random_tree(taxa, rng=rng) for _ in range(3)]
    runs = [[base[int(rng.integers(3))] for _ in range(12)] for _ in range(2)]
    samples = [topology_sample_from_trees(r, taxa=taxa, rooted=False) for r in runs]
    for trees, smp in zip(runs, samples):
        ref = _brute_split_freqs(trees)
        counts = split_counts(smp)
        rows = counts.bitsets()
        got = {r.tobytes(): f for r, f in zip(rows, counts.weight / smp.total)}
        assert got.keys() == ref.keys()
        for k in ref:
            assert abs(got[k] - ref[k]) < 1e-12      # sums of ones: exact up to rounding
    tab = split_table(samples)
    for r, trees in enumerate(runs):
        ref = _brute_split_freqs(trees)
        got = {row.tobytes(): f for row, f in zip(tab.splits, tab.freq[:, r]) if f > 0}
        assert got.keys() == ref.keys()
