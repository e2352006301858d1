"""Alignment reading: formats, ambiguity codes, pattern compression, bad input."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from phylo.errors import AlignmentError, FormatError, PhyloError
from phylo.io.alignment import IUPAC_MASKS, Alignment, read_alignment

SEQS = {"a": "ACGTRYN-", "b": "ACGTACGT", "c": "AC-TACG?"}


def _write(tmp_path, name, text, compress=False):
    path = tmp_path / name
    data = text.encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def test_fasta_masks_and_patterns(tmp_path):
    text = "".join(f">{k} description\n{v[:4]}\n{v[4:]}\n" for k, v in SEQS.items())
    aln = read_alignment(_write(tmp_path, "x.fa", text))
    assert aln.taxa == ("a", "b", "c")
    assert aln.n_sites == 8
    states = aln.states()
    assert states[0].tolist() == [1, 2, 4, 8, 5, 10, 15, 15]
    assert states[2, 2] == 15 and states[2, 7] == 15
    # weights count every site once; patterns reproduce the sites
    assert aln.weights.sum() == 8
    np.testing.assert_array_equal(aln.patterns[:, aln.site_pattern], states)


def test_duplicate_sites_compress():
    aln = Alignment.from_sequences({"x": "AAAAC", "y": "AAAAG"})
    assert aln.n_patterns == 2
    assert sorted(aln.weights.tolist()) == [1.0, 4.0]


def test_formats_agree(tmp_path):
    fasta = "".join(f">{k}\n{v}\n" for k, v in SEQS.items())
    nexus = ("#NEXUS\nbegin data;\n dimensions ntax=3 nchar=8;\n format datatype=dna missing=? gap=-;\n"
             " matrix\n" + "".join(f"  {k} {v}\n" for k, v in SEQS.items()) + " ;\nend;\n")
    phylip = "3 8\n" + "".join(f"{k}  {v}\n" for k, v in SEQS.items())
    alns = [read_alignment(_write(tmp_path, "x.fa", fasta)),
            read_alignment(_write(tmp_path, "x.nex", nexus)),
            read_alignment(_write(tmp_path, "x.phy", phylip)),
            read_alignment(_write(tmp_path, "x.fa.gz", fasta, compress=True))]
    for aln in alns[1:]:
        assert aln.taxa == alns[0].taxa
        np.testing.assert_array_equal(aln.states(), alns[0].states())


def test_interleaved_phylip(tmp_path):
    text = "2 10\nx ACGTA\ny ACGTT\n\nCCCCC\nGGGGG\n"
    aln = read_alignment(_write(tmp_path, "i.phy", text))
    assert aln.n_sites == 10
    assert aln.states()[1, 5:].tolist() == [4] * 5


def test_every_iupac_code_is_accepted():
    codes = "".join(sorted(IUPAC_MASKS))
    aln = Alignment.from_sequences({"x": codes, "y": codes.lower()})
    assert np.array_equal(aln.states()[0], aln.states()[1])


def test_tip_partials_are_indicators():
    aln = Alignment.from_sequences({"x": "AR-", "y": "CCC"})
    part = aln.tip_partials()[0]
    rows = {tuple(r) for r in part.tolist()}
    assert (1.0, 0.0, 0.0, 0.0) in rows and (1.0, 0.0, 1.0, 0.0) in rows and (1.0, 1.0, 1.0, 1.0) in rows


@pytest.mark.parametrize("text, error, words", [
    ("", AlignmentError, "empty"),
    (">a\nACGT\n>b\nACG\n", AlignmentError, "'b' has 3 sites"),
    (">a\nACGT\n>a\nACGT\n", AlignmentError, "duplicate taxon 'a'"),
    (">a\nACGZ\n>b\nACGT\n", AlignmentError, "unknown character 'Z' in taxon 'a' at site 4"),
    ("ACGT\n>a\nACGT\n", FormatError, "before the first"),
    ("hello world\n", FormatError, "not a FASTA"),
    ("#NEXUS\nbegin data;\n dimensions ntax=2 nchar=4;\n matrix\n a ACGT\n;\nend;\n", FormatError, "NEXUS"),
    (">a\n\n>b\n\n", AlignmentError, "no sites"),
])
def test_bad_input_names_file_and_problem(tmp_path, text, error, words):
    path = _write(tmp_path, "bad.fasta" if text.startswith("ACGT") else "bad.txt", text)
    with pytest.raises(error) as info:
        read_alignment(path)
    assert words in str(info.value)
    assert path.name in str(info.value)
    assert isinstance(info.value, PhyloError) and isinstance(info.value, ValueError)


def test_missing_file(tmp_path):
    with pytest.raises(FormatError, match="no such file"):
        read_alignment(tmp_path / "nope.fasta")


def test_shared_alignments(shared_dir):
    """Every benchmark alignment reads in both its FASTA and NEXUS versions identically;
    primates compresses to the 413 patterns that IQ-TREE/BEAGLE report."""
    primates = read_alignment(shared_dir / "reference/primates/primates.nex")
    assert (primates.n_taxa, primates.n_sites, primates.n_patterns) == (12, 898, 413)
    for k in (1, 4, 8):
        fa = read_alignment(shared_dir / f"data/DS{k}/DS{k}.fasta")
        nx = read_alignment(shared_dir / f"data/DS{k}/DS{k}.nex")
        order = [nx.taxa.index(t) for t in fa.taxa]
        np.testing.assert_array_equal(fa.states(), nx.states()[order])
