"""Property-based fuzzing of the non-tree readers (issue 13, "Proof").

* Alignment readers (FASTA, PHYLIP, NEXUS, format detection, gzip): random token soups
  and random edits of valid files either read into a consistent Alignment or raise a
  ``PhyloError`` — nothing else escapes.
* The SBN/SRF JSON model reader: random edits of a saved model (fields replaced,
  removed, numbers perturbed, bytes mutated) either load into a usable model or raise
  a ``PhyloError``.
* Round trips: write → read of hypothesis-generated alignments in every format is
  the identity.

A few hundred examples per reader in the default suite; ≥ 10^4 per reader with
``-m slow``.
"""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phylo.errors import PhyloError
from phylo.io.alignment import Alignment, read_alignment

DEFAULT_EXAMPLES = 200
SLOW_EXAMPLES = 10_000

_FAST = settings(max_examples=DEFAULT_EXAMPLES, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow])
_SLOW = settings(max_examples=SLOW_EXAMPLES, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])

# -- inputs ------------------------------------------------------------------------------

_TOKENS = [">", ">a", ">b x", "\n", " ", "\t", "\r\n", ";", "#NEXUS", "begin data;",
           "begin taxa;", "begin characters;", "begin sets;", "end;", "matrix",
           "dimensions ntax=2 nchar=4;", "ntax=3", "nchar=0", "nchar=-1", "format",
           "datatype=dna", "datatype=protein", "interleave", "interleave=yes",
           "missing=?", "gap=-", "matchchar=.", "taxlabels", "transpose", "[", "]",
           "[!c]", "'", "''", "{", "}", "(", ")", "{AG}", "(CT)", "{", "=", ",", "2 4",
           "3 12", "0 0", "a ", "b ", "t1 ", "ACGT", "acgt", "AAAA", "CCCC", "NN", "?",
           "-", ".", "RYKM", "EFLPQ", "0101", "\x00", "\xe9", "\ufeff", "12345678901"]

_text = st.lists(st.one_of(st.sampled_from(_TOKENS), st.text(max_size=4)),
                 max_size=40).map("".join)

_VALID = {
    "fasta": ">a desc\nACGT\nAC\n>b\nACG-TN\n>c\nRYACGT\n",
    "phylip": "3 12\nt1 AAAA\nt2 CCCC\nt3 GGGG\n\nCCCC\nGGGG\nTTTT\n\nGGGG\nTTTT\nAAAA\n",
    "phylip_seq": "2 8\nHomo sapieACGT\nACGT\nPan trogloTTTT\nACGA\n",
    "nexus": ("#NEXUS\n[c]\nbegin taxa; dimensions ntax=3; taxlabels a b 'c d'; end;\n"
              "begin characters; dimensions nchar=6;\n"
              " format datatype=dna interleave missing=? gap=- matchchar=.;\n"
              " matrix\n a AC{AG}\n b .C(CT)\n 'c d' AC?\n\n a GT-\n b G.A\n 'c d' GTT\n ;\n"
              "end;\nbegin sets; charset d2 = 4-.; end;\n"),
}


@st.composite
def _edited(draw, base: str):
    """``base`` with up to 6 random insertions, deletions and replacements."""
    text = list(base)
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        ch = draw(st.one_of(st.sampled_from(list("ACGT{}()[]';=\n >.-?0N")),
                            st.characters()))
        if op == "insert":
            text.insert(pos, ch)
        elif text:
            pos = min(pos, len(text) - 1)
            if op == "delete":
                del text[pos]
            else:
                text[pos] = ch
    return "".join(text)


_edited_valid = st.sampled_from(sorted(_VALID)).flatmap(lambda k: _edited(_VALID[k]))
_alignment_inputs = st.one_of(_text, _edited_valid, _edited_valid)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _check_alignment_reader(scratch, text: str, compress: bool, fmt):
    path = scratch / "x.aln"
    data = text.encode("utf-8", "surrogatepass")
    path.write_bytes(gzip.compress(data) if compress else data)
    try:
        aln = read_alignment(path, format=fmt)
    except PhyloError:
        return
    # a read alignment is consistent
    assert aln.n_taxa >= 1 and aln.n_sites >= 1
    assert len(set(aln.taxa)) == aln.n_taxa
    assert aln.patterns.shape == (aln.n_taxa, aln.n_patterns)
    assert aln.weights.sum() == aln.n_sites
    assert np.all((aln.patterns >= 1) & (aln.patterns <= 15))


_fmt = st.sampled_from([None, "fasta", "phylip", "nexus"])


@_FAST
@given(text=_alignment_inputs, compress=st.booleans(), fmt=_fmt)
def test_alignment_readers_raise_only_phylo_errors(scratch, text, compress, fmt):
    _check_alignment_reader(scratch, text, compress, fmt)


@pytest.mark.slow
@_SLOW
@given(text=_alignment_inputs, compress=st.booleans(), fmt=_fmt)
def test_alignment_readers_raise_only_phylo_errors_slow(scratch, text, compress, fmt):
    _check_alignment_reader(scratch, text, compress, fmt)


@_FAST
@given(data=st.binary(max_size=64))
def test_damaged_gzip_alignments(scratch, data):
    """Any bytes after the gzip magic: a PhyloError or a read, never EOFError/zlib.error."""
    path = scratch / "g.fa"
    path.write_bytes(b"\x1f\x8b" + data)
    try:
        read_alignment(path)
    except PhyloError:
        pass


# -- SBN JSON ----------------------------------------------------------------------------

_TREES = "((a,b),(c,(d,e)));\n((a,c),(b,(d,e)));\n((a,b),(c,(d,e)));\n((a,e),(b,(c,d)));\n"


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    from phylo.io.trees import read_topologies
    from phylo.sbn import fit
    d = tmp_path_factory.mktemp("sbn")
    (d / "t.nwk").write_text(_TREES)
    smp = read_topologies(d / "t.nwk")
    out = {}
    for method in ("sa", "ccd", "srf", "rooted"):
        model = fit(smp, method)
        model.save(d / f"{method}.json")
        out[method] = json.loads((d / f"{method}.json").read_text())
    return d, smp, out


_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=8)


@st.composite
def _edited_model(draw, models):
    d = json.loads(json.dumps(models[draw(st.sampled_from(sorted(models)))]))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(d)))
        op = draw(st.sampled_from(["replace", "delete", "element", "number"]))
        if op == "replace":
            d[key] = draw(_json_values)
        elif op == "delete":
            del d[key]
        elif isinstance(d[key], list) and d[key]:
            i = draw(st.integers(0, len(d[key]) - 1))
            if op == "element":
                d[key][i] = draw(_json_values)
            elif isinstance(d[key][i], (int, float)) and not isinstance(d[key][i], bool):
                d[key][i] = d[key][i] + draw(st.sampled_from([-1, 1, 0.5, -0.5, 10**6, 1e-9]))
    text = json.dumps(d)
    if draw(st.booleans()):  # byte-level damage on top
        text = draw(_edited(text))
    return text


def _check_model_reader(saved, text):
    from phylo.sbn import load
    d, smp, _ = saved
    path = d / "fuzz.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        model = load(path)
    except PhyloError:
        return
    try:
        lp = np.asarray(model.log_prob(smp))
    except PhyloError:
        return
    assert not np.any(np.isnan(lp))
    assert np.all(lp <= 1e-9)


@_FAST
@given(st.data())
def test_sbn_json_reader_raises_only_phylo_errors(saved_models, data):
    _check_model_reader(saved_models, data.draw(_edited_model(saved_models[2])))


@pytest.mark.slow
@_SLOW
@given(st.data())
def test_sbn_json_reader_raises_only_phylo_errors_slow(saved_models, data):
    _check_model_reader(saved_models, data.draw(_edited_model(saved_models[2])))


# -- round trips -------------------------------------------------------------------------

_STATE_LETTERS = "ACGTMRWSYKVHDB-"   # one letter per state mask, as the writers use


def _alignments(name_alphabet):
    """(names, sequences): 1-6 distinct names, 1-40 sites of one-letter states."""
    names = st.text(alphabet=name_alphabet, min_size=1, max_size=12).filter(str.strip)
    return st.tuples(st.integers(1, 6), st.integers(1, 40)).flatmap(lambda size: st.tuples(
        st.lists(names, min_size=size[0], max_size=size[0], unique=True),
        st.lists(st.text(alphabet=_STATE_LETTERS, min_size=size[1], max_size=size[1]),
                 min_size=size[0], max_size=size[0])))


_PLAIN = st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters="_.|-",
                       max_codepoint=0x24F)
_ANY_PRINTABLE = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"),
                               blacklist_characters="\x85", max_codepoint=0x24F)

#: format -> taxon-name alphabet it can write: PHYLIP and first-word FASTA names end at
#: whitespace; NEXUS quotes names with blanks or punctuation.
_ROUND_TRIPS = {"fasta": _PLAIN, "phylip": _PLAIN, "nexus": _ANY_PRINTABLE}


def _round_trip(scratch, fmt, names, seqs, compress):
    aln = Alignment.from_sequences(list(zip(names, seqs)))
    path = scratch / f"rt.{fmt}"
    text = aln.to_text(fmt).encode()
    path.write_bytes(gzip.compress(text) if compress else text)
    back = read_alignment(path, format=fmt)
    assert back.taxa == aln.taxa
    np.testing.assert_array_equal(back.states(), aln.states())


@pytest.mark.parametrize("fmt", sorted(_ROUND_TRIPS))
def test_round_trip_is_identity(scratch, fmt):
    alphabet = _ROUND_TRIPS[fmt]

    @_FAST
    @given(data=_alignments(alphabet), compress=st.booleans())
    def check(data, compress):
        names, seqs = data
        _round_trip(scratch, fmt, names, seqs, compress)
    check()


def test_round_trip_fasta_full_line_names(scratch):
    """Names with inner spaces survive FASTA with fasta_names='full-line'."""
    name = st.text(alphabet=_ANY_PRINTABLE, min_size=1, max_size=12).map(str.strip).filter(
        lambda s: s and not s.startswith(">") and not s.startswith(";"))

    @_FAST
    @given(names=st.lists(name, min_size=1, max_size=5, unique=True),
           length=st.integers(1, 20), seed=st.integers(0, 2**32 - 1))
    def check(names, length, seed):
        rng = np.random.default_rng(seed)
        seqs = ["".join(rng.choice(list(_STATE_LETTERS), length)) for _ in names]
        aln = Alignment.from_sequences(list(zip(names, seqs)))
        path = scratch / "rt_full.fa"
        path.write_text(aln.to_fasta())
        back = read_alignment(path, fasta_names="full-line")
        assert back.taxa == aln.taxa
        np.testing.assert_array_equal(back.states(), aln.states())
    check()
