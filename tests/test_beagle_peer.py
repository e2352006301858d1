"""BEAGLE as an independent peer: our ctypes binding (``benchmarks/_beagle.py``)
reproduces the BEAGLE 3.1.2 reference values of ``../shared/reference/primates`` and
agrees with ``phylo.likelihood`` on random trees.

Skipped with a reason when libhmsbeagle is not installed
(``apt-get install -y libhmsbeagle-dev``); ``PHYLO_REQUIRE_ALL=1`` makes that a failure.
"""
from __future__ import annotations

import itertools
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import _beagle  # noqa: E402  (imports without BEAGLE installed)
from phylo.io.alignment import read_alignment  # noqa: E402
from phylo.io.newick import parse_newick  # noqa: E402
from phylo.trees import Tree  # noqa: E402

#: The reference file prints BEAGLE's lnL to 10 decimals; our binding of the same
#: library differs from it by < 1e-10 (summation order); 1e-8 leaves room for that.
REFERENCE_ABS_TOL = 1e-8
#: Different BEAGLE configurations (SSE/plain, states/partials, scaling, root handling)
#: change only the floating-point order of operations: ~1e-12 relative.
CONFIG_REL_TOL = 1e-10
#: Two independent double-precision pruning implementations (BEAGLE vs phylo) agree
#: to rounding (~1e-13 relative); the brief's contract is 1e-8 relative.
PEER_REL_TOL = 1e-8
#: Central finite differences with h = 1e-5 on branches >= 0.01: truncation error
#: O(h^2 f''') stays below 1e-3 relative to max(1, |gradient|).
FD_REL_TOL = 1e-3


def _require_beagle() -> None:
    if not _beagle.available():
        reason = ("libhmsbeagle (BEAGLE 3.x) is not installed: "
                  "apt-get install -y libhmsbeagle-dev")
        if os.environ.get("PHYLO_REQUIRE_ALL") == "1":
            pytest.fail(reason + " (PHYLO_REQUIRE_ALL=1)")
        pytest.skip(reason)


def _phylo_likelihood():
    import phylo.likelihood as lik
    return lik


@pytest.fixture(scope="module")
def primates(shared_dir):
    ref_dir = shared_dir / "reference" / "primates"
    ref = json.loads((ref_dir / "likelihood.json").read_text())
    aln = read_alignment(ref_dir / "primates.nex")
    trees = {key: parse_newick((ref_dir / path).read_text(), taxa=aln.taxa)
             for key, path in ref["trees"].items()}
    return ref, aln, trees


def _case_arrays(case: dict, source: str) -> _beagle.ModelArrays:
    """ModelArrays from the case's explicit parameters: numpy eigen or phylo's Model."""
    m = case["model"]
    pi = m.get("pi", [0.25] * 4)
    if m["substitution"] == "HKY85":
        k = m["kappa"]
        ex = [1.0, k, 1.0, 1.0, k, 1.0]
    else:
        ex = m.get("exchangeabilities", [1.0] * 6)
    rates, weights = m["category_rates"], m["category_weights"]
    if source == "numpy":
        return _beagle.model_arrays(exchangeabilities=ex, frequencies=pi,
                                    category_rates=rates, category_weights=weights)
    import phylo.models as models
    model = models.Model.create("GTR", exchangeabilities=ex, frequencies=pi)
    lam, v, vinv = model.eigen()
    f = lambda x: np.ascontiguousarray(np.asarray(x, dtype=np.float64))  # noqa: E731
    return _beagle.ModelArrays(f(lam), f(v), f(vinv), f(model.frequencies), f(rates), f(weights))


def _case_ids():
    path = Path(os.environ.get("PHYLO_SHARED", REPO.parent / "shared"))
    path = path / "reference" / "primates" / "likelihood.json"
    if not path.exists():
        return ["missing"]
    return [c["name"] for c in json.loads(path.read_text())["cases"]]


# -- no BEAGLE needed --------------------------------------------------------------------
def test_module_imports_and_reports_a_clear_error_without_the_library():
    with pytest.raises(_beagle.BeagleUnavailableError, match="apt-get install -y libhmsbeagle-dev"):
        _beagle._load_from(["/nonexistent/libhmsbeagle.so"])


def test_gtr_eigen_reconstructs_q():
    lam, v, vinv = _beagle.gtr_eigen([1, 2, 1, 1, 2, 1], [0.3, 0.2, 0.2, 0.3])
    q = v @ np.diag(lam) @ vinv
    pi = np.array([0.3, 0.2, 0.2, 0.3])
    np.testing.assert_allclose(q.sum(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(-np.dot(pi, np.diag(q)), 1.0, rtol=1e-12)
    np.testing.assert_allclose(pi @ q, 0, atol=1e-12)


# -- reference values -------------------------------------------------------------------
@pytest.mark.parametrize("source", ["numpy", "phylo.Model"])
@pytest.mark.parametrize("name", _case_ids())
def test_reproduces_primates_reference(primates, name, source):
    _require_beagle()
    ref, aln, trees = primates
    case = next(c for c in ref["cases"] if c["name"] == name)
    arrays = _case_arrays(case, source)
    value, impl = _beagle.beagle_log_likelihood(aln, trees[case["tree"]], arrays)
    expected = case["lnL"]["beagle"]["lnL"]
    assert abs(value - expected) < REFERENCE_ABS_TOL, (name, impl, value, expected)


def test_reports_the_implementation(primates):
    _require_beagle()
    ref, aln, trees = primates
    arrays = _beagle.model_arrays()
    if platform.machine() in ("x86_64", "AMD64"):
        with _beagle.BeagleLikelihood(aln, trees["jc_ml"], arrays, vector="sse") as bl:
            assert bl.implementation == "CPU-4State-SSE-Double"
            assert "VECTOR_SSE" in bl.flags and "PRECISION_DOUBLE" in bl.flags
    with _beagle.BeagleLikelihood(aln, trees["jc_ml"], arrays, vector="none") as bl:
        assert bl.implementation == "CPU-4State-Double"
        assert "VECTOR_NONE" in bl.flags
    assert any(r["name"] == "CPU" for r in _beagle.resources())
    assert _beagle.version().startswith("3.")


def test_every_configuration_agrees(primates):
    """Tip states/partials x scaling none/manual/always x SSE/plain x root edge/identity."""
    _require_beagle()
    ref, aln, trees = primates
    case = next(c for c in ref["cases"] if c["name"] == "GTR+G4")
    arrays = _case_arrays(case, "numpy")
    expected = case["lnL"]["beagle"]["lnL"]
    for tip, scaling, vector, root in itertools.product(
            ("states", "partials"), ("none", "manual", "always"), ("sse", "none"),
            ("edge", "identity")):
        with _beagle.BeagleLikelihood(aln, trees["gtrg4_ml"], arrays, tip_mode=tip,
                                      scaling=scaling, vector=vector, root_mode=root) as bl:
            value = bl.log_likelihood()
        assert abs(value - expected) < REFERENCE_ABS_TOL, (tip, scaling, vector, root, value)
    with pytest.raises(ValueError, match="deprecated"):
        _beagle.BeagleLikelihood(aln, trees["gtrg4_ml"], arrays, scaling="auto")


def test_prepared_instance_matches_fresh_instances(primates):
    """'Prepare once, evaluate many': each new branch-length vector gives the value a
    fresh instance gives."""
    _require_beagle()
    ref, aln, trees = primates
    tree = trees["gtrg4_ml"]
    arrays = _beagle.model_arrays(exchangeabilities=[1, 2, 1, 1, 2, 1],
                                  frequencies=[0.3, 0.2, 0.2, 0.3],
                                  category_rates=[0.1, 0.5, 1.0, 2.4])
    rng = np.random.default_rng(7)
    bls = rng.uniform(0.01, 0.3, size=(4, tree.n_branches))
    with _beagle.BeagleLikelihood(aln, tree, arrays, scaling="manual") as bl:
        many = bl.log_likelihood_many(bls)
    for row, value in zip(bls, many):
        fresh, _ = _beagle.beagle_log_likelihood(aln, tree.with_branch_lengths(row), arrays)
        assert abs(value - fresh) <= CONFIG_REL_TOL * abs(fresh)


def test_ambiguous_tips_fall_back_to_partials(primates):
    _require_beagle()
    ref, aln, trees = primates
    states = aln.states().copy()
    states[0, :5] = 5   # R = A|G
    amb = type(aln).from_states(aln.taxa, states)
    arrays = _beagle.model_arrays()
    with _beagle.BeagleLikelihood(amb, trees["jc_ml"], arrays, tip_mode="states") as a, \
            _beagle.BeagleLikelihood(amb, trees["jc_ml"], arrays, tip_mode="partials") as b:
        assert a.n_partial_tips == 1
        assert abs(a.log_likelihood() - b.log_likelihood()) < REFERENCE_ABS_TOL


@pytest.mark.parametrize("rooted", [False, True])
def test_beagle_gradient_matches_finite_differences(primates, rooted):
    _require_beagle()
    ref, aln, trees = primates
    tree = trees["gtrg4_ml"]
    if rooted:
        tree = _random_tree(aln.taxa, np.random.default_rng(3), rooted=True)
    case = next(c for c in ref["cases"] if c["name"] == "GTR+G4")
    arrays = _case_arrays(case, "numpy")
    h = 1e-5
    with _beagle.BeagleLikelihood(aln, tree, arrays, gradient=True, scaling="manual") as bl:
        lnl, grad = bl.gradient()
        assert abs(lnl - bl.log_likelihood()) < REFERENCE_ABS_TOL
        fd = np.empty_like(grad)
        for v in range(tree.n_branches):
            x = tree.branch_lengths.copy()
            x[v] += h
            up = bl.log_likelihood(x)
            x[v] -= 2 * h
            fd[v] = (up - bl.log_likelihood(x)) / (2 * h)
    np.testing.assert_array_less(np.abs(fd - grad) / np.maximum(1.0, np.abs(grad)), FD_REL_TOL)


# -- agreement with phylo's own likelihood ---------------------------------------------
def _random_tree(taxa, rng: np.random.Generator, *, rooted: bool = False) -> Tree:
    """Random binary topology by stepwise addition, branch lengths U(0.01, 0.3)."""
    s = len(taxa)
    parent = [-1] * s
    order = rng.permutation(s)
    # start with a cherry under a root
    parent.append(-1)
    root = s
    parent[order[0]] = root
    parent[order[1]] = root
    for leaf in order[2:]:
        candidates = [v for v in range(len(parent)) if parent[v] >= 0 or v == root]
        target = int(rng.choice(candidates))
        new = len(parent)
        parent.append(parent[target])
        if parent[target] < 0:   # attaching above the root: new node becomes the root
            root = new
        parent[target] = new
        parent[leaf] = new
    lengths = rng.uniform(0.01, 0.3, size=len(parent))
    tree = Tree.from_parent_array(parent, lengths, list(taxa), rooted=True)
    return tree if rooted else tree.unrooted()


PEER_MODELS = ["JC", "HKY{4.0}+F{0.3,0.2,0.2,0.3}+G4{0.5}",
               "GTR{1,2,1,1,2}+F{0.3,0.2,0.2,0.3}+G4{0.5}",
               "GTR{1,2,1,1,2}+F{0.3,0.2,0.2,0.3}+I{0.2}+G4{0.7}"]


@pytest.mark.parametrize("model_string", PEER_MODELS)
def test_agrees_with_phylo_on_random_trees(primates, model_string):
    _require_beagle()
    lik = _phylo_likelihood()
    from phylo.models import Model
    ref, aln, trees = primates
    model = Model.from_string(model_string)
    arrays = _beagle.model_arrays(model)
    rng = np.random.default_rng(20261121)
    for rooted in (False, True, False):
        tree = _random_tree(aln.taxa, rng, rooted=rooted)
        ours = lik.TreeLikelihood(aln, tree, model)
        with _beagle.BeagleLikelihood(aln, tree, arrays, scaling="manual",
                                      gradient=True) as bl:
            for _ in range(2):
                bls = rng.uniform(0.005, 0.4, size=tree.n_branches)
                theirs = bl.log_likelihood(bls)
                mine = ours.log_likelihood(bls)
                assert abs(mine - theirs) <= PEER_REL_TOL * abs(theirs), (rooted, mine, theirs)
                assert abs(lik.log_likelihood(aln, tree.with_branch_lengths(bls), model)
                           - theirs) <= PEER_REL_TOL * abs(theirs)
                if not rooted:
                    # rooted trees: the two root branches are not identifiable; compare
                    # gradients on unrooted trees only
                    _, g_beagle = bl.gradient(bls)
                    _, g_ours = ours.gradient(bls)
                    np.testing.assert_allclose(g_ours, g_beagle, rtol=1e-6, atol=1e-8)
