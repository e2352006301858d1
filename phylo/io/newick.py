"""Newick parsing into :class:`phylo.trees.Tree` arrays.

Grammar handled: nested parentheses, leaf names (bare or single-quoted with ``''``
escapes), internal node labels (support values; ignored), branch lengths in any float
notation, comments in square brackets anywhere (``[&U]``/``[&R]`` before the tree set
rooting, ``[&W 0.25]`` sets the tree weight, BEAST/MrBayes node annotations such as
``[&rate=1.2]`` are skipped), whitespace and newlines.
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

import numpy as np

from ..errors import TreeError
from ..trees.tree import Tree, _check_taxa

# One regex pass turns a Newick string into tokens; the parse loop is then linear.
_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<open>\()|(?P<close>\))|(?P<comma>,)|(?P<colon>:)|(?P<semi>;)"
    r"|\[(?P<comment>[^\]]*)\]"
    r"|'(?P<quoted>(?:[^']|'')*)'"
    r"|(?P<word>[^\s():;,\[\]']+)"
    r")"
)
_ROOTING = re.compile(r"&\s*([RrUu])\s*$")
_WEIGHT = re.compile(r"&\s*[Ww]\s+([-+0-9.eE]+)")


def parse_newick(text: str, *, taxa: Sequence[str] | None = None,
                 translate: Mapping[str, str] | None = None,
                 rooted: bool | None = None, source: str | None = None,
                 line: int | None = None, name: str | None = None) -> Tree:
    """Parse one Newick tree.

    Parameters
    ----------
    text: the Newick string (the trailing ``;`` is optional).
    taxa: the taxon order for the leaf numbering; default: sorted leaf names. The
        tree's leaves must be exactly these taxa (a :class:`TaxonMismatchError`
        names the difference otherwise).
    translate: NEXUS ``translate`` table mapping tokens (``"1"``) to taxon names.
    rooted: force rooted/unrooted; default: ``[&R]``/``[&U]`` in the string, else
        the root's degree (2 → rooted).
    source, line: file and line, for error messages.
    """
    parent: list[int] = []
    lengths: list[float] = []
    leaf_names: list[str] = []
    leaf_of_node: list[int] = []  # node id -> leaf index or -1
    stack: list[int] = []
    closed: list[int] = []  # internal nodes in the order their ')' closes (post-order)
    current = -1          # the node whose label/length comes next
    expect_length = False
    weight = 1.0
    root_flag: bool | None = None
    seen_node = False
    done = False
    last_kind = ""
    pos = 0
    n = len(text)

    def new_node(par: int) -> int:
        parent.append(par)
        lengths.append(np.nan)
        leaf_of_node.append(-1)
        return len(parent) - 1

    def fail(message: str) -> TreeError:
        snippet = text[max(0, pos - 20):pos + 20].strip()
        return TreeError(f"{message} near {snippet!r}", path=source, line=line)

    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise fail("unexpected character")
        pos = m.end()
        kind = m.lastgroup
        if kind in ("comma", "close") and last_kind in ("open", "comma"):
            raise fail("empty leaf (a missing taxon name)")
        if kind != "comment":
            last_kind = kind
        if kind == "comment":
            body = m.group("comment")
            if not seen_node:
                r = _ROOTING.match(body)
                if r:
                    root_flag = r.group(1).upper() == "R"
                w = _WEIGHT.match(body)
                if w:
                    weight = _to_float(w.group(1), fail)
            continue
        if done:
            raise fail("text after the end of the tree")
        if expect_length:
            if kind != "word":
                raise fail("missing branch length after ':'")
            lengths[current] = _to_float(m.group("word"), fail)
            expect_length = False
            continue
        if kind == "open":
            node = new_node(stack[-1] if stack else -1)
            stack.append(node)
            seen_node = True
            current = -1
        elif kind in ("word", "quoted"):
            label = m.group("word") if kind == "word" else m.group("quoted").replace("''", "'")
            if current >= 0:
                if leaf_of_node[current] >= 0:
                    raise fail(f"two names for one leaf ({label!r})")
                continue  # internal node label (e.g. support value): ignored
            node = new_node(stack[-1] if stack else -1)
            if not stack and seen_node:
                raise fail("a second tree in one string")
            seen_node = True
            if translate is not None:
                label = translate.get(label, label)
            leaf_of_node[node] = len(leaf_names)
            leaf_names.append(label)
            current = node
        elif kind == "colon":
            if current < 0:
                raise fail("branch length without a node")
            expect_length = True
        elif kind == "comma":
            if not stack:
                raise fail("',' outside parentheses")
            current = -1
        elif kind == "close":
            if not stack:
                raise fail("unbalanced ')'")
            current = stack.pop()
            closed.append(current)
        elif kind == "semi":
            if stack:
                raise fail("unbalanced '(' at end of tree")
            done = True
    if expect_length:
        raise fail("missing branch length after ':'")
    if stack:
        raise TreeError("unbalanced '(': the tree ends before all clades close",
                        path=source, line=line)
    if not leaf_names:
        raise TreeError("empty tree", path=source, line=line)

    taxa_t = tuple(sorted(leaf_names)) if taxa is None else tuple(taxa)
    _check_taxa(leaf_names, taxa_t, source=_where(source, line))
    position = {t: i for i, t in enumerate(taxa_t)}
    s = len(taxa_t)
    root_children = sum(1 for p in parent if p == 0) if parent and leaf_of_node[0] < 0 else 0
    if rooted is None:
        rooted = root_flag if root_flag is not None else root_children == 2
    where = _where(source, line)
    if len(closed) + len(leaf_names) == len(parent) and parent.count(-1) == 1 and closed:
        # one rooted tree whose internal nodes closed in post-order: the layout directly
        tree = _layout(parent, lengths, leaf_of_node, leaf_names, closed, position, s, taxa_t,
                       rooted, weight, name, where)
    else:
        # renumber: leaves first (taxon order), then internal nodes in input order
        node_index = np.empty(len(parent), dtype=np.int64)
        next_internal = s
        for v, leaf in enumerate(leaf_of_node):
            if leaf >= 0:
                node_index[v] = position[leaf_names[leaf]]
            else:
                node_index[v] = next_internal
                next_internal += 1
        par = np.full(len(parent), -1, dtype=np.int64)
        bl = np.full(len(parent), np.nan)
        for v, p in enumerate(parent):
            nv = node_index[v]
            par[nv] = node_index[p] if p >= 0 else -1
            bl[nv] = lengths[v]
        tree = Tree.from_parent_array(par, bl, taxa_t, rooted=rooted, weight=weight,
                                      name=name, source=where)
    if not rooted and tree.n_children[tree.root] == 2 and tree.n_leaves > 2:
        tree = tree.unrooted()
    return tree


def _layout(parent, lengths, leaf_of_node, leaf_names, closed, position, s, taxa_t, rooted,
            weight, name, where) -> Tree:
    """Tree arrays straight from the parse (what ``Tree.from_parent_array`` would give).

    Leaves get their taxon position, internal nodes ``s + (rank of their ')')``: the
    closing order is the post-order with siblings in input order, the root last;
    children rows are ascending (leaves by taxon index, then clades in input order).
    """
    n = len(parent)
    leaf_of = np.asarray(leaf_of_node, dtype=np.int64)
    leaf_pos = np.array([position[t] for t in leaf_names], dtype=np.int64)
    new_index = np.empty(n, dtype=np.int64)
    is_leaf = leaf_of >= 0
    new_index[is_leaf] = leaf_pos[leaf_of[is_leaf]]
    new_index[np.asarray(closed, dtype=np.int64)] = np.arange(s, n, dtype=np.int64)
    old_parent = np.asarray(parent, dtype=np.int64)
    new_parent = np.full(n, -1, dtype=np.int32)
    new_lengths = np.zeros(n, dtype=np.float64)
    has_parent = old_parent >= 0
    kids_new = new_index[has_parent]
    par_new = new_index[old_parent[has_parent]]
    new_parent[kids_new] = par_new
    new_lengths[kids_new] = np.asarray(lengths, dtype=np.float64)[has_parent]
    n_children = np.bincount(par_new, minlength=n).astype(np.int32)
    k = max(1, int(n_children.max()))
    children = np.full((n, k), -1, dtype=np.int32)
    order = np.argsort(par_new * n + kids_new, kind="stable")
    ps = par_new[order]
    first = np.concatenate(([0], np.cumsum(n_children)[:-1]))
    slot = np.arange(order.size) - first[ps]
    children[ps, slot] = kids_new[order]
    return Tree._from_layout(tuple(taxa_t), children, n_children, new_parent, new_lengths[:-1],
                             rooted, weight, name, where)


def _to_float(text: str, fail) -> float:
    try:
        return float(text)
    except ValueError:
        raise fail(f"not a number: {text!r}") from None


def _where(source: str | None, line: int | None) -> str | None:
    if source is None:
        return None
    return f"{source}:{line}" if line is not None else source
