"""`phylo noise` end to end, in-process and once in a subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


from phylo.cli import main
from phylo.noise import read_matrix

REPO = Path(__file__).resolve().parents[1]


def test_simulate_test_solve(tmp_path, capsys):
    noisy, true = tmp_path / "noisy.txt", tmp_path / "true.txt"
    assert main(["noise", "simulate", "--cells", "20", "--mutations", "8", "--fp", "0.01",
                 "--fn", "0.1", "--seed", "3", "-o", str(noisy), "--true-out", str(true)]) == 0
    assert read_matrix(noisy).shape == (20, 8)
    capsys.readouterr()
    assert main(["noise", "test", str(true), "--format", "json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["conflict_free"] is True and rec["conflicting_pair"] is None
    assert isinstance(rec["linear"], bool)
    out = tmp_path / "solved.txt"
    assert main(["noise", "solve", str(noisy), "--fp", "0.01", "--fn", "0.1",
                 "-o", str(out), "--format", "json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert set(rec) >= {"log_likelihood", "flips", "matrix_file", "tree"}
    assert rec["matrix_file"] == str(out)
    solved = read_matrix(out).values
    assert main(["noise", "test", str(out), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["conflict_free"] is True
    assert rec["flips"] == int((solved != read_matrix(noisy).values).sum())


def test_phiscs_and_conflict_pair(tmp_path, capsys):
    path = tmp_path / "m.tsv"
    path.write_text("cellID/mutID\tA\tB\tC\nc1\t1\t1\t0\nc2\t1\t0\t0\nc3\t0\t1\t1\n")
    assert main(["noise", "test", str(path), "--format", "json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["conflict_free"] is False and rec["conflicting_pair"] == ["A", "B"]
    assert rec["linear"] is False
    assert main(["noise", "solve", str(path), "--fp", "0.01", "--fn", "0.2"]) == 0
    assert (tmp_path / "m.solved.tsv").exists()


def test_bad_input_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("0 1\n1\n")
    assert main(["noise", "test", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and ":2:" in err and len(err.strip().splitlines()) == 1
    assert main(["noise", "test", str(tmp_path / "missing.txt")]) == 2
    ok = tmp_path / "ok.txt"
    ok.write_text("0 1\n1 0\n")
    capsys.readouterr()
    assert main(["noise", "solve", str(ok), "--fp", "2", "--fn", "0.1"]) == 2
    assert "alpha" in capsys.readouterr().err
    missing = tmp_path / "miss.txt"
    missing.write_text("0 3\n1 0\n")
    assert main(["noise", "test", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_subprocess(tmp_path):
    out = tmp_path / "sim.tsv"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = subprocess.run([sys.executable, "-m", "phylo", "noise", "simulate", "--cells", "6",
                          "--mutations", "4", "--format", "phiscs", "-o", str(out)],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert out.read_text().startswith("cellID/mutID\t")
    run = subprocess.run([sys.executable, "-m", "phylo", "noise", "test", str(out),
                          "--format", "json"], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr  # no missing entries: the checks run
    assert "conflict_free" in json.loads(run.stdout)


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


def test_unwritable_output_refused_before_the_solve(tmp_path, capsys, monkeypatch):
    import phylo.noise
    ok = tmp_path / "ok.txt"
    ok.write_text("0 1\n1 0\n")

    def no_solve(*a, **k):
        raise AssertionError("solve ran before the output path was checked")
    monkeypatch.setattr(phylo.noise, "solve", no_solve)
    for out, why in ((tmp_path, "directory"), (tmp_path / "no" / "x.txt", "folder")):
        capsys.readouterr()
        assert main(["noise", "solve", str(ok), "--fp", "0.01", "--fn", "0.1",
                     "-o", str(out)]) == 2
        _one_line_error(capsys, str(out), why)
    assert main(["noise", "simulate", "--cells", "4", "--mutations", "3",
                 "-o", str(tmp_path)]) == 2
    _one_line_error(capsys, "directory")


def test_bad_matrices_refused_in_one_line(tmp_path, capsys):
    cases = {
        "allmissing.txt": ("3 3\n3 3\n", "every entry is missing"),
        "dup.tsv": ("cellID/mutID\tA\tA\nc1\t1\t0\n", "duplicate mutation name"),
        "dupcell.tsv": ("cellID/mutID\tA\tB\nc1\t1\t0\nc1\t0\t0\n", "duplicate cell name"),
    }
    for name, (text, why) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        capsys.readouterr()
        assert main(["noise", "solve", str(path), "--fp", "0.01", "--fn", "0.1"]) == 2
        _one_line_error(capsys, str(path), why)
    gz = tmp_path / "t.txt"
    gz.write_bytes(b"\x1f\x8b")
    for cmd in (["test"], ["solve", "--fp", "0.01", "--fn", "0.1"]):
        assert main(["noise", cmd[0], str(gz), *cmd[1:]]) == 2
        _one_line_error(capsys, str(gz), "gzip")
    ok = tmp_path / "ok.txt"
    ok.write_text("0 1\n1 0\n")
    assert main(["noise", "solve", str(ok), "--fp", "0.01", "--fn", "0.1", "--seed", "-3"]) == 2
    _one_line_error(capsys, "seed")


def test_noise_test_on_missing_entries_speaks_cli(tmp_path, capsys):
    path = tmp_path / "miss.txt"
    path.write_text("0 3\n1 0\n")
    assert main(["noise", "test", str(path)]) == 2
    err = _one_line_error(capsys, str(path), "phylo noise solve")
    assert "solve()" not in err


def test_scite_ternary_with_gene_names(tmp_path, capsys):
    from phylo.noise import ErrorModel, solve
    (tmp_path / "d.csv").write_bytes(b"0 1 2 3 1\r1 1 0 2 0\r3 0 0 1 1")
    (tmp_path / "d.geneNames").write_text("TP53\nKRAS\nPIK3CA\n")
    out = tmp_path / "solved.txt"
    assert main(["noise", "solve", str(tmp_path / "d.csv"), "--fp", "0.01", "--fn", "0.2",
                 "--hom", "0.1", "--cc", "0.001", "-o", str(out), "--format", "json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["error_model"] == {"model": "ternary", "fp": 0.01, "fn": 0.2, "hom": 0.1,
                                  "cc": 0.001}
    assert set(rec["tree"]["parent"]) == {"TP53", "KRAS", "PIK3CA"}
    lib = solve(read_matrix(tmp_path / "d.csv").values,
                model=ErrorModel(0.01, 0.2, 0.1, 0.001, ternary=True), seed=1)
    assert rec["log_likelihood"] == lib.log_likelihood
    assert rec["hits"] >= 1 and rec["restarts"] >= rec["hits"]


def test_sample_writes_posterior_files(tmp_path, capsys):
    path = tmp_path / "m.tsv"
    path.write_text("cellID/mutID\tA\tB\tC\nc1\t1\t1\t0\nc2\t1\t0\t0\nc3\t1\t1\t1\n"
                    "c4\t1\t?\t1\n")
    prefix = tmp_path / "post"
    assert main(["noise", "sample", str(path), "--fp", "0.01", "--fn", "0.2", "--chains", "3",
                 "--iterations", "4000", "--out-prefix", str(prefix), "--format", "json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["chains"] == 3 and rec["rhat_log_likelihood"] < 1.1
    assert {Path(p).name for p in rec["files"]} == {
        "post.precedes.csv", "post.attachment.csv", "post.summary.json", "post.precedes.png"}
    lines = (tmp_path / "post.precedes.csv").read_text().splitlines()
    assert lines[0] == "precedes,A,B,C"
    # A is in every mutated cell: it precedes B and C in nearly every sampled tree
    assert float(lines[1].split(",")[2]) > 0.8 and float(lines[1].split(",")[3]) > 0.8
    assert main(["noise", "sample", str(path), "--fp", "0.01", "--fn", "0.2",
                 "--out-prefix", str(tmp_path / "no" / "x")]) == 2
    _one_line_error(capsys, "folder")


#: The CLI prints the library's probability; JSON round-trips a double exactly.
CLI_VS_LIBRARY = 1e-12


def test_test_with_rates_reports_the_bayesian_classifiers(tmp_path, capsys):
    """``noise test --fp --fn``: P(noisy) and P(branching) equal the library's
    classifiers (exact by enumeration at 5 mutations) for the same seed; a matrix with
    missing entries gets the probabilities and no exact checks."""
    from phylo.noise import branching_probability, noise_probability
    noisy = tmp_path / "noisy.txt"
    assert main(["noise", "simulate", "--cells", "8", "--mutations", "5", "--fp", "0.02",
                 "--fn", "0.2", "--seed", "5", "-o", str(noisy)]) == 0
    capsys.readouterr()
    assert main(["noise", "test", str(noisy), "--fp", "0.02", "--fn", "0.2", "--seed", "2",
                 "--format", "json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    D = read_matrix(noisy).values
    lib_noisy = noise_probability(D, alpha=0.02, beta=0.2, seed=2)
    lib_branch = branching_probability(D, alpha=0.02, beta=0.2, seed=2)
    assert abs(rec["p_noisy"] - lib_noisy.probability) <= CLI_VS_LIBRARY
    assert abs(rec["p_branching"] - lib_branch.probability) <= CLI_VS_LIBRARY
    assert rec["p_branching_method"] == "exact" and isinstance(rec["conflict_free"], bool)

    holes = tmp_path / "holes.txt"
    holes.write_text("0 3 1\n1 0 3\n1 1 0\n")
    assert main(["noise", "test", str(holes), "--fp", "0.01", "--fn", "0.1",
                 "--format", "json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["conflict_free"] is None and 0.0 <= rec["p_noisy"] <= 1.0
    assert rec["p_noisy"] == noise_probability(read_matrix(holes).values, alpha=0.01,
                                               beta=0.1, seed=1).probability


def test_test_rates_must_come_in_pairs(tmp_path, capsys):
    ok = tmp_path / "ok.txt"
    ok.write_text("0 1\n1 0\n")
    assert main(["noise", "test", str(ok), "--fp", "0.01"]) == 2
    err = capsys.readouterr().err
    assert "--fp and --fn" in err and len(err.strip().splitlines()) == 1
    assert main(["noise", "test", str(ok), "--fp", "0.01", "--fn", "1.5"]) == 2
    assert str(ok) in capsys.readouterr().err
