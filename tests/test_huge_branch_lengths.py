"""Huge and infinite branch lengths (issue 13): ln L finite and right, simulation draws
from the stationary distribution, ``inf`` refused.

Reference: when the branch above leaf ``a`` is long enough that P(t) = Π (every row the
stationary frequencies π), the leaf is independent of the rest of the tree, so
ln L(tree) = ln L(tree without a) + Σ_sites ln π(a's base) — a closed form."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from phylo.errors import TreeError
from phylo.io.alignment import Alignment
from phylo.io.newick import parse_newick
from phylo.likelihood import TreeLikelihood
from phylo.likelihood.simulate import simulate_alignment
from phylo.models import Model

#: Summation-order rounding of two ln L of ~-30 computed along different trees.
CLOSED_FORM_TOL = 1e-9

SEQS = {"a": "ACGTACGGTA", "b": "ACGAACGTTA", "c": "ACGGATGTCA", "d": "TCGGATGTCC"}
MODELS = ["JC", "HKY{3}+F{0.1,0.2,0.3,0.4}+G4{0.5}",
          "GTR{1,2,1,1,2}+F{0.3,0.2,0.2,0.3}+G4{2}"]


@pytest.mark.parametrize("model_text", MODELS)
@pytest.mark.parametrize("length", [1e3, 1e20, 1e300])
def test_huge_branch_gives_the_stationary_closed_form(model_text, length):
    aln = Alignment.from_sequences(SEQS)
    model = Model.from_string(model_text)
    full = parse_newick(f"((a:{length!r},b:0.1):0.1,c:0.2,d:0.3);")
    value = TreeLikelihood(aln, full, model).log_likelihood()
    rest = TreeLikelihood(aln.subset(["b", "c", "d"]), parse_newick("(b:0.2,c:0.2,d:0.3);"),
                          model).log_likelihood()
    pi = model.frequencies
    leaf = sum(np.log(pi["ACGT".index(ch)]) for ch in SEQS["a"])
    assert np.isfinite(value)
    assert value == pytest.approx(rest + leaf, abs=CLOSED_FORM_TOL)


def test_transition_matrix_limit_is_stationary():
    model = Model.from_string("GTR{1,2,1,1,2}+F{0.3,0.2,0.2,0.3}+G4{0.5}")
    p = model.transition_matrices(np.array([1e20, 1e300]))
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p, np.broadcast_to(model.frequencies, p.shape), atol=1e-15)


def test_simulate_huge_branch_draws_stationary_states():
    """Before the fix the leaf above a 1e20 branch was all 'T'."""
    model = "HKY{2}+F{0.1,0.2,0.3,0.4}"
    tree = parse_newick("((a:1e20,b:0.1):0.1,c:0.2,d:0.3);")
    aln = simulate_alignment(tree, model, 4000, seed=5)
    states = aln.states()[aln.taxa.index("a")]
    counts = [int(np.sum(states == m)) for m in (1, 2, 4, 8)]
    # seeded, so deterministic; a constant column would give p ~ 0
    assert stats.chisquare(counts, 4000 * np.array([0.1, 0.2, 0.3, 0.4])).pvalue > 1e-3


@pytest.mark.parametrize("bad, words", [(np.inf, "infinite"), (-1.0, "negative"),
                                        (np.nan, "missing")])
def test_non_finite_branch_lengths_are_refused(bad, words):
    tree = parse_newick("((a:1,b:0.1):0.1,c:0.2,d:0.3);")
    bl = tree.branch_lengths.copy()
    bl[tree.taxa.index("a")] = bad
    bad_tree = tree.with_branch_lengths(bl)
    with pytest.raises(TreeError, match=words):
        simulate_alignment(bad_tree, "JC", 10, seed=1)
    with pytest.raises(TreeError):
        TreeLikelihood(Alignment.from_sequences(SEQS), bad_tree,
                       Model.from_string("JC")).log_likelihood()
