"""The local-search moves' kernels against brute force: every candidate tree
built and scored by walking root paths (tests/naive_noise.py).

The kernels score a move over a compacted set of cells (those whose score can
depend on where the moved node goes) plus closed forms for the rest; these
tests cover the cases of that split: missing entries (d = 0), exact ties
between nodes (equal per-entry scores, missing entries on a path), near-ties,
cells attached at the root, and continuous per-entry scores (per-cell and
per-mutation rates)."""
from __future__ import annotations

import numpy as np
import pytest

from phylo._kernels import noise as _k
from phylo.noise import MISSING, ErrorModel
from phylo.noise.inference import _tables

import naive_noise as naive

#: sums of tens of log-probabilities agree to float round-off
SCORE_TOL = 1e-9


def _random_tree(rng, n):
    parent = np.empty(n, dtype=np.int64)
    label = rng.permutation(n)
    for j in range(n):
        r = int(rng.integers(j + 1))
        parent[label[j]] = n if r == j else label[r]
    return parent


def _cases(rng):
    """(deltaT, parent) pairs: scalar rates (many exact ties), ternary, per-cell
    and per-mutation rates, and continuous random scores."""
    out = []
    for k in range(12):
        cells, n = int(rng.integers(5, 30)), int(rng.integers(2, 9))
        D = (rng.random((cells, n)) < 0.4).astype(np.int8)
        D[rng.random((cells, n)) < (0.0, 0.1, 0.4)[k % 3]] = MISSING
        if k % 4 == 0:
            model = ErrorModel(0.01, 0.2)
        elif k % 4 == 1:
            D[(D == 1) & (rng.random(D.shape) < 0.3)] = 2
            model = ErrorModel(0.02, 0.25, 0.1, 0.05, ternary=True)
        elif k % 4 == 2:
            model = ErrorModel(rng.uniform(0.001, 0.1, cells), 0.3)
        else:
            model = ErrorModel(0.05, rng.uniform(0.05, 0.4, n))
        if np.all(D == MISSING):
            D[0, 0] = 1
        _, deltaT = _tables(D, model)
        out.append((deltaT, _random_tree(rng, n)))
    for k in range(8):
        # the last ones: far fewer cells than mutations (per-cell buffers vs per-node)
        cells, n = ((int(rng.integers(5, 30)), int(rng.integers(2, 9))) if k < 5 else
                    (int(rng.integers(1, 4)), int(rng.integers(9, 13))))
        deltaT = rng.normal(0.0, 2.0, (n, cells))
        deltaT[rng.random((n, cells)) < 0.2] = 0.0
        out.append((deltaT, _random_tree(rng, n)))
    return out


def _state(deltaT, parent):
    n, c = deltaT.shape
    acc = np.empty((n + 1, c))
    score = _k.evaluate(deltaT, parent, acc)
    order, pos, size = _k.preorder(parent)
    ws = _k._workspace(n, c)
    _k._tree_summaries(acc, order, ws[2], ws[3])
    return acc, score, order, pos, size, ws


def test_best_reattach_matches_brute_force(rng):
    for deltaT, parent in _cases(rng):
        acc, score, order, pos, size, ws = _state(deltaT, parent)
        assert score == pytest.approx(naive.tree_score(deltaT, parent), abs=SCORE_TOL)
        for v in range(parent.size):
            u, gain = _k._best_reattach(v, parent, order, pos, size, acc, ws)
            scores = naive.reattach_scores(deltaT, parent, v)
            assert score + gain == pytest.approx(max(scores.values()), abs=SCORE_TOL)
            assert scores[u] == pytest.approx(score + gain, abs=SCORE_TOL)
            if gain <= SCORE_TOL:   # no better place: stays (ties go to the parent)
                assert u == parent[v]


def test_best_relocate_matches_brute_force(rng):
    for deltaT, parent in _cases(rng):
        acc, score, order, pos, size, ws = _state(deltaT, parent)
        parent2 = np.empty_like(parent)
        for v in range(parent.size):
            kind, target, s = _k._best_relocate(v, parent, order, pos, size, acc, deltaT,
                                                ws, parent2)
            scores = naive.relocate_scores(deltaT, parent, v)
            assert s == pytest.approx(max(scores.values()), abs=SCORE_TOL)
            assert scores[(kind, target)] == pytest.approx(s, abs=SCORE_TOL)
            # the kernel leaves the tree without v in parent2 (v parked at the root)
            expect = np.where(parent == v, parent[v], parent)
            expect[v] = parent.size
            np.testing.assert_array_equal(parent2, expect)


def test_sweeps_keep_path_sums_and_score(rng):
    """After sweeps that accept moves, acc and the score are the tree's own."""
    for deltaT, parent in _cases(rng):
        n, c = deltaT.shape
        acc, score, *_ = _state(deltaT, parent)
        ws = _k._workspace(n, c)
        p = parent.copy()
        s1, _ = _k._reattach_sweep(deltaT, p, acc, score, ws)
        s2, _ = _k._relocate_sweep(deltaT, p, acc, s1, ws)
        assert s2 >= s1 - SCORE_TOL and s1 >= score - SCORE_TOL
        assert s2 == pytest.approx(naive.tree_score(deltaT, p), abs=SCORE_TOL)
        fresh = np.empty_like(acc)
        _k.evaluate(deltaT, p, fresh)
        np.testing.assert_allclose(acc, fresh, atol=SCORE_TOL)


def test_swap_score_matches_brute_force(rng):
    """Label swaps of every pair (nested subtrees, disjoint ones, parent and
    child, the root's children) scored from the changed rows only."""
    for deltaT, parent in _cases(rng):
        acc, score, order, pos, size, ws = _state(deltaT, parent)
        n = parent.size
        trial = np.empty_like(parent)
        acc2 = np.empty_like(acc)
        changed = np.zeros(n, dtype=np.bool_)
        for a in range(n):
            for b in range(n):
                if a == b:
                    continue
                _k._swap_labels(parent, a, b, trial)
                s = _k._swap_score(a, b, trial, order, pos, size, acc, deltaT, ws, acc2,
                                   changed)
                assert s == pytest.approx(naive.tree_score(deltaT, trial), abs=SCORE_TOL)
                fresh = np.empty_like(acc)
                _k.evaluate(deltaT, trial, fresh)
                np.testing.assert_allclose(acc2[:n][changed], fresh[:n][changed], atol=SCORE_TOL)
                unchanged = ~changed
                np.testing.assert_allclose(acc[:n][unchanged], fresh[:n][unchanged],
                                           atol=SCORE_TOL)


def test_local_search_score_is_the_trees(rng):
    """A full climb (sweeps and label swaps) returns its tree's own score."""
    for deltaT, parent in _cases(rng):
        n, c = deltaT.shape
        acc = np.empty((n + 1, c))
        p = parent.copy()
        start = naive.tree_score(deltaT, parent)
        s = _k.local_search(deltaT, p, acc, 3 * n, 100)
        assert s >= start - SCORE_TOL
        assert s == pytest.approx(naive.tree_score(deltaT, p), abs=SCORE_TOL)
