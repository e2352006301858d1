"""The model-comparison job as a library call (:mod:`phylo.report.job`) and the
candidate builders it takes (:mod:`phylo.marginal.candidates`).

``phylo compare`` only parses options into these calls, so the CLI's report and the
library's must hold the same numbers for the same seed (tests/test_compare.py tests
the CLI's files, resume and Ctrl-C; here the library's own contract).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from phylo.errors import FormatError, ModelError, PhyloError, TreeError
from phylo.io.alignment import read_alignment
from phylo.marginal import get_estimator
from phylo.marginal.candidates import (CandidateSet, check_models, clade_bayes_factors,
                                       fixed_topology_candidates, read_candidate_trees,
                                       tree_space_candidates)
from phylo.report.job import ComparisonInterrupted, model_comparison_report

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
TREES = [DATA / "candidates" / f"{t}.nwk" for t in ("true", "nni1")]
#: Smallest ladder that exercises every code path (as tests/test_compare.py's TINY).
TINY_SETTINGS = {"n_steps": 3, "samples_per_step": 20, "burnin": 5, "thin": 2}
#: CLI and library runs share seeds: equal up to the JSON round trip of a double.
LIBRARY_MATCH = 1e-9


@pytest.fixture(scope="module")
def alignment():
    return read_alignment(DATA / "example.fasta")


# -- candidates ----------------------------------------------------------------------------
def test_fixed_topology_candidates_models_outer_trees_inner(alignment):
    made = fixed_topology_candidates(alignment, ["JC", "HKY+G4"], tree_files=TREES)
    assert [c.name for c in made.candidates] == ["JC on true", "JC on nni1",
                                                 "HKY+G4 on true", "HKY+G4 on nni1"]
    assert made.notes == ()
    assert all(c.tree(alignment.taxa).taxa == alignment.taxa for c in made.candidates)


def test_without_trees_the_nj_tree_is_used_and_said(alignment):
    made = fixed_topology_candidates(alignment, ["JC"])
    assert [c.name for c in made.candidates] == ["JC on nj"]
    assert any("neighbour-joining" in n for n in made.notes)


def test_constraint_candidate_contains_the_constraint(alignment):
    taxa = alignment.taxa
    constraint = f"(({taxa[0]},{taxa[3]}),{','.join(taxa[1:3] + taxa[4:])});"
    made = fixed_topology_candidates(alignment, ["JC"], constraints=[constraint])
    tree = made.candidates[0].tree(taxa)
    pair = {taxa[0], taxa[3]}
    leaves = {tree.taxa[i] for i in range(tree.n_leaves)}
    # the cherry (taxa[0], taxa[3]) is a split of the neighbour-joining tree
    assert any({tree.taxa[a], tree.taxa[b]} == pair
               for v in range(tree.n_leaves, tree.n_nodes)
               for a, b in [tuple(tree.children[v, :2])] if tree.n_children[v] == 2
               and a < tree.n_leaves and b < tree.n_leaves)
    assert leaves == set(taxa) and any("constraint" in n for n in made.notes)


def test_several_trees_in_one_file_are_numbered(tmp_path, alignment):
    both = tmp_path / "two.nwk"
    both.write_text("".join(p.read_text().strip() + "\n" for p in TREES))
    named = read_candidate_trees([both], alignment.taxa)
    assert [t.name for t in named] == ["two#1", "two#2"]
    assert named[1].source.endswith("(tree 2)")


@pytest.mark.parametrize("models, error", [(["JC", "JC"], PhyloError), ([], PhyloError),
                                           (["NOPE+G4"], ModelError)])
def test_bad_model_lists_are_refused(models, error):
    with pytest.raises(error):
        check_models(models)


def test_polytomy_and_missing_file_are_refused(tmp_path, alignment):
    star = tmp_path / "star.nwk"
    star.write_text("(" + ",".join(alignment.taxa) + ");\n")
    with pytest.raises(TreeError, match="not binary") as info:
        read_candidate_trees([star], alignment.taxa)
    assert str(star) in str(info.value)
    with pytest.raises(FormatError, match="no such file"):
        read_candidate_trees([tmp_path / "absent.nwk"], alignment.taxa)


def test_tree_space_candidates_and_clade_evidence(alignment):
    runs = [DATA / "example.run1.t", DATA / "example.run2.t"]
    made = tree_space_candidates(["JC", "HKY+G4"], runs, burnin=0.25)
    assert [c.topology_kind for c in made.candidates] == ["tree-sample"] * 2
    assert any("No sample model" in n for n in made.notes)
    with pytest.raises(PhyloError, match="burn-in"):
        tree_space_candidates(["JC"], runs, burnin=1.0)
    taxa = alignment.taxa
    evidence = clade_bayes_factors(alignment, runs, clades=[taxa[:2]])
    assert len(evidence.rows) == 1 and len(evidence.notes) == 1
    row = evidence.rows[0]
    assert 0.0 <= row["posterior"] <= 1.0 and 0.0 < row["prior"] < 1.0


# -- the job -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def library_report(tmp_path_factory, alignment):
    out = tmp_path_factory.mktemp("job") / "report"
    made = fixed_topology_candidates(alignment, ["JC", "HKY+G4"], tree_files=TREES)
    seen = []
    done = model_comparison_report(alignment, made,
                                   get_estimator("stepping-stone", **TINY_SETTINGS),
                                   out=out, seed=3, progress=seen.append)
    return out, done, seen


def test_job_writes_the_report_and_reports_progress(library_report):
    out, done, seen = library_report
    for key in ("html", "md", "json", "csv"):
        assert Path(done.paths[key]).stat().st_size > 0
    assert json.loads((out / "report.json").read_text())["status"] == "complete"
    assert [e.done for e in seen] == [1, 2, 3, 4] and {e.total for e in seen} == {4}
    assert len(done.rows) == 4 and done.report["provenance"]["seed"] == 3


def test_job_equals_the_command_line(library_report, tmp_path):
    """``phylo compare`` with the same candidates, estimator and seed: the same rows."""
    from phylo.cli import main
    _, done, _ = library_report
    out = tmp_path / "cli"
    assert main(["compare", str(DATA / "example.fasta"), "--models", "JC", "HKY+G4",
                 "--trees", *map(str, TREES), "--steps", "3", "--samples", "20",
                 "--burnin", "5", "--set", "thin=2", "--seed", "3", "--out", str(out),
                 "--quiet"]) == 0
    cli = {r["problem"]: r for r in json.loads((out / "report.json").read_text())["rows"]}
    assert set(cli) == {r["problem"] for r in done.rows}
    for row in done.rows:
        assert cli[row["problem"]]["run_seed"] == row["run_seed"]
        assert cli[row["problem"]]["log_marginal_likelihood"] == pytest.approx(
            row["log_marginal_likelihood"], abs=LIBRARY_MATCH)


def test_job_refuses_an_unwritable_output_before_work(tmp_path, alignment):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    made = fixed_topology_candidates(alignment, ["JC"], tree_files=TREES[:1])
    calls = []
    with pytest.raises(PhyloError, match="is a file"):
        model_comparison_report(alignment, made, "stepping-stone", out=blocker, seed=1,
                                progress=calls.append)
    assert calls == []


def test_job_refuses_mixed_candidates_and_bad_seeds(tmp_path, alignment):
    fixed = fixed_topology_candidates(alignment, ["JC"], tree_files=TREES[:1]).candidates
    sample = tree_space_candidates(["JC"], [DATA / "example.run1.t"]).candidates
    with pytest.raises(PhyloError, match="mixes"):
        model_comparison_report(alignment, CandidateSet(fixed + sample), "stepping-stone",
                                out=tmp_path / "r", seed=1)
    for seed in (-1, 1.5, True):
        with pytest.raises(PhyloError, match="seed"):
            model_comparison_report(alignment, fixed, "stepping-stone", out=tmp_path / "r",
                                    seed=seed)


def test_interrupted_job_writes_partial_report(tmp_path, monkeypatch, alignment):
    from phylo.marginal import workflow
    real = workflow.evaluate_candidate
    calls = []

    def interrupt_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(workflow, "evaluate_candidate", interrupt_on_second)
    made = fixed_topology_candidates(alignment, ["JC"], tree_files=TREES)
    out = tmp_path / "partial"
    with pytest.raises(ComparisonInterrupted) as info:
        model_comparison_report(alignment, made, get_estimator("stepping-stone", **TINY_SETTINGS),
                                out=out, seed=3)
    assert info.value.finished == 1 and info.value.total == 2
    report = json.loads(Path(info.value.paths["json"]).read_text())
    assert report["status"] == "partial" and len(report["missing"]) == 1


def test_estimator_warnings_reach_the_report(tmp_path, alignment):
    """A fixed-topology estimate whose importance weights are heavy-tailed (a
    deliberately narrow Gamma-Laplus proposal) is named with its warning in the
    report's notes, not only kept in the stored diagnostics."""
    import dataclasses

    import numpy as np

    from phylo.marginal.estimators.laplace import GammaLaplusIS, fit_laplus

    class NarrowGammaLaplusIS(GammaLaplusIS):
        def _proposal(self, problem):
            q, f0, diag = fit_laplus(problem, "gamma")
            m = np.asarray(diag["map_branch_lengths"])
            fam = np.array(q.family)
            b = np.where((fam == "gamma") | (fam == "exponential"), q.b * 16.0, q.b)
            a = np.where(fam == "gamma", b * m + 1.0, q.a)
            return dataclasses.replace(q, a=a, b=b), f0, diag

    made = fixed_topology_candidates(alignment, ["JC"], tree_files=TREES[:1])
    done = model_comparison_report(alignment, made, NarrowGammaLaplusIS(n_samples=2000),
                                   out=tmp_path / "warned", seed=2)
    warned = [n for n in done.report["notes"] if n.startswith("JC on true: WARNING")]
    assert len(warned) == 1 and "Pareto k-hat" in warned[0]
    assert "Pareto k-hat" in (tmp_path / "warned" / "report.html").read_text()
