"""Bad tree files through every command that reads them: one clean error each.

Each (command x bad tree file) pair must exit 2 with one line on stderr that names
the file, and never a traceback. Commands: asdsf, sbn fit/prob/kl (sbn map and
sample read a model, not a tree file), loglik, marginal, compare. The tree files
use the taxa of data/example.fasta so that each holds exactly one problem.
"""
from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ALN = REPO / "data" / "example.fasta"
RUN = REPO / "data" / "example.run1.t"
TAXA = [f"sp_{c}" for c in "ABCDEFGH"]
GOOD = ("((sp_A:0.06,sp_B:0.08):0.04,(sp_C:0.05,sp_D:0.07):0.03,((sp_E:0.09,sp_F:0.04):0.05,"
        "(sp_G:0.07,sp_H:0.06):0.025):0.012);")
_WHOLE_GZ = gzip.compress(((GOOD + "\n") * 200).encode())


def _nexus(tree: str) -> str:
    return "#NEXUS\nbegin trees;\n  tree t1 = " + GOOD + "\n  tree t2 = " + tree + "\nend;\n"


BAD: dict[str, bytes | str] = {
    "empty": "",
    "binary garbage": bytes(range(256)) * 4,
    "gzip magic only": b"\x1f\x8b",
    "truncated gzip": _WHOLE_GZ[: len(_WHOLE_GZ) // 2],
    "corrupt gzip": _WHOLE_GZ[:20] + b"\xff" * 40 + _WHOLE_GZ[60:],
    "unbalanced newick": GOOD + "\n" + GOOD.replace("):0.012);", ";"),
    "empty leaf": GOOD + "\n" + GOOD.replace("sp_B:0.08", ""),
    "two branch lengths": GOOD + "\n" + GOOD[:-1] + ":0.1:0.2;",
    "unclosed nexus block": "#NEXUS\nbegin trees;\n  tree t1 = " + GOOD + "\n",
    "malformed tree statement": "#NEXUS\nbegin trees;\n  tree t1 " + GOOD + "\nend;\n",
    "unclosed comment": "#NEXUS\n[no end\nbegin trees;\n  tree t1 = " + GOOD + "\nend;\n",
    "bad translate": "#NEXUS\nbegin trees;\n translate 1 sp_A, 2;\n tree t = (1,2);\nend;\n",
    "taxon not in the alignment": _nexus(GOOD.replace("sp_H", "sp_Z")),
    "missing taxon": _nexus(GOOD.replace(",(sp_G:0.07,sp_H:0.06):0.025", "")),
    "duplicate taxon": _nexus(GOOD.replace("sp_B", "sp_A")),
    "corrupted length": _nexus(GOOD.replace("0.08", "0.04x7504")),
    "negative length": _nexus(GOOD.replace("0.08", "-0.08")),
    "nan length": _nexus(GOOD.replace("0.08", "nan")),
    "inf length": _nexus(GOOD.replace("0.08", "inf")),
    "huge exponent length": _nexus(GOOD.replace("0.08", "1e999")),
    "negative weight": _nexus("[&W -1] " + GOOD),
}


def _commands(bad: Path, model: Path, tmp: Path) -> dict[str, list[str]]:
    return {
        "asdsf": ["asdsf", str(bad), str(bad), "--burnin", "0"],
        "sbn fit": ["sbn", "fit", str(bad), "--out", str(tmp / "m.json")],
        "sbn prob": ["sbn", "prob", str(model), str(bad)],
        "sbn kl": ["sbn", "kl", str(model), "--reference", str(bad), "--burnin", "0"],
        "loglik": ["loglik", str(ALN), str(bad)],
        "marginal": ["marginal", str(ALN), str(bad), "--estimator", "harmonic-mean",
                     "--samples", "20", "--quiet"],
        "compare": ["compare", str(ALN), "--trees", str(bad), "--estimator",
                    "harmonic-mean", "--samples", "20", "--out", str(tmp / "cmp")],
    }


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "phylo", *argv], capture_output=True,
                          text=True, env=env, timeout=300)


def _main(argv: list[str], capsys) -> tuple[int, str, str]:
    """phylo's main in this process (any exception but PhyloError escapes: a traceback)."""
    from phylo.cli import main
    capsys.readouterr()
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model") / "model.json"
    r = _run(["sbn", "fit", str(RUN), "--out", str(out)])
    assert r.returncode == 0, r.stderr
    return out


COMMANDS = ["asdsf", "sbn fit", "sbn prob", "sbn kl", "loglik", "marginal", "compare"]


def _first_tree_only(name: str) -> bool:
    """marginal and compare read the first tree of a file; problems in the second
    tree of a NEXUS file are out of their sight."""
    return isinstance(BAD[name], str) and BAD[name].startswith("#NEXUS\nbegin trees;\n  tree t1 = "
                                                               + GOOD + "\n  tree t2")


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", list(BAD))
def test_bad_tree_file(tmp_path, model, command, name, capsys):
    data = BAD[name]
    if command in ("marginal", "compare"):     # they read the first tree: put it first
        if _first_tree_only(name):
            data = data.replace("  tree t1 = " + GOOD + "\n", "")
        elif isinstance(data, str) and data.startswith(GOOD + "\n"):
            data = data[len(GOOD) + 1:]
    bad = tmp_path / "bad.t"
    bad.write_bytes(data if isinstance(data, bytes) else data.encode())
    code, out, err = _main(_commands(bad, model, tmp_path)[command], capsys)
    assert code == 2, (code, out[-300:], err[-800:])
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert str(bad) in lines[0], lines[0]


@pytest.mark.parametrize("name", ["truncated gzip", "nan length", "duplicate taxon"])
def test_bad_tree_file_as_a_process(tmp_path, model, name):
    """The same through a real process: exit 2, one stderr line, no traceback."""
    bad = tmp_path / "bad.t"
    data = BAD[name]
    bad.write_bytes(data if isinstance(data, bytes) else data.encode())
    for command in ("asdsf", "loglik"):
        r = _run(_commands(bad, model, tmp_path)[command])
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        assert r.returncode == 2 and len(lines) == 1 and str(bad) in lines[0], r.stderr
        assert "Traceback" not in r.stderr


def test_unary_nodes_are_read_by_every_command(tmp_path, model, capsys):
    """The one rule for unary nodes (suppressed, lengths added) holds in every command."""
    unary = GOOD.replace("(sp_A:0.06,sp_B:0.08):0.04", "((sp_A:0.06,sp_B:0.08):0.01):0.03")
    p = tmp_path / "unary.nwk"
    p.write_text(unary + "\n" + GOOD + "\n")
    for command in ("asdsf", "sbn fit", "sbn prob", "loglik"):
        code, out, err = _main(_commands(p, model, tmp_path)[command], capsys)
        assert code == 0, (command, err)
    code, out, err = _main(["loglik", str(ALN), str(p)], capsys)
    a, b = (float(x) for x in out.split())
    assert a == pytest.approx(b, rel=1e-12)    # 0.01 + 0.03 = 0.04: the same tree
