"""The search moves of phylo._kernels.noise_search against brute force, and the
adaptive restart rule of phylo.noise.solve (hits, restarts, reproducibility)."""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from phylo._kernels import noise as K
from phylo._kernels import noise_search as S
from phylo.noise import (ErrorModel, simulate, solve, tree_log_likelihood, tree_matrix,
                         log_likelihood)
from phylo.noise.inference import HIT_TOL

import naive_noise as naive

#: scores are sums of a few dozen floats: they agree to round-off
SCORE_TOL = 1e-9
REPO = Path(__file__).resolve().parents[1]


def _chainy_tree(rng, n):
    """Random mutation tree with long chains (mostly each node below the last)."""
    parent = np.empty(n, dtype=np.int64)
    perm = rng.permutation(n)
    for t in range(n):
        if t == 0 or rng.random() < 0.3:
            k = int(rng.integers(t + 1))
            parent[perm[t]] = n if k == t else perm[k]
        else:
            parent[perm[t]] = perm[t - 1]
    return parent


def _score(deltaT, parent):
    return K.evaluate(deltaT, parent, np.empty((parent.size + 1, deltaT.shape[1])))


def test_segment_place_is_exact_and_best(rng):
    for _ in range(150):
        n, c = int(rng.integers(2, 10)), int(rng.integers(1, 7))
        dT = rng.normal(size=(n, c))
        parent = _chainy_tree(rng, n)
        nc = np.zeros(n + 1, np.int64)
        oc = np.zeros(n + 1, np.int64)
        S._child_index(parent, nc, oc)
        seg = np.empty(n, np.int64)
        k = S._segment(parent, nc, oc, int(rng.integers(n)), int(rng.integers(1, n + 1)), seg)
        bufs = [np.empty((n + 1, c)) for _ in range(4)]
        p2 = np.empty(n, np.int64)
        inseg = np.zeros(n, np.bool_)
        kind, target, s = S.best_segment_place(seg, k, parent, dT, *bufs, p2, inseg,
                                               np.empty(c), np.empty(c))
        placed = parent.copy()
        S._place_segment(placed, p2, seg, k, kind, target)
        assert K.preorder(placed)[2][0] >= 0          # still a tree
        assert _score(dT, placed) == pytest.approx(s, abs=SCORE_TOL)
        # the order inside the segment is kept
        assert all(placed[seg[t]] == seg[t - 1] for t in range(1, k))
        best = -np.inf                                 # every place, scored from scratch
        for kd, tg in itertools.product((0, 1), range(n + 1)):
            if (kd == 1 and tg == n) or (tg < n and inseg[tg]):
                continue
            q = parent.copy()
            S._place_segment(q, p2, seg, k, kd, tg)
            best = max(best, _score(dT, q))
        assert best == pytest.approx(s, abs=SCORE_TOL)


def _clade_sets(cpar, m):
    """Leaf sets of every node of a cell tree (super-root excluded)."""
    N = cpar.size
    sets = {}
    for leaf in range(m):
        z = leaf
        while z != N - 1:
            sets.setdefault(z, set()).add(leaf)
            z = cpar[z]
    return sets


def _naive_cell_score(dT, cpar):
    """Each mutation on its best clade of the cell tree or on none."""
    m = dT.shape[1]
    clades = list(_clade_sets(cpar, m).values())
    return sum(max([0.0] + [sum(dT[j, c] for c in X) for X in clades])
               for j in range(dT.shape[0]))


def _random_cell_tree(rng, m):
    """Random rooted binary tree over m cells in the layout of noise_search."""
    N = 2 * m
    cpar = np.full(N, -1, np.int64)
    pool = list(range(m))
    nxt = m
    while len(pool) > 1:
        a = pool.pop(int(rng.integers(len(pool))))
        b = pool.pop(int(rng.integers(len(pool))))
        cpar[a] = cpar[b] = nxt
        pool.append(nxt)
        nxt += 1
    cpar[pool[0]] = N - 1
    return cpar


def test_cell_tree_score_and_regraft_against_brute_force(rng):
    for _ in range(40):
        n, m = int(rng.integers(1, 6)), int(rng.integers(3, 8))
        dT = rng.normal(size=(n, m))
        cpar = _random_cell_tree(rng, m)
        N = cpar.size
        C = np.empty((N, n))
        assert S.cell_tree_score(dT, cpar, C) == pytest.approx(_naive_cell_score(dT, cpar),
                                                              abs=SCORE_TOL)
        for x in range(N - 1):
            p = cpar[x]
            if p == N - 1:
                continue
            S.cell_tree_score(dT, cpar, C)
            Xm = np.empty(n)
            S._clade_max(x, cpar, C, Xm, n)
            bufs = [np.empty((N, n)) for _ in range(4)]
            y, s = S._cell_spr_best(x, cpar, C, np.empty(n), *bufs, Xm, n)
            sib = next(z for z in range(N - 1) if z != x and cpar[z] == p)
            scores = {}
            for yy in range(N - 1):
                q = cpar.copy()
                q[sib], q[p], q[x] = q[p], -1, -1
                if yy not in set(S._cell_order(q)[0].tolist()):
                    continue                       # yy inside the pruned clade
                q[p], q[yy], q[x] = q[yy], p, p
                scores[yy] = _naive_cell_score(dT, q)
            assert scores[y] == pytest.approx(s, abs=SCORE_TOL)
            assert max(scores.values()) == pytest.approx(s, abs=SCORE_TOL)


def _all_binary_trees(m):
    """Every rooted binary tree over m labelled cells (layout of noise_search)."""
    def grow(edges_parent, k):
        if k == m:
            yield edges_parent
            return
        # insert leaf k above any existing node (including the top)
        for y in [z for z in range(2 * m - 1) if edges_parent[z] != -1]:
            q = edges_parent.copy()
            new = m + k - 1
            q[new] = q[y]
            q[y] = new
            q[k] = new
            yield from grow(q, k + 1)
    start = np.full(2 * m, -1, np.int64)
    start[0] = 2 * m - 1
    yield from grow(start, 1)


def test_ml_over_cell_trees_is_ml_over_conflict_free_matrices(rng):
    """The transposed search space holds the same optimum (laminar families)."""
    alpha, beta = 0.05, 0.2
    for _ in range(3):
        D = (rng.random((4, 3)) < 0.5).astype(np.int8)
        base, dT = K.binary_tables(D, alpha, beta)
        best_cells = max(S.cell_tree_score(dT, cpar, np.empty((8, 3)))
                         for cpar in _all_binary_trees(4))
        assert best_cells + base.sum() == pytest.approx(naive.brute_force_ml(D, alpha, beta),
                                                        abs=1e-8)


def test_cell_and_mutation_trees_convert_without_loss(rng):
    for _ in range(60):
        n, m = int(rng.integers(1, 9)), int(rng.integers(3, 10))
        dT = rng.normal(size=(n, m))
        parent = _chainy_tree(rng, n)
        acc = np.empty((n + 1, m))
        s_mut = K.evaluate(dT, parent, acc)
        cpar = S.mutation_to_cell_tree(parent, K.best_attachment(acc), m)
        C = np.empty((2 * m, n))
        # every column of the mutation tree's matrix is a clade: no loss
        assert S.cell_tree_score(dT, cpar, C) >= s_mut - SCORE_TOL
        s_cell = S.cell_local_search(dT, cpar, 100)
        back = S.cell_to_mutation_tree(dT, cpar, C)
        assert K.preorder(back)[2][0] >= 0
        assert _score(dT, back) >= s_cell - SCORE_TOL


def test_local_search_is_monotone():
    sim = simulate(30, 15, alpha=0.01, beta=0.25, missing=0.2, lineage="random-tree", seed=3)
    base, dT = K.binary_tables(sim.observed, 0.01, 0.25)
    n = dT.shape[0]
    rng = np.random.default_rng(2)
    for start in range(3):
        # a star tree, then random chainy trees
        parent = np.full(n, n, np.int64) if start == 0 else _chainy_tree(rng, n)
        acc = np.empty((n + 1, dT.shape[1]))
        before = K.evaluate(dT, parent, acc)
        after = S.local_search_both(dT, parent, acc, 2, 1000, 8)
        assert after >= before - SCORE_TOL
        assert after == pytest.approx(_score(dT, parent), abs=SCORE_TOL)
        # from its own result it can only stay or improve (random label swaps)
        again = S.local_search_both(dT, parent.copy(), acc, 2, 1000, 8)
        assert again >= after - SCORE_TOL


# ---- the adaptive restart rule --------------------------------------------------

def _sim(seed=5):
    return simulate(40, 20, alpha=0.01, beta=0.2, missing=0.1, lineage="random-tree",
                    seed=seed)


def test_hits_and_restarts_are_consistent():
    sim = _sim()
    calls = []
    sol = solve(sim.observed, alpha=0.01, beta=0.2, seed=3, confirmations=3,
                progress=lambda r, h, b: calls.append((r, h, b)))
    lls = np.array(sol.restart_log_likelihoods)
    assert len(lls) == sol.restarts == len(calls) == calls[-1][0]
    assert sol.log_likelihood == pytest.approx(lls.max(), abs=1e-8)
    tol = HIT_TOL * np.abs(lls).max()
    assert sol.hits == int(np.sum(lls >= lls.max() - tol)) == calls[-1][1]
    assert sol.converged == (sol.hits >= 3)
    # stops as soon as the rule is met: 3 hits, and as many restarts after the
    # one that first found the best as before it (after the minimum number)
    found_at = 1 + next(k for k, x in enumerate(lls) if x >= lls.max() - tol)
    if sol.converged:
        assert sol.restarts >= 2 * found_at - 1
        if sol.restarts > 10:
            assert calls[-2][1] < 3 or sol.restarts - 1 < 2 * found_at - 1
    # the best reported after each restart never decreases
    assert all(b2 >= b1 - 1e-9 for (_, _, b1), (_, _, b2) in zip(calls, calls[1:]))
    # the reported likelihood is that of the reported tree
    assert tree_log_likelihood(sim.observed, sol.parent, 0.01, 0.2) == pytest.approx(
        sol.log_likelihood, abs=1e-8)
    assert log_likelihood(sim.observed, tree_matrix(sol.parent, sol.attachment),
                          0.01, 0.2) == pytest.approx(sol.log_likelihood, abs=1e-8)


def test_budget_and_fixed_restarts():
    sim = _sim(6)
    sol = solve(sim.observed, alpha=0.01, beta=0.2, seed=1, confirmations=50, max_restarts=4)
    assert sol.restarts == 4 and not sol.converged and sol.hits <= 4
    fixed = solve(sim.observed, alpha=0.01, beta=0.2, seed=1, restarts=2)
    assert fixed.restarts == 2 and len(fixed.restart_log_likelihoods) == 2
    # restart k's result does not depend on how many restarts run
    assert fixed.restart_log_likelihoods == pytest.approx(sol.restart_log_likelihoods[:2],
                                                          abs=1e-10)


def test_same_seed_same_answer_whatever_the_threads(tmp_path):
    sim = _sim(7)
    np.save(tmp_path / "d.npy", sim.observed)
    code = ("import sys, numpy as np; from phylo.noise import solve; "
            "D = np.load(sys.argv[1]); s = solve(D, alpha=0.01, beta=0.2, seed=11); "
            "print(repr(s.log_likelihood), s.restarts, s.hits, ' '.join(map(str, s.parent)))")
    outs = []
    for threads in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads, PYTHONPATH=str(REPO))
        done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d.npy")],
                              capture_output=True, text=True, env=env, check=True)
        outs.append(done.stdout)
    assert outs[0] == outs[1]
    here = solve(sim.observed, alpha=0.01, beta=0.2, seed=11)
    assert outs[0].split()[0] == repr(here.log_likelihood)


def test_ternary_tree_log_likelihood_matches_direct_sum(rng):
    D = rng.integers(0, 4, size=(9, 5)).astype(np.int8)
    model = ErrorModel(0.01, 0.2, 0.1, 0.005, ternary=True)
    parent = _chainy_tree(rng, 5)
    ll = tree_log_likelihood(D, parent, model=model)
    # direct: every attachment of every cell, entries summed from the table
    P = np.log(model.probabilities(*D.shape))[0, 0]   # scalar rates: one table
    total = 0.0
    for c in range(D.shape[0]):
        best = -np.inf
        for v in range(6):
            A = tree_matrix(parent, np.array([v]))[0]
            s = sum(P[D[c, j], A[j]] for j in range(5) if D[c, j] != 3)
            best = max(best, s)
        total += best
    assert ll == pytest.approx(total, abs=1e-10)


def test_scite_newick_is_read_as_a_parent_array():
    """SCITE's _ml*.newick (labels = mutation index + 1, root = n + 1), read by
    the SCITE peer benchmark to rescore SCITE's tree under our model."""
    from benchmarks.noise_scite import parse_scite_newick
    np.testing.assert_array_equal(parse_scite_newick("((2)1,3)4\n", 3), [3, 0, 3])
    np.testing.assert_array_equal(parse_scite_newick("(((3)2)1)4", 3), [3, 0, 1])
    with pytest.raises(ValueError):
        parse_scite_newick("((2)1)4", 3)          # mutation 3 missing
