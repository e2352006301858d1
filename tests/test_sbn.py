"""SBN estimators against brute force on 4–6 taxa, sampling, persistence, paper values."""
from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import stats

import naive_sbn as nv
from phylo.errors import EstimatorError, FormatError
from phylo.sbn import SBN, SRF, fit
from phylo.trees.splits import TopologySample

PROB_TOL = 1e-10        # sums/products of a few dozen float64 probabilities
EM_MONOTONE_TOL = 1e-12  # EM objective may only move up (float rounding allowance)
CHI2_ALPHA = 1e-3        # chi-square test level with a fixed seed (deterministic)
MC_SIGMAS = 4.0          # Monte Carlo entropy within 4 standard errors
PAPER_REL_TOL = 0.10     # our KL within 10% of the published per-replicate value


def names(n):
    return tuple(f"t{i}" for i in range(n))


def unrooted_training(n, k, rng):
    """k distinct random unrooted topologies of n taxa with random weights."""
    all_trees = list(nv.unrooted_trees(n))
    pick = rng.choice(len(all_trees), size=min(k, len(all_trees)), replace=False)
    trees = [all_trees[i] for i in pick]
    w = rng.gamma(1.0, size=len(trees))
    return all_trees, trees, w


@pytest.fixture(scope="module")
def six():
    rng = np.random.default_rng(5)
    all_trees, trees, w = unrooted_training(6, 25, rng)
    taxa = names(6)
    sample = nv.as_sample(trees, w, taxa, rooted=False)
    universe = nv.as_sample(all_trees, np.ones(len(all_trees)), taxa, rooted=False)
    return all_trees, trees, w, sample, universe


@pytest.mark.parametrize("method", ["ccd", "sa", "em", "em-alpha"])
def test_unrooted_probabilities_sum_to_one(six, method):
    all_trees, trees, w, sample, universe = six
    assert universe.n_topologies == 105
    model = fit(sample, method)
    p = np.exp(model.log_prob(universe))
    assert p.sum() == pytest.approx(1.0, abs=PROB_TOL)
    # every training topology has positive probability
    assert np.all(np.isfinite(model.log_prob(sample)))


@pytest.mark.parametrize("ccd", [False, True])
def test_sa_and_ccd_equal_brute_force(six, ccd):
    all_trees, trees, w, sample, universe = six
    model = fit(sample, "ccd" if ccd else "sa")
    params = nv.naive_sa(trees, list(w), ccd=ccd)
    ours = np.exp(model.log_prob(universe))
    # universe topologies are in enumeration order (all distinct)
    ref = np.array([nv.naive_unrooted_prob(t, params, ccd=ccd) for t in all_trees])
    np.testing.assert_allclose(ours, ref, atol=PROB_TOL)


def test_rooted_sbn_equals_counting_estimator():
    rng = np.random.default_rng(11)
    taxa = names(5)
    all_rooted = list(nv.rooted_trees(frozenset(range(5))))
    assert len(all_rooted) == 105
    pick = rng.choice(105, size=30, replace=False)
    trees = [all_rooted[i] for i in pick]
    w = rng.integers(1, 20, size=30).astype(float)
    sample = nv.as_sample(trees, w, taxa, rooted=True)
    model = fit(sample, "rooted")
    universe = nv.as_sample(all_rooted, np.ones(105), taxa, rooted=True)
    ours = np.exp(model.log_prob(universe))
    params = nv.naive_fit(list(zip(trees, w)))
    ref = np.array([nv.naive_rooted_prob(t, params) for t in all_rooted])
    np.testing.assert_allclose(ours, ref, atol=PROB_TOL)
    assert ours.sum() == pytest.approx(1.0, abs=PROB_TOL)
    # exact rooted entropy, support size and MAP
    assert model.entropy()[0] == pytest.approx(nv.entropy(ref), abs=1e-9)
    assert model.n_topologies() == int(np.count_nonzero(ref))
    top, lp = model.map_topology()
    assert lp == pytest.approx(np.log(ref.max()), abs=1e-9)
    # unrooted marginal of a rooted model is the sum over rootings
    unr = nv.as_sample(list(nv.unrooted_trees(5)), np.ones(15), taxa, rooted=False)
    assert np.exp(model.log_prob(unr)).sum() == pytest.approx(1.0, abs=PROB_TOL)


def test_rooting_posterior_matches_brute_force(six):
    all_trees, trees, w, sample, universe = six
    model = fit(sample, "em")
    post = model.rooting_posterior(sample)
    assert post.shape == (sample.n_topologies, 2 * 6 - 3)
    np.testing.assert_allclose(post.sum(axis=1), 1.0, atol=PROB_TOL)
    # naive: probabilities of the 9 rootings of each tree under the fitted parameters
    rp = {}
    cp = {}
    clades = [frozenset(nv_members(r)) for r in model.clades]
    for (a, b), p in zip(model.root_keys, model.root_prob):
        rp[frozenset([clades[a], clades[b]])] = p
    for (x, y, a, b), p in zip(model.cond_keys, model.cond_prob):
        cp[(clades[x], clades[y], frozenset([clades[a], clades[b]]))] = p
    u = sample.n_topologies - 1
    t = trees[u]
    naive = sorted(nv.naive_rooted_prob(r, (rp, cp)) for r in nv.rootings(t))
    ours = sorted(post[u] * np.exp(model.log_prob(sample)[u]))
    np.testing.assert_allclose(ours, naive, atol=PROB_TOL)


def nv_members(row):
    from phylo.trees.splits import members
    return members(row)


def test_em_never_decreases_objective(six):
    _, _, _, sample, _ = six
    for method in ("em", "em-alpha"):
        model = fit(sample, method, tol=1e-12, max_iter=200)
        obj = np.array(model.info.objective)
        assert obj.size > 2
        assert np.all(np.diff(obj) >= -EM_MONOTONE_TOL)


def test_em_alpha_moves_to_sa(six):
    _, _, _, sample, universe = six
    sa = np.exp(fit(sample, "sa").log_prob(universe))
    dist = []
    for alpha in (1e-3, 1e-1, 10.0, 1e4):
        q = np.exp(fit(sample, "em-alpha", alpha=alpha).log_prob(universe))
        dist.append(np.abs(q - sa).sum())
    assert all(a >= b for a, b in zip(dist, dist[1:]))
    assert dist[-1] < 1e-3


def test_sampling_matches_probabilities(six):
    _, _, _, sample, universe = six
    model = fit(sample, "em")
    n = 20000
    draws = model.sample(n, seed=42)
    assert draws.n_trees == n
    lp_univ = model.log_prob(universe)
    # match draws to the universe by key
    from phylo.trees.splits import RowTable
    tab = RowTable(universe.keys.shape[1])
    tab.add(universe.keys)
    ids = tab.get(draws.keys)
    assert np.all(ids >= 0)
    observed = np.zeros(universe.n_topologies)
    observed[ids] = draws.counts
    expected = np.exp(lp_univ) * n
    keep = expected > 5
    assert observed[~keep].sum() <= max(20, 3 * expected[~keep].sum())
    obs = np.append(observed[keep], observed[~keep].sum())
    exp = np.append(expected[keep], expected[~keep].sum())
    _, pval = stats.chisquare(obs, exp * obs.sum() / exp.sum())
    assert pval > CHI2_ALPHA
    # same seed, same draws
    again = model.sample(n, seed=42)
    assert np.array_equal(again.counts, draws.counts)


def test_entropy_support_map_unrooted(six):
    _, _, _, sample, universe = six
    model = fit(sample, "em")
    p = np.exp(model.log_prob(universe))
    h, se = model.entropy(method="exact")
    assert se == 0.0 and h == pytest.approx(nv.entropy(p), abs=1e-9)
    h_mc, se_mc = model.entropy(method="mc", n=4000, seed=1)
    assert abs(h_mc - h) < MC_SIGMAS * se_mc
    assert model.n_topologies() == int(np.count_nonzero(p > 0))
    top, lp = model.map_topology()
    assert lp == pytest.approx(np.log(p.max()), abs=1e-9)


def test_kl_to_reference(six):
    _, _, _, sample, universe = six
    model = fit(sample, "sa")
    # reference = the model itself evaluated on the universe: KL = 0
    ref = TopologySample(universe.taxa, False, universe.keys, universe.parents,
                         universe.n_nodes, np.exp(model.log_prob(universe)), 105)
    keep = ref.counts > 0
    ref = TopologySample(ref.taxa, False, ref.keys[keep], ref.parents[keep],
                         ref.n_nodes[keep], ref.counts[keep], int(keep.sum()))
    assert model.kl(ref).kl == pytest.approx(0.0, abs=1e-9)
    # the SRF misses topologies: inf by default, finite with the eps clamp
    srf = fit(sample, "srf")
    res = srf.kl(ref)
    assert res.kl == np.inf and res.n_unsupported > 0 and 0 < res.unsupported_mass < 1
    assert np.isfinite(srf.kl(ref, eps="machine").kl)


def test_weights_scale_invariant_and_save_load(six, tmp_path):
    _, _, _, sample, universe = six
    scaled = TopologySample(sample.taxa, False, sample.keys, sample.parents, sample.n_nodes,
                            sample.counts * 750001.0, sample.n_trees)
    for method in ("sa", "em", "ccd", "srf"):
        a = fit(sample, method)
        b = fit(scaled, method)
        np.testing.assert_allclose(a.log_prob(universe), b.log_prob(universe), atol=1e-9)
        path = tmp_path / f"{method}.json"
        a.save(path)
        c = SBN.load(path)
        assert type(c) is type(a)
        np.testing.assert_allclose(c.log_prob(universe), a.log_prob(universe), atol=1e-12)


def test_srf_and_errors(six, tmp_path):
    _, _, w, sample, universe = six
    srf = fit(sample, "srf")
    assert isinstance(srf, SRF)
    lp = srf.log_prob(universe)
    assert np.isfinite(lp).sum() == sample.n_topologies
    assert np.exp(lp[np.isfinite(lp)]).sum() == pytest.approx(1.0, abs=PROB_TOL)
    with pytest.raises(EstimatorError):
        fit(sample, "bogus")
    with pytest.raises(EstimatorError):
        fit(sample, "rooted")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(FormatError):
        SBN.load(bad)
    bad.write_text('{"format": "phylo-sbn"}')
    with pytest.raises(FormatError):
        SBN.load(bad)


def test_ds1_replicate_matches_paper(shared_dir):
    """DS1 short run rep 1 vs golden run: KL per estimator within 10% of the paper's."""
    import csv
    from phylo.io.trees import read_topologies
    data = shared_dir / "data" / "DS1"
    golden = TopologySample.concatenate(
        [read_topologies(data / "golden_run" / f"rep_{r}" / "DS1.trprobs.gz") for r in range(1, 11)],
        weights=[750001] * 10)
    golden.counts[:] = np.round(golden.counts)   # w x 750001 recovers integer sample counts
    train = read_topologies(data / "short_run" / "rep_1" / "DS1.trprobs.gz", taxa=golden.taxa)
    pub = {}
    with open(shared_dir / "reference" / "published" / "sbn_nips2018" /
              "real_data_kl_per_rep_DS1-4.csv") as fh:
        for row in csv.DictReader(fh):
            if row["dataset"] == "DS1" and row["rep"] == "1":
                pub = row
    for method, col in [("srf", "SRF"), ("ccd", "CCD"), ("sa", "SBN-SA"), ("em", "SBN-EM"),
                        ("em-alpha", "SBN-EM-alpha")]:
        kl = fit(train, method).kl(golden, eps="machine").kl
        assert kl == pytest.approx(float(pub[col]), rel=PAPER_REL_TOL), method


def test_em_min_iter_leaves_plateau(shared_dir):
    """DS2 short run 1: SBN-SA is a near-stationary point of EM. A tolerance rule alone
    stops there; with enough iterations EM leaves it and its objective (mean
    log-likelihood, never decreasing) ends clearly higher."""
    from phylo.io.trees import read_topologies
    from phylo.sbn import fit
    train = read_topologies(shared_dir / "data/DS2/short_run/rep_1/DS2.trprobs.gz")
    stuck = fit(train, "em", tol=1e-5, min_iter=0)
    escaped = fit(train, "em", tol=1e-12, min_iter=1000, max_iter=1000)
    assert stuck.info.n_iter <= 2
    objective = np.array(escaped.info.objective)
    assert np.all(np.diff(objective) >= -1e-12)
    # the plateau is flat to 1e-5 per step, yet EM gains much more than that overall
    assert objective[-1] - objective[0] > 1e-2


# -- the JSON model reader refuses damaged files (issue 13) ------------------------------

def _saved_model(tmp_path):
    from phylo.cli import main
    trees = tmp_path / "t.nwk"
    trees.write_text("((a,b),(c,(d,e)));\n((a,c),(b,(d,e)));\n((a,b),(c,(d,e)));\n")
    path = tmp_path / "m.json"
    assert main(["sbn", "fit", str(trees), "--method", "sa", "--out", str(path)]) == 0
    return path


@pytest.mark.parametrize("edit, words", [
    (lambda d: d["theta"].__setitem__(0, float("nan")), "finite and in [0, 1]"),
    (lambda d: d["theta"].__setitem__(0, 1.5), "finite and in [0, 1]"),
    (lambda d: d["theta"].__setitem__(0, d["theta"][0] * 0.5), "sum to"),
    (lambda d: d["clades"].__setitem__(0, [0, 99]), "taxon index outside"),
    (lambda d: d["root_keys"].__setitem__(0, d["root_keys"][0][::-1]), "increasing id"),
    (lambda d: d["cond_keys"].__setitem__(0, [0, -1, 10**6, 10**6 + 1]), "clade ids"),
    (lambda d: d["taxa"].__setitem__(1, d["taxa"][0]), "duplicate taxa"),
    (lambda d: d.__setitem__("fit", 3), "'fit' must be an object"),
    (lambda d: d.__setitem__("cond_group", d["cond_group"][::-1]), "cond_group"),
    (lambda d: d.__setitem__("rooted", "no"), "'rooted' must be true or false"),
    (lambda d: d.__setitem__("version", 2), "version 2 is not supported"),
])
def test_sbn_json_field_damage_is_refused(tmp_path, edit, words):
    import json
    from phylo.errors import FormatError
    from phylo.sbn import load
    path = _saved_model(tmp_path)
    d = json.loads(path.read_text())
    edit(d)
    path.write_text(json.dumps(d))
    with pytest.raises(FormatError, match=re.escape(words)) as info:
        load(path)
    assert "m.json" in str(info.value)


@pytest.mark.parametrize("data", [b"\x1f\x8b", b"\x00\xff\xfe" * 50, b""])
def test_sbn_json_bad_bytes_are_refused(tmp_path, data):
    from phylo.errors import FormatError
    from phylo.sbn import load
    path = tmp_path / "m.json"
    path.write_bytes(data)
    with pytest.raises(FormatError) as info:
        load(path)
    assert "m.json" in str(info.value)


def test_sbn_json_gzip_reads(tmp_path):
    import gzip
    from phylo.sbn import load
    path = _saved_model(tmp_path)
    gz = tmp_path / "m.json.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert np.array_equal(load(gz).theta, load(path).theta)
