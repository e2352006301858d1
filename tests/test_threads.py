"""Pattern-parallel kernels (phylo._kernels.blocks) and the thread count.

The blocked evaluation must give the same bits for any number of threads (per-block
sums added in block order; the blocking depends on the data only) and agree with the
single-block kernels: every per-pattern quantity depends on its pattern only, but
within a block a pattern may be computed by the vector loop or its remainder, whose
fast-math contractions can differ in the last bit, hence SITE_TOL. The thread count set
for a call must be restored after it. Three threads need NUMBA_NUM_THREADS >= 3 at import,
so that part runs in a subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

from phylo.errors import PhyloError
from phylo.likelihood import TreeLikelihood
from phylo.likelihood.simulate import simulate_alignment
from phylo.models import Model
from phylo.threads import check_threads, threads
from phylo.trees.random import random_tree

REPO = Path(__file__).resolve().parent.parent
#: relative: ln L and the gradient of a blocked evaluation against the single-block
#: kernels differ only in the order of the sums over patterns (a few ulps per term)
REORDER_TOL = 1e-12
#: relative, site ln L blocked vs single-block (vector loop vs remainder: last bits)
SITE_TOL = 1e-13
#: relative: the MCMC loop evaluates on a re-rooted layout (as in test_likelihood)
INCREMENTAL_TOL = 1e-9
MODEL = "GTR{1,2,1,1,3}+F{0.3,0.2,0.2,0.3}+I{0.1}+G4{0.5}"


def _case(n_taxa, n_sites, model=MODEL, rate=1.0, seed=1):
    tree = random_tree(n_taxa, seed=seed, branch_length_rate=rate)
    model = Model.from_string(model)
    aln = simulate_alignment(tree, model, n_sites, seed=seed + 1)
    return aln, tree, model


def _outputs(tl, bl):
    value, grad = tl.gradient(bl)
    return tl.log_likelihood(bl), tl.pattern_log_likelihoods(bl), value, grad


@pytest.mark.parametrize("block", [8, 24, 40])
def test_blocked_matches_single_block(block):
    """Blocks that do not divide the pattern count: site ln L, ln L and the gradient
    equal to the single-block kernels' up to the last bits (see the module doc)."""
    aln, tree, model = _case(25, 260)
    one = TreeLikelihood(aln, tree, model)
    blk = TreeLikelihood(aln, tree, model, block_size=block)
    npat = aln.patterns.shape[1]
    assert one.n_blocks == 1 and blk.n_blocks == -(-npat // block) > 1
    assert npat % block != 0 or block == 8
    bl = one.tree.branch_lengths
    l1, p1, v1, g1 = _outputs(one, bl)
    l2, p2, v2, g2 = _outputs(blk, bl)
    np.testing.assert_allclose(p2, p1, rtol=SITE_TOL, atol=0)
    assert abs(l1 - l2) <= REORDER_TOL * abs(l1) and v2 == l2
    np.testing.assert_allclose(g2, g1, rtol=1e-10, atol=REORDER_TOL * abs(l1))
    rows = bl[None, :] * np.linspace(0.6, 1.4, 5)[:, None]
    single = np.array([blk.log_likelihood(r) for r in rows])
    assert np.array_equal(blk.log_likelihood_batch(rows), single)
    assert np.array_equal(blk.log_likelihood_batch(rows, parallel=False), single)
    assert np.array_equal(blk.log_likelihood_batch(rows[:1]), single[:1])


def test_blocked_rescaled_2000_taxa():
    """A 2,000-taxon tree that needs rescaling (in some blocks): site ln L identical
    to the single-block kernels' (SITE_TOL), ln L to reordering, the gradient too."""
    aln, tree, model = _case(2000, 120, "HKY{3}+F{0.3,0.2,0.2,0.3}+G4{0.5}", rate=5.0, seed=7)
    one = TreeLikelihood(aln, tree, model)
    blk = TreeLikelihood(aln, tree, model, block_size=48)
    assert blk.n_blocks > 1 and aln.patterns.shape[1] % 48 != 0
    bl = one.tree.branch_lengths
    l1, p1 = one.log_likelihood(bl), one.pattern_log_likelihoods(bl)
    l2, p2 = blk.log_likelihood(bl), blk.pattern_log_likelihoods(bl)
    assert blk.state.sflag.any() and p1.min() < -1000
    np.testing.assert_allclose(p2, p1, rtol=SITE_TOL, atol=0)
    assert abs(l1 - l2) <= REORDER_TOL * abs(l1)
    v1, g1 = one.gradient(bl)
    v2, g2 = blk.gradient(bl)
    assert v2 == l2 and np.all(np.isfinite(g2))
    np.testing.assert_allclose(g2, g1, rtol=1e-9, atol=1e-9 * abs(l1))


def test_blocked_incremental_updates_are_full_evaluations():
    """propose_branch / propose_all / reject on the blocked state: the same bits as a
    full blocked evaluation at the proposed lengths."""
    aln, tree, model = _case(40, 300, "HKY{2}+F{0.3,0.2,0.1,0.4}+G4{0.5}", seed=3)
    tl = TreeLikelihood(aln, tree, model, block_size=32)
    bl = tl.tree.branch_lengths.copy()
    tl.set_branch_lengths(bl)
    rng = np.random.default_rng(0)
    for j in rng.choice(bl.size, 6, replace=False):
        new = bl.copy()
        new[j] *= 1.5
        got = tl.propose_branch(int(j), new[j])
        if j % 2:
            tl.reject()
        else:
            tl.accept()
            bl = new
        assert got == tl.log_likelihood(new)
    scaled = bl * 0.9
    got = tl.propose_all(scaled)
    tl.reject()
    assert got == tl.log_likelihood(scaled)
    got = tl.propose_branch(0, bl[0] * 2)
    tl.accept()
    bl[0] *= 2
    assert got == tl.log_likelihood(bl)


def test_blocked_mcmc_chain_matches_blocked_evaluations():
    """The compiled incremental MCMC loop on the blocked layout reports the ln L of
    full evaluations, and the same chain as the single-block layout up to rounding."""
    from phylo.marginal import Problem
    from phylo.marginal.mcmc import Sampler
    aln, tree, _ = _case(15, 200, "JC", seed=5)
    res = {}
    for block in (None, 16):
        problem = Problem(aln, tree, "JC", block_size=block)
        sampler = Sampler(problem)
        res[block] = sampler.run(sampler.initial_state(), beta=0.7, n_samples=20, thin=5,
                                 burnin=3, store_z=True, rng=np.random.default_rng(3))
        for z, ll in zip(res[block].z, res[block].loglik):
            expect = problem.log_likelihood(z)    # user layout; the chain's is re-rooted
            assert abs(ll - expect) <= INCREMENTAL_TOL * abs(expect)
    assert problem.likelihood.n_blocks > 1
    np.testing.assert_allclose(res[16].loglik, res[None].loglik, rtol=1e-11)


def test_threads_restored_after_calls():
    before = numba.get_num_threads()
    aln, tree, model = _case(12, 100, seed=2)
    tl = TreeLikelihood(aln, tree, model, block_size=16, threads=1)
    tl.log_likelihood()
    tl.gradient()
    tl.log_likelihood_batch(tl.tree.branch_lengths[None, :].repeat(3, axis=0))
    assert numba.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with threads(1):
            assert numba.get_num_threads() == 1
            raise RuntimeError("inside")
    assert numba.get_num_threads() == before
    for bad in (0, -1, 10 ** 6, 1.5, True, "2"):
        with pytest.raises(PhyloError):
            check_threads(bad)
    with pytest.raises(PhyloError):
        TreeLikelihood(aln, tree, model, threads=0)
    with pytest.raises(PhyloError):
        TreeLikelihood(aln, tree, model, block_size=12)


_SCRIPT = r"""
import json, sys, numba, numpy as np
sys.path.insert(0, sys.argv[1])
from tests.test_threads import _case
from phylo.likelihood import TreeLikelihood
out = {}
for name, args, block in [("small", (25, 260), 40),
                          ("rescaled", (2000, 60, "HKY{3}+F{0.3,0.2,0.2,0.3}+G4{0.5}", 5.0, 7), 24)]:
    aln, tree, model = _case(*args)
    res = []
    for t in (1, 2, 3):
        tl = TreeLikelihood(aln, tree, model, block_size=block, threads=t)
        bl = tl.tree.branch_lengths
        v, g = tl.gradient(bl)
        rows = bl[None, :] * np.linspace(0.8, 1.2, 4)[:, None]
        res.append([tl.log_likelihood(bl).hex(), tl.pattern_log_likelihoods(bl).tobytes().hex(),
                    v.hex(), g.tobytes().hex(), tl.log_likelihood_batch(rows).tobytes().hex()])
        assert numba.get_num_threads() == 3
    out[name] = res
print(json.dumps(out))
"""


def test_same_bits_for_1_2_3_threads():
    """ln L, site ln L, the gradient and a batch: identical bits for 1, 2 and 3 threads
    (blocks that do not divide the pattern count; a rescaled 2,000-taxon case)."""
    env = dict(os.environ, NUMBA_NUM_THREADS="3", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(REPO)], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, res in out.items():
        assert res[0] == res[1] == res[2], name


def test_asdsf_reads_on_the_requested_threads(tmp_path, monkeypatch):
    """asdsf(threads=) and the thread count in effect (the CLI's --threads) decide how
    many run files are read at once (it used os.cpu_count() whatever was asked)."""
    import importlib
    from phylo.cli import main
    mod = importlib.import_module("phylo.diagnostics.asdsf")
    seen = []
    real = mod.ThreadPoolExecutor

    def pool(max_workers):
        seen.append(max_workers)
        return real(max_workers=max_workers)
    monkeypatch.setattr(mod, "ThreadPoolExecutor", pool)
    runs = []
    for i, trees in enumerate([["((A,B),C,(D,E));"] * 3, ["((A,C),B,(D,E));"] * 3] * 2):
        p = tmp_path / f"r{i}.nwk"
        p.write_text("\n".join(trees) + "\n")
        runs.append(p)
    ref = mod.asdsf(runs, burnin=0, threads=1)
    assert seen == []                                   # one thread: read in turn
    two = mod.asdsf(runs, burnin=0, threads=2)
    assert seen == [2] and two.asdsf == ref.asdsf
    with threads(1):
        mod.asdsf(runs, burnin=0)
    assert seen == [2]
    assert main(["asdsf", *map(str, runs), "--burnin", "0", "--threads", "1"]) == 0
    assert seen == [2]
    assert main(["asdsf", *map(str, runs), "--threads", "0"]) == 2
