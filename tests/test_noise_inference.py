"""Noise elimination against brute force; noise and branching tests."""
from __future__ import annotations

import numpy as np
import pytest

from phylo.errors import PhyloError
from phylo.noise import (MISSING, add_parallel_mutations, branching_test, is_conflict_free,
                         is_linear, log_likelihood, noise_test, simulate, solve, solve_linear,
                         tree_matrix)

import naive_noise as naive

#: log-likelihoods agree to float round-off
LL_TOL = 1e-8
ALPHA, BETA = 0.05, 0.2


def _tiny(rng, n, m):
    D = (rng.random((n, m)) < 0.5).astype(np.int8)
    D[rng.random((n, m)) < 0.1] = MISSING
    return D


@pytest.mark.parametrize("shape", [(3, 3), (4, 3), (3, 4)])
def test_ml_matches_brute_force(rng, shape):
    for _ in range(4):
        D = _tiny(rng, *shape)
        best = naive.brute_force_ml(D, ALPHA, BETA)
        for method in ("exact", "search"):
            sol = solve(D, alpha=ALPHA, beta=BETA, method=method, seed=1)
            assert sol.log_likelihood == pytest.approx(best, abs=LL_TOL)
            assert is_conflict_free(sol.matrix)
            assert naive.log_likelihood(D, sol.matrix, ALPHA, BETA) == pytest.approx(
                sol.log_likelihood, abs=LL_TOL)
            np.testing.assert_array_equal(tree_matrix(sol.parent, sol.attachment), sol.matrix)


def test_linear_ml_matches_brute_force(rng):
    for _ in range(4):
        D = _tiny(rng, 4, 3)
        best = naive.brute_force_ml(D, ALPHA, BETA, linear=True)
        sol = solve_linear(D, alpha=ALPHA, beta=BETA, seed=1)
        assert sol.log_likelihood == pytest.approx(best, abs=LL_TOL)
        assert is_linear(sol.matrix)


def test_search_matches_exact_on_small_matrices(rng):
    for k in range(6):
        sim = simulate(12, 6, alpha=0.02, beta=0.2, missing=0.1, lineage="random-tree", seed=k)
        ex = solve(sim.observed, alpha=0.02, beta=0.2, method="exact")
        se = solve(sim.observed, alpha=0.02, beta=0.2, seed=k)
        assert se.log_likelihood == pytest.approx(ex.log_likelihood, abs=LL_TOL)


def test_solution_beats_truth_and_counts_flips():
    sim = simulate(60, 30, alpha=0.005, beta=0.2, lineage="random-tree", seed=11)
    sol = solve(sim.observed, alpha=0.005, beta=0.2, seed=1)
    assert sol.log_likelihood >= log_likelihood(sim.observed, sim.true, 0.005, 0.2) - LL_TOL
    obs = sim.observed != MISSING
    assert sol.flips == int((obs & (sol.matrix != sim.observed)).sum())
    assert sol.flips == sol.false_positives + sol.false_negatives
    assert sol.newick().endswith("root;")
    # same seed, same answer
    again = solve(sim.observed, alpha=0.005, beta=0.2, seed=1)
    np.testing.assert_array_equal(again.matrix, sol.matrix)


def test_conflict_free_input_is_a_fixed_point():
    sim = simulate(30, 12, alpha=0.001, beta=0.1, seed=4)
    sol = solve(sim.true, alpha=0.001, beta=0.1, seed=1)
    np.testing.assert_array_equal(sol.matrix, sim.true)
    assert sol.flips == 0


def test_estimated_rates_are_plausible():
    sim = simulate(80, 40, alpha=0.01, beta=0.2, lineage="random-tree", seed=8)
    sol = solve(sim.observed, seed=1)
    # ML overfits (fewer flips than the truth), so allow a wide band
    assert 0.0 < sol.alpha < 0.05 and 0.05 < sol.beta < 0.35


def test_bad_arguments():
    D = np.zeros((3, 3), dtype=np.int8)
    for a in (-0.1, 1.0, float("nan")):
        with pytest.raises(PhyloError):
            solve(D, alpha=a, beta=0.1)
    with pytest.raises(PhyloError, match="missing"):
        solve(np.full((3, 3), MISSING, np.int8), alpha=0.1, beta=0.1)
    with pytest.raises(PhyloError, match="seed"):
        solve(D, alpha=0.1, beta=0.1, seed=np.random.default_rng(1))
    with pytest.raises(PhyloError):
        solve(D, alpha=0.1, beta=0.1, method="magic")
    with pytest.raises(PhyloError):
        solve(np.zeros((3, 9), np.int8), alpha=0.1, beta=0.1, method="exact")
    with pytest.raises(PhyloError):
        solve(np.full((2, 2), 5), alpha=0.1, beta=0.1)


# ---- calibration of the noise / branching tests --------------------------------

def _rejection_rate(make, test, reps, n_bootstrap, level, seed):
    rng = np.random.default_rng(seed)
    rejections = 0
    for _ in range(reps):
        D = make(rng)
        rejections += test(D, alpha=ALPHA_T, beta=BETA_T, n_bootstrap=n_bootstrap,
                           seed=int(rng.integers(2**31))).reject(level)
    return rejections / reps


ALPHA_T, BETA_T = 0.01, 0.1
#: rejection rate under H0 may exceed the level by at most this (small samples)
SIZE_SLACK_FAST = 0.25
SIZE_SLACK_SLOW = 0.06
LEVEL = 0.1


def _h0_noise(rng, n=15, m=6):
    return simulate(n, m, alpha=ALPHA_T, beta=BETA_T, lineage="random-tree",
                   seed=int(rng.integers(2**31))).observed


def _h1_noise(rng, n=15, m=6):
    sim = simulate(n, m, alpha=ALPHA_T, beta=BETA_T, lineage="random-tree",
                   seed=int(rng.integers(2**31)))
    from phylo.noise import add_noise
    B = add_parallel_mutations(sim.true, 2, seed=int(rng.integers(2**31)))
    return add_noise(B, ALPHA_T, BETA_T, seed=int(rng.integers(2**31)))


def test_noise_test_fast_calibration():
    size = _rejection_rate(_h0_noise, noise_test, 12, 19, LEVEL, 1)
    assert size <= LEVEL + SIZE_SLACK_FAST


def test_noise_test_detects_violations():
    sim = simulate(40, 8, alpha=0.001, beta=0.02, lineage="coalescent", seed=3)
    from phylo.noise import add_noise
    B = add_parallel_mutations(sim.true, 3, seed=3)
    D = add_noise(B, 0.001, 0.02, seed=3)
    assert noise_test(D, alpha=0.001, beta=0.02, n_bootstrap=19, seed=1).p_value <= 0.05


def _h0_branch(rng, n=15, m=5):
    parent = np.r_[m, np.arange(m - 1)]          # a chain
    A = tree_matrix(parent, rng.integers(m + 1, size=n))
    from phylo.noise import add_noise
    return add_noise(A, ALPHA_T, BETA_T, seed=int(rng.integers(2**31)))


def test_branching_test_fast_calibration():
    size = _rejection_rate(_h0_branch, branching_test, 12, 19, LEVEL, 2)
    assert size <= LEVEL + SIZE_SLACK_FAST


def test_branching_test_detects_branching():
    m = 6
    parent = np.array([m, m, 0, 0, 1, 1])           # two clades under the root
    A = tree_matrix(parent, np.repeat(np.arange(m), 5))
    from phylo.noise import add_noise
    D = add_noise(A, 0.01, 0.1, seed=5)
    res = branching_test(D, alpha=0.01, beta=0.1, n_bootstrap=19, seed=1)
    assert res.p_value <= 0.05 and res.statistic > 0


@pytest.mark.slow
@pytest.mark.parametrize("make, test", [(_h0_noise, noise_test), (_h0_branch, branching_test)])
def test_calibration_slow(make, test):
    size = _rejection_rate(make, test, 150, 49, LEVEL, 7)
    assert size <= LEVEL + SIZE_SLACK_SLOW


@pytest.mark.slow
def test_noise_test_power_slow():
    power = _rejection_rate(_h1_noise, noise_test, 60, 49, LEVEL, 9)
    assert power >= 0.5
