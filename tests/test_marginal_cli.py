"""``phylo marginal`` in-process: JSON keys, several estimators, checkpoints, bad input."""
from __future__ import annotations

import json

import pytest

from phylo.cli import main
from phylo.io.newick import parse_newick
from phylo.likelihood import simulate_alignment


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("marginal_cli")
    tree = parse_newick("((A:0.1,B:0.05):0.03,C:0.2,D:0.08);")
    aln = simulate_alignment(tree, "JC", 200, seed=2)
    (d / "aln.fasta").write_text(aln.to_fasta())
    (d / "tree.nwk").write_text(tree.to_newick() + "\n")
    return d


def test_json_single_estimator(files, capsys):
    rc = main(["marginal", str(files / "aln.fasta"), str(files / "tree.nwk"), "--model", "JC",
               "--estimator", "stepping-stone", "--steps", "6", "--samples", "40",
               "--branch-prior-rate", "10", "--seed", "3", "--format", "json", "--quiet"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("log_marginal_likelihood", "std_error", "likelihood_evaluations", "seconds"):
        assert key in out
    assert out["settings"]["n_steps"] == 6 and out["seed"] == 3


def test_several_estimators_table(files, capsys):
    rc = main(["marginal", str(files / "aln.fasta"), str(files / "tree.nwk"),
               "--estimator", "gamma-laplus", "laplace", "--format", "json", "--quiet"])
    assert rc == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["estimator"] for r in rows] == ["gamma-laplus", "laplace"]
    rc = main(["marginal", str(files / "aln.fasta"), str(files / "tree.nwk"),
               "--estimator", "gamma-laplus", "maximum-likelihood", "--quiet"])
    assert rc == 0 and "gamma-laplus" in capsys.readouterr().out


def test_checkpoint_rerun_same_result(files, capsys, tmp_path):
    args = ["marginal", str(files / "aln.fasta"), str(files / "tree.nwk"), "--steps", "5",
            "--samples", "30", "--format", "json", "--quiet", "--checkpoint", str(tmp_path / "c")]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert first["log_marginal_likelihood"] == second["log_marginal_likelihood"]


@pytest.mark.parametrize("extra, message", [
    (["--estimator", "nope"], "valid names"),
    (["--model", "XYZ"], "error"),
    (["--branch-prior-rate", "-1"], "branch-prior-rate"),
])
def test_bad_input_one_line_exit_2(files, capsys, extra, message):
    rc = main(["marginal", str(files / "aln.fasta"), str(files / "tree.nwk"), "--quiet", *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err


def test_missing_file_and_taxon_mismatch(files, capsys, tmp_path):
    assert main(["marginal", str(tmp_path / "none.fasta"), str(files / "tree.nwk")]) == 2
    bad = tmp_path / "bad.nwk"
    bad.write_text("((A:0.1,B:0.05):0.03,C:0.2,X:0.08);\n")
    assert main(["marginal", str(files / "aln.fasta"), str(bad), "--quiet"]) == 2
    assert "X" in capsys.readouterr().err
