"""Newick parsing into :class:`phylo.trees.Tree` arrays: the reference grammar.

Grammar handled: nested parentheses, leaf names (bare or single-quoted with ``''``
escapes), internal node labels (support values; ignored), branch lengths in any float
notation, comments in square brackets anywhere (``[&U]``/``[&R]`` before the tree set
rooting, ``[&W 0.25]`` sets the tree weight, BEAST/MrBayes node annotations such as
``[&rate=1.2,height=3.4]`` are skipped), whitespace and newlines.

Rules every tree reader of ``phylo`` follows (the Numba bulk parser in
:mod:`phylo._kernels.newick` hands anything it does not handle to this parser):

* branch lengths are finite and non-negative (``-0.0`` reads as zero); anything else
  is a :class:`TreeError` naming the number;
* a ``[&W w]`` weight is finite and non-negative; of several leading ``[&W]`` /
  ``[&R]``/``[&U]`` comments the last one counts (:func:`comment_flags`);
* unary nodes (a clade with a single child, ``((A,B))`` or ``((A:1):1)``) are
  suppressed, as DendroPy does by default: the child takes the node's place and the
  lengths along the chain are added (missing lengths count as absent; the length is
  missing only when every length along the chain is). A unary root is dropped;
* a tree has at least two leaves;
* names are matched to a given taxon list exactly, else with blanks and underscores
  exchanged: Newick and NEXUS read ``_`` in an unquoted name as a blank, so
  ``'Genus species'`` and ``Genus_species`` are one taxon.
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
_WEIGHT = re.compile(r"&\s*[Ww]\s+(\S+)")   # the number is checked, not ignored
_LEADING = re.compile(r"\s*\[([^\]]*)\]")


def comment_flags(body: str, rooted: bool | None, weight: str | None
                  ) -> tuple[bool | None, str | None]:
    """Update (rooting flag, weight text) with one comment before a tree's first node.

    ``[&R]``/``[&U]`` (any case, blanks allowed) set the rooting, ``[&W w]`` the weight
    (MrBayes ``.trprobs``); other comments (``[&lnP=…]``) change nothing. The one
    reader of these comments: :func:`parse_newick` and :func:`leading_flags` call it,
    and the Numba scanner (``phylo._kernels.treefile.lead_flags``) mirrors it.
    """
    r = _ROOTING.match(body)
    if r:
        rooted = r.group(1).upper() == "R"
    w = _WEIGHT.match(body)
    if w:
        weight = w.group(1)
    return rooted, weight


def leading_flags(text: str | bytes) -> tuple[bool | None, float]:
    """(rooting flag or None, weight) of the comments that start a Newick string,
    as :func:`parse_newick` reads them; :class:`TreeError` for a bad weight."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    rooted = None
    weight = None
    pos = 0
    while True:
        m = _LEADING.match(text, pos)
        if not m:
            break
        rooted, weight = comment_flags(m.group(1), rooted, weight)
        pos = m.end()
    return rooted, _weight(weight, lambda msg: TreeError(msg))


def _weight(text: str | None, fail) -> float:
    if text is None:
        return 1.0
    w = _to_float(text, fail)
    if not (np.isfinite(w) and w >= 0.0):
        raise fail(f"tree weight [&W {text}] is not a finite non-negative number")
    return w


def resolve_name(name: str, position: Mapping[str, int]) -> str:
    """The taxon of ``position`` that a tree label names: the label itself, else the
    label with blanks and underscores exchanged (``'Genus species'`` is
    ``Genus_species``); the label unchanged when neither is a taxon."""
    if name in position:
        return name
    for alt in (name.replace(" ", "_"), name.replace("_", " ")):
        if alt in position:
            return alt
    return name


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
    weight_text: str | None = None
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
                root_flag, weight_text = comment_flags(body, root_flag, weight_text)
            continue
        if done:
            raise fail("text after the end of the tree")
        if expect_length:
            if kind != "word":
                raise fail("missing branch length after ':'")
            leaf = leaf_of_node[current]
            above = f"taxon {leaf_names[leaf]!r}" if leaf >= 0 else "an internal node"
            lengths[current] = _branch_length(m.group("word"), fail, above)
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
            if not np.isnan(lengths[current]):
                raise fail("two branch lengths for one node")
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
    if len(leaf_names) < 2:
        raise TreeError(f"a tree needs at least two leaves, found {leaf_names[0]!r} alone",
                        path=source, line=line)
    weight = _weight(weight_text, fail)
    parent, lengths, leaf_of_node, closed = _suppress_unary(parent, lengths, leaf_of_node,
                                                            closed)

    if taxa is None:
        taxa_t = tuple(sorted(leaf_names))
        position = {t: i for i, t in enumerate(taxa_t)}
    else:
        taxa_t = tuple(taxa)
        position = {t: i for i, t in enumerate(taxa_t)}
        leaf_names = [resolve_name(x, position) for x in leaf_names]
    _check_taxa(leaf_names, taxa_t, source=_where(source, line))
    s = len(taxa_t)
    root = parent.index(-1)
    root_children = sum(1 for p in parent if p == root) if leaf_of_node[root] < 0 else 0
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


def _suppress_unary(parent, lengths, leaf_of_node, closed):
    """Remove unary internal nodes (see the module docstring); lists in, lists out."""
    n = len(parent)
    n_kids = [0] * n
    for p in parent:
        if p >= 0:
            n_kids[p] += 1
    removed = [leaf_of_node[v] < 0 and n_kids[v] == 1 for v in range(n)]
    if not any(removed):
        return parent, lengths, leaf_of_node, closed
    keep = [v for v in range(n) if not removed[v]]
    new_id = {v: i for i, v in enumerate(keep)}
    new_parent: list[int] = []
    new_lengths: list[float] = []
    for v in keep:
        p = parent[v]
        total = lengths[v]
        while p >= 0 and removed[p]:
            x = lengths[p]
            if not np.isnan(x):
                total = x if np.isnan(total) else total + x
            p = parent[p]
        new_parent.append(new_id[p] if p >= 0 else -1)
        new_lengths.append(total)
    return (new_parent, new_lengths, [leaf_of_node[v] for v in keep],
            [new_id[c] for c in closed if not removed[c]])


def _branch_length(text: str, fail, above: str) -> float:
    x = _to_float(text, fail)
    if not np.isfinite(x):
        raise fail(f"branch length {text!r} above {above} is not a finite number")
    if x < 0.0:
        raise fail(f"negative branch length {text!r} above {above}")
    return x


def _to_float(text: str, fail) -> float:
    try:
        return float(text)
    except ValueError:
        raise fail(f"not a number: {text!r}") from None


def _where(source: str | None, line: int | None) -> str | None:
    if source is None:
        return None
    return f"{source}:{line}" if line is not None else source
