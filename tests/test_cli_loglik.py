"""Tests of ``phylo loglik`` and ``phylo simulate``."""
from __future__ import annotations

import json

import pytest

from phylo.cli import main
from phylo.io.alignment import read_alignment
from phylo.io.newick import parse_newick
from phylo.likelihood import TreeLikelihood
from phylo.models import Model

REFERENCE_TOL = 1e-6  # absolute ln L vs BEAGLE (printed with 10 decimals)
CLI_VS_LIBRARY_TOL = 1e-9  # the CLI prints the library's double; JSON round-trips it


def test_loglik_primates_json(shared_dir, tmp_path, capsys):
    base = shared_dir / "reference/primates"
    ref = json.loads((base / "likelihood.json").read_text())
    trees = tmp_path / "trees.nwk"
    trees.write_text((base / ref["trees"]["jc_ml"]).read_text().strip() + "\n\n"
                     + (base / ref["trees"]["gtrg4_ml"]).read_text().strip() + "\n")
    assert main(["loglik", str(base / "primates.nex"), str(trees), "--model", "JC",
                 "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["log_likelihood"]) == 2
    jc = next(c for c in ref["cases"] if c["name"] == "JC69")
    assert abs(out["log_likelihood"][0] - jc["reference_lnL"]) < REFERENCE_TOL
    for fmt in ("text", "csv", "md"):
        assert main(["loglik", str(base / "primates.nex"), str(trees), "--format", fmt]) == 0
        assert "6424.2024" in capsys.readouterr().out


def test_simulate_then_loglik(tmp_path, capsys):
    tree = tmp_path / "t.nwk"
    tree.write_text("((a:0.1,b:0.2):0.05,c:0.3,d:0.1);\n")
    out = tmp_path / "sim.fasta"
    assert main(["simulate", str(tree), "--model", "HKY{3}+F{0.3,0.2,0.2,0.3}+G4",
                 "--sites", "200", "--seed", "4", "--out", str(out)]) == 0
    assert out.read_text().count(">") == 4
    assert main(["loglik", str(out), str(tree), "--model", "HKY{3}+F+G4", "--format", "json"]) == 0
    value = json.loads(capsys.readouterr().out)["log_likelihood"][0]
    aln = read_alignment(out)
    model = Model.from_string("HKY{3}+F+G4").with_empirical_frequencies(aln)
    library = TreeLikelihood(aln, parse_newick(tree.read_text()), model).log_likelihood()
    assert value == pytest.approx(library, abs=CLI_VS_LIBRARY_TOL)
    rnd = tmp_path / "r.fasta"
    assert main(["simulate", "--random-tree", "7", "--sites", "30", "--seed", "1",
                 "--out", str(rnd), "--tree-out", str(tmp_path / "r.nwk")]) == 0
    assert rnd.read_text().count(">") == 7


@pytest.mark.parametrize("argv,fragment", [
    (["--model", "WAG"], "valid names"),
    (["--model", "JC+Q"], "unknown model term"),
])
def test_loglik_errors(tmp_path, capsys, argv, fragment):
    aln = tmp_path / "a.fasta"
    aln.write_text(">a\nACGT\n>b\nACGA\n>c\nACTT\n")
    tree = tmp_path / "t.nwk"
    tree.write_text("(a:0.1,b:0.2,c:0.3);\n")
    assert main(["loglik", str(aln), str(tree), *argv]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err and err.count("\n") == 1


def test_loglik_taxon_mismatch_and_negative_length(tmp_path, capsys):
    aln = tmp_path / "a.fasta"
    aln.write_text(">a\nACGT\n>b\nACGA\n>c\nACTT\n")
    tree = tmp_path / "t.nwk"
    tree.write_text("(a:0.1,b:0.2,x:0.3);\n")
    assert main(["loglik", str(aln), str(tree)]) == 2
    assert "'x'" in capsys.readouterr().err
    tree.write_text("(a:0.1,b:-0.2,c:0.3);\n")
    assert main(["loglik", str(aln), str(tree)]) == 2
    assert "negative" in capsys.readouterr().err
