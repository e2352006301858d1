"""Our stepping stone against MrBayes 3.2.7a on primates (fixed topology, JC69, Exp(10)).

Reference: ../shared/reference/primates/mrbayes_ss/marginal.json — MrBayes 3.2.7a
(Debian mrbayes 3.2.7a-6), ``ss ngen=5100000 samplefreq=100 nruns=2 nchains=1
nsteps=50 alpha=0.4 burninss=-1`` with seeds 1, 2, 3: −6468.88, −6468.90, −6468.94
(MrBayes' "Mean"); per-run values span −6468.96 … −6468.81.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from phylo.io.alignment import read_alignment
from phylo.io.newick import parse_newick
from phylo.marginal import Problem, get_estimator

#: Fast test: 50 steps × 60 samples (about 1/130 of MrBayes' generations) has a
#: standard error near 0.6 nats; 2.5 nats is 4 of them.
FAST_TOL = 2.5
#: Slow test: MrBayes' own settings; agreement within the spread of MrBayes' six runs
#: widened by 3 of our standard errors.
N_SE = 3.0


@pytest.fixture(scope="module")
def primates(shared_dir):
    d = shared_dir / "reference/primates"
    aln = read_alignment(d / "primates.nex")
    tree = parse_newick((d / "mrbayes_ss/fixed_tree_jc_ml.nwk").read_text())
    ref = json.loads((d / "mrbayes_ss/marginal.json").read_text())
    return Problem(aln, tree, "JC", branch_prior_rate=10.0), ref


def _mrbayes(ref):
    runs = [x for a in ref["stepping_stone"]["analyses"] for x in a["logZ_per_run_from_ss_file"]]
    return float(np.mean(runs)), min(runs), max(runs)


def test_stepping_stone_agrees_with_mrbayes_fast(primates):
    problem, ref = primates
    mean, lo, hi = _mrbayes(ref)
    res = get_estimator("stepping-stone", alpha=0.4, samples_per_step=60, burnin=20,
                        thin=10).run(problem, seed=1)
    assert abs(res.log_marginal_likelihood - mean) < FAST_TOL, res


@pytest.mark.slow
def test_stepping_stone_agrees_with_mrbayes_full(primates):
    """MrBayes' generations: 50 steps × 10⁵ generations (750 kept + 250 burn-in, thin 100)."""
    problem, ref = primates
    mean, lo, hi = _mrbayes(ref)
    res = get_estimator("stepping-stone", alpha=0.4, samples_per_step=750, burnin=250,
                        thin=100).run(problem, seed=1)
    z = res.log_marginal_likelihood
    assert lo - N_SE * res.std_error <= z <= hi + N_SE * res.std_error, (z, res.std_error, lo, hi)
