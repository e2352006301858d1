"""SCITE's error models (binary, ternary, per-cell/per-mutation and zero rates)
against direct computation and brute force; SCITE/PhISCS file layouts."""
from __future__ import annotations

import gzip
import itertools
import math

import numpy as np
import pytest

from phylo.errors import GenotypeError, PhyloError
from phylo.noise import (MISSING, ErrorModel, log_likelihood, read_matrix, solve, tree_matrix,
                         write_matrix)

import naive_noise as naive

#: log-likelihoods agree to float round-off
LL_TOL = 1e-8


def _prob(d: int, t: int, fp: float, fn: float, hom: float, cc: float) -> float:
    """P(observed d | true t), written out from SCITE's table (Jahn et al. 2016)."""
    if d == MISSING:
        return 1.0
    table = {(0, 0): 1 - fp - cc, (1, 0): fp, (2, 0): cc,
             (0, 1): fn, (1, 1): 1 - fn - hom, (2, 1): hom}
    return table[(d, t)]


def _direct(D, A, rate) -> float:
    """Σ over entries of log P(D | A), rate(i, j) -> (fp, fn, hom, cc)."""
    total = 0.0
    for i, j in itertools.product(range(D.shape[0]), range(D.shape[1])):
        p = _prob(int(D[i, j]), int(A[i, j]), *rate(i, j))
        if p == 0.0:
            return -math.inf
        total += math.log(p)
    return total


def _brute(D, rate) -> float:
    """Best direct log-likelihood over every conflict-free 0/1 matrix."""
    best = -math.inf
    for A in naive.all_matrices(*D.shape):
        if not naive.three_gametes_pairs(A):
            best = max(best, _direct(D, A, rate))
    return best


def _ternary(rng, n, m, missing=0.15):
    D = rng.choice([0, 1, 2], size=(n, m), p=[0.5, 0.35, 0.15]).astype(np.int8)
    D[rng.random((n, m)) < missing] = MISSING
    return D


RATES = dict(fp=0.03, fn=0.2, hom=0.1, cc=0.01)


def test_ternary_likelihood_matches_direct_sum(rng):
    model = ErrorModel(ternary=True, **RATES)
    for _ in range(5):
        n, m = 9, 6
        parent = np.array([int(rng.integers(j + 1)) for j in range(m)])
        parent = np.where(parent == np.arange(m), m, parent)  # random recursive tree
        A = tree_matrix(parent, rng.integers(m + 1, size=n))
        D = _ternary(rng, n, m)
        want = _direct(D, A, lambda i, j: tuple(RATES.values()))
        assert log_likelihood(D, A, model=model) == pytest.approx(want, abs=LL_TOL)


@pytest.mark.parametrize("shape", [(3, 3), (4, 3), (3, 4)])
def test_ternary_ml_matches_brute_force(rng, shape):
    model = ErrorModel(ternary=True, **RATES)
    for _ in range(3):
        D = _ternary(rng, *shape)
        best = _brute(D, lambda i, j: tuple(RATES.values()))
        for method in ("exact", "search"):
            sol = solve(D, model=model, method=method, seed=2)
            assert sol.log_likelihood == pytest.approx(best, abs=LL_TOL)
            assert _direct(D, sol.matrix, lambda i, j: tuple(RATES.values())) == \
                pytest.approx(sol.log_likelihood, abs=LL_TOL)


def test_binary_model_reads_2_as_mutated(rng):
    D = _ternary(rng, 4, 3)
    D1 = np.where(D == 2, 1, D).astype(np.int8)
    a = solve(D, alpha=0.05, beta=0.2, method="exact")
    b = solve(D1, alpha=0.05, beta=0.2, method="exact")
    assert a.log_likelihood == pytest.approx(b.log_likelihood, abs=LL_TOL)
    assert a.log_likelihood == pytest.approx(naive.brute_force_ml(D1, 0.05, 0.2), abs=LL_TOL)


def test_per_cell_and_per_mutation_rates_match_brute_force(rng):
    n, m = 4, 3
    fn_cell = rng.uniform(0.05, 0.4, size=n)
    fp_mut = rng.uniform(0.001, 0.1, size=m)
    model = ErrorModel(fp=fp_mut, fn=fn_cell)
    for _ in range(3):
        D = (rng.random((n, m)) < 0.5).astype(np.int8)
        D[rng.random((n, m)) < 0.1] = MISSING
        best = _brute(D, lambda i, j: (fp_mut[j], fn_cell[i], 0.0, 0.0))
        for method in ("exact", "search"):
            sol = solve(D, model=model, method=method, seed=3)
            assert sol.log_likelihood == pytest.approx(best, abs=LL_TOL)
        assert sol.alpha is None and sol.beta is None  # not scalar rates


def test_zero_false_positive_rate_is_exact(rng):
    """--fp 0 (PhISCS-BnB): observed 1s must stay 1; the optimum equals the
    brute force over matrices where no observation is impossible."""
    for shape in [(3, 3), (4, 3), (3, 4)]:
        for _ in range(3):
            D = (rng.random(shape) < 0.4).astype(np.int8)
            D[rng.random(shape) < 0.1] = MISSING
            best = _brute(D, lambda i, j: (0.0, 0.25, 0.0, 0.0))
            assert best > -math.inf
            for method in ("exact", "search"):
                sol = solve(D, alpha=0.0, beta=0.25, method=method, seed=4)
                assert sol.log_likelihood == pytest.approx(best, abs=LL_TOL)
                assert not np.any((D == 1) & (sol.matrix == 0))
                assert sol.false_positives == 0


def test_zero_rates_on_conflicting_data_are_refused():
    D = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.int8)  # three gametes
    with pytest.raises(PhyloError, match="probability 0"):
        solve(D, alpha=0.0, beta=0.0, method="exact")
    # a conflict-free matrix is explained exactly by itself
    ok = np.array([[1, 0], [1, 1], [0, 0]], dtype=np.int8)
    sol = solve(ok, alpha=0.0, beta=0.0, seed=1)
    np.testing.assert_array_equal(sol.matrix, ok)
    assert sol.log_likelihood == 0.0


def test_bad_models():
    D = np.zeros((3, 3), dtype=np.int8)
    with pytest.raises(PhyloError, match="ternary"):
        ErrorModel(0.01, 0.1, hom=0.1)
    with pytest.raises(PhyloError, match="ambiguous"):
        solve(D, model=ErrorModel(np.full(3, 0.01), 0.1))
    with pytest.raises(PhyloError, match="negative probability"):
        solve(D, model=ErrorModel(0.01, 0.6, hom=0.5, ternary=True))
    with pytest.raises(PhyloError, match="both"):
        solve(D, model=ErrorModel(0.01, 0.1), alpha=0.1)
    D2 = np.array([[2, 0], [0, 1]], dtype=np.int8)
    with pytest.raises(PhyloError, match="probability 0 under both"):
        solve(D2, alpha=0.01, beta=0.1, hom=0.0, cc=0.0)


# ---- effort: restarts until the optimum is confirmed ----------------------------

def test_adaptive_restarts_confirm_the_optimum():
    from phylo.noise import simulate
    sim = simulate(40, 15, alpha=0.01, beta=0.2, missing=0.1, lineage="random-tree", seed=9)
    runs = [solve(sim.observed, alpha=0.01, beta=0.2, seed=s) for s in (1, 2, 3)]
    for sol in runs:
        assert sol.converged and sol.hits >= 3 and sol.restarts >= sol.hits
    # different seeds reach the same optimum; the same seed the same answer
    assert max(r.log_likelihood for r in runs) - min(r.log_likelihood for r in runs) < 1e-6
    again = solve(sim.observed, alpha=0.01, beta=0.2, seed=2)
    np.testing.assert_array_equal(again.matrix, runs[1].matrix)
    assert again.restarts == runs[1].restarts
    fixed = solve(sim.observed, alpha=0.01, beta=0.2, restarts=2, seed=1)
    assert fixed.restarts == 2
    with pytest.raises(PhyloError, match="confirmations"):
        solve(sim.observed, alpha=0.01, beta=0.2, confirmations=0)


# ---- file layouts -------------------------------------------------------------

def test_scite_layout_with_gene_names_and_cr_line_ends(tmp_path):
    # SCITE's dataHou18.csv: mutations × cells, 0/1/2/3, CR-only line ends,
    # names in dataHou18.geneNames beside it
    rows = ["0 1 2 3", "1 1 0 2", "3 0 0 1"]
    (tmp_path / "d.csv").write_bytes("\r".join(rows).encode())
    (tmp_path / "d.geneNames").write_text("TP53\nKRAS\nPIK3CA\n")
    gm = read_matrix(tmp_path / "d.csv")
    assert gm.shape == (4, 3)
    np.testing.assert_array_equal(gm.values[:, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(gm.values[:, 2], [3, 0, 0, 1])
    assert gm.mutations == ["TP53", "KRAS", "PIK3CA"]
    assert gm.cells == ["cell1", "cell2", "cell3", "cell4"]
    # an explicit names file; wrong counts and duplicates are refused
    (tmp_path / "n.txt").write_text("a\nb\n")
    with pytest.raises(GenotypeError, match="2 names for 3 mutations"):
        read_matrix(tmp_path / "d.csv", names=tmp_path / "n.txt")
    (tmp_path / "n.txt").write_text("a\nb\na\n")
    with pytest.raises(GenotypeError, match="duplicate mutation name 'a'"):
        read_matrix(tmp_path / "d.csv", names=tmp_path / "n.txt")
    # CRLF too
    (tmp_path / "e.txt").write_bytes("\r\n".join(rows).encode() + b"\r\n")
    np.testing.assert_array_equal(read_matrix(tmp_path / "e.txt").values, gm.values)


def test_phiscs_layout_and_duplicates(tmp_path):
    text = "cellID/mutID\tm1\tm2\tm3\nc1\t1\t0\t?\nc2\t0\t1\t1\n"
    (tmp_path / "x.SC").write_text(text)
    gm = read_matrix(tmp_path / "x.SC")
    np.testing.assert_array_equal(gm.values, [[1, 0, MISSING], [0, 1, 1]])
    assert gm.cells == ["c1", "c2"] and gm.mutations == ["m1", "m2", "m3"]
    (tmp_path / "y.SC").write_text(text.replace("c2", "c1"))
    with pytest.raises(GenotypeError, match="duplicate cell name 'c1'"):
        read_matrix(tmp_path / "y.SC")
    (tmp_path / "z.SC").write_text(text.replace("m3", "m1"))
    with pytest.raises(GenotypeError, match="duplicate mutation name 'm1'"):
        read_matrix(tmp_path / "z.SC")


def test_ternary_round_trip_and_gzip(tmp_path, rng):
    D = _ternary(rng, 6, 4)
    write_matrix(tmp_path / "t.txt", D, "scite")
    np.testing.assert_array_equal(read_matrix(tmp_path / "t.txt").values, D)
    with pytest.raises(GenotypeError, match="scite"):
        write_matrix(tmp_path / "t.SC", D, "phiscs")
    data = (tmp_path / "t.txt").read_bytes()
    (tmp_path / "t.txt.gz").write_bytes(gzip.compress(data))
    np.testing.assert_array_equal(read_matrix(tmp_path / "t.txt.gz").values, D)
    for bad in (b"\x1f\x8b", gzip.compress(data)[:-6]):
        (tmp_path / "bad.gz").write_bytes(bad)
        with pytest.raises(GenotypeError, match="gzip"):
            read_matrix(tmp_path / "bad.gz")
