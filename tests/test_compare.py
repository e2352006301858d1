"""``phylo compare`` end to end, resume and Ctrl-C; the neighbour-joining start tree.

Runs use tiny estimator settings (:data:`TINY`) so that the default test run stays
fast; the numbers are checked against the library call with the same seed, not
against truth (statistical accuracy is tested in tests/test_marginal*.py).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from phylo.io.newick import parse_newick

from phylo.cli import main
from phylo.io.alignment import Alignment, read_alignment
from phylo.trees.nj import SATURATED_DISTANCE, jc_distances, neighbor_joining, nj_tree, p_distances

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
#: Smallest settings that exercise every code path of a ladder estimator.
TINY = ["--steps", "3", "--samples", "20", "--burnin", "5", "--set", "thin=2"]
TINY_SETTINGS = {"n_steps": 3, "samples_per_step": 20, "burnin": 5, "thin": 2}
#: A resumed or re-run candidate must reproduce the numbers bit for bit; allow only
#: the float round trip through JSON (repr round-trips exactly, so this is 0 in practice).
REPRODUCE = 1e-12
#: The same estimator run through the CLI and through the library: same seeds, so
#: equal up to the JSON round trip.
LIBRARY_MATCH = 1e-9




# -- neighbour joining -----------------------------------------------------------------
def splits_of(tree) -> set[frozenset[str]]:
    """Non-trivial splits of an unrooted tree, each as the side without taxa[0]."""
    s = tree.n_leaves
    below: list[set[int]] = [set() for _ in range(tree.n_nodes)]
    for v in range(tree.n_nodes):
        if v < s:
            below[v] = {v}
        for c in tree.children[v, :tree.n_children[v]]:
            below[v] |= below[c]
    out = set()
    for v in range(s, tree.n_nodes - 1):
        side = below[v] if 0 not in below[v] else set(range(s)) - below[v]
        if 1 < len(side) < s - 1:
            out.add(frozenset(tree.taxa[i] for i in side))
    return out


def leaf_lengths(tree) -> dict[str, float]:
    return {tree.taxa[i]: float(tree.branch_lengths[i]) for i in range(tree.n_leaves)}


def test_nj_hand_example():
    """Saitou & Nei's algorithm on the 5-taxon additive matrix of the Wikipedia
    'Neighbor joining' article: NJ recovers the generating tree exactly
    (a:2, b:3, c:4, d:2, e:1; internal ab|cde 3, de|abc 2)."""
    d = np.array([[0, 5, 9, 9, 8], [5, 0, 10, 10, 9], [9, 10, 0, 8, 7],
                  [9, 10, 8, 0, 3], [8, 9, 7, 3, 0]], dtype=float)
    tree = neighbor_joining(d, "abcde")
    assert tree.is_binary() and not tree.rooted
    assert splits_of(tree) == {frozenset("cde"), frozenset("de")}
    assert leaf_lengths(tree) == {"a": 2.0, "b": 3.0, "c": 4.0, "d": 2.0, "e": 1.0}
    internal = sorted(float(x) for x in tree.branch_lengths[tree.n_leaves:])
    assert internal == [2.0, 3.0]
    # additive: path lengths reproduce the matrix
    ete = tree.to_ete3()
    for i, x in enumerate("abcde"):
        for j, y in enumerate("abcde"[i + 1:], i + 1):
            assert ete.get_distance(x, y) == pytest.approx(d[i, j])


def test_nj_rejects_bad_input():
    from phylo.errors import PhyloError
    with pytest.raises(PhyloError):
        neighbor_joining(np.zeros((2, 2)), "ab")
    with pytest.raises(PhyloError):
        neighbor_joining(np.array([[0, 1, 2], [1, 0, 1], [2, 5, 0]], float), "abc")


def test_jc_distances_by_hand():
    aln = Alignment.from_sequences({"x": "AAAAAAAAAA", "y": "AAAAAAAACC", "z": "AAAAAAAAN-",
                                    "w": "CGTACGTACG"})
    p = p_distances(aln)
    assert p[0, 1] == pytest.approx(0.2)
    assert p[0, 2] == 0.0 and p[1, 2] == 0.0            # ambiguous sites skipped pairwise
    d = jc_distances(aln)
    assert d[0, 1] == pytest.approx(-0.75 * math.log(1 - 4 / 3 * 0.2))
    assert np.allclose(d, d.T) and np.all(np.diag(d) == 0)
    assert p[0, 3] == pytest.approx(0.8)
    assert d[0, 3] == SATURATED_DISTANCE                  # p >= 3/4: the formula diverges


def test_nj_on_example_is_binary_with_alignment_taxa():
    aln = read_alignment(DATA / "example.fasta")
    tree = nj_tree(aln)
    assert tree.taxa == aln.taxa and tree.is_binary() and tree.n_branches == 2 * 8 - 3


# -- end to end ---------------------------------------------------------------------------
def run_cli(*argv: str) -> int:
    return main(["compare", *map(str, argv)])


def compare_args(out: Path, *extra: str, trees=("true", "nni1"), models=("JC", "HKY+G4")):
    return [DATA / "example.fasta", "--models", *models,
            "--trees", *[DATA / "candidates" / f"{t}.nwk" for t in trees],
            *TINY, "--seed", "3", "--out", out, "--quiet", *extra]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One complete in-process run: 2 models x 2 topologies."""
    out = tmp_path_factory.mktemp("compare") / "report"
    assert run_cli(*compare_args(out)) == 0
    return out


def test_compare_writes_every_file(finished):
    for name in ("report.html", "report.md", "report.json", "summary.csv",
                 "figures/estimates.png", "figures/estimates.svg", "figures/ladder.png",
                 "figures/trace.png", "checkpoint/run.json"):
        assert (finished / name).stat().st_size > 0, name
    report = json.loads((finished / "report.json").read_text())
    assert report["status"] == "complete" and not report["missing"]
    names = {s["candidate"] for s in report["summary"]}
    assert names == {"JC on true", "JC on nni1", "HKY+G4 on true", "HKY+G4 on nni1"}
    assert report["summary"][0]["rank"] == 1 and report["summary"][0]["log_bayes_factor"] == 0
    assert report["settings"]["estimator.n_steps"] == 3
    assert report["provenance"]["seed"] == 3
    assert "--seed 3" in report["provenance"]["command_line"]
    assert len(report["provenance"]["files"]) == 3          # alignment + 2 trees


def test_compare_numbers_match_library(finished):
    """The CLI's rows equal phylo.marginal.compare on the same problem and seed."""
    from phylo import marginal
    from phylo.io.trees import read_trees
    from phylo.models import Model
    report = json.loads((finished / "report.json").read_text())
    aln = read_alignment(DATA / "example.fasta")
    tree = next(read_trees(DATA / "candidates" / "nni1.nwk", taxa=aln.taxa))
    est = marginal.get_estimator("stepping-stone", **TINY_SETTINGS)
    problem = marginal.Problem(aln, tree, Model.from_string("HKY+G4"))
    rows = marginal.compare({"HKY+G4 on nni1": problem}, [est], repeats=1, seed=3)
    cli = [r for r in report["rows"] if r["problem"] == "HKY+G4 on nni1"]
    assert len(cli) == 1 and cli[0]["run_seed"] == rows[0]["run_seed"]
    assert cli[0]["seed"] == 3
    assert abs(cli[0]["log_marginal_likelihood"] - rows[0]["log_marginal_likelihood"]) \
        <= LIBRARY_MATCH
    summary = {s["candidate"]: s for s in report["summary"]}
    lnz = {n: s["log_marginal_likelihood"] for n, s in summary.items()}
    best = max(lnz, key=lnz.get)
    for n, s in summary.items():
        assert s["log_bayes_factor"] == pytest.approx(lnz[best] - lnz[n], abs=REPRODUCE)


def test_compare_stdout_formats(tmp_path, capsys, finished):
    # --resume on the finished run recomputes nothing and prints the summary again
    for fmt in ("json", "csv", "md", "text"):
        assert run_cli(*compare_args(finished, "--resume", "--format", fmt)) == 0
        out = capsys.readouterr().out
        if fmt == "json":
            data = json.loads(out)
            assert data["status"] == "complete" and len(data["summary"]) == 4
            assert data["files"]["html"].endswith("report.html")
        elif fmt == "csv":
            assert out.splitlines()[0].startswith("estimator,rank,candidate")
            assert len(out.strip().splitlines()) == 5
        elif fmt == "md":
            assert out.startswith("| estimator | rank | candidate")
        else:
            assert "evidence for the best" in out.splitlines()[0]


def test_compare_without_trees_uses_nj_and_says_so(tmp_path):
    out = tmp_path / "nj"
    assert run_cli(DATA / "example.fasta", "--models", "JC", *TINY, "--out", out,
                   "--quiet") == 0
    report = json.loads((out / "report.json").read_text())
    assert [c["name"] for c in report["candidates"]] == ["JC on nj"]
    assert any("neighbour-joining" in n for n in report["notes"])
    assert "neighbour-joining" in (out / "report.html").read_text()


def test_constraint_candidates(tmp_path, capsys):
    """A constraint string and a constraint file each add a candidate whose tree holds
    the constraint's splits; a constraint naming unknown taxa is one line, exit 2."""
    out = tmp_path / "cons"
    cfile = tmp_path / "mono.nwk"
    cfile.write_text("((sp_A,sp_G,sp_H),(sp_B,sp_C,sp_D,sp_E,sp_F));\n")
    assert run_cli(DATA / "example.fasta", "--models", "JC", *TINY, "--out", out, "--quiet",
                   "--constraint", "((sp_A,sp_E),sp_B,sp_C);", "--constraint", cfile) == 0
    report = json.loads((out / "report.json").read_text())
    trees = {c["name"]: c["tree"] for c in report["candidates"]}
    assert set(trees) == {"JC on constraint1", "JC on constraint2"}
    def has_split(tree_text, side, other):
        everyone = frozenset(side) | frozenset(other)
        return any({frozenset(s & everyone), frozenset(everyone - s)} ==
                   {frozenset(side), frozenset(other)}
                   for s in splits_of(parse_newick(tree_text)))

    assert has_split(trees["JC on constraint1"], {"sp_A", "sp_E"}, {"sp_B", "sp_C"})
    assert has_split(trees["JC on constraint2"], {"sp_A", "sp_G", "sp_H"},
                     {"sp_B", "sp_C", "sp_D", "sp_E", "sp_F"})
    capsys.readouterr()
    assert run_cli(DATA / "example.fasta", "--models", "JC", *TINY, "--out", tmp_path / "x",
                   "--quiet", "--constraint", "((zz,sp_A),sp_B,sp_C);") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'zz'" in err[0]


# -- Ctrl-C and --resume ---------------------------------------------------------------------
def test_ctrl_c_keeps_partial_report_and_resume_finishes(tmp_path, monkeypatch, finished,
                                                         capsys):
    from phylo.marginal import workflow
    real = workflow.evaluate_candidate
    calls: list[str] = []

    def interrupt_on_third(alignment, candidate, *args, **kwargs):
        calls.append(candidate.name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(alignment, candidate, *args, **kwargs)

    out = tmp_path / "report"
    monkeypatch.setattr(workflow, "evaluate_candidate", interrupt_on_third)
    assert run_cli(*compare_args(out)) == 130
    err = capsys.readouterr().err
    assert "partial report of 2 of 4" in err and "--resume" in err
    partial = json.loads((out / "report.json").read_text())
    assert partial["status"] == "partial"
    assert partial["finished"] == calls[:2] and len(partial["missing"]) == 2

    assert "Partial report" in (out / "report.html").read_text()

    calls.clear()
    monkeypatch.setattr(workflow, "evaluate_candidate",
                        lambda a, c, *r, **k: (calls.append(c.name), real(a, c, *r, **k))[1])
    assert run_cli(*compare_args(out, "--resume")) == 0
    assert len(calls) == 2 and set(calls) == set(partial["missing"])   # skipped the finished
    resumed = json.loads((out / "report.json").read_text())
    uninterrupted = json.loads((finished / "report.json").read_text())
    assert resumed["status"] == "complete"
    key = lambda r: (r["problem"], r["repeat"])  # noqa: E731
    for a, b in zip(sorted(resumed["rows"], key=key), sorted(uninterrupted["rows"], key=key)):
        assert a["problem"] == b["problem"]
        assert abs(a["log_marginal_likelihood"] - b["log_marginal_likelihood"]) <= REPRODUCE


def test_ctrl_c_inside_a_ladder_resumes_from_its_checkpoint(tmp_path, monkeypatch, finished):
    """A KeyboardInterrupt in the middle of a candidate's ladder: the rung checkpoint
    lets --resume continue that candidate, with the uninterrupted numbers."""
    from phylo.marginal.estimators import power_posterior as pp
    real = pp.SteppingStone._estimate
    state = {"n": 0}

    def stop_second(self, problem, *, checkpoint=None, **kw):
        state["n"] += 1
        if state["n"] == 2:
            kw["stop_after"] = 2        # library test hook: KeyboardInterrupt after 2 rungs
        return real(self, problem, checkpoint=checkpoint, **kw)

    monkeypatch.setattr(pp.SteppingStone, "_estimate", stop_second)
    out = tmp_path / "report"
    assert run_cli(*compare_args(out, models=("JC",))) == 130
    assert list((out / "checkpoint").glob("*.npz")), "the interrupted ladder left no checkpoint"
    monkeypatch.setattr(pp.SteppingStone, "_estimate", real)
    assert run_cli(*compare_args(out, "--resume", models=("JC",))) == 0
    resumed = {r["problem"]: r for r in json.loads((out / "report.json").read_text())["rows"]}
    full = {r["problem"]: r for r in json.loads((finished / "report.json").read_text())["rows"]}
    for name, row in resumed.items():
        assert abs(row["log_marginal_likelihood"] - full[name]["log_marginal_likelihood"]) \
            <= REPRODUCE
    assert not list((out / "checkpoint").glob("*.npz"))


def test_resume_with_other_settings_is_refused(tmp_path, finished, capsys):
    code = run_cli(*[a if a != "3" else "4" for a in map(str, compare_args(finished))],
                   "--resume")
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "different run" in err and "seed" in err


def test_fresh_run_discards_old_checkpoint(tmp_path, monkeypatch):
    from phylo.marginal import workflow
    out = tmp_path / "r"
    args = compare_args(out, models=("JC",), trees=("true",))
    assert run_cli(*args) == 0
    calls = []
    real = workflow.evaluate_candidate
    monkeypatch.setattr(workflow, "evaluate_candidate",
                        lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    assert run_cli(*args) == 0 and calls == [1]          # no --resume: recomputed


# -- bad input -----------------------------------------------------------------------------
BAD = {
    "missing alignment": ["nope.fasta"],
    "unknown model": [DATA / "example.fasta", "--models", "HKY+Q"],
    "unknown estimator": [DATA / "example.fasta", "--estimator", "magic"],
    "zero steps": [DATA / "example.fasta", "--steps", "0"],
    "zero repeats": [DATA / "example.fasta", "--repeats", "0"],
    "unknown setting": [DATA / "example.fasta", "--set", "warp=9"],
    "missing tree": [DATA / "example.fasta", "--trees", "nope.nwk"],
    "steps on a non-ladder": [DATA / "example.fasta", "--estimator", "laplace",
                              "--steps", "3"],
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_with_one_line(case, tmp_path, capsys):
    code = run_cli(*BAD[case], "--out", tmp_path / "o", "--quiet")
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("phylo compare: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_wrong_taxa_and_malformed_tree(tmp_path, capsys):
    wrong = tmp_path / "wrong.nwk"
    wrong.write_text("((sp_A,sp_B),(sp_C,sp_D),((sp_E,sp_F),(sp_G,sp_X)));\n")
    bad = tmp_path / "bad.nwk"
    bad.write_text("((sp_A,sp_B),(sp_C,sp_D);\n")
    for path, words in ((wrong, ("sp_X", "wrong.nwk")), (bad, ("bad.nwk",))):
        code = run_cli(DATA / "example.fasta", "--trees", path, "--out", tmp_path / "o",
                       "--quiet")
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, err
        for w in words:
            assert w in err


# -- as a program -----------------------------------------------------------------------------
def test_compare_subprocess_python_m(tmp_path):
    """``python -m phylo compare`` in a subprocess: exit 0, files, JSON on stdout."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    args = [sys.executable, "-m", "phylo", "compare",
            *map(str, compare_args(tmp_path / "r", "--format", "json", models=("JC",)))]
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["status"] == "complete" and len(data["summary"]) == 2
    assert Path(data["files"]["html"]).exists()
    assert done.stderr == ""                              # --quiet: nothing on stderr
