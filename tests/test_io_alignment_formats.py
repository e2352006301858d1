"""Every alignment format and layout read right: against the known content, Biopython
and IQ-TREE; NEXUS ambiguity sets and SETS blocks; FASTA header names; non-DNA data
refused; damaged gzip refused cleanly."""
from __future__ import annotations

import gzip
import re
import shutil
import subprocess

import numpy as np
import pytest

from phylo.errors import AlignmentError, FormatError, PhyloError
from phylo.io.alignment import Alignment, read_alignment

#: IQ-TREE prints log-likelihoods with 4 decimals: half a unit of the last place, plus
#: room for summation-order differences between the two programs.
IQTREE_PRINT_TOL = 1e-3


def _random_alignment(n_taxa=7, n_sites=53, seed=11, names=None):
    rng = np.random.default_rng(seed)
    alphabet = np.array(list("ACGTACGTACGTRYN-?"))
    names = names or [f"taxon{i}" for i in range(n_taxa)]
    return {n: "".join(rng.choice(alphabet, n_sites)) for n in names}


def _blocks(seq, width):
    return [seq[i:i + width] for i in range(0, len(seq), width)]


def _variants(seqs):
    """(file name, text, Biopython format) for each layout of the same alignment."""
    names = list(seqs)
    n, L = len(names), len(next(iter(seqs.values())))
    width = 10
    out = []
    out.append(("wrapped.fasta",
                "".join(f">{k} some description\n" + "\n".join(_blocks(v, width)) + "\n"
                        for k, v in seqs.items()), "fasta"))
    out.append(("seq_relaxed.phy",
                f"{n} {L}\n" + "".join(f"{k}   {v}\n" for k, v in seqs.items()),
                "phylip-relaxed"))
    inter = [f"{n} {L}"]
    for b, start in enumerate(range(0, L, width)):
        for k, v in seqs.items():
            inter.append((f"{k}  " if b == 0 else "") + v[start:start + width])
        inter.append("")
    out.append(("interleaved_relaxed.phy", "\n".join(inter), "phylip-relaxed"))
    strict = [f" {n} {L}"]
    for b, start in enumerate(range(0, L, width)):
        for k, v in seqs.items():
            chunk = " ".join(_blocks(v[start:start + width], 5))
            strict.append((k[:10].ljust(10) if b == 0 else "") + chunk)
        strict.append("")
    out.append(("interleaved_strict.phy", "\n".join(strict), "phylip"))
    seq_wrapped = [f"{n} {L}"]
    for k, v in seqs.items():
        parts = _blocks(v, width)
        seq_wrapped.append(k[:10].ljust(10) + parts[0])
        seq_wrapped.extend(parts[1:])
    out.append(("sequential_wrapped.phy", "\n".join(seq_wrapped) + "\n", "phylip-sequential"))
    nex = ("#NEXUS\n[written by the test]\nbegin data;\n"
           f" dimensions ntax={n} nchar={L};\n format datatype=dna missing=? gap=-;\n matrix\n"
           + "".join(f"  {k}  {v}\n" for k, v in seqs.items()) + " ;\nend;\n")
    out.append(("plain.nex", nex, "nexus"))
    nexi = ("#NEXUS\nbegin taxa;\n dimensions ntax=%d;\n taxlabels %s;\nend;\n"
            "begin characters;\n dimensions nchar=%d;\n"
            " format datatype=DNA interleave missing=? gap=-;\n matrix\n"
            % (n, " ".join(names), L))
    for start in range(0, L, width):
        nexi += "".join(f"  {k}  {v[start:start + width]}\n" for k, v in seqs.items()) + "\n"
    nexi += " ;\nend;\n"
    out.append(("interleaved.nex", nexi, "nexus"))
    return out


def _as_dict(aln):
    return dict(zip(aln.taxa, aln.sequences()))


def _canonical(seqs):
    """What the reader returns for ``seqs``: 'N', '?' and '-' all read as the all-state
    mask, written back as '-'."""
    return {k: re.sub(r"[N?X.]", "-", v.upper()) for k, v in seqs.items()}


def test_interleaved_phylip_three_blocks_is_not_scrambled(tmp_path):
    """The reported case: 3 taxa, 12 sites, three blocks of 4."""
    path = tmp_path / "i3.phy"
    path.write_text("3 12\nt1 AAAA\nt2 CCCC\nt3 GGGG\n\nCCCC\nGGGG\nTTTT\n\nGGGG\nTTTT\nAAAA\n")
    assert _as_dict(read_alignment(path)) == {
        "t1": "AAAACCCCGGGG", "t2": "CCCCGGGGTTTT", "t3": "GGGGTTTTAAAA"}


@pytest.mark.parametrize("variant", range(7))
def test_every_layout_matches_the_truth_and_biopython(tmp_path, variant):
    seqs = _random_alignment()
    name, text, bio_format = _variants(seqs)[variant]
    path = tmp_path / name
    path.write_text(text)
    got = _as_dict(read_alignment(path))
    assert got == _canonical(seqs), name
    from Bio import AlignIO
    bio = {r.id: str(r.seq) for r in AlignIO.read(str(path), bio_format)}
    assert got == _canonical(bio), name
    gz = tmp_path / (name + ".gz")
    gz.write_bytes(gzip.compress(text.encode()))
    assert _as_dict(read_alignment(gz)) == got


def test_strict_phylip_names_with_spaces(tmp_path):
    path = tmp_path / "strict.phy"
    path.write_text("2 8\nHomo sapieACGTACGT\nPan trogloTTTTACGA\n")
    aln = read_alignment(path)
    assert _as_dict(aln) == {"Homo sapie": "ACGTACGT", "Pan troglo": "TTTTACGA"}


def test_phylip_that_fits_no_layout_is_refused(tmp_path):
    path = tmp_path / "bad.phy"
    path.write_text("3 12\nt1 AAAA\nt2 CCCC\nt3 GGGG\n\nCCCC\nGGGG\n")
    with pytest.raises(AlignmentError, match="3 taxa of 12 sites"):
        read_alignment(path)


@pytest.mark.skipif(shutil.which("iqtree2") is None, reason="iqtree2 not installed")
@pytest.mark.parametrize("variant", [0, 1, 2, 5, 6])
def test_loglik_matches_iqtree_on_each_layout(tmp_path, shared_dir, variant):
    """IQ-TREE reads the same file independently: a scrambled read would change ln L.
    (IQ-TREE 2.0.7 reads relaxed PHYLIP only: the strict layouts are checked against
    Biopython above.)"""
    from phylo.likelihood import TreeLikelihood
    from phylo.models import Model
    from phylo.trees.random import random_tree
    primates = read_alignment(shared_dir / "reference/primates/primates.nex")
    seqs = _as_dict(primates)
    name, text, _ = _variants(seqs)[variant]
    path = tmp_path / name
    path.write_text(text)
    aln = read_alignment(path)
    tree = random_tree(list(aln.taxa), seed=3)
    (tmp_path / "t.nwk").write_text(tree.to_newick() + "\n")
    ours = TreeLikelihood(aln, tree, Model.from_string("JC")).log_likelihood()
    subprocess.run(["iqtree2", "-s", str(path), "-te", str(tmp_path / "t.nwk"), "-m", "JC",
                    "-blfix", "-nt", "1", "-redo", "--quiet", "-pre", str(tmp_path / "iq")],
                   check=True, capture_output=True, timeout=120)
    report = (tmp_path / "iq.iqtree").read_text()
    theirs = float(re.search(r"Log-likelihood of the tree: (-?[\d.]+)", report).group(1))
    assert abs(ours - theirs) < IQTREE_PRINT_TOL, (name, ours, theirs)


NEXUS_SETS = """#NEXUS
begin data;
  dimensions ntax=3 nchar=8;
  format datatype=dna missing=? gap=- matchchar=.;
  matrix
  t1 ACGT{AG}CGT
  t2 AC.T(AG)CG[an inline comment]T
  'Genus species' ACG{A C}{ACGT}C-?
  ;
end;
begin sets;
  charset d1 = 1-4;
  charset d2 = 5-.;
  charpartition by_half = first:d1, second:d2;
end;
begin mrbayes;
  lset nst=6 rates=invgamma;
end;
"""


def test_nexus_ambiguity_sets_matchchar_and_sets_block(tmp_path):
    path = tmp_path / "sets.nex"
    path.write_text(NEXUS_SETS)
    assert _as_dict(read_alignment(path)) == {
        "t1": "ACGTRCGT", "t2": "ACGTRCGT", "Genus species": "ACGM-C--"}


def test_nexus_interleaved_reference_file(shared_dir):
    """primates.nex (interleave=no, long lines) and the DS files (TAXA + DATA blocks,
    TreeBASE comments) read as Biopython reads them."""
    from Bio import AlignIO
    for path in [shared_dir / "reference/primates/primates.nex",
                 shared_dir / "data/DS1/DS1.nex", shared_dir / "data/DS5/DS5.nex"]:
        ours = _as_dict(read_alignment(path))
        bio = {r.id: str(r.seq) for r in AlignIO.read(str(path), "nexus")}
        assert ours == _canonical(bio), path.name


@pytest.mark.parametrize("text, words", [
    ("#NEXUS\nbegin data; dimensions ntax=2 nchar=4; format datatype=protein;\n"
     "matrix a MKLV\nb MKLI\n;\nend;\n", "datatype=protein: this is protein data"),
    ("#NEXUS\nbegin data; dimensions ntax=2 nchar=4; format datatype=standard symbols=\"01\";\n"
     "matrix a 0101\nb 0110\n;\nend;\n", "morphological"),
    ("#NEXUS\nbegin data; dimensions ntax=2 nchar=4; format datatype=mixed(dna:1-2,protein:3-4);\n"
     "matrix a ACKL\nb ACKL\n;\nend;\n", "mixed"),
    (">a\nMKLVEFPQ\n>b\nMKLIEFPQ\n", "protein alignment (amino-acid letters EFILPQ)"),
    ("2 6\na 010011\nb 011100\n", "morphological"),
    (">a\nACGTAC\n>b\nMKLEFQ\n", "mixed data (protein rows beside nucleotide rows)"),
])
def test_non_dna_is_refused_with_what_it_is(tmp_path, text, words):
    path = tmp_path / "x.txt"
    path.write_text(text)
    with pytest.raises(AlignmentError) as info:
        read_alignment(path)
    msg = str(info.value)
    assert words in msg
    assert "phylo reads DNA" in msg and "x.txt" in msg
    assert "Bio." not in msg and "\n" not in msg


def test_fasta_first_word_duplicates_offer_full_line(tmp_path):
    path = tmp_path / "g.fa"
    path.write_text(">Homo sapiens mito\nACGT\n>Homo erectus\nACGA\n>Pan troglodytes\nACGG\n")
    with pytest.raises(AlignmentError) as info:
        read_alignment(path)
    msg = str(info.value)
    assert "duplicate taxon 'Homo'" in msg and "first word" in msg
    assert "fasta_names='full-line'" in msg and "--fasta-names full-line" in msg
    aln = read_alignment(path, fasta_names="full-line")
    assert aln.taxa == ("Homo sapiens mito", "Homo erectus", "Pan troglodytes")
    with pytest.raises(PhyloError, match="fasta_names"):
        read_alignment(path, fasta_names="whole")


def test_fasta_full_line_flag_on_the_command_line(tmp_path, capsys):
    from phylo.cli import main
    aln = tmp_path / "g.fa"
    aln.write_text(">Homo sapiens\nACGTAC\n>Homo erectus\nACGAAC\n>Pan troglodytes\nACGGAT\n")
    tree = tmp_path / "t.nwk"
    tree.write_text("('Homo sapiens':0.1,'Homo erectus':0.2,'Pan troglodytes':0.3);\n")
    assert main(["loglik", str(aln), str(tree)]) == 2
    err = capsys.readouterr().err
    assert "--fasta-names full-line" in err and len(err.strip().splitlines()) == 1
    assert main(["loglik", str(aln), str(tree), "--fasta-names", "full-line"]) == 0
    value = float(capsys.readouterr().out)
    from phylo.io.newick import parse_newick
    from phylo.likelihood import TreeLikelihood
    from phylo.models import Model
    ref = read_alignment(aln, fasta_names="full-line")
    expected = TreeLikelihood(ref, parse_newick(tree.read_text()), Model.from_string("JC"))
    assert value == pytest.approx(expected.log_likelihood(), abs=1e-9)


@pytest.mark.parametrize("data", [b"\x1f\x8b", b"\x1f\x8b\x08\x00garbage-garbage",
                                  gzip.compress(b">a\nACGT\n>b\nACGA\n")[:-6]])
def test_damaged_gzip_is_one_clean_error(tmp_path, data):
    path = tmp_path / "t.fa"
    path.write_bytes(data)
    with pytest.raises(FormatError, match="truncated or corrupt gzip") as info:
        read_alignment(path)
    assert "t.fa" in str(info.value)


def test_binary_garbage_is_refused(tmp_path):
    path = tmp_path / "g.fa"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(FormatError, match="binary data"):
        read_alignment(path)


def test_writers_quote_or_refuse_names(tmp_path):
    aln = Alignment.from_sequences({"Genus species": "ACGT", "it's": "ACGA", "plain": "ACGG"})
    path = tmp_path / "q.nex"
    path.write_text(aln.to_nexus())
    assert _as_dict(read_alignment(path)) == _as_dict(aln)
    with pytest.raises(FormatError, match="PHYLIP cannot write"):
        aln.to_phylip()


@pytest.mark.parametrize("fmt", [None, "fasta", "phylip", "nexus"])
@pytest.mark.parametrize("text", ["", "\x1f", "\ufeff\n  \n"])
def test_blank_file_with_any_format_is_empty(tmp_path, fmt, text):
    """Found by fuzzing: a blank file read with an explicit format raised IndexError."""
    path = tmp_path / "blank.txt"
    path.write_text(text)
    with pytest.raises(AlignmentError, match="the file is empty"):
        read_alignment(path, format=fmt)
