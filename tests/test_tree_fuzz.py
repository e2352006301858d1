"""Property-based fuzzing of the tree-file readers (Newick and NEXUS).

Each example writes a tree file made from valid trees (random shapes, lengths,
support labels, BEAST-style node comments, rooting/weight comments, quoted names,
translate tables) and then corrupts some of it (bytes deleted, inserted, replaced by
the characters that matter to Newick/NEXUS). Two properties:

* only :class:`phylo.errors.PhyloError` escapes from ``read_trees`` and
  ``read_topologies`` (never a traceback of another kind);
* the two readers agree: both refuse the file, or both read it, and then to the
  same topologies with the same counts.

A few hundred examples run in the default suite; ``-m slow`` runs 10⁴ per format.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phylo.errors import PhyloError
from phylo.io.trees import read_topologies, read_trees
from phylo.trees.splits import topology_sample_from_trees

TAXA = ["A", "B", "C", "D", "E", "F"]
# the characters that matter to the grammar, plus a few that should not
NOISE = list("(),:;[]'&_ .-+eE0123456789RUWABCDEF\t\n\"#=") + ["\x0b", "\xa0", "é", "\x00"]
DEFAULT_EXAMPLES = 150      # per format in the default suite (two formats: 300)
SLOW_EXAMPLES = 10_000      # per format under -m slow


@st.composite
def newick_trees(draw, names):
    """One valid Newick tree over ``names`` (a random subset order and shape)."""
    leaves = list(names)
    order = draw(st.permutations(leaves))
    with_lengths = draw(st.booleans())
    annotate = draw(st.booleans())

    def length():
        if not with_lengths:
            return ""
        x = draw(st.floats(0, 10, allow_nan=False, allow_infinity=False))
        form = draw(st.sampled_from(["{:g}", "{:.6f}", "{:e}", "{:.17g}"]))
        return ":" + form.format(x)

    def note():
        return draw(st.sampled_from(["", "[&rate=1.0,height=2.5]", "[&x={1,2}]"])) \
            if annotate else ""

    nodes = [f"{leaf}{note()}{length()}" for leaf in order]
    while len(nodes) > 3 or (len(nodes) > 2 and draw(st.booleans())):
        k = draw(st.integers(2, min(3, len(nodes))))
        i = draw(st.integers(0, len(nodes) - k))
        label = draw(st.sampled_from(["", "", "0.95", "100"]))
        nodes[i:i + k] = ["(" + ",".join(nodes[i:i + k]) + ")" + label + note() + length()]
    lead = draw(st.sampled_from(["", "[&U] ", "[&R] ", "[&W 0.5] ", "[&U][&W 2] "]))
    return lead + "(" + ",".join(nodes) + ");"


def corrupt(draw, text: str) -> str:
    """Apply 0-3 random edits (delete, insert, replace) with grammar characters."""
    chars = list(text)
    for _ in range(draw(st.integers(0, 3))):
        if not chars:
            break
        i = draw(st.integers(0, len(chars) - 1))
        op = draw(st.sampled_from(["del", "ins", "rep"]))
        c = draw(st.sampled_from(NOISE))
        if op == "del":
            del chars[i]
        elif op == "ins":
            chars.insert(i, c)
        else:
            chars[i] = c
    return "".join(chars)


@st.composite
def newick_files(draw):
    trees = [draw(newick_trees(TAXA[:5])) for _ in range(draw(st.integers(1, 4)))]
    return corrupt(draw, "\n".join(trees) + "\n")


@st.composite
def nexus_files(draw):
    names = ["A", "B", "'C c'", "D", "E_e"]
    tokens = [str(i + 1) for i in range(5)]
    use_translate = draw(st.booleans())
    leaves = tokens if use_translate else names
    trees = [draw(newick_trees(leaves)) for _ in range(draw(st.integers(1, 4)))]
    head = "#NEXUS\n[written by the fuzzer]\nbegin trees;\n"
    if use_translate:
        head += "  translate\n" + ",\n".join(f"    {t} {n}" for t, n in zip(tokens, names)) \
            + ";\n"
    body = "".join(f"  tree t{i} = {t}\n" for i, t in enumerate(trees))
    tail = draw(st.sampled_from(["end;\n", "[last comment]\nend;\n", "END;", ""]))
    return corrupt(draw, head + body + tail)


def _outcome(reader):
    try:
        return reader(), None
    except PhyloError as exc:
        return None, exc


def check_agreement(tmp_path, text: str, suffix: str) -> None:
    p = tmp_path / f"fuzz{suffix}"
    p.write_bytes(text.encode("utf-8"))
    trees, err1 = _outcome(lambda: list(read_trees(p, rooted=False)))
    smp, err2 = _outcome(lambda: read_topologies(p, rooted=False))
    assert (err1 is None) == (err2 is None), (text, err1, err2)
    if err1 is not None:
        assert str(p) in str(err1) and str(p) in str(err2), (err1, err2)
        return
    ref = topology_sample_from_trees(trees, taxa=smp.taxa, rooted=False)
    got = {k.tobytes(): c for k, c in zip(smp.keys, smp.counts)}
    want = {k.tobytes(): c for k, c in zip(ref.keys, ref.counts)}
    assert got.keys() == want.keys(), text
    for k in got:      # the same decimal weights summed in the same order
        assert got[k] == want[k], text
    assert smp.n_trees == len(trees)


_FAST = settings(max_examples=DEFAULT_EXAMPLES, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])
_SLOW = settings(max_examples=SLOW_EXAMPLES, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])


@_FAST
@given(text=newick_files())
def test_fuzz_newick_readers_agree(tmp_path, text):
    check_agreement(tmp_path, text, ".nwk")


@_FAST
@given(text=nexus_files())
def test_fuzz_nexus_readers_agree(tmp_path, text):
    check_agreement(tmp_path, text, ".t")


@pytest.mark.slow
@_SLOW
@given(text=newick_files())
def test_fuzz_newick_readers_agree_slow(tmp_path, text):
    check_agreement(tmp_path, text, ".nwk")


@pytest.mark.slow
@_SLOW
@given(text=nexus_files())
def test_fuzz_nexus_readers_agree_slow(tmp_path, text):
    check_agreement(tmp_path, text, ".t")


def test_fuzz_generator_makes_valid_and_invalid_files(tmp_path):
    """The generator is not vacuous: uncorrupted files read, corrupted ones sometimes not."""
    from hypothesis import find
    ok = find(newick_files(), lambda t: _outcome(lambda: _read(tmp_path, t))[1] is None)
    bad = find(newick_files(), lambda t: _outcome(lambda: _read(tmp_path, t))[1] is not None)
    assert ok and bad


def _read(tmp_path, text):
    p = tmp_path / "probe.nwk"
    p.write_text(text)
    return read_topologies(p)


def test_round_trip_newick_and_nexus(tmp_path):
    """write → read is the identity: Newick (to_newick) and NEXUS with a translate table."""
    from phylo.trees.random import random_tree
    rng = np.random.default_rng(7)
    taxa = ["A", "B c", "D'e", "F_g", "h(i)", "J:k", "L,m", "n;o", "p[q]"]
    trees = [random_tree(taxa, rng=rng) for _ in range(5)]
    nwk = tmp_path / "t.nwk"
    nwk.write_text("".join(t.to_newick(precision=17, annotate_rooting=True) + "\n"
                           for t in trees))
    nex = tmp_path / "t.nex"
    tr = {name: str(i + 1) for i, name in enumerate(taxa)}
    lines = ["#NEXUS", "begin trees;", "  translate"]
    lines += [f"    {tr[n]} '{n.replace(chr(39), chr(39) * 2)}'"
              + ("," if i < len(taxa) - 1 else ";") for i, n in enumerate(taxa)]
    for i, t in enumerate(trees):
        renamed = t.__class__(tuple(tr[n] for n in t.taxa), t.children, t.n_children,
                              t.parent, t.branch_lengths, t.rooted)
        lines.append(f"  tree t{i} = " + renamed.to_newick(precision=17,
                                                            annotate_rooting=True))
    lines.append("end;")
    nex.write_text("\n".join(lines) + "\n")
    for path in (nwk, nex):
        back = list(read_trees(path, taxa=taxa))
        assert len(back) == len(trees)
        for a, b in zip(trees, back):
            assert a.rooted == b.rooted
            for f in ("parent", "n_children", "children"):
                assert np.array_equal(getattr(a, f), getattr(b, f)), (path, f)
            assert np.array_equal(a.branch_lengths, b.branch_lengths)   # 17 digits: exact


# Branch-length tokens at the edges of the kernel's exact-conversion rules: mantissa
# 2**53 (16 significant digits), |exponent| 22, zeros of either sign with any exponent,
# signs, malformed and overflowing numbers.
LENGTH_EDGES = [
    "0", "-0", "+0", "-0.0e400", "0e-999", "0.000", "1", "+1", "-1", "1.", ".5", "-.5",
    "1e22", "1e23", "1e-22", "1e-23", "1.5e-21", "0.15e-21", "3.062248e-02", "1E+02",
    "9007199254740992", "9007199254740993", "0.9007199254740992", "0.9007199254740993",
    "1234567890123456.0", "12345678901234567", "0000000000000000000001",
    "0.00000000000000000000001", "0.04575042463389134", "1e", "1e+", "e5", ".", "+",
    "0.04x7504", "1e400", "1e-400", "inf", "nan", "1.0.0", "1e5e5", "1-2", "1 ",
]


def _kernel_statuses(text: str):
    from phylo._kernels import newick as kn
    from phylo.io.trees import _label_table
    taxa = ("A", "B", "C", "D")
    data = text.encode()
    arr = np.frombuffer(data, dtype=np.uint8).copy()
    labels = _label_table(taxa, None, "x")
    out = []
    for with_lengths in (True, False):
        par = np.empty((1, 7), np.int32)
        bl = np.empty((1, 7)) if with_lengths else np.empty((1, 1))
        nn, first, status = (np.empty(1, np.int32), np.empty(1, np.int64),
                             np.empty(1, np.int32))
        kn.parse_newick_batch(arr, np.array([0]), np.array([len(data)]), *labels, 4,
                              kn._POW10, par, bl, nn, first, status, with_lengths)
        out.append((int(status[0]), par.tolist() if status[0] == 0 else None))
    return out


@pytest.mark.parametrize("x", LENGTH_EDGES)
def test_topology_kernel_checks_lengths_like_the_converter(x):
    """read_topologies validates lengths without converting them (with_lengths=False):
    it must hand exactly the same strings to the regex parser as the converting path
    used by read_trees, so that both readers accept the same files."""
    for text in (f"(A:{x},B:1,(C:1,D:{x}):1);", f"(A:1,B:1,(C:1,D:1):{x});"):
        (s1, p1), (s2, p2) = _kernel_statuses(text)
        assert s1 == s2 and p1 == p2, (text, s1, s2)


@_FAST
@given(x=st.text(alphabet="0123456789.eE+-x ", min_size=1, max_size=24))
def test_topology_kernel_length_check_fuzz(x):
    (s1, p1), (s2, p2) = _kernel_statuses(f"(A:{x},B:1,(C:1,D:1):1);")
    assert s1 == s2 and p1 == p2, x


def test_length_edges_exercise_both_outcomes():
    """The edge list is not vacuous: the kernel keeps some and defers others."""
    ok = {x for x in LENGTH_EDGES if _kernel_statuses(f"(A:{x},B:1,(C:1,D:1):1);")[1][0] == 0}
    assert {"-0", "1e22", "1e-22", "9007199254740992", "0.04575042463389134"} <= ok
    assert not ok & {"1e23", "1e-23", "9007199254740993", "-1", "0.04x7504", "1e400", "1e"}
