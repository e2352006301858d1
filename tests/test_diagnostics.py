"""ASDSF (MrBayes convention), KL conventions, credible sets, consensus."""
from __future__ import annotations

import json

import numpy as np
import pytest

from phylo.diagnostics import asdsf, asdsf_from_samples, credible_set, kl_divergence
from phylo.errors import PhyloError
from phylo.io.trees import read_topologies
from phylo.trees.consensus import majority_rule_consensus

MRBAYES_DECIMALS = 6   # MrBayes prints ASDSF with 6 decimals
HAND_TOL = 1e-12


def _write(tmp_path, name, trees):
    p = tmp_path / name
    p.write_text("\n".join(trees) + "\n")
    return p


def test_asdsf_hand_computation(tmp_path):
    # 5 taxa; splits: AB|CDE, DE|ABC, AC|BDE, BC|ADE
    t1 = "((A,B),C,(D,E));"    # splits {A,B}->CDE side, {D,E}
    t2 = "((A,C),B,(D,E));"    # {A,C}, {D,E}
    t3 = "((B,C),A,(D,E));"    # {B,C}, {D,E}
    run1 = _write(tmp_path, "r1.nwk", [t1, t1, t1, t2])        # AB .75 AC .25 DE 1
    run2 = _write(tmp_path, "r2.nwk", [t1, t2, t3, t3, t3])    # AB .2 AC .2 BC .6 DE 1
    sd = lambda a, b: abs(a - b) / np.sqrt(2.0)               # sample SD of two values
    res = asdsf([run1, run2], burnin=0, minpartfreq=0.10)
    expected = [sd(.75, .2), sd(.25, .2), sd(0, .6), 0.0]
    assert res.n_splits == 4
    assert res.asdsf == pytest.approx(np.mean(expected), abs=HAND_TOL)
    assert res.max_sdsf == pytest.approx(max(expected), abs=HAND_TOL)
    # minpartfreq 0.22: AC (.25 in run 1) stays, in no run is below... all stay except none
    res = asdsf([run1, run2], burnin=0, minpartfreq=0.5)    # AB (.75), BC (.6), DE
    assert res.n_splits == 3
    assert res.asdsf == pytest.approx(np.mean([sd(.75, .2), sd(0, .6), 0.0]), abs=HAND_TOL)
    # burn-in: int(0.25 * 4) = 1 and int(0.25 * 5) = 1 trees dropped
    res = asdsf([run1, run2], burnin=0.25, minpartfreq=0.0)
    f1 = {"AB": 2 / 3, "AC": 1 / 3, "BC": 0, "DE": 1}
    f2 = {"AB": 0, "AC": .25, "BC": .75, "DE": 1}
    exp = [np.std([f1[k], f2[k]], ddof=1) for k in f1]
    assert res.asdsf == pytest.approx(np.mean(exp), abs=HAND_TOL)
    with pytest.raises(PhyloError):
        asdsf([run1], burnin=0)


@pytest.mark.parametrize("case", ["primates", "DS4"])
def test_asdsf_equals_mrbayes(shared_dir, case):
    if case == "primates":
        d = shared_dir / "reference" / "primates" / "mrbayes_mcmc"
        runs = [d / "primates.run1.t.gz", d / "primates.run2.t.gz"]
        ref = json.loads((d / "asdsf.json").read_text())
        values = {float(k): v["asdsf"] for k, v in ref["sumt"].items()}
        max_sd = ref["sumt"]["0.10"]["max_sdsf"]
    else:
        d = shared_dir / "reference" / "DS4_mrbayes_mcmc"
        runs = [d / "DS4.run1.t.gz", d / "DS4.run2.t.gz"]
        ref = json.loads((d / "asdsf.json").read_text())
        values = {float(k): v for k, v in ref["asdsf_by_minpartfreq"].items()}
        max_sd = None
    samples = [read_topologies(r, burnin=0.25, rooted=False) for r in runs]
    for mpf, value in values.items():
        res = asdsf_from_samples(samples, minpartfreq=mpf)
        assert round(res.asdsf, MRBAYES_DECIMALS) == pytest.approx(value, abs=1e-9), mpf
        if max_sd is not None:
            assert round(res.max_sdsf, MRBAYES_DECIMALS) == pytest.approx(max_sd, abs=1e-9)
    if case == "DS4":
        # max SDSF = the largest Stddev(s) in MrBayes' .tstat
        sds = [float(line.split()[3]) for line in (d / "DS4.tstat").read_text().splitlines()
               if line[:1].isdigit()]
        res = asdsf_from_samples(samples, minpartfreq=0.10)
        assert res.max_sdsf == pytest.approx(max(sds), abs=1e-6)


def _same_result(a, b):
    assert a.asdsf == b.asdsf and a.max_sdsf == b.max_sdsf and a.n_splits == b.n_splits
    assert a.n_samples == b.n_samples and a.table.taxa == b.table.taxa
    assert np.array_equal(a.table.splits, b.table.splits)
    assert np.array_equal(a.table.freq, b.table.freq)


@pytest.mark.parametrize("case", ["primates", "DS4"])
def test_asdsf_concurrent_reading_is_deterministic(shared_dir, case):
    """asdsf() reads the runs on threads: the same split table and the same sums, bit for
    bit, as reading them one after the other (and MrBayes' value for DS4)."""
    if case == "primates":
        d = shared_dir / "reference" / "primates" / "mrbayes_mcmc"
        runs = [d / "primates.run1.t.gz", d / "primates.run2.t.gz"]
    else:
        d = shared_dir / "reference" / "DS4_mrbayes_mcmc"
        runs = [d / "DS4.run1.t.gz", d / "DS4.run2.t.gz"]
    samples = []
    for r in runs:    # sequential, the first run's taxa fixing the others' order
        samples.append(read_topologies(r, burnin=0.25, rooted=False,
                                       taxa=samples[0].taxa if samples else None))
    ref = asdsf_from_samples(samples, minpartfreq=0.10)
    for _ in range(3):
        _same_result(asdsf(runs, burnin=0.25, minpartfreq=0.10), ref)
    # four runs (more runs than cores), a sample first, a file repeated
    many = asdsf([samples[0], runs[1], runs[0], runs[1]], burnin=0.25, minpartfreq=0.10)
    ref4 = asdsf_from_samples([samples[0], samples[1], samples[0], samples[1]],
                              minpartfreq=0.10)
    _same_result(many, ref4)
    if case == "DS4":
        value = json.loads((d / "asdsf.json").read_text())["asdsf_by_minpartfreq"]["0.10"]
        assert round(ref.asdsf, MRBAYES_DECIMALS) == pytest.approx(value, abs=1e-9)


def test_asdsf_concurrent_newick_and_errors(tmp_path):
    """Newick runs (no taxa in the header: the first file fixes the order) and an
    error in a later run (raised as when reading in order)."""
    t1 = "((A,B),C,(D,E));"
    t2 = "((A,C),B,(D,E));"
    r1 = _write(tmp_path, "r1.nwk", [t1, t2, t1, t1])
    r2 = _write(tmp_path, "r2.nwk", ["((E,D),(C,B),A);", t2, t2])
    r3 = _write(tmp_path, "r3.nwk", [t1, "((A,B),C,(D,F));"])
    got = asdsf([r1, r2, r1], burnin=0, minpartfreq=0.0)
    s1 = read_topologies(r1, burnin=0, rooted=False)
    s2 = read_topologies(r2, burnin=0, rooted=False, taxa=s1.taxa)
    _same_result(got, asdsf_from_samples([s1, s2, s1], minpartfreq=0.0))
    with pytest.raises(PhyloError) as info:
        asdsf([r1, r2, r3], burnin=0)
    assert f"{r3}:2" in str(info.value)
    with pytest.raises(PhyloError, match="no such file"):
        asdsf([tmp_path / "missing.t", r3], burnin=0)


def test_kl_conventions():
    p = np.array([0.5, 0.3, 0.2])
    with np.errstate(divide="ignore"):
        lq = np.log(np.array([0.5, 0.5, 0.0]))
    r = kl_divergence(p, lq)
    assert r.kl == np.inf and r.n_unsupported == 1 and r.unsupported_mass == pytest.approx(0.2)
    assert r.kl_supported == pytest.approx(0.3 * np.log(0.3 / 0.5), abs=HAND_TOL)
    r = kl_divergence(p, lq, eps="machine")
    eps = np.finfo(float).eps
    assert r.kl == pytest.approx(0.3 * np.log(.6) + 0.2 * np.log(0.2 / eps), abs=HAND_TOL)
    assert kl_divergence(p, np.log(p)).kl == pytest.approx(0.0, abs=HAND_TOL)
    with pytest.raises(PhyloError):
        kl_divergence(p, lq[:2])


def test_credible_set_and_consensus(tmp_path):
    trees = ["((A,B),C,(D,E));"] * 6 + ["((A,C),B,(D,E));"] * 3 + ["((B,C),A,(D,E));"]
    p = _write(tmp_path, "x.nwk", trees)
    smp = read_topologies(p)
    cs = credible_set(smp, 0.95)
    assert cs.size == 3 and cs.prob.tolist() == pytest.approx([.6, .3, .1])
    assert credible_set(smp, 0.9).size == 2
    cons = majority_rule_consensus(smp)
    assert sorted(cons.support.tolist()) == pytest.approx([0.6, 1.0])
    assert cons.tree.n_leaves == 5 and cons.tree.is_binary()


def test_consensus_of_real_runs(shared_dir):
    d = shared_dir / "reference" / "primates" / "mrbayes_mcmc"
    smp = read_topologies([d / "primates.run1.t.gz", d / "primates.run2.t.gz"], burnin=0.25)
    cons = majority_rule_consensus(smp)
    assert cons.tree.is_binary()
    assert min(cons.support) == pytest.approx(0.9141145, abs=1e-6)   # MrBayes .tstat
    assert credible_set(smp, 0.95).size == 2                          # MrBayes sumt


@pytest.mark.parametrize("eps", [2.0, 1.0, 0.0, -1e-3, float("nan"), float("inf"), "x"])
def test_kl_eps_out_of_range_is_refused(eps):
    """Issue 13: ``--eps 2`` printed a negative KL; eps must lie in (0, 1)."""
    p = np.array([0.5, 0.3, 0.2])
    lq = np.array([np.log(0.6), np.log(0.4), -np.inf])
    with pytest.raises(PhyloError, match="eps"):
        kl_divergence(p, lq, eps=eps)


def test_kl_eps_that_invents_mass_is_refused_and_small_eps_is_nonnegative():
    """A clamp that makes q' sum above one could give KL < 0 (here q' = (1, 0.4) against
    p = (0.5, 0.5): 0.5 log 0.5 + 0.5 log(0.5/0.4) < 0): refused, naming the mass."""
    p = np.array([0.5, 0.5])
    lq = np.array([0.0, -np.inf])
    with pytest.raises(PhyloError, match="sum to 1.4"):
        kl_divergence(p, lq, eps=0.4)
    for eps in ("machine", 1e-12, 1e-3):
        p3 = np.array([0.5, 0.3, 0.2])
        lq3 = np.array([np.log(0.5), np.log(0.3), -np.inf])
        assert kl_divergence(p3, lq3, eps=eps).kl >= 0


def test_sbn_kl_cli_eps_2_is_an_error(tmp_path, capsys):
    """The CLI path of the same bug: exit 2, one line naming --eps's range."""
    from phylo.cli import main
    trees = tmp_path / "t.nwk"
    trees.write_text("((a,b),(c,d));\n((a,c),(b,d));\n((a,b),(c,d));\n")
    model = tmp_path / "m.json"
    assert main(["sbn", "fit", str(trees), "--method", "sa", "--out", str(model)]) == 0
    capsys.readouterr()
    ref = tmp_path / "r.nwk"
    ref.write_text("((a,d),(b,c));\n((a,b),(c,d));\n")
    assert main(["sbn", "kl", str(model), "--reference", str(ref), "--eps", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "eps must be in (0, 1)" in err[0]
