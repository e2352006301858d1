"""`phylo noise solve|sample --rates FILE`: per-cell and per-mutation error
rates on the command line, equal to the library call, and bad files refused
with one line naming the file."""
from __future__ import annotations

import json

import numpy as np
import pytest

from phylo.cli import main
from phylo.noise import ErrorModel, read_matrix, simulate, solve, write_matrix, write_names
from phylo.noise.posterior import sample_posterior

#: the CLI and the library run the same seeded computation: equal to round-off
LL_TOL = 1e-9


@pytest.fixture
def phiscs(tmp_path):
    sim = simulate(24, 7, alpha=0.02, beta=0.2, missing=0.1, lineage="random-tree", seed=5)
    path = tmp_path / "m.tsv"
    write_matrix(path, sim.observed, "phiscs", cells=[f"c{i}" for i in range(24)],
                 mutations=[f"g{j}" for j in range(7)])
    return path


def _write(path, header, rows, order):
    lines = [",".join(header)] + [",".join([name, *(repr(float(x)) for x in rows[name])]) for name in order]
    path.write_text("# per-entity rates\n" + "\n".join(lines) + "\n")
    return path


def _solve_json(capsys, args):
    capsys.readouterr()
    assert main(["noise", "solve", *args, "--format", "json", "--quiet"]) == 0, \
        capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_per_cell_fn_equals_library(tmp_path, phiscs, capsys, rng):
    gm = read_matrix(phiscs)
    fn = rng.uniform(0.05, 0.4, 24)
    rows = {c: (fn[i],) for i, c in enumerate(gm.cells)}
    order = [str(c) for c in rng.permutation(gm.cells)]        # rows matched by name, not position
    rates = _write(tmp_path / "r.csv", ["cell", "fn"], rows, order)
    rec = _solve_json(capsys, [str(phiscs), "--rates", str(rates), "--fp", "0.02",
                               "--seed", "3", "-o", str(tmp_path / "s.tsv")])
    sol = solve(gm.values, model=ErrorModel(0.02, fn.reshape(-1, 1)), seed=3)
    assert rec["log_likelihood"] == pytest.approx(sol.log_likelihood, abs=LL_TOL)
    assert rec["error_model"]["fn"] == fn.reshape(-1, 1).tolist()
    np.testing.assert_array_equal(read_matrix(tmp_path / "s.tsv").values, sol.matrix)
    scalar = solve(gm.values, alpha=0.02, beta=float(fn.mean()), seed=3)
    assert abs(scalar.log_likelihood - sol.log_likelihood) > 1e-3  # the rates mattered


def test_per_mutation_ternary_scite_names_equals_library(tmp_path, capsys, rng):
    sim = simulate(30, 6, alpha=0.01, beta=0.2, missing=0.1, lineage="random-tree", seed=8)
    D = sim.observed.copy()
    D[(D == 1) & (rng.random(D.shape) < 0.2)] = 2
    path = tmp_path / "d.csv"
    write_matrix(path, D, "scite")
    names = [f"TP{j}" for j in range(6)]
    write_names(tmp_path / "d.geneNames", names)
    fp = rng.uniform(0.001, 0.05, 6)
    fn = rng.uniform(0.1, 0.3, 6)
    rows = {g: (fp[j], fn[j]) for j, g in enumerate(names)}
    rates = _write(tmp_path / "r.csv", ["mutation", "fp", "fn"], rows, names[::-1])
    rec = _solve_json(capsys, [str(path), "--rates", str(rates), "--hom", "0.1",
                               "--cc", "0.001", "--seed", "2"])
    model = ErrorModel(fp.reshape(1, -1), fn.reshape(1, -1), 0.1, 0.001, ternary=True)
    sol = solve(D, model=model, seed=2)
    assert rec["log_likelihood"] == pytest.approx(sol.log_likelihood, abs=LL_TOL)
    assert rec["error_model"]["model"] == "ternary"


def test_sample_with_rates_equals_library(tmp_path, phiscs, capsys):
    gm = read_matrix(phiscs)
    fp = np.linspace(0.005, 0.05, 7)
    rates = _write(tmp_path / "r.csv", ["mutation", "fp"],
                   {g: (fp[j],) for j, g in enumerate(gm.mutations)}, gm.mutations)
    prefix = str(tmp_path / "post")
    capsys.readouterr()
    assert main(["noise", "sample", str(phiscs), "--rates", str(rates), "--fn", "0.2",
                 "--chains", "2", "--iterations", "400", "--seed", "4", "--no-plot",
                 "--out-prefix", prefix, "--format", "json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    post = sample_posterior(gm.values, model=ErrorModel(fp.reshape(1, -1), 0.2), chains=2,
                            iterations=400, seed=4)
    assert rec == {**post.summary(gm.mutations), "files": rec["files"]}
    assert main(["noise", "sample", str(phiscs), "--fn", "0.2", "--out-prefix", prefix]) == 2
    assert "--fp" in capsys.readouterr().err


BAD = [
    ("unknown", "cell,fn\nc0,0.1\nzz,0.2\n", "unknown cell 'zz'"),
    ("missing ids", "cell,fn\nc0,0.1\nc1,0.1\n", "no rates for 22 cells"),
    ("duplicate", "cell,fn\nc0,0.1\nc0,0.2\n", "appears twice"),
    ("one", "mutation,fn\ng0,1.0\n", "[0, 1)"),
    ("negative", "mutation,fn\ng0,-0.1\n", "[0, 1)"),
    ("nan", "mutation,fn\ng0,nan\n", "[0, 1)"),
    ("inf", "mutation,fn\ng0,inf\n", "[0, 1)"),
    ("text", "mutation,fn\ng0,high\n", "'high'"),
    ("header", "sample,fn\nc0,0.1\n", "header"),
    ("column", "cell,dropout\nc0,0.1\n", "unknown rate column 'dropout'"),
    ("twice", "cell,fn,fn\nc0,0.1,0.1\n", "appears twice"),
    ("ragged", "cell,fn\nc0,0.1,0.2\n", "fields"),
    ("empty", "# nothing\n", "empty rates file"),
]


@pytest.mark.parametrize("label,text,needle", BAD, ids=[b[0] for b in BAD])
def test_bad_rates_file_exit_2(tmp_path, phiscs, capsys, label, text, needle):
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    capsys.readouterr()
    out = tmp_path / "never.tsv"
    assert main(["noise", "solve", str(phiscs), "--rates", str(bad), "--fp", "0.01",
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert str(bad) in err and needle in err, err
    assert not out.exists()


def test_rates_conflicts_and_gaps_refused(tmp_path, phiscs, capsys):
    gm = read_matrix(phiscs)
    rates = _write(tmp_path / "r.csv", ["cell", "fn"], {c: (0.2,) for c in gm.cells},
                   gm.cells)
    for extra, needle in ((["--fp", "0.01", "--fn", "0.2"], "--fn"),   # given twice
                          ([], "no fp rate")):                          # fp nowhere
        capsys.readouterr()
        assert main(["noise", "solve", str(phiscs), "--rates", str(rates), *extra]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and str(rates) in err and needle in err, err
    # a per-cell fp with --cc that sums to >= 1 is refused naming the rates file
    hi = _write(tmp_path / "hi.csv", ["cell", "fp"], {c: (0.95,) for c in gm.cells},
                gm.cells)
    capsys.readouterr()
    assert main(["noise", "solve", str(phiscs), "--rates", str(hi), "--fn", "0.2",
                 "--cc", "0.1"]) == 2
    err = capsys.readouterr().err
    assert str(hi) in err and "negative probability" in err, err


def test_read_rates_tabs_comments_and_square_matrix(tmp_path):
    from phylo.noise.io import read_rates
    names = ["a", "b", "c"]
    path = tmp_path / "r.tsv"
    path.write_text("# dropout per mutation\nmutation\tfn\thom\n\nc\t0.3\t0.01\n"
                    "a\t0.1\t0.02\nb\t0.2\t0.0\n")
    table = read_rates(path, cells=["x", "y", "z"], mutations=names)   # 3 x 3: square
    assert table.axis == "mutation"
    np.testing.assert_array_equal(table.rates["fn"], [[0.1, 0.2, 0.3]])
    np.testing.assert_array_equal(table.rates["hom"], [[0.02, 0.0, 0.01]])
    model = ErrorModel(0.01, table.rates["fn"], table.rates["hom"], 0.0, ternary=True)
    P = model.probabilities(3, 3)          # per mutation, not per cell
    assert P.shape[:2] == (1, 3) and P[0, 2, 0, 1] == 0.3
