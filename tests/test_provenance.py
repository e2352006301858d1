"""One provenance record (phylo.provenance) in every command's JSON output.

Each command is run in-process with --format json; its record must name the exact
sha256 of every input file (computed here independently with hashlib), the seed the
user gave, the command line and the host; simulate writes it with --provenance FILE.
"""
from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import pytest

from phylo.cli import main
from phylo.provenance import provenance, sha256_file

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
ALN = DATA / "example.fasta"
TREE = DATA / "candidates" / "true.nwk"
RUNS = [DATA / "example.run1.t", DATA / "example.run2.t"]
GENOTYPES = DATA / "example_genotypes.tsv"


def digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check(record: dict, files, *, seed=None) -> None:
    """The record names every input with its sha256 and size, the seed and the host."""
    assert record["phylo_version"] and record["versions"]["numpy"]
    assert record["host"]["hostname"] == socket.gethostname()
    assert record["host"]["cpu_count"] >= 1
    assert record["command_line"].startswith("phylo ")
    got = {Path(f["path"]).name: (f["sha256"], f["bytes"]) for f in record["files"]}
    want = {Path(f).name: (digest(f), Path(f).stat().st_size) for f in files}
    assert got == want
    assert record["seed"] == seed
    assert isinstance(record["settings"], dict)
    json.dumps(record, allow_nan=False)         # strict JSON


def run_json(capsys, *argv) -> dict:
    assert main([*map(str, argv)]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_record_fields(tmp_path):
    f = tmp_path / "x.txt"
    f.write_bytes(b"abc")
    rec = provenance(command_line=["phylo", "x", "a b"], files=[f], seed=4,
                     settings={"path": tmp_path, "n": 3}, seeds="r uses S + r")
    assert rec["command_line"] == "phylo x 'a b'"
    assert rec["files"] == [{"path": str(f), "sha256": hashlib.sha256(b"abc").hexdigest(),
                             "bytes": 3}]
    assert rec["settings"] == {"path": str(tmp_path), "n": 3} and rec["seeds"] == "r uses S + r"
    assert sha256_file(f) == hashlib.sha256(b"abc").hexdigest()


def test_loglik(capsys):
    out = run_json(capsys, "loglik", ALN, TREE, "--model", "JC", "--format", "json")
    check(out["provenance"], [ALN, TREE])
    assert out["provenance"]["settings"]["model"] == "JC"


def test_marginal_one_and_several(capsys):
    common = [ALN, TREE, "--model", "JC", "--steps", "2", "--samples", "10", "--seed", "5",
              "--format", "json", "--quiet"]
    one = run_json(capsys, "marginal", *common)
    check(one["provenance"], [ALN, TREE], seed=5)
    assert "SeedSequence" in one["provenance"]["seeds"]
    assert one["provenance"]["settings"]["estimators"]["stepping-stone"]["n_steps"] == 2
    several = run_json(capsys, "marginal", *common, "--repeats", "2")
    check(several["provenance"], [ALN, TREE], seed=5)
    assert [r["repeat"] for r in several["rows"]] == [0, 1]


def test_compare_stdout_and_report(tmp_path, capsys):
    out = run_json(capsys, "compare", ALN, "--models", "JC", "--trees", TREE,
                   "--steps", "2", "--samples", "10", "--burnin", "2", "--seed", "6",
                   "--out", tmp_path / "r", "--format", "json", "--quiet")
    check(out["provenance"], [ALN, TREE], seed=6)
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["provenance"]["files"] == out["provenance"]["files"]
    assert report["provenance"]["settings"]["estimator_settings"]["n_steps"] == 2


def test_sbn_and_asdsf(tmp_path, capsys):
    model = tmp_path / "m.json"
    fit = run_json(capsys, "sbn", "fit", *RUNS, "--method", "srf", "--out", model,
                   "--format", "json", "--quiet")
    check(fit["provenance"], RUNS)
    prob = run_json(capsys, "sbn", "prob", model, TREE, "--format", "json")
    check(prob["provenance"], [TREE, model])
    assert prob["rows"]
    sample = run_json(capsys, "sbn", "sample", model, "-n", "3", "--seed", "2",
                      "--format", "json")
    check(sample["provenance"], [model], seed=2)
    asdsf = run_json(capsys, "asdsf", *RUNS, "--format", "json")
    check(asdsf["provenance"], RUNS)


def test_noise(capsys, tmp_path):
    out = run_json(capsys, "noise", "solve", GENOTYPES, "--seed", "3", "-o",
                   tmp_path / "solved.tsv", "--format", "json")
    check(out["provenance"], [GENOTYPES], seed=3)


def test_simulate_writes_its_record(tmp_path, capsys):
    rec_file = tmp_path / "prov.json"
    assert main(["simulate", str(TREE), "--sites", "20", "--seed", "8", "--out",
                 str(tmp_path / "a.fasta"), "--provenance", str(rec_file)]) == 0
    check(json.loads(rec_file.read_text())["provenance"], [TREE], seed=8)
