"""Tests for phylo.io.trees: Newick/NEXUS/BEAST/MrBayes tree files, burn-in, errors."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from phylo.errors import FormatError, PhyloError, TaxonMismatchError, TreeError
from phylo.io.trees import count_trees, read_topologies, read_trees, tree_file_info
from phylo.trees.splits import tree_splits

WEIGHT_TOL = 1e-12  # weights are parsed from decimal text: exact up to float rounding

NEXUS_T = """#NEXUS
[ID: 123]
[Param: tree]
begin trees;
   translate
       1 A,
       2 B,
       3 'C c',
       4 D,
       5 E;
   tree gen.0 = [&U] ((1:0.1,2:0.2):0.05,3:0.3,(4:0.4,5:0.5):0.01);
   tree gen.100 = [&U] ((1:0.1,3:0.2):0.05,2:0.3,(4:0.4,5:0.5):0.01);
   tree gen.200 = [&U] ((1:0.1,2:0.2):0.05,3:0.3,(5:0.4,4:0.5):0.01);
   tree gen.300 = [&U] (3:0.3,(2:0.2,1:0.1):0.05,(4:0.4,5:0.5):0.01);
end;
"""

BEAST = """#NEXUS

Begin taxa;
\tDimensions ntax=4;
\tTaxlabels
\t\tw
\t\tx
\t\ty
\t\tz
\t\t;
End;

Begin trees;
\tTranslate
\t\t1 w,
\t\t2 x,
\t\t3 y,
\t\t4 z
\t\t;
tree STATE_0 [&lnP=-1234.5,joint=-1300.2] = [&R] ((1[&rate=1.0]:1.5,2[&rate=0.9]:1.5)[&rate=1.1]:2.0,(3[&rate=1.2]:0.5,4[&rate=1.0]:0.5)[&rate=0.8]:3.0);
tree STATE_1000 [&lnP=-1230.1,joint=-1290.0] = [&R] ((1[&rate=1.0]:1.5,3[&rate=0.9]:1.5)[&rate=1.1]:2.0,(2[&rate=1.2]:0.5,4[&rate=1.0]:0.5)[&rate=0.8]:3.0);
End;
"""

TRPROBS = """#NEXUS
[comment spanning
two lines]
begin trees;
   translate
    1 A,
    2 B,
    3 C,
    4 D,
    5 E;
   tree tree_1 [p = 0.750, P = 0.750] = [&W 0.75] ((1,2),3,(4,5));
   tree tree_2 [p = 0.250, P = 1.000] = [&W 0.25] ((1,3),2,(4,5));
end;
"""


def write(tmp_path, name, text, gz=False):
    p = tmp_path / name
    if gz:
        with gzip.open(p, "wt") as fh:
            fh.write(text)
    else:
        p.write_text(text)
    return p


def test_mrbayes_t_translate_and_rooting(tmp_path):
    p = write(tmp_path, "x.t", NEXUS_T)
    trees = list(read_trees(p))
    assert len(trees) == 4
    assert trees[0].taxa == ("A", "B", "C c", "D", "E")
    assert not trees[0].rooted
    assert trees[0].name == "gen.0"
    assert trees[0].branch_lengths[0] == pytest.approx(0.1)
    # tree 0, 2, 3 share a topology
    sp = [tree_splits(t).tobytes() for t in trees]
    assert sp[0] == sp[2] == sp[3] != sp[1]
    info = tree_file_info(p)
    assert info.nexus and info.translate["3"] == "C c"


def test_beast_file(tmp_path):
    p = write(tmp_path, "x.trees", BEAST)
    trees = list(read_trees(p))
    assert [t.rooted for t in trees] == [True, True]
    assert trees[0].taxa == ("w", "x", "y", "z")
    assert trees[0].name == "STATE_0"
    assert sorted(trees[0].branch_lengths) == pytest.approx(sorted([1.5, 1.5, 2.0, 0.5, 0.5, 3.0]))
    smp = read_topologies(p)
    assert smp.rooted and smp.n_topologies == 2 and smp.n_trees == 2


def test_trprobs_weights(tmp_path):
    p = write(tmp_path, "x.trprobs", TRPROBS)
    trees = list(read_trees(p))
    assert [t.weight for t in trees] == pytest.approx([0.75, 0.25], abs=WEIGHT_TOL)
    smp = read_topologies(p)
    assert smp.counts == pytest.approx([0.75, 0.25], abs=WEIGHT_TOL)
    unweighted = read_topologies(p, weighted=False)
    assert unweighted.counts.tolist() == [1.0, 1.0]


def test_plain_newick_multi_line_and_gzip(tmp_path):
    text = "[&R] ((a:1,b:1):1,c:2);\n((a,c),\n b);\n[a comment; with semicolon](b,(a,c));"
    for gz in (False, True):
        p = write(tmp_path, f"x{gz}.nwk", text, gz=gz)
        trees = list(read_trees(p))
        assert len(trees) == 3
        assert trees[0].rooted
        assert trees[0].taxa == ("a", "b", "c")
        assert count_trees(p) == 3


def test_burnin_and_thin_semantics(tmp_path):
    p = write(tmp_path, "x.t", NEXUS_T)
    names = lambda **kw: [t.name for t in read_trees(p, **kw)]
    assert names(burnin=0.25) == ["gen.100", "gen.200", "gen.300"]   # int(0.25*4) = 1
    assert names(burnin=0.5) == ["gen.200", "gen.300"]
    assert names(burnin=0.74) == ["gen.200", "gen.300"]   # int(0.74 * 4) = 2 (floor)
    assert names(burnin=2) == ["gen.200", "gen.300"]
    assert names(thin=2) == ["gen.0", "gen.200"]
    assert names(burnin=1, thin=2) == ["gen.100", "gen.300"]
    assert read_topologies(p, burnin=0.5).n_trees == 2
    assert read_topologies(p, burnin=1, thin=2).n_trees == 2


def test_burnin_errors(tmp_path):
    p = write(tmp_path, "x.t", NEXUS_T)
    assert len(list(read_trees(p, burnin=0.99))) == 1   # int(0.99 * 4) = 3
    with pytest.raises(PhyloError, match="leaves nothing"):
        list(read_trees(p, burnin=4))     # counts are checked when the file ends
    with pytest.raises(PhyloError, match="leaves nothing"):
        list(read_trees(p, burnin=10))
    with pytest.raises(PhyloError, match=r"\[0, 1\)"):
        read_trees(p, burnin=1.5)
    with pytest.raises(PhyloError):
        read_trees(p, thin=0)
    with pytest.raises(PhyloError, match="leaves nothing"):
        read_topologies(p, burnin=4)


def test_missing_file(tmp_path):
    with pytest.raises(FormatError, match="no such file"):
        read_trees(tmp_path / "nope.t")
    with pytest.raises(FormatError, match="no such file"):
        read_topologies(tmp_path / "nope.t")


@pytest.mark.parametrize("body, exc, pattern", [
    ("((1,2),3,(4,5);", TreeError, "unbalanced"),
    ("((1,2),3,(4,5)));", TreeError, None),
    ("((1,2),3,(4,9));", TaxonMismatchError, "translate"),
    ("((1,2),3,(4,4));", TaxonMismatchError, "duplicate"),
    ("((1,2),3,4);", TaxonMismatchError, "missing"),
    ("((1,,2),3,(4,5));", TreeError, "empty leaf"),
])
def test_bad_newick_in_nexus(tmp_path, body, exc, pattern):
    text = NEXUS_T.replace("((1:0.1,3:0.2):0.05,2:0.3,(4:0.4,5:0.5):0.01);", body)
    p = write(tmp_path, "bad.t", text)
    for reader in (lambda: list(read_trees(p)), lambda: read_topologies(p)):
        with pytest.raises(exc) as info:
            reader()
        msg = str(info.value)
        assert str(p) in msg and ":12" in msg, msg   # file and line of gen.100
        if pattern:
            assert pattern in msg


@pytest.mark.parametrize("text, pattern", [
    ("#NEXUS\nbegin trees;\n translate 1 A, 2;\n tree t = (1,2);\nend;\n", "translate"),
    ("#NEXUS\nbegin trees;\n tree t = ((A,B),C);\n", "not closed"),
    ("#NEXUS\nbegin trees;\n tree t ((A,B),C);\nend;\n", "malformed tree statement"),
    ("#NEXUS\n[unclosed comment\nbegin trees;\n", "unclosed"),
    ("#NEXUS\nbegin trees;\n tree t = ((A,B),\n", "ends inside"),
])
def test_malformed_nexus(tmp_path, text, pattern):
    p = write(tmp_path, "bad.nex", text)
    with pytest.raises(FormatError, match=pattern):
        list(read_trees(p))


def test_taxa_differ_between_trees(tmp_path):
    p = write(tmp_path, "x.nwk", "((a,b),c);\n((a,b),d);\n")
    with pytest.raises(TaxonMismatchError) as info:
        list(read_trees(p))
    assert f"{p}:2" in str(info.value)
    with pytest.raises(TaxonMismatchError):
        read_topologies(p)


def test_explicit_taxa_order_and_quotes(tmp_path):
    p = write(tmp_path, "x.nwk", "(('x y',b),c,d);\n(c,d,(b,'x y'));\n")
    trees = list(read_trees(p, taxa=["c", "b", "x y", "d"]))
    assert trees[0].taxa == ("c", "b", "x y", "d")
    smp = read_topologies(p, taxa=["c", "b", "x y", "d"])
    assert smp.n_topologies == 1 and smp.counts[0] == 2


def test_fast_path_matches_tree_objects(tmp_path, rng):
    """read_topologies and read_trees agree on random trees (names, lengths, comments)."""
    taxa = [f"t{i}" for i in range(70)]   # > 64 taxa: two bitset words
    lines = []
    trees_nwk = []
    for _ in range(30):
        nodes = [f"{taxa[i]}[&rate=1]:0.{rng.integers(1, 9)}" for i in rng.permutation(70)]
        while len(nodes) > 3:
            i, j = sorted(rng.choice(len(nodes), 2, replace=False))
            b = nodes.pop(j)
            a = nodes.pop(i)
            nodes.append(f"({a},{b})0.9:1e-3")
        nwk = "(" + ",".join(nodes) + ");"
        trees_nwk.append(nwk)
        lines.append(nwk)
    lines += lines[:10]
    p = write(tmp_path, "big.nwk", "\n".join(lines), gz=True)
    smp = read_topologies(p)
    keys = {tree_splits(t).tobytes() for t in read_trees(p)}
    assert smp.n_topologies == len(keys) == 30
    assert smp.n_trees == 40
    assert sorted(smp.counts.tolist()) == [1.0] * 20 + [2.0] * 10
    for u in range(smp.n_topologies):
        assert tree_splits(smp.tree(u)).tobytes() in keys


def test_real_mrbayes_files(shared_dir):
    ref = shared_dir / "reference" / "primates" / "mrbayes_mcmc"
    t = ref / "primates.run1.t.gz"
    assert count_trees(t) == 1001
    trees = list(read_trees(t, burnin=0.25))
    assert len(trees) == 751 and trees[0].name == "gen.25000"
    assert all(tr.n_leaves == 12 and not tr.rooted and tr.is_binary() for tr in trees[:20])
    smp = read_topologies(t, burnin=0.25)
    assert smp.n_trees == 751 and smp.total == 751
    tp = read_topologies(ref / "primates.trprobs")
    assert tp.counts == pytest.approx([0.914115, 0.085885], abs=WEIGHT_TOL)
    # the trprobs top tree is the most frequent topology of run 1
    top = smp.tree(int(np.argmax(smp.counts)))
    assert tree_splits(tp.tree(0)).tobytes() == tree_splits(top).tobytes()


def test_real_golden_trprobs(shared_dir):
    g = shared_dir / "data" / "DS1" / "golden_run" / "rep_1" / "DS1.trprobs.gz"
    smp = read_topologies(g)
    assert smp.n_taxa == 27 and not smp.rooted
    assert smp.n_topologies == smp.n_trees   # trprobs lists distinct topologies
    assert smp.total == pytest.approx(1.0, abs=1e-3)   # 6-decimal rounding of weights
    first = next(iter(read_trees(g)))
    assert first.weight == pytest.approx(smp.counts.max(), abs=WEIGHT_TOL)


def test_read_trees_batched_kernel_matches_parse_newick(tmp_path):
    """The batched Numba layout path gives exactly parse_newick's Tree (arrays, dtypes,
    lengths, rooting, weight, source), also for strings it hands to the regex parser."""
    from phylo.io.newick import parse_newick
    bodies = ["[&U] ((1:0.1,2:2e-1):5E-02,3:0.3,(4:.4,5:1.):0.01);",
              "[&R] [&W 0.5] ((1:1,2:1):1,(3:1,(4:1,5:1)0.99:1):1);",   # rooted, weight
              "((1:0.1,2:0.2)'lab':0.05,3:0.3,(4:0.4,5:0.5));",          # quoted label: slow
              "((1:1e-30,2:0.12345678901234567890),3,(4,5):1e300);",    # slow numbers
              "((1,2,3,4),5);",                                        # polytomy, rooted binary
              "(((1,2)),3,(4,5));",                                    # unary node
              "((((1:1):1):1,2:1):1,(3:1,(4:1,5:1)):1);"]              # unary chain
    text = NEXUS_T.split("   tree gen.0")[0] + "".join(
        f"   tree t{i} = {b}\n" for i, b in enumerate(bodies)) + "end;\n"
    p = write(tmp_path, "mix.t", text)
    info = tree_file_info(p)
    for forced in (None, False, True):
        got = list(read_trees(p, rooted=forced))
        assert len(got) == len(bodies)
        for i, (tree, body) in enumerate(zip(got, bodies)):
            ref = parse_newick(body, taxa=info.taxa, translate=info.translate, rooted=forced,
                               source=str(p), line=11 + i, name=f"t{i}")
            for f in ("children", "n_children", "parent"):
                a, b = getattr(tree, f), getattr(ref, f)
                assert a.dtype == b.dtype and np.array_equal(a, b), (i, f)
            assert np.array_equal(tree.branch_lengths, ref.branch_lengths, equal_nan=True)
            assert (tree.taxa, tree.rooted, tree.weight, tree.name, tree.source) == \
                (ref.taxa, ref.rooted, ref.weight, ref.name, ref.source)


# ---------------------------------------------------------------------------
# the block scanner (Numba) against the line-based reader it replaced
# ---------------------------------------------------------------------------

TRICKY_NEXUS = (
    "\n#NEXUS\n[comment] begin trees; [inline]\n"
    "   translate 1 A, 2 B, 3 C, 4 D;\n"
    "   tree plain = [&U] ((1,2),3,4);\n"
    "   TREE upper = [&R] ((1,2),(3,4));\n"
    "   tree 'quoted name' = ((1,3),2,4);\n"
    "   tree *star = ((1,4),2,3);\n"
    "   tree * = ((1,4),2,3);\n"
    "   tree multi = [&W 0.5]\n      ((1,2),\n\n       3,4);\n"
    "   tree c [&lnP=-1.0] [x] = [&U][&W 2e-1] ((1,2),3,4);\n"
    "\n\n"
    "   tree crlf = [&W 0.1] ((1,2),3,4);\r\n"
    "\ttree\ttabs\t=\t[&  w \t 1.5 ] [ &W 3] [&r ] ((1,2),3,4);   \n"
    "   tree uni = [&W\x1c0.5] [&\xa0R] [&R\x85] ((1,2),3,4);\n"
    "   tree vt\x0b= [&W\x0c.25] ((1,2),3,4);\n"
    "   tree big = [&W 12345678901234567890] [&W 1e-30] ((1,2),3,4);\n"
    "   tree neg = [&W -0.] [&W +7.] [&Rooted] ((1,2),3,4);\n"
    "   tree semi_in_comment = ((1,2),3,4)[;] ;\n"
    "   tree two = ((1,2),3,4); tree y = ((1,3),2,4);\n"
    "   tree q'n = ((1,2),3,4);\n"
    "   [a comment line]\n"
    "   tree after_comment = ((1,2),3,4);\n"
    "   title other text in a trees block is ignored;\n"
    "   tree näme = ((1,2),3,4);\n"
    "   tree last = ((1,2),3,4)\n;\n"
    "end;\n"
    "begin trees;\n   tree again = ((1,2),3,4);\nEND;")

TRICKY_NEWICK = ("\n\n  [&R] ((a:1,b:1):1,c:2);  (a,(b,c));\n((a,c),\n\n b)[x;y];\n"
                 "[a comment; with semicolon](b,(a,c));\n  \t \n[&W 0.5]\n(c,(a,b));;\n"
                 "(c,(a,b))")


def _records(path, fast, block=None, max_batch=3):
    from phylo.io._treefile import _Record, _iter_file_slow, _scan_batches
    from phylo.io.newick import leading_flags
    out = []
    if fast:
        for b in _scan_batches(str(path), max_batch=max_batch, block=block):
            out += [(b.record(t), b.flags(t)) for t in range(len(b))]
    else:
        out = [(r, leading_flags(r.body)) for r in _iter_file_slow(str(path))
               if isinstance(r, _Record)]
    # exact weights (bit for bit) and rooting, as parse_newick's regexes give them
    return [(r.line, r.name, r.body, f[0], np.float64(f[1]).tobytes()) for r, f in out]


@pytest.mark.parametrize("text", [TRICKY_NEXUS, TRICKY_NEWICK, NEXUS_T, BEAST, TRPROBS,
                                  TRICKY_NEWICK.replace("\n", "\r\n"), "", "\n\n  \n",
                                  "#NEXUS\nbegin trees;\nend;\n"])
@pytest.mark.parametrize("gz", [False, True])
def test_scanner_matches_line_reader(tmp_path, text, gz):
    """Every statement: same line, name, Newick bytes, rooting flag and weight, for
    any block size (statements cut by block ends are carried into the next block)."""
    p = write(tmp_path, "x.t", text, gz=gz)
    slow = _records(p, False)
    for block in (None, 5, 64, 333):
        assert _records(p, True, block=block) == slow, block
    assert len(slow) > 0 or "(" not in text


@pytest.mark.parametrize("text", [
    "#NEXUS\nbegin trees;\n tree t = ((A,B),C);\n",
    "#NEXUS\nbegin trees;\n tree t = ((A,B),C);\n tree u = ((A,B),\n",
    "#NEXUS\nbegin trees;\n tree t = ((A,B),C);\n[unclosed\nend;\n",
    "#NEXUS\nbegin trees;\n tree t = ((A,B),C);\n tree u ((A,B),C);\nend;\n",
    "#NEXUS\nbegin trees;\n tree t = ((A,B),C);\n[multi-line\ncomment] tree h = (A,B,C);\nend;\n",
    "#NEXUS\nbegin trees;\n tree t = ((A,B),C);\nend;\n stray text;\n",
])
def test_scanner_errors_match_line_reader(tmp_path, text):
    p = write(tmp_path, "bad.t", text)
    errors = []
    for fast in (False, True):
        with pytest.raises(FormatError) as info:
            _records(p, fast, block=7)
        errors.append(str(info.value))
    assert errors[0] == errors[1]
    assert str(p) in errors[1]


def test_tricky_files_read(tmp_path):
    """Quoted/odd names and comments go through the line parser, in file order."""
    text = TRICKY_NEXUS.replace("   tree two = ((1,2),3,4); tree y = ((1,3),2,4);\n", "")
    p = write(tmp_path, "x.t", text)
    trees = list(read_trees(p))
    names = [t.name for t in trees]
    assert names[:6] == ["plain", "upper", "quoted name", "star", "*", "multi"]
    assert names[-3:] == ["näme", "last", "again"]
    assert [t.weight for t in trees[5:7]] == [0.5, 0.2]
    assert trees[1].rooted and not trees[0].rooted
    assert trees[5].source == f"{p}:10"
    smp = read_topologies(p)
    assert smp.n_trees == len(trees) == count_trees(p)
    w = {n: t.weight for n, t in zip(names, trees)}
    assert w["big"] == 1e-30 and w["neg"] == 7.0 and w["vt"] == 0.25
    assert smp.total == pytest.approx(sum(w.values()), abs=WEIGHT_TOL)


@pytest.mark.parametrize("name", ["reference/primates/mrbayes_mcmc/primates.run1.t.gz",
                                  "reference/primates/mrbayes_mcmc/primates.trprobs",
                                  "reference/DS4_mrbayes_mcmc/DS4.run2.t.gz",
                                  "reference/DS4_mrbayes_mcmc/DS4.con.tre",
                                  "data/DS1/golden_run/rep_1/DS1.trprobs.gz",
                                  "data/DS4/short_run/rep_3/DS4.trprobs.gz"])
def test_scanner_matches_line_reader_on_real_files(shared_dir, name):
    p = shared_dir / name
    if not p.exists():
        pytest.skip(f"{p} not in ../shared")
    slow = _records(p, False)
    assert len(slow) > 0
    assert _records(p, True, max_batch=1000) == slow
    assert _records(p, True, block=4096, max_batch=77) == slow


def test_burnin_thinning_across_batches(tmp_path, monkeypatch):
    """Burn-in and thinning count statements across block and batch boundaries."""
    import phylo.io._treefile as tf
    import phylo.io.trees as trees_mod
    tops = ["((1,2),3,(4,5))", "((1,3),2,(4,5))", "((2,3),1,(4,5))"]
    body = "".join(f"   tree gen.{i} = [&U] {tops[i % 3]};\n" for i in range(53))
    p = write(tmp_path, "x.t", NEXUS_T.split("   tree gen.0")[0] + body + "end;\n")
    ref = {}
    for kw in ({}, {"burnin": 0.25}, {"burnin": 0.3, "thin": 4}, {"burnin": 7, "thin": 3}):
        ref[str(kw)] = ([t.name for t in read_trees(p, **kw)], read_topologies(p, **kw))
    monkeypatch.setattr(tf, "BLOCK", 100)
    monkeypatch.setattr(trees_mod, "CHUNK", 4)
    monkeypatch.setattr(trees_mod, "TREE_BATCH", 5)
    for kw in ({}, {"burnin": 0.25}, {"burnin": 0.3, "thin": 4}, {"burnin": 7, "thin": 3}):
        names, smp = ref[str(kw)]
        assert [t.name for t in read_trees(p, **kw)] == names
        n = 53
        k = int(kw.get("burnin", 0) * n) if isinstance(kw.get("burnin"), float) else \
            kw.get("burnin", 0)
        assert names == [f"gen.{i}" for i in range(k, n, kw.get("thin", 1))]
        got = read_topologies(p, **kw)
        assert np.array_equal(got.keys, smp.keys) and np.array_equal(got.counts, smp.counts)
        assert got.n_trees == len(names)


# ---------------------------------------------------------------------------
# issue 13: one rule for both readers, valid files from other programs
# ---------------------------------------------------------------------------

def _both(path, **kw):
    """(read_trees result or error, read_topologies result or error)."""
    out = []
    for reader in (lambda: list(read_trees(path, **kw)), lambda: read_topologies(path, **kw)):
        try:
            out.append(reader())
        except PhyloError as exc:
            out.append(exc)
    return out


GOOD = "((A:0.1,B:0.2):0.1,(C:0.1,D:0.1):0.1);\n"


@pytest.mark.parametrize("bad, pattern", [
    ("((A:0.1,B:0.04x7504):0.1,(C:0.1,D:0.1):0.1);", "not a number: '0.04x7504'"),
    ("((A:0.1,B:-0.2):0.1,(C:0.1,D:0.1):0.1);", "negative branch length '-0.2' above taxon 'B'"),
    ("((A:0.1,B:nan):0.1,(C:0.1,D:0.1):0.1);", "'nan' above taxon 'B' is not a finite number"),
    ("((A:0.1,B:inf):0.1,(C:0.1,D:0.1):0.1);", "'inf' above taxon 'B' is not a finite number"),
    ("((A:0.1,B:1e999):0.1,(C:0.1,D:0.1):0.1);", "'1e999' above taxon 'B' is not a finite number"),
    ("[&W -1] ((A,B),(C,D));", "weight"),
    ("[&W nan] ((A,B),(C,D));", "weight"),
])
def test_bad_numbers_refused_by_both_readers(tmp_path, bad, pattern):
    """A corrupted length in the second tree: read_topologies (asdsf, sbn) refused it
    only when the first tree had it; now both readers refuse it, naming file and line."""
    p = write(tmp_path, "x.nwk", GOOD + bad + "\n")
    for got in _both(p):
        assert isinstance(got, TreeError), got
        assert f"{p}:2:" in str(got) and pattern in str(got)


def test_unary_nodes_suppressed_by_every_reader(tmp_path):
    """Unary nodes are suppressed (lengths along the chain added) by both readers,
    the kernel and parse_newick; asdsf/sbn crashed on them before."""
    from phylo.io.newick import parse_newick
    p = write(tmp_path, "u.nwk", "((((A:1):1):1,B:1):1,(C:1,D:1):1);\n"
                                 "(((A,B)),(C,D));\n((A:3,B:1):1,(C:1,D:1):1);\n")
    trees, smp = _both(p, rooted=False)
    assert smp.n_trees == 3 and smp.n_topologies == 1
    assert [t.to_newick() for t in trees] == [
        "(A:3,B:1,(C:1,D:1):2);", "(A,B,(C,D));", "(A:3,B:1,(C:1,D:1):2);"]
    t = parse_newick("(((A,B)));")
    assert t.n_leaves == 2 and t.n_nodes == 3
    t = parse_newick("((A:1,B:2)):0.5;")      # unary root dropped
    assert t.n_nodes == 3 and list(t.branch_lengths) == [1.0, 2.0]
    t = parse_newick("(((A:1,B:2)):0.5,C:1);")   # missing length on the chain: skipped
    assert t.branch_lengths[t.parent[0]] == 0.5
    with pytest.raises(TreeError, match="at least two leaves"):
        parse_newick("((A));")


def test_unary_nodes_cli_asdsf_and_sbn(tmp_path):
    import subprocess
    import sys
    p = write(tmp_path, "u.nwk", "((((A:1):1):1,B:1):1,(C:1,D:1):1);\n"
                                 "((A:1,C:1):1,(B:1,D:1):1);\n")
    r = subprocess.run([sys.executable, "-m", "phylo", "asdsf", str(p), str(p), "--burnin",
                        "0", "--format", "json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert '"asdsf": 0.0' in r.stdout
    r = subprocess.run([sys.executable, "-m", "phylo", "sbn", "fit", str(p), "--out",
                        str(tmp_path / "m.json")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_comment_after_last_tree_and_mesquite_names(tmp_path):
    p = write(tmp_path, "c.t", "#NEXUS\nbegin trees;\n  tree t0 = ((A,B),C,D);\n"
                               "  tree t1 = ((A,C),B,D); [comment after the last tree]\n"
                               "[another]\nend;\n[after end]\n")
    trees, smp = _both(p)
    assert [t.name for t in trees] == ["t0", "t1"] and smp.n_trees == 2
    p = write(tmp_path, "m.nex", "#NEXUS\nBEGIN TREES;\n  TITLE Trees;\n  LINK Taxa = Taxa;\n"
                                 "  TRANSLATE\n    1 A,\n    2 B,\n    3 'C;c',\n    4 'D,d';\n"
                                 "  TREE [!c] 'Tree # 1' = ((1,2),3,4);\n"
                                 "  TREE 'Tree two' = [&R] ((1,3),(2,4));\nEND;\n")
    trees, smp = _both(p)
    assert [t.name for t in trees] == ["Tree # 1", "Tree two"]
    assert trees[0].taxa == ("A", "B", "C;c", "D,d") and trees[1].rooted
    assert smp.n_topologies == 2


def test_blank_and_underscore_name_one_taxon(tmp_path):
    """NEXUS/Newick read '_' in an unquoted name as a blank: 'Genus species' in a MrBayes
    translate table is the alignment's Genus_species, and the other way round."""
    p = write(tmp_path, "g.t", "#NEXUS\nbegin trees;\n translate 1 'Homo sapiens', 2 Pan,"
                               " 3 Gorilla, 4 Pongo;\n tree g0 = ((1:1,2:1):1,3:1,4:1);\n"
                               " tree g1 = (('Homo sapiens':1,Pan:1):1,Gorilla:1,Pongo:1);\n"
                               "end;\n")
    taxa = ["Gorilla", "Homo_sapiens", "Pan", "Pongo"]
    trees, smp = _both(p, taxa=taxa)
    assert all(t.taxa == tuple(taxa) for t in trees) and smp.n_topologies == 1
    q = write(tmp_path, "u.nwk", "((Homo_sapiens,Pan),Gorilla,Pongo);\n")
    trees, smp = _both(q, taxa=["Gorilla", "Homo sapiens", "Pan", "Pongo"])
    assert trees[0].taxa[1] == "Homo sapiens" and smp.n_trees == 1
    r = write(tmp_path, "d.nwk", "((Homo_sapiens,'Homo sapiens'),Gorilla,Pongo);\n")
    for got in _both(r, taxa=["Gorilla", "Homo sapiens", "Pongo"]):
        assert isinstance(got, TaxonMismatchError) and "duplicate" in str(got)


REVBAYES = ("Iteration\tPosterior\tLikelihood\tPrior\ttree\n"
            "0\t-1234.5\t-1200.0\t-34.5\t((A:0.1,B:0.2):0.3,C:0.4,D:0.1);\n"
            "10\t-1230.5\t-1199.0\t-31.5\t((A:0.1,C:0.2):0.3,B:0.4,D:0.1);\n"
            "20\t-1230.5\t-1199.0\t-31.5\t((A:0.1,C:0.2):0.3,B:0.4,D:0.1);\n")


def test_revbayes_tree_trace(tmp_path):
    """A RevBayes tree trace (TSV with a Newick column) reads as its Newick column;
    'Posterior' is a column name, never a leaf."""
    p = write(tmp_path, "rb.trees", REVBAYES)
    trees, smp = _both(p, burnin=1)
    assert [t.name for t in trees] == ["10", "20"]
    assert trees[0].taxa == ("A", "B", "C", "D") and trees[0].source == f"{p}:3"
    assert smp.n_trees == 2 and smp.n_topologies == 1
    assert count_trees(p) == 3
    bad = write(tmp_path, "rb2.trees", REVBAYES.replace("\t-31.5\t((A", "\t((A", 1))
    for got in _both(bad):
        assert isinstance(got, FormatError) and "tab-separated" in str(got)


def test_beast2_annotated_trees(tmp_path):
    """BEAST 2 writes [&rate=…,height=…] on every node (and sets in braces)."""
    text = ("#NEXUS\n\nBegin taxa;\n\tDimensions ntax=4;\n\t\tTaxlabels\n\t\t\tw\n\t\t\tx\n"
            "\t\t\ty\n\t\t\tz\n\t\t\t;\nEnd;\nBegin trees;\n\tTranslate\n\t\t   1 w,\n"
            "\t\t   2 x,\n\t\t   3 y,\n\t\t   4 z\n;\n"
            "tree STATE_0 = (((1[&rate=1.0,height=0.0]:1.5,2[&rate=0.9,height=0.0]:1.5)"
            "[&rate=1.1,height=1.5]:2.0,3[&rate=1.0,height=0.0]:3.5)[&rate=1.0,height=3.5]:1.0,"
            "4[&height_95%_HPD={0.0,0.0},rate=1.0]:4.5)[&height=4.5]:0.0;\n"
            "tree STATE_1000 = (((1[&rate=1.0]:1.5,3[&rate=0.9]:1.5)[&rate=1.1]:2.0,"
            "2[&rate=1.0]:3.5)[&rate=1.0]:1.0,4[&rate=1.0]:4.5)[&height=4.5]:0.0;\nEnd;\n")
    p = write(tmp_path, "b.trees", text)
    trees, smp = _both(p)
    assert [t.to_newick() for t in trees] == ["(z:4.5,(y:3.5,(w:1.5,x:1.5):2):1);",
                                              "(z:4.5,(x:3.5,(w:1.5,y:1.5):2):1);"]
    assert all(t.rooted for t in trees) and smp.rooted and smp.n_topologies == 2


@pytest.mark.parametrize("data", [b"\x1f\x8b", "half", "corrupt"])
def test_bad_gzip_is_one_format_error(tmp_path, data):
    whole = gzip.compress(("#NEXUS\nbegin trees;\n" + " tree t = ((A,B),C,D);\n" * 500
                           + "end;\n").encode())
    if data == "half":
        data = whole[:len(whole) // 2]
    elif data == "corrupt":
        data = whole[:20] + b"\xff" * 40 + whole[60:]
    p = tmp_path / "t.t.gz"
    p.write_bytes(data)
    for got in _both(p):
        assert isinstance(got, FormatError) and "gzip" in str(got) and str(p) in str(got)


def test_empty_tree_files_refused_by_both(tmp_path):
    for text in ("", "#NEXUS\nbegin trees;\nend;\n", "[only a comment]\n"):
        p = write(tmp_path, "e.t", text)
        for got in _both(p):
            assert isinstance(got, FormatError) and "no trees" in str(got), (text, got)


def test_wide_tree_reads_in_linear_time(tmp_path):
    """A 20,000-taxon tree (the taxa check was quadratic: 55,000 taxa took 80-116 s),
    names checked against an explicit taxon list."""
    from phylo.trees.random import random_tree
    taxa = [f"t{i}" for i in range(20000)]
    tree = random_tree(taxa, seed=3)
    p = write(tmp_path, "wide.nwk", tree.to_newick(precision=17) + "\n")
    back = next(iter(read_trees(p, taxa=taxa)))
    assert np.array_equal(back.parent, tree.parent)
    smp = read_topologies(p, taxa=taxa)      # keys are O(S): 2S int32 per topology
    assert smp.n_taxa == 20000 and smp.keys.nbytes == 8 * 20000
