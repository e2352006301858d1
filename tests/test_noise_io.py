"""SCITE / PhISCS file round trips and bad-input errors."""
from __future__ import annotations

import numpy as np
import pytest

from phylo.errors import GenotypeError, PhyloError
from phylo.noise import MISSING, read_matrix, write_matrix


def _matrix(rng, n=7, m=5):
    D = (rng.random((n, m)) < 0.4).astype(np.int8)
    D[rng.random((n, m)) < 0.2] = MISSING
    return D


@pytest.mark.parametrize("fmt", ["scite", "phiscs"])
def test_round_trip(tmp_path, rng, fmt):
    D = _matrix(rng)
    path = tmp_path / f"m.{fmt}"
    write_matrix(path, D, fmt)
    for how in (fmt, "auto"):
        gm = read_matrix(path, how)
        np.testing.assert_array_equal(gm.values, D)
    if fmt == "phiscs":
        assert read_matrix(path).mutations == [f"mut{j + 1}" for j in range(D.shape[1])]


def test_scite_is_mutations_by_cells_and_2_is_kept(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("0 1 2\n3 0 1\n")  # 2 mutations × 3 cells
    gm = read_matrix(path)
    # the homozygous call stays 2: the error model decides what it means
    np.testing.assert_array_equal(gm.values, [[0, MISSING], [1, 0], [2, 1]])


def test_phiscs_names_and_missing_symbols(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("cellID/mutID\tA\tB\nc1\t0\t?\nc2\t1\t3\n")
    gm = read_matrix(path)
    assert gm.cells == ["c1", "c2"] and gm.mutations == ["A", "B"]
    np.testing.assert_array_equal(gm.values, [[0, MISSING], [1, MISSING]])


@pytest.mark.parametrize("text, fmt, line, match", [
    ("", "auto", None, "empty"),
    ("\n\n", "scite", None, "empty"),
    ("0 1\n0 1 1\n", "scite", 2, "ragged"),
    ("0 1\n0 x\n", "scite", 2, "unknown entry 'x'"),
    ("cellID/mutID\tA\tB\nc1\t0\n", "phiscs", 2, "ragged"),
    ("cellID/mutID\tA\tB\nc1\t0\t5\n", "phiscs", 2, "unknown entry '5'"),
    ("cellID/mutID\tA\tB\n", "phiscs", None, "no cells"),
    ("0\t1\n", "phiscs", 1, "header"),
])
def test_bad_files_name_file_and_line(tmp_path, text, fmt, line, match):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(GenotypeError, match=match) as info:
        read_matrix(path, fmt)
    assert info.value.path == str(path) and info.value.line == line
    assert str(path) in str(info.value)
    assert isinstance(info.value, PhyloError)


def test_unknown_format(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text("0 1\n")
    with pytest.raises(GenotypeError, match="unknown matrix format"):
        read_matrix(path, "vcf")
