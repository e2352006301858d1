"""The ``phylo`` command line across commands: help, exit codes, end-to-end runs.

Every command is run once in a subprocess (``python -m phylo``) on the example data in
``data/`` and its numbers are checked against the library call it wraps; bad input
must give exit status 2 and one line on stderr. Commands whose module
``phylo.cli.<name>`` does not exist yet are skipped with that reason. Options whose
spelling differs between commands are looked up in the command's ``--help``
(:func:`option`), so a test states *what* it needs, not a guess of the flag.
``phylo compare`` has its own file, tests/test_compare.py.
"""
from __future__ import annotations

import importlib
import io
import json
import math
import os
import re
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest

from phylo.cli import SUBCOMMAND_MODULES, main

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
ALN = DATA / "example.fasta"
TRUE = DATA / "example_true_tree.nwk"
RUNS = [DATA / "example.run1.t", DATA / "example.run2.t"]
GENOTYPES = DATA / "example_genotypes.tsv"
#: Numbers printed by a command and computed by the library agree up to the printed
#: precision: JSON floats round-trip exactly, text/CSV cells keep 6 significant digits.
JSON_MATCH = 1e-9
#: A cold ``python -m phylo`` on a loaded 2-core machine imports NumPy/Numba and may
#: compile kernels (cached on disk afterwards).
SUBPROCESS_TIMEOUT_S = 600
#: Sub-subcommands that must each have their own --help with examples.
NESTED = {"sbn": ("fit", "prob", "sample", "kl", "map"),
          "noise": ("simulate", "solve", "test", "sample")}
#: Commands that draw random numbers (each must take --seed).
SEEDED = {("compare",), ("marginal",), ("simulate",), ("sbn", "sample"), ("sbn", "map"),
          ("noise", "simulate"), ("noise", "solve"), ("noise", "sample"), ("noise", "test")}
#: Commands that show a progress bar on long runs (each must take --quiet).
LONG_RUNNING = {("compare",), ("marginal",), ("sbn", "fit"), ("noise", "solve")}


# -- helpers -------------------------------------------------------------------------
def has_command(name: str) -> bool:
    try:
        importlib.import_module(f"phylo.cli.{name}")
        return True
    except ModuleNotFoundError as exc:
        if exc.name == f"phylo.cli.{name}":
            return False
        raise


def require(name: str) -> None:
    """Every subcommand is built: a missing one is a failure, not a skip."""
    assert has_command(name), f"phylo.cli.{name} is missing"


def run_main(*argv: Any) -> tuple[int, str, str]:
    """``phylo.cli.main`` in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def run_phylo(*argv: Any, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m phylo ARGV`` in a subprocess, stdout/stderr captured."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "phylo", *map(str, argv)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S)


_HELP: dict[tuple[str, ...], str] = {}


def help_text(*command: str) -> str:
    if command not in _HELP:
        code, out, err = run_main(*command, "--help")
        assert code == 0, err
        _HELP[command] = out
    return _HELP[command]


def option(command: Sequence[str], *spellings: str) -> str:
    """The first of ``spellings`` that ``phylo COMMAND --help`` lists (fail if none)."""
    text = help_text(*command)
    for s in spellings:
        if re.search(rf"(^|[\s,\[]){re.escape(s)}\b", text):
            return s
    pytest.fail(f"phylo {' '.join(command)} has none of the options {spellings}")


def numbers_named(obj: Any, key_part: str) -> list[float]:
    """Every number in a JSON value under a key containing ``key_part`` (depth first)."""
    found: list[float] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if key_part in str(k) and isinstance(v, (int, float)) and not isinstance(v, bool):
                found.append(float(v))
            elif key_part in str(k) and isinstance(v, list) and v and all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
                found += [float(x) for x in v]
            else:
                found += numbers_named(v, key_part)
    elif isinstance(obj, list):
        for v in obj:
            found += numbers_named(v, key_part)
    return found


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2, f"exit status {code}, stderr: {err!r}"
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, (
        f"expected one line on stderr, got {err!r} (an argparse `type=` that raises "
        "PhyloError, a ValueError, makes argparse print its usage block: validate files "
        "in run() instead)")
    assert "error" in lines[0].lower()
    for w in words:
        assert w in lines[0], f"{w!r} not in {lines[0]!r}"


# -- the program ----------------------------------------------------------------------------
def test_python_m_phylo_help_lists_commands(tmp_path):
    done = run_phylo("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for name in SUBCOMMAND_MODULES:
        if has_command(name):
            assert name in done.stdout


def test_version():
    from phylo import __version__
    code, out, _ = run_main("--version")
    assert code == 0 and __version__ in out


def test_no_command_and_unknown_command_exit_2():
    code, _, err = run_main()
    assert code == 2 and "usage" in err
    code, _, err = run_main("frobnicate")
    assert code == 2 and "invalid choice" in err


@pytest.mark.parametrize("name", SUBCOMMAND_MODULES)
def test_help_has_examples(name):
    require(name)
    text = help_text(name)
    assert "example" in text.lower(), f"phylo {name} --help shows no example"
    for sub in NESTED.get(name, ()):
        sub_text = help_text(name, sub)
        assert f"phylo {name} {sub}" in sub_text or "example" in sub_text.lower(), \
            f"phylo {name} {sub} --help shows no example"


@pytest.mark.parametrize("name", SUBCOMMAND_MODULES)
def test_common_conventions(name):
    """--seed/--format/--quiet where they apply: every command with randomness takes
    --seed, every command printing results takes --format."""
    require(name)
    for sub in NESTED.get(name, (None,)):
        command = (name, sub) if sub else (name,)
        text = help_text(*command)
        label = "phylo " + " ".join(command)
        assert re.search(r"--format\b", text), f"{label} has no --format"
        if command in SEEDED:
            assert re.search(r"--seed\b", text), f"{label} draws random numbers but has no --seed"
        if command in LONG_RUNNING:
            assert re.search(r"--quiet\b", text), f"{label} shows progress but has no --quiet"


# -- end to end, one per command --------------------------------------------------------------
def test_loglik_end_to_end(tmp_path):
    require("loglik")
    from phylo import Model, log_likelihood
    from phylo.io.alignment import read_alignment
    from phylo.io.trees import read_trees
    model_opt = option(("loglik",), "--model", "-m")
    done = run_phylo("loglik", ALN, TRUE, model_opt, "HKY+G4", "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    printed = numbers_named(json.loads(done.stdout), "log_likelihood") \
        or numbers_named(json.loads(done.stdout), "loglik")
    aln = read_alignment(ALN)
    tree = next(read_trees(TRUE, taxa=aln.taxa))
    expected = log_likelihood(aln, tree, Model.from_string("HKY+G4"))
    assert printed and abs(printed[0] - expected) <= JSON_MATCH * abs(expected)


def test_simulate_end_to_end(tmp_path):
    require("simulate")
    from phylo import Model
    from phylo.io.alignment import read_alignment
    from phylo.io.newick import parse_newick
    from phylo.likelihood.simulate import simulate_alignment
    sites = option(("simulate",), "--sites", "--n-sites", "--length", "-n")
    model_opt = option(("simulate",), "--model", "-m")
    out_opt = option(("simulate",), "--out", "-o")
    out = tmp_path / "sim.fasta"
    done = run_phylo("simulate", TRUE, model_opt, "HKY{4}+F{0.3,0.2,0.2,0.3}+G4{0.5}", sites,
                     "200", "--seed", "5", out_opt, out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    tree = parse_newick(TRUE.read_text())
    expected = simulate_alignment(tree, Model.from_string("HKY{4}+F{0.3,0.2,0.2,0.3}+G4{0.5}"),
                                  200, seed=5)
    got = read_alignment(out)
    assert got.n_sites == 200 and set(got.taxa) == set(expected.taxa)
    assert np.array_equal(got.subset(expected.taxa).states(), expected.states())


def test_marginal_end_to_end(tmp_path):
    require("marginal")
    from phylo import marginal
    from phylo.io.alignment import read_alignment
    from phylo.io.trees import read_trees
    from phylo.marginal.workflow import problem_identity
    tree_file = DATA / "candidates" / "true.nwk"
    done = run_phylo("marginal", ALN, tree_file, "--model", "JC", "--estimator",
                     "stepping-stone", "--steps", "3", "--samples", "20", "--burnin", "5",
                     "--thin", "2", "--seed", "7", "--format", "json", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    printed = numbers_named(json.loads(done.stdout), "log_marginal_likelihood")
    aln = read_alignment(ALN)
    tree = next(read_trees(tree_file, taxa=aln.taxa))
    est = marginal.get_estimator("stepping-stone", n_steps=3, samples_per_step=20, burnin=5,
                                 thin=2)
    problem = marginal.Problem(aln, tree, "JC")
    seed = marginal.derive_seed(7, problem_identity(problem), est.name, 0)   # the convention
    expected = est.run(problem, seed=seed).log_marginal_likelihood
    assert printed and abs(printed[0] - expected) <= JSON_MATCH * abs(expected)


def test_sbn_end_to_end(tmp_path):
    require("sbn")
    from phylo.io.trees import read_topologies
    from phylo.sbn import fit, load
    model_file = tmp_path / "example.sbn.json"
    done = run_phylo("sbn", "fit", *RUNS, "--burnin", "0.25", "--method", "em", "--out",
                     model_file, "--format", "json", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert model_file.stat().st_size > 0
    cands = sorted((DATA / "candidates").glob("*.nwk"))
    done = run_phylo("sbn", "prob", model_file, *cands, "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    printed = {r["topology"]: r["log_prob"] for r in json.loads(done.stdout)["rows"]}
    library = fit(read_topologies(RUNS, burnin=0.25), "em")
    query = read_topologies(cands, taxa=library.taxa)
    lp = library.log_prob(query)
    assert len(printed) == query.n_topologies == 3
    for u in range(query.n_topologies):
        newick = query.tree(u).to_newick(lengths=False)
        assert abs(printed[newick] - float(lp[u])) <= JSON_MATCH * max(1.0, abs(float(lp[u])))
    # the fitted file is the library's model
    saved = load(model_file).log_prob(query)
    assert np.allclose(saved, lp, rtol=JSON_MATCH, atol=JSON_MATCH)
    # the true topology carries most of the (synthetic) posterior mass: p(true) = 0.6
    assert max(printed.values()) > math.log(0.4)
    done = run_phylo("sbn", "sample", model_file, "-n", "5", "--seed", "3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(";") == 5
    done = run_phylo("sbn", "kl", model_file, "--reference", *RUNS, "--burnin", "0.25",
                     "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert numbers_named(json.loads(done.stdout), "kl")


def test_asdsf_end_to_end(tmp_path):
    require("asdsf")
    from phylo.diagnostics.asdsf import asdsf
    done = run_phylo("asdsf", *RUNS, "--burnin", "0.25", "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    expected = asdsf(RUNS, burnin=0.25, minpartfreq=0.1)
    assert abs(printed["asdsf"] - expected.asdsf) <= JSON_MATCH
    assert abs(printed["max_sdsf"] - expected.max_sdsf) <= JSON_MATCH
    assert printed["n_splits"] == expected.n_splits


def test_noise_end_to_end(tmp_path):
    require("noise")
    from phylo.noise.checks import is_conflict_free
    from phylo.noise.inference import solve
    from phylo.noise.io import read_matrix
    out_opt = option(("noise", "simulate"), "--out", "-o")
    sim_file = tmp_path / "sim.tsv"
    cells = option(("noise", "simulate"), "--cells", "--n-cells")
    muts = option(("noise", "simulate"), "--mutations", "--n-mutations")
    done = run_phylo("noise", "simulate", cells, "12", muts, "8", "--seed", "3", out_opt,
                     sim_file, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert read_matrix(sim_file).values.shape == (12, 8)
    solved = tmp_path / "solved.tsv"
    done = run_phylo("noise", "solve", GENOTYPES, "--seed", "1", "-o", solved,
                     "--format", "json", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    expected = solve(read_matrix(GENOTYPES).values, seed=1)
    assert abs(printed["log_likelihood"] - expected.log_likelihood) \
        <= JSON_MATCH * abs(expected.log_likelihood)
    assert is_conflict_free(read_matrix(solved).values)
    done = run_phylo("noise", "test", solved, "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["conflict_free"] is True


# -- bad input, every command -------------------------------------------------------------------
@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    files = {
        "malformed_fasta": d / "bad.fasta",
        "malformed_tree": d / "bad.nwk",
        "wrong_taxa_tree": d / "wrong.nwk",
        "malformed_nexus_trees": d / "bad.t",
        "malformed_genotypes": d / "bad.tsv",
    }
    files["malformed_fasta"].write_text(">sp_A\nACGT\n>sp_B\nAC#T\n")
    files["malformed_tree"].write_text("((sp_A,sp_B),(sp_C,sp_D);\n")
    files["wrong_taxa_tree"].write_text(
        "((sp_A,sp_B),(sp_C,sp_D),((sp_E,sp_F),(sp_G,sp_Z)));\n")
    files["malformed_nexus_trees"].write_text("#NEXUS\nbegin trees;\n tree t1 = ((1,2),(3;\nend;\n")
    files["malformed_genotypes"].write_text("cellID/mutID\tm1\tm2\ncell1\t0\t7\n")
    files["missing"] = d / "does-not-exist.fasta"
    return files


def _bad_cases(f: dict[str, Path]) -> list[tuple[str, list, tuple[str, ...]]]:
    """(command, argv, words the one-line message must contain)."""
    return [
        ("loglik", ["loglik", f["missing"], TRUE], ("does-not-exist",)),
        ("loglik", ["loglik", f["malformed_fasta"], TRUE], ("bad.fasta",)),
        ("loglik", ["loglik", ALN, f["malformed_tree"]], ("bad.nwk",)),
        ("loglik", ["loglik", ALN, f["wrong_taxa_tree"]], ("sp_Z",)),
        ("loglik", ["loglik", ALN, TRUE, "--model", "HKY+Q"], ("HKY+Q",)),
        ("simulate", ["simulate", f["missing"], "--sites", "10"], ("does-not-exist",)),
        ("simulate", ["simulate", f["malformed_tree"], "--sites", "10"], ("bad.nwk",)),
        ("simulate", ["simulate", TRUE, "--model", "XYZ", "--sites", "10"], ("XYZ",)),
        ("marginal", ["marginal", f["missing"], TRUE], ("does-not-exist",)),
        ("marginal", ["marginal", f["malformed_fasta"], TRUE], ("bad.fasta",)),
        ("marginal", ["marginal", ALN, f["wrong_taxa_tree"]], ("sp_Z",)),
        ("marginal", ["marginal", ALN, TRUE, "--model", "HKY+Q"], ("HKY+Q",)),
        ("marginal", ["marginal", ALN, TRUE, "--estimator", "magic"], ("magic",)),
        ("compare", ["compare", f["missing"]], ("does-not-exist",)),
        ("compare", ["compare", f["malformed_fasta"]], ("bad.fasta",)),
        ("compare", ["compare", ALN, "--trees", f["wrong_taxa_tree"]], ("sp_Z",)),
        ("compare", ["compare", ALN, "--models", "HKY+Q"], ("HKY+Q",)),
        ("compare", ["compare", ALN, "--estimator", "magic"], ("magic",)),
        ("sbn", ["sbn", "fit", f["missing"], "--out", f["missing"].with_suffix(".json")],
         ("does-not-exist",)),
        ("sbn", ["sbn", "fit", f["malformed_nexus_trees"], "--out",
                 f["missing"].with_suffix(".json")], ("bad.t",)),
        ("sbn", ["sbn", "prob", f["missing"], TRUE], ("does-not-exist",)),
        ("asdsf", ["asdsf", f["missing"], RUNS[0]], ("does-not-exist",)),
        ("asdsf", ["asdsf", f["malformed_nexus_trees"], RUNS[0]], ("bad.t",)),
        ("noise", ["noise", "solve", f["missing"]], ("does-not-exist",)),
        ("noise", ["noise", "solve", f["malformed_genotypes"]], ("bad.tsv",)),
        ("noise", ["noise", "test", f["missing"]], ("does-not-exist",)),
    ]


_CASE_IDS = [f"{c}-{i}" for i, (c, *_rest) in enumerate(_bad_cases({k: Path(k) for k in (
    "missing", "malformed_fasta", "malformed_tree", "wrong_taxa_tree",
    "malformed_nexus_trees", "malformed_genotypes")}))]


@pytest.mark.parametrize("index", range(len(_CASE_IDS)), ids=_CASE_IDS)
def test_bad_input_exit_2_one_line(index, bad_files, tmp_path, monkeypatch):
    command, argv, words = _bad_cases(bad_files)[index]
    require(command)
    monkeypatch.chdir(tmp_path)                 # compare's default --out lands here
    code, _, err = run_main(*argv)
    assert_one_line_error(code, err, *words)


def test_bad_input_in_a_subprocess(tmp_path):
    """The same contract holds for the real program (exit status seen by the shell)."""
    require("compare")
    done = run_phylo("compare", tmp_path / "nope.fasta", cwd=tmp_path)
    assert_one_line_error(done.returncode, done.stderr, "nope.fasta")
    assert done.stdout == ""


def test_example_data_regenerates_identically(tmp_path):
    """data/make_example.py --check: every file in data/ is what the script makes."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, str(DATA / "make_example.py"), "--check"],
                          cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
