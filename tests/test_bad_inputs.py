"""A catalogue of bad inputs over every command (issue 13, "Proof").

Each case runs the command line in-process (``phylo.cli.main``) and asserts what the
guide promises for bad input: exit status 2, exactly one line on stderr, that line
names the file or option and the problem, and no traceback. A few cases also run as a
real subprocess. Tree-file malformations have their own catalogue (the tree readers'
tests); here the tree-consuming commands get bad alignments, models, JSON models,
numbers, option values and output paths.
"""
from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

from phylo.cli import main

ALN = ">a\nACGTACGTAC\n>b\nACGTTCGTAC\n>c\nACGAACGTTC\n>d\nTCGAACGTTA\n"
TREE = "((a:0.1,b:0.2):0.05,c:0.3,d:0.1);\n"
TREES = "((a,b),(c,d));\n((a,c),(b,d));\n((a,b),(c,d));\n((a,d),(b,c));\n"

#: name -> file content (bytes) of the input files the cases refer to as @name
FILES: dict[str, bytes] = {
    "aln.fa": ALN.encode(),
    "tree.nwk": TREE.encode(),
    "trees.nwk": TREES.encode(),
    "empty.fa": b"",
    "blank.fa": b"\n\n   \n",
    "garbage.fa": bytes(range(256)) * 8,
    "truncated.fa": b"\x1f\x8b",
    "truncated2.fa": gzip.compress(ALN.encode())[:-8],
    "nohead.fa": b"ACGT\n>a\nACGT\n",
    "ragged.fa": b">a\nACGT\n>b\nACG\n>c\nACGT\n>d\nACGT\n",
    "dupes.fa": b">a x\nACGT\n>a y\nACGA\n>c\nACGT\n>d\nACGT\n",
    "dupes2.fa": b">a\nACGT\n>a\nACGA\n>c\nACGT\n>d\nACGT\n",
    "protein.fa": b">a\nMKLVEFPQ\n>b\nMKLIEFPQ\n>c\nMKLIEFPQ\n>d\nMKLIEFPQ\n",
    "unknown.fa": b">a\nACGZ\n>b\nACGT\n>c\nACGT\n>d\nACGT\n",
    "other_taxa.fa": b">w\nACGT\n>x\nACGA\n>y\nACGT\n>z\nACGT\n",
    "short.phy": b"4 12\na ACGT\nb ACGT\nc ACGT\nd ACGT\n\nACGT\nACGT\nACGT\nACGT\n\nACGT\n",
    "badhead.phy": b"four 10\na ACGTACGTAC\n",
    "zero.phy": b"0 10\n",
    "open.nex": b"#NEXUS\nbegin data; dimensions ntax=4 nchar=4; matrix\na ACGT\nb ACGT\n",
    "comment.nex": b"#NEXUS\n[never closed\nbegin data;\n",
    "nomatrix.nex": b"#NEXUS\nbegin trees;\ntree t = (a,b,(c,d));\nend;\n",
    "morph.nex": (b"#NEXUS\nbegin data; dimensions ntax=4 nchar=4; format datatype=standard;"
                  b"\nmatrix\na 0101\nb 0110\nc 0111\nd 0000\n;\nend;\n"),
    "notjson.json": b"{not json",
    "list.json": b"[1, 2, 3]",
    "empty.json": b"",
    "garbage.json": bytes(range(256)) * 4,
    "truncated.json": b"\x1f\x8b\x08\x00",
    "inf.nwk": b"((a:inf,b:0.2):0.05,c:0.3,d:0.1);\n",
    "overflow.nwk": b"((a:1e400,b:0.2):0.05,c:0.3,d:0.1);\n",
    "negative.nwk": b"((a:-0.1,b:0.2):0.05,c:0.3,d:0.1);\n",
}

BAD_ALIGNMENTS = [
    # (file, words that the one line must contain besides the file name)
    ("empty.fa", "empty"),
    ("blank.fa", "empty"),
    ("garbage.fa", "binary data"),
    ("truncated.fa", "truncated or corrupt gzip"),
    ("truncated2.fa", "truncated or corrupt gzip"),
    ("nohead.fa", "before the first '>'"),
    ("ragged.fa", "has 3 sites"),
    ("dupes.fa", "--fasta-names full-line"),
    ("dupes2.fa", "duplicate taxon 'a'"),
    ("protein.fa", "protein"),
    ("unknown.fa", "unknown character 'Z'"),
    ("short.phy", "12 sites"),
    ("badhead.phy", "ntax nchar"),
    ("zero.phy", ">= 1"),
    ("open.nex", "NEXUS"),
    ("comment.nex", "never closed"),
    ("nomatrix.nex", "no NEXUS DATA"),
    ("morph.nex", "morphological"),
]

BAD_MODELS = [("JC+G4{0.5}+G4{5}", "twice"), ("HKY+I+I", "twice"), ("GTR+F+F", "twice"),
              ("HKY{nan}", "kappa"), ("JC+G4{-1}", "alpha"), ("JC+I{1}", "invariable"),
              ("XYZ", "XYZ"), ("JC+Q", "+Q"), ("GTR{1,2,inf,1,2}", "exchangeabilities")]

BAD_JSON_MODELS = [("notjson.json", "not JSON"), ("list.json", "not a phylo SBN"),
                   ("empty.json", "not JSON"), ("garbage.json", "not a text file"),
                   ("truncated.json", "truncated or corrupt gzip"),
                   ("missing.json", "no such file")]


def _cases():
    """(id, argv with @file placeholders, words the stderr line must contain)."""
    cases = []
    for f, words in BAD_ALIGNMENTS:
        cases.append((f"loglik-{f}", ["loglik", f"@{f}", "@tree.nwk"], [f, words]))
        cases.append((f"marginal-{f}", ["marginal", f"@{f}", "@tree.nwk", "--samples", "5"],
                      [f, words]))
        cases.append((f"compare-{f}", ["compare", f"@{f}", "--out", "@out_dir"], [f, words]))
    cases.append(("loglik-taxa", ["loglik", "@other_taxa.fa", "@tree.nwk"], ["taxa"]))
    cases.append(("marginal-taxa", ["marginal", "@other_taxa.fa", "@tree.nwk"], ["taxa"]))
    for m, words in BAD_MODELS:
        cases.append((f"loglik-model-{m}", ["loglik", "@aln.fa", "@tree.nwk", "--model", m],
                      [m, words]))
        cases.append((f"simulate-model-{m}", ["simulate", "@tree.nwk", "--sites", "5",
                                              "--model", m], [words]))
        cases.append((f"marginal-model-{m}", ["marginal", "@aln.fa", "@tree.nwk", "--model", m],
                      [words]))
        cases.append((f"compare-model-{m}", ["compare", "@aln.fa", "--models", m, "--out",
                                             "@out_dir"], [words]))
    # numbers and option values
    numbers = {
        "simulate": (["simulate", "@tree.nwk", "--sites", "5"],
                     [("--sites", "0"), ("--sites", "-3"), ("--sites", "nan"),
                      ("--seed", "-1"), ("--seed", "1.5"), ("--random-tree", "0")]),
        "loglik": (["loglik", "@aln.fa", "@tree.nwk"], [("--threads", "0"),
                                                        ("--fasta-names", "middle")]),
        "marginal": (["marginal", "@aln.fa", "@tree.nwk"],
                     [("--steps", "0"), ("--steps", "-2"), ("--alpha", "nan"),
                      ("--alpha", "-1"), ("--samples", "inf"), ("--thin", "0"),
                      ("--burnin", "-1"), ("--budget", "0"), ("--branch-prior-rate", "-1"),
                      ("--branch-prior-rate", "inf"), ("--repeats", "0"), ("--seed", "-1")]),
        "compare": (["compare", "@aln.fa", "--out", "@out_dir"],
                    [("--steps", "0"), ("--samples", "-1"), ("--alpha", "inf"),
                     ("--repeats", "0"), ("--seed", "-7"), ("--thin", "nan"),
                     ("--set", "alpha=nan"), ("--set", "tolerance=-1"),
                     ("--set", "n_samples=inf"), ("--set", "nonsense")]),
        "sbn-fit": (["sbn", "fit", "@trees.nwk", "--out", "@new.json"],
                    [("--tol", "0"), ("--tol", "nan"), ("--alpha", "-1"), ("--alpha", "inf"),
                     ("--max-iter", "0"), ("--min-iter", "-1"), ("--burnin", "-1"),
                     ("--burnin", "1.5"), ("--burnin", "nan"), ("--thin", "0")]),
        "sbn-sample": (["sbn", "sample", "@model.json"], [("-n", "0"), ("-n", "-4"),
                                                          ("--seed", "-1")]),
        "sbn-map": (["sbn", "map", "@model.json"], [("--candidates", "-1"),
                                                    ("--candidates", "x"), ("--seed", "-2")]),
        "sbn-kl": (["sbn", "kl", "@model.json", "--reference", "@trees.nwk"],
                   [("--eps", "2"), ("--eps", "1"), ("--eps", "0"), ("--eps", "-1"),
                    ("--eps", "nan"), ("--eps", "inf"), ("--eps", "x"), ("--burnin", "-1")]),
        "asdsf": (["asdsf", "@trees.nwk", "@trees.nwk"],
                  [("--minpartfreq", "2"), ("--minpartfreq", "nan"), ("--burnin", "-0.1"),
                   ("--burnin", "1"), ("--thin", "0")]),
    }
    for name, (base, opts) in numbers.items():
        for opt, value in opts:
            if name == "asdsf" and opt == "--burnin" and value == "1":
                continue  # burn-in of 1 tree is valid; covered by -0.1
            cases.append((f"{name}{opt}={value}", base + [opt, value], [opt.lstrip("-")]))
    cases.append(("asdsf-one-run", ["asdsf", "@trees.nwk"], ["two runs"]))
    # branch-length numbers (issue 13: inf made simulate write a constant sequence)
    for f, words in (("inf.nwk", "not a finite number"), ("overflow.nwk", "not a finite number"),
                     ("negative.nwk", "negative")):
        cases.append((f"simulate-{f}", ["simulate", f"@{f}", "--sites", "5"], [f, words]))
        cases.append((f"loglik-{f}", ["loglik", "@aln.fa", f"@{f}"], [f, words]))
    # output paths: checked before the work
    outputs = {
        "simulate": ["simulate", "@tree.nwk", "--sites", "5", "--out"],
        "simulate-tree-out": ["simulate", "@tree.nwk", "--sites", "5", "--tree-out"],
        "sbn-fit": ["sbn", "fit", "@trees.nwk", "--out"],
        "marginal": ["marginal", "@aln.fa", "@tree.nwk", "--checkpoint"],
    }
    for name, base in outputs.items():
        opt = base[-1]
        cases.append((f"{name}-nodir", base + ["/nonexistent/deeper/x.out"],
                      [opt, "does not exist"]))
        cases.append((f"{name}-isdir", base + ["@out_dir_existing"], [opt, "is a directory"]))
        cases.append((f"{name}-under-file", base + ["@aln.fa/x.out"], [opt, "is not a folder"]))
        cases.append((f"{name}-proc", base + ["/proc/x.out"], [opt, "not writable"]))
    cases.append(("compare-out-file", ["compare", "@aln.fa", "--out", "@aln.fa"],
                  ["--out", "is a file"]))
    cases.append(("compare-out-under-file", ["compare", "@aln.fa", "--out", "@aln.fa/rep"],
                  ["--out", "is a file, not a folder"]))
    # SBN JSON models
    for f, words in BAD_JSON_MODELS:
        cases.append((f"sbn-prob-{f}", ["sbn", "prob", f"@{f}", "@trees.nwk"], [f, words]))
        cases.append((f"sbn-sample-{f}", ["sbn", "sample", f"@{f}"], [f, words]))
        cases.append((f"sbn-map-{f}", ["sbn", "map", f"@{f}"], [f, words]))
        cases.append((f"sbn-kl-{f}", ["sbn", "kl", f"@{f}", "--reference", "@trees.nwk"],
                      [f, words]))
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad_inputs")
    for name, data in FILES.items():
        (d / name).write_bytes(data)
    (d / "out_dir_existing").mkdir()
    assert main(["sbn", "fit", str(d / "trees.nwk"), "--method", "sa", "--out",
                 str(d / "model.json")]) == 0
    return d


def _argv(argv, d: Path):
    return [str(d / a[1:]) if a.startswith("@") else a for a in argv]


def _check_one_line(err: str, words, argv):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"{argv}: expected one line on stderr, got:\n{err}"
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], f"{argv}: {w!r} not in {lines[0]!r}"


@pytest.mark.parametrize("case_id, argv, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(workdir, capsys, case_id, argv, words):
    argv = _argv(argv, workdir)
    before = sorted(os.listdir(workdir))
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2, f"{argv} exited {rc}; stderr: {err}"
    _check_one_line(err, words, argv)
    # nothing half-written beside the inputs, and no output file was created
    assert sorted(os.listdir(workdir)) == before


def test_catalogue_covers_every_command():
    from phylo.cli import SUBCOMMAND_MODULES
    covered = {argv[0] for _, argv, _ in CASES}
    assert covered >= set(SUBCOMMAND_MODULES) - {"noise"}   # noise: its own catalogue
    assert len(CASES) > 150


@pytest.mark.parametrize("argv, words", [
    (["loglik", "@truncated.fa", "@tree.nwk"], ["truncated.fa", "truncated or corrupt gzip"]),
    (["simulate", "@tree.nwk", "--sites", "5", "--out", "/nonexistent/x.fa"],
     ["--out", "does not exist"]),
    (["sbn", "map", "@model.json", "--seed", "-1"], ["--seed"]),
    (["sbn", "kl", "@model.json", "--reference", "@trees.nwk", "--eps", "2"], ["eps"]),
])
def test_bad_input_in_a_real_process(workdir, argv, words):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.run([sys.executable, "-m", "phylo", *_argv(argv, workdir)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    _check_one_line(proc.stderr, words, argv)
    assert proc.stdout == ""


def test_output_checked_before_the_work(workdir, capsys, monkeypatch):
    """An unwritable --out fails before the fit runs (the fit is never called)."""
    import phylo.sbn as sbn

    def boom(*a, **k):  # pragma: no cover - must not run
        raise AssertionError("fit ran before the output check")
    monkeypatch.setattr(sbn, "fit", boom)
    rc = main(["sbn", "fit", str(workdir / "trees.nwk"), "--out", str(workdir)])
    assert rc == 2 and "is a directory" in capsys.readouterr().err


def test_good_outputs_still_work(workdir, tmp_path, capsys):
    """The checks leave valid runs alone: new files, '-' (stdout), an existing file
    (overwritten), a new nested compare folder."""
    out = tmp_path / "sim.fa"
    assert main(["simulate", str(workdir / "tree.nwk"), "--sites", "7", "--seed", "0",
                 "--out", str(out)]) == 0
    assert out.read_text().count(">") == 4
    assert main(["simulate", str(workdir / "tree.nwk"), "--sites", "7", "--seed", "0",
                 "--out", str(out)]) == 0
    assert main(["simulate", str(workdir / "tree.nwk"), "--sites", "7", "--out", "-"]) == 0
    assert capsys.readouterr().out.count(">") == 4
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".phylo-write-test")]


def test_map_with_zero_candidates_ranks_the_rooted_map_tree(workdir, capsys):
    """--candidates 0 crashed; it now ranks the rooted MAP tree's topology alone, and
    its log-probability is the model's log_prob of that topology."""
    from phylo.io.newick import parse_newick
    from phylo.sbn import load
    from phylo.trees.splits import topology_sample_from_trees
    assert main(["sbn", "map", str(workdir / "model.json"), "--candidates", "0",
                 "--format", "json"]) == 0
    import json
    out = json.loads(capsys.readouterr().out)
    model = load(workdir / "model.json")
    smp = topology_sample_from_trees([parse_newick(out["topology"], taxa=model.taxa)],
                                     taxa=model.taxa, rooted=False)
    assert out["log_prob"] == pytest.approx(float(model.log_prob(smp)[0]), abs=1e-12)
