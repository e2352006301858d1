"""Bayesian noise and branching classifiers against direct enumeration."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from phylo.errors import PhyloError
from phylo.noise import (MISSING, branching_probability, is_linear, noise_probability,
                         parallel_mutation_probability, tree_matrix, uniform_mutation_tree)
from phylo.noise.hypothesis import _log_unrelated_trees
from phylo.noise.simulate import add_noise

#: exact enumeration and the brute force below sum the same terms in another
#: order: they agree to float round-off
EXACT_TOL = 1e-9
#: sampled probabilities: 4 chains × 1000 kept, autocorrelated trees give a
#: standard error of about 0.01 on these matrices; 0.05 is > 4 of those and far
#: below the error of a wrong prior weight (≥ 0.15 here)
MC_TOL = 0.05


def _trees(n):
    """Every rooted labelled tree on n mutations (root n) as a parent tuple, by
    filtering all parent assignments for acyclicity (not the Prüfer decoder)."""
    for parent in itertools.product(range(n + 1), repeat=n):
        ok = True
        for v in range(n):
            x, steps = v, 0
            while x != n and steps <= n:
                x, steps = parent[x], steps + 1
            ok = ok and x == n
        if ok:
            yield np.array(parent)


def _brute(D, alpha, beta):
    """(P(noisy | D), P(branching | D)) with prior 1/2 each, by summing the
    generative model directly over trees and attachments."""
    n_cells, n = D.shape
    z1, z0, zc, zb, nc, nb = 0.0, 0.0, 0.0, 0.0, 0, 0
    for parent in _trees(n):
        rows = tree_matrix(parent, np.arange(n + 1))
        lik1, lik0 = 1.0, 1.0
        for c in range(n_cells):
            s1 = s0 = 0.0
            for v in range(n + 1):
                p1, same = 1.0, True
                for j in range(n):
                    d = D[c, j]
                    if d == MISSING:
                        continue
                    obs = 1 if d >= 1 else 0
                    t = rows[v, j]
                    p1 *= (1 - beta if obs else beta) if t else (alpha if obs else 1 - alpha)
                    same = same and obs == t
                s1 += p1 / (n + 1)
                s0 += same / (n + 1)
            lik1 *= s1
            lik0 *= s0
        z1 += lik1
        z0 += lik0
        if np.bincount(parent, minlength=n + 1).max() <= 1:
            zc, nc = zc + lik1, nc + 1
        else:
            zb, nb = zb + lik1, nb + 1
    assert nc == math.factorial(n) and nc + nb == (n + 1) ** (n - 1)
    return z1 / (z1 + z0), (zb / nb) / (zb / nb + zc / nc)


def _cases():
    out = []
    for k, (cells, n) in enumerate([(5, 3), (6, 3), (4, 4)]):
        rng = np.random.default_rng(100 + k)
        _, _, A = uniform_mutation_tree(cells, n, seed=k)
        D = add_noise(A, 0.0, 0.15, seed=k)   # these seeds give informative cases (asserted)
        D[rng.random(D.shape) < 0.1] = MISSING
        out.append(D)
    return out


@pytest.mark.parametrize("case", range(3))
def test_exact_posteriors_match_brute_force(case):
    D = _cases()[case]
    alpha, beta = 0.03, 0.2
    p_noisy, p_branch = _brute(D, alpha, beta)
    r = noise_probability(D, alpha=alpha, beta=beta, method="exact")
    assert r.method == "exact" and r.probability == pytest.approx(p_noisy, abs=EXACT_TOL)
    assert 0.01 < p_noisy < 0.99          # an informative case, not a saturated one
    b = branching_probability(D, alpha=alpha, beta=beta, method="exact")
    assert b.probability == pytest.approx(p_branch, abs=EXACT_TOL)
    assert b.n_trees == (D.shape[1] + 1) ** (D.shape[1] - 1)
    # the Bayes factor and the prior give the probability
    odds = math.exp(b.log_bayes_factor)
    assert b.probability == pytest.approx(odds / (1 + odds), abs=EXACT_TOL)


@pytest.mark.parametrize("case", range(3))
def test_sampled_posteriors_match_brute_force(case):
    D = _cases()[case]
    alpha, beta = 0.03, 0.2
    p_noisy, p_branch = _brute(D, alpha, beta)
    r = noise_probability(D, alpha=alpha, beta=beta, method="mcmc", seed=4)
    assert r.method == "mcmc" and r.probability == pytest.approx(p_noisy, abs=MC_TOL)
    b = branching_probability(D, alpha=alpha, beta=beta, method="mcmc", seed=4)
    assert b.probability == pytest.approx(p_branch, abs=MC_TOL)
    # a different prior moves the sampled answer as Bayes' rule says
    b2 = branching_probability(D, alpha=alpha, beta=beta, prior=0.2, method="mcmc", seed=4)
    odds = p_branch / (1 - p_branch) * 0.25
    assert b2.probability == pytest.approx(odds / (1 + odds), abs=MC_TOL)


def test_calibrated_on_its_own_generative_model():
    """Matrices drawn from the classifiers' prior: the mean predicted
    probability equals the share of the class (calibration-in-the-large), and
    the high-probability bin is mostly right."""
    rng = np.random.default_rng(5)
    alpha, beta, reps = 0.05, 0.25, 300
    y_n, p_n, y_b, p_b = [], [], [], []
    for r in range(reps):
        noisy = bool(r % 2)
        _, _, A = uniform_mutation_tree(6, 3, seed=int(rng.integers(2**31)))
        D = add_noise(A, alpha, beta, seed=int(rng.integers(2**31))) if noisy else A
        y_n.append(noisy)
        p_n.append(noise_probability(D, alpha=alpha, beta=beta).probability)
        shape = "branching" if noisy else "chain"
        _, _, A = uniform_mutation_tree(6, 3, shape=shape, seed=int(rng.integers(2**31)))
        D = add_noise(A, alpha, beta, seed=int(rng.integers(2**31)))
        y_b.append(noisy)
        p_b.append(branching_probability(D, alpha=alpha, beta=beta).probability)
    for y, p in ((np.array(y_n), np.array(p_n)), (np.array(y_b), np.array(p_b))):
        # binomial sd of a mean of 300 Bernoulli(1/2) draws is 0.029
        assert abs(p.mean() - y.mean()) < 0.09
        hi = p > 0.8
        assert hi.sum() >= 20 and y[hi].mean() > 0.7


def test_shortcuts_and_limits():
    conflict = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.int8)
    r = noise_probability(conflict, alpha=0.01, beta=0.1)
    assert r.probability == 1.0 and r.method == "conflict" and r.log_bayes_factor == math.inf
    r = noise_probability(conflict, alpha=0.0, beta=0.0, prior=0.3)
    assert r.probability == 0.3 and r.method == "identical"
    one = np.array([[1], [0]], dtype=np.int8)
    assert branching_probability(one, alpha=0.01, beta=0.1).probability == 0.0
    # zero rates: a nested (chain) matrix of 3 distinct columns is linear for sure
    chain = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=np.int8)
    assert branching_probability(chain, alpha=0.0, beta=0.0).probability < 1e-6
    fork = np.array([[1, 1, 0], [1, 0, 1], [0, 0, 0]], dtype=np.int8)
    assert branching_probability(fork, alpha=0.0, beta=0.0).probability > 1 - 1e-6


def test_same_seed_same_answer():
    _, _, D = uniform_mutation_tree(10, 9, seed=2)     # noise-free: needs the sampler
    a = noise_probability(D, alpha=0.01, beta=0.1, seed=7)
    b = noise_probability(D, alpha=0.01, beta=0.1, seed=7)
    assert a.method == "mcmc" and a == b
    c = branching_probability(D, alpha=0.01, beta=0.1, seed=7, iterations=4000)
    d = branching_probability(D, alpha=0.01, beta=0.1, seed=7, iterations=4000)
    assert c == d


def test_bad_input():
    D = np.array([[1, 0], [0, 0]], dtype=np.int8)
    for kw in ({"alpha": None, "beta": 0.1}, {"alpha": 0.6, "beta": 0.1},
               {"alpha": 0.01, "beta": float("nan")}, {"alpha": 0.01, "beta": -0.1},
               {"alpha": 0.01, "beta": 0.1, "prior": 1.0},
               {"alpha": 0.01, "beta": 0.1, "method": "magic"},
               {"alpha": 0.01, "beta": 0.1, "chains": 1, "method": "mcmc"},
               {"alpha": 0.01, "beta": 0.1, "seed": -1}):
        for fn in (noise_probability, branching_probability):
            with pytest.raises(PhyloError):
                fn(D, **kw)
    with pytest.raises(PhyloError, match="both"):
        noise_probability(D, alpha=0.0, beta=0.1)
    with pytest.raises(PhyloError, match="exact"):
        branching_probability(np.zeros((3, 9), np.int8), alpha=0.01, beta=0.1, method="exact")
    with pytest.raises(PhyloError):
        noise_probability(np.full((2, 2), 5), alpha=0.01, beta=0.1)


def test_uniform_mutation_tree_shapes_and_uniformity():
    for shape in ("chain", "branching"):
        for s in range(5):
            parent, att, A = uniform_mutation_tree(8, 5, shape=shape, seed=s)
            np.testing.assert_array_equal(A, tree_matrix(parent, att))
            assert is_linear(tree_matrix(parent, np.arange(5))) == (shape == "chain")
    # 16 labelled trees on 3 mutations, each with probability 1/16
    counts: dict = {}
    for s in range(3200):
        parent, _, _ = uniform_mutation_tree(1, 3, seed=s)
        counts[tuple(parent)] = counts.get(tuple(parent), 0) + 1
    assert len(counts) == 16
    # binomial sd of a count with p = 1/16 over 3200 draws is 13.7; allow 5 sd
    assert max(abs(c - 200) for c in counts.values()) < 69
    with pytest.raises(PhyloError):
        uniform_mutation_tree(3, 1, shape="branching")
    with pytest.raises(PhyloError):
        uniform_mutation_tree(3, 3, shape="star")


def test_sampler_matches_enumeration_at_seven_mutations():
    """262,144 trees: the sampled probabilities against the exact ones on a
    noise-free matrix (the hard case for the noise estimator) and a noisy one."""
    _, _, A = uniform_mutation_tree(10, 7, shape="branching", seed=2)
    D = add_noise(A, 0.01, 0.1, seed=5)      # 4 flips, still conflict-free
    assert (D != A).sum() == 4
    for X in (A, D):
        for fn in (noise_probability, branching_probability):
            e = fn(X, alpha=0.01, beta=0.1, method="exact")
            m = fn(X, alpha=0.01, beta=0.1, method="mcmc", seed=1)
            assert m.probability == pytest.approx(e.probability, abs=MC_TOL)


def test_unmixed_chains_fall_back_to_mode_heights():
    """Chains too short to cross between the classes (as on 100 × 100) report
    'mcmc-modes' and still decide correctly on clear data."""
    m = 12
    parent = np.array([m, m, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7])   # two deep clades
    A = tree_matrix(parent, np.repeat(np.arange(m + 1), 3))
    D = add_noise(A, 0.01, 0.1, seed=3)
    # a small prior on branching up-weights the chains so much (e^14 × 13^11 / 12!)
    # that the chain started at the ML chain never leaves it
    r = branching_probability(D, alpha=0.01, beta=0.1, prior=1e-6, chains=2, iterations=40,
                              burn_in=0, seed=1)
    assert r.method == "mcmc-modes" and r.mc_error > 0.3
    assert r.decision and r.log_bayes_factor > 30
    chain = np.r_[m, np.arange(m - 1)]
    A = tree_matrix(chain, np.repeat(np.arange(m + 1), 3))
    r = noise_probability(A, alpha=0.01, beta=0.1, chains=2, iterations=40, burn_in=0, seed=1)
    assert r.method in ("mcmc", "mcmc-modes") and r.probability < 1e-6


# ---- infinite sites versus one parallel mutation -----------------------------

def _mean_lik(D, states, alpha, beta):
    """Π over cells of the mean over attachment rows of P(D_c | row)."""
    out = 1.0
    for c in range(D.shape[0]):
        s = 0.0
        for row in states:
            p = 1.0
            for j in range(D.shape[1]):
                if D[c, j] == MISSING:
                    continue
                o = 1 if D[c, j] >= 1 else 0
                p *= (1 - beta if o else beta) if row[j] else (alpha if o else 1 - alpha)
            s += p
        out *= s / len(states)
    return out


def _brute_parallel(D, alpha, beta, prior):
    """P(one parallel mutation | D) by summing both generative models over every
    tree: class 1 has a tree on n + 1 mutations whose extra one is mutation j's
    second occurrence, never on a root path with j, and the column j of a cell
    is 1 when either occurrence is on its path."""
    n = D.shape[1]
    z0 = np.mean([_mean_lik(D, tree_matrix(p, np.arange(n + 1)), alpha, beta)
                  for p in _trees(n)])
    z1 = 0.0
    for j in range(n):
        vals = []
        for p in _trees(n + 1):
            rows = tree_matrix(p, np.arange(n + 2))
            if rows[n, j] or rows[j, n]:
                continue
            merged = rows[:, :n].copy()
            merged[:, j] |= rows[:, n]
            vals.append(_mean_lik(D, merged, alpha, beta))
        z1 += np.mean(vals) / n
    return prior * z1 / (prior * z1 + (1 - prior) * z0)


def test_unrelated_tree_count_matches_enumeration():
    for n in (1, 2, 3):
        count = sum(1 for p in _trees(n + 1)
                    if not tree_matrix(p, np.arange(n + 2))[n, 0]
                    and not tree_matrix(p, np.arange(n + 2))[0, n])
        assert math.exp(_log_unrelated_trees(n)) == pytest.approx(count, rel=1e-12)


@pytest.mark.parametrize("k", range(3))
def test_parallel_mutation_probability_matches_brute_force(k):
    rng = np.random.default_rng(30 + k)
    D = (rng.random((5, 3)) < 0.45).astype(np.int8)
    D[rng.random(D.shape) < 0.1] = MISSING
    prior = (0.5, 0.3, 0.7)[k]
    exact = _brute_parallel(D, 0.05, 0.2, prior)
    r = parallel_mutation_probability(D, alpha=0.05, beta=0.2, prior=prior, seed=k)
    assert r.hypothesis == "parallel-mutation"
    assert r.probability == pytest.approx(exact, abs=MC_TOL)
    assert r == parallel_mutation_probability(D, alpha=0.05, beta=0.2, prior=prior, seed=k)


def test_parallel_mutation_detected_on_clear_data():
    """Two disjoint clades that share one mutation: only a parallel mutation
    (or many false positives at α = 0.001) explains it."""
    m = 6
    parent = np.array([m, m, 0, 1, 2, 3])
    A = tree_matrix(parent, np.repeat(np.arange(m + 1), 3))
    B = A.copy()
    B[A[:, 3] == 1, 2] = 1          # mutation 2 also in mutation 3's clade
    assert parallel_mutation_probability(B, alpha=0.001, beta=0.05, seed=1).probability > 0.9
    # without it the probability drops but stays positive: a second occurrence
    # that no cell carries is invisible, and the prior gives such trees weight
    assert parallel_mutation_probability(A, alpha=0.001, beta=0.05, seed=1).probability < 0.3
    with pytest.raises(PhyloError, match="2 mutations"):
        parallel_mutation_probability(np.array([[1], [0]]), alpha=0.01, beta=0.1)
    with pytest.raises(PhyloError, match="chains"):
        parallel_mutation_probability(B, alpha=0.01, beta=0.1, chains=1)
