"""Tree arrays: layout invariants, Newick round trips, ete3 conversion, rerooting."""
from __future__ import annotations

import numpy as np
import pytest
from ete3 import Tree as EteTree

from phylo.errors import TaxonMismatchError, TreeError
from phylo.io.newick import parse_newick
from phylo.trees import Tree

PRIMATES = ("(Tarsius_syrichta:0.4792115693,Lemur_catta:0.3289244024,((((((Homo_sapiens:0.0484918669,"
            "Pan:0.0590340527):0.0240100395,Gorilla:0.0585458509):0.0745196525,Pongo:0.1332478788)"
            ":0.0446605482,Hylobates:0.1653384828):0.1095937649,(((Macaca_fuscata:0.0160988777,"
            "M_mulatta:0.0223994888):0.0339194420,M_fascicularis:0.0553106511):0.0426688387,"
            "M_sylvanus:0.0707284898):0.2364271247):0.1050937524,Saimiri_sciureus:0.4349864829)"
            ":0.2505484397);")


def splits_with_lengths(tree: Tree) -> dict[frozenset, float]:
    """Reference: each branch as (smaller side of its split) -> length, from the arrays."""
    below = [frozenset([tree.taxa[v]]) if v < tree.n_leaves else frozenset()
             for v in range(tree.n_nodes)]
    for v in range(tree.n_leaves, tree.n_nodes):
        below[v] = frozenset().union(*(below[c] for c in tree.children[v, :tree.n_children[v]]))
    everything = frozenset(tree.taxa)
    out: dict[frozenset, float] = {}
    for v in range(tree.n_nodes - 1):
        side = below[v]
        key = min(side, everything - side, key=lambda s: (len(s), sorted(s)))
        out[key] = out.get(key, 0.0) + tree.branch_lengths[v]
    return out


def ete_splits(newick: str) -> dict[frozenset, float]:
    t = EteTree(newick)
    everything = frozenset(t.get_leaf_names())
    out = {}
    for node in t.traverse():
        if node.up is None:
            continue
        side = frozenset(node.get_leaf_names())
        key = min(side, everything - side, key=lambda s: (len(s), sorted(s)))
        out[key] = out.get(key, 0.0) + node.dist
    return out


def check_layout(tree: Tree) -> None:
    s, n = tree.n_leaves, tree.n_nodes
    assert tree.parent[-1] == -1 and np.all(tree.parent[:-1] > np.arange(n - 1))
    assert np.all(tree.n_children[:s] == 0)
    for v in range(s, n):
        kids = tree.children[v, :tree.n_children[v]]
        assert np.all(kids < v) and np.all(tree.parent[kids] == v)
    assert tree.branch_lengths.shape == (n - 1,)


def test_layout_and_splits_match_ete3():
    tree = parse_newick(PRIMATES)
    check_layout(tree)
    assert (tree.n_leaves, tree.n_branches, tree.rooted, tree.is_binary()) == (12, 21, False, True)
    ref = ete_splits(PRIMATES)
    ours = splits_with_lengths(tree)
    assert ours.keys() == ref.keys()
    for k in ref:
        assert ours[k] == pytest.approx(ref[k], abs=1e-12)


@pytest.mark.parametrize("node_offset", [0, 3, 7, 9])
def test_reroot_keeps_splits(node_offset):
    tree = parse_newick(PRIMATES)
    rerooted = tree.rerooted(tree.n_leaves + node_offset)
    check_layout(rerooted)
    assert rerooted.is_binary()
    a, b = splits_with_lengths(tree), splits_with_lengths(rerooted)
    assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], abs=1e-12) for k in a)


def test_newick_and_ete3_round_trip():
    tree = parse_newick(PRIMATES)
    again = parse_newick(tree.to_newick())
    assert splits_with_lengths(again) == pytest.approx(splits_with_lengths(tree))
    via_ete = Tree.from_ete3(tree.to_ete3(), rooted=False)
    assert splits_with_lengths(via_ete) == pytest.approx(splits_with_lengths(tree))


def test_taxa_order_renumbers_leaves():
    tree = parse_newick("((A:1,B:2):3,C:4,D:5);")
    order = ("D", "C", "B", "A")
    re = tree.with_taxa_order(order)
    check_layout(re)
    assert re.taxa == order
    assert re.branch_lengths[2] == 2.0  # leaf 2 is B
    with pytest.raises(TaxonMismatchError, match="'E'"):
        tree.with_taxa_order(("A", "B", "C", "E"))


def test_rooted_and_unrooted():
    rooted = parse_newick("[&R] ((A:1,B:2):0.5,(C:1,D:1):0.25);")
    assert rooted.rooted and rooted.is_binary() and rooted.n_branches == 6
    unrooted = parse_newick("[&U] ((A:1,B:2):0.5,(C:1,D:1):0.25);")
    assert not unrooted.rooted and unrooted.is_binary() and unrooted.n_branches == 5
    assert splits_with_lengths(unrooted)[frozenset("AB")] == pytest.approx(0.75)
    # a bifurcating root without a flag counts as rooted (MrBayes/BEAST convention)
    assert parse_newick("((A,B),(C,D));").rooted


def test_annotations_quotes_and_labels():
    text = ("[&W 0.125] [&R] (('taxon one':1.5e-2[&rate=1.0],'it''s':2)0.95:1,"
            "(C:1,D[&x=\"a,b\"]:1)lbl:1);")
    tree = parse_newick(text)
    assert tree.weight == 0.125 and tree.rooted
    assert set(tree.taxa) == {"taxon one", "it's", "C", "D"}
    assert tree.branch_lengths[tree.taxa.index("taxon one")] == pytest.approx(0.015)
    assert "'taxon one'" in tree.to_newick()


def test_translate_table():
    tree = parse_newick("(1:0.1,2:0.2,(3:0.3,4:0.4):0.5);",
                        translate={"1": "w", "2": "x", "3": "y", "4": "z"})
    assert tree.taxa == ("w", "x", "y", "z")


@pytest.mark.parametrize("text, words", [
    ("((A,B),C", "unbalanced '('"),
    ("((A,B),C));", "unbalanced ')'"),
    ("(A,B,,C);", "empty leaf"),
    ("(A,B,());", "empty leaf"),
    ("(A:x,B,C);", "not a number"),
    ("(A:,B,C);", "missing branch length"),
    ("(A,B,C);(D,E,F);", "text after the end"),
    ("", "empty tree"),
])
def test_malformed_newick(text, words):
    with pytest.raises(TreeError) as info:
        parse_newick(text, source="trees.nwk", line=7)
    assert words in str(info.value)
    assert "trees.nwk:7" in str(info.value)


def test_duplicate_and_mismatched_taxa():
    with pytest.raises(TaxonMismatchError, match="duplicate taxon 'A'"):
        parse_newick("(A,A,B);")
    with pytest.raises(TaxonMismatchError, match="missing from the tree: 'D'"):
        parse_newick("(A,B,C);", taxa=("A", "B", "C", "D"))


def test_branch_length_validation_names_taxon():
    # the readers refuse negative lengths (test_io_trees); a Tree built in code is checked
    with pytest.raises(TreeError, match="negative branch length '-0.5'") as info:
        parse_newick("(A:1,B:-0.5,C:1);", source="t.nwk")
    assert "t.nwk" in str(info.value)
    tree = parse_newick("(A:1,B:0.5,C:1);", source="t.nwk")
    tree = tree.with_branch_lengths(np.array([1.0, -0.5, 1.0]))
    with pytest.raises(TreeError, match="negative .* above taxon 'B'") as info:
        tree.validate_branch_lengths()
    assert "t.nwk" in str(info.value)
    with pytest.raises(TreeError, match="missing branch length above taxon 'A'"):
        parse_newick("(A,B:1,C:1);").validate_branch_lengths()


def test_non_binary_detected():
    tree = parse_newick("(A:1,B:1,C:1,D:1);", source="poly.nwk")
    assert not tree.is_binary()
    with pytest.raises(TreeError, match="not binary"):
        tree.require_binary()


def test_with_branch_lengths_checks_shape():
    tree = parse_newick("(A:1,B:1,C:1);")
    assert tree.with_branch_lengths(np.array([1.0, 2.0, 3.0])).branch_lengths[1] == 2.0
    with pytest.raises(TreeError, match="expected 3 branch lengths"):
        tree.with_branch_lengths(np.ones(4))
