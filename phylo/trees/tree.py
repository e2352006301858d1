"""Trees as flat arrays, the form in which every kernel sees a tree.

Layout (the contract between the Python API and the Numba kernels)
-------------------------------------------------------------------
A tree with ``S`` leaves and ``N`` nodes is numbered so that

* nodes ``0 .. S-1`` are the leaves, leaf ``i`` carrying taxon ``taxa[i]``;
* nodes ``S .. N-1`` are the internal nodes in post-order: every child has a
  smaller index than its parent, so a loop ``for v in range(S, N)`` visits children
  before parents;
* node ``N-1`` is the root.

Arrays (all ``numpy``; ``int32`` indices, ``float64`` lengths):

``children``      shape (N, K), the children of each node padded with ``-1``;
                  K = the largest degree (2 for rooted binary trees, 3 for unrooted
                  binary trees, whose root is the trifurcation of the Newick string).
``n_children``    shape (N,), number of children (0 for leaves).
``parent``        shape (N,), parent of each node, ``-1`` for the root.
``branch_lengths`` shape (N-1,), ``branch_lengths[v]`` is the length of the branch
                  above node ``v`` in expected substitutions per site. Branch ``v``
                  is therefore identified by its lower node. For an unrooted binary
                  tree this is the vector of its 2S-3 branch lengths.

``rooted`` records what the input said (``[&R]``/``[&U]``) or, failing that, the
shape of the root: a bifurcating root is rooted, a trifurcation is unrooted.
An unrooted tree is always stored with a trifurcating root (a rooted binary tree
read as unrooted is converted by merging the two root branches).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

import numpy as np

from ..errors import TaxonMismatchError, TreeError


@dataclass(frozen=True, eq=False)
class Tree:
    """A phylogenetic tree as post-order node arrays (see module docstring)."""

    taxa: tuple[str, ...]
    children: np.ndarray
    n_children: np.ndarray
    parent: np.ndarray
    branch_lengths: np.ndarray
    rooted: bool = False
    weight: float = 1.0
    name: str | None = None
    source: str | None = field(default=None, repr=False)

    # -- sizes ---------------------------------------------------------------
    @property
    def n_leaves(self) -> int:
        return len(self.taxa)

    @property
    def n_nodes(self) -> int:
        return int(self.parent.shape[0])

    @property
    def n_branches(self) -> int:
        return self.n_nodes - 1

    @property
    def root(self) -> int:
        return self.n_nodes - 1

    @property
    def has_branch_lengths(self) -> bool:
        return not bool(np.isnan(self.branch_lengths).any())

    def is_binary(self) -> bool:
        """Binary: every internal node has 2 children, the root 2 (rooted) or 3 (unrooted)."""
        nc = self.n_children[self.n_leaves:self.root]
        root_ok = self.n_children[self.root] in ((2,) if self.rooted else (3,))
        return bool(np.all(nc == 2) and root_ok)

    # -- construction ----------------------------------------------------------
    @classmethod
    def from_parent_array(cls, parent: Sequence[int], branch_lengths: Sequence[float] | None,
                          taxa: Sequence[str], *, rooted: bool, **kwargs) -> "Tree":
        """Build from any numbering where nodes ``0..S-1`` are the leaves in taxon order.

        ``parent[v]`` is the parent of node ``v`` (exactly one ``-1``: the root);
        ``branch_lengths[v]`` the length above ``v`` (ignored for the root). Internal
        nodes are renumbered into post-order.
        """
        parent = np.asarray(parent, dtype=np.int64)
        n = parent.shape[0]
        s = len(taxa)
        lengths = (np.full(n, np.nan) if branch_lengths is None
                   else np.asarray(branch_lengths, dtype=np.float64))
        roots = np.flatnonzero(parent < 0)
        if roots.size != 1:
            raise TreeError(f"a tree needs exactly one root, found {roots.size}")
        kids: list[list[int]] = [[] for _ in range(n)]
        for v in range(n):
            if parent[v] >= 0:
                kids[parent[v]].append(v)
        for v in range(s):
            if kids[v]:
                raise TreeError(f"leaf {taxa[v]!r} has children")
        # iterative post-order from the root, children in input order
        order: list[int] = []
        stack = [(int(roots[0]), False)]
        while stack:
            v, expanded = stack.pop()
            if expanded or not kids[v]:
                order.append(v)
                continue
            stack.append((v, True))
            for c in reversed(kids[v]):
                stack.append((c, False))
        if len(order) != n:
            raise TreeError("the parent array does not describe a connected tree")
        new_index = np.empty(n, dtype=np.int64)
        next_internal = s
        for v in order:
            if v < s:
                new_index[v] = v
            else:
                new_index[v] = next_internal
                next_internal += 1
        k = max(1, max(len(c) for c in kids))
        children = np.full((n, k), -1, dtype=np.int32)
        n_children = np.zeros(n, dtype=np.int32)
        new_parent = np.full(n, -1, dtype=np.int32)
        new_lengths = np.zeros(n, dtype=np.float64)
        for v in range(n):
            nv = new_index[v]
            n_children[nv] = len(kids[v])
            for j, c in enumerate(kids[v]):
                children[nv, j] = new_index[c]
            if parent[v] >= 0:
                new_parent[nv] = new_index[parent[v]]
                new_lengths[nv] = lengths[v]
        return cls(tuple(taxa), children, n_children, new_parent, new_lengths[:-1],
                   rooted=rooted, **kwargs)

    @classmethod
    def _from_layout(cls, taxa: tuple[str, ...], children: np.ndarray, n_children: np.ndarray,
                     parent: np.ndarray, branch_lengths: np.ndarray, rooted: bool,
                     weight: float = 1.0, name: str | None = None,
                     source: str | None = None) -> "Tree":
        """Trusted constructor: the arrays already follow the layout (no checks, no copies).

        For bulk readers (:func:`phylo.io.trees.read_trees`) whose kernels produce the
        post-order layout directly: ``children`` (N, K) int32 rows ascending padded
        with -1, ``n_children`` (N,) int32, ``parent`` (N,) int32, ``branch_lengths``
        (N-1,) float64, ``taxa`` a tuple. The caller owns the validity of the arrays.
        """
        obj = object.__new__(cls)
        obj.__dict__.update(taxa=taxa, children=children, n_children=n_children,
                            parent=parent, branch_lengths=branch_lengths, rooted=rooted,
                            weight=weight, name=name, source=source)
        return obj

    # -- conversions -----------------------------------------------------------
    def to_newick(self, *, lengths: bool = True, precision: int = 10,
                  annotate_rooting: bool = False) -> str:
        """Newick string (taxon names quoted where Newick requires it)."""
        parts: list[str] = [""] * self.n_nodes
        bl = self.branch_lengths
        for v in range(self.n_nodes):
            if v < self.n_leaves:
                text = _quote(self.taxa[v])
            else:
                text = "(" + ",".join(parts[c] for c in self.children[v, :self.n_children[v]]) + ")"
            if lengths and v != self.root and not np.isnan(bl[v]):
                text += ":" + _format_length(bl[v], precision)
            parts[v] = text
        prefix = ("[&R] " if self.rooted else "[&U] ") if annotate_rooting else ""
        return prefix + parts[self.root] + ";"

    def to_ete3(self):
        """An ``ete3.Tree`` with the same topology, names and branch lengths."""
        from ete3 import Tree as EteTree
        nodes = [EteTree() for _ in range(self.n_nodes)]
        for v in range(self.n_nodes):
            if v < self.n_leaves:
                nodes[v].name = self.taxa[v]
            if v != self.root:
                nodes[v].dist = float(self.branch_lengths[v]) if not np.isnan(self.branch_lengths[v]) else 0.0
        for v in range(self.n_leaves, self.n_nodes):
            for c in self.children[v, :self.n_children[v]]:
                nodes[v].add_child(nodes[c])
        return nodes[self.root]

    @classmethod
    def from_ete3(cls, ete_tree, *, taxa: Sequence[str] | None = None,
                  rooted: bool | None = None) -> "Tree":
        """Convert an ``ete3.Tree``; leaves are numbered in ``taxa`` order (default: sorted names)."""
        leaves = ete_tree.get_leaves()
        names = [leaf.name for leaf in leaves]
        taxa = tuple(sorted(names)) if taxa is None else tuple(taxa)
        _check_taxa(names, taxa)
        index = {name: i for i, name in enumerate(taxa)}
        node_id: dict[int, int] = {}
        parent: list[int] = [-1] * len(taxa)
        lengths: list[float] = [np.nan] * len(taxa)
        for node in ete_tree.traverse("preorder"):
            if node.is_leaf():
                nid = index[node.name]
            else:
                nid = len(parent)
                parent.append(-1)
                lengths.append(np.nan)
            node_id[id(node)] = nid
            lengths[nid] = float(node.dist)
            if node.up is not None:
                parent[nid] = node_id[id(node.up)]
        if rooted is None:
            rooted = len(ete_tree.children) == 2
        return cls.from_parent_array(parent, lengths, taxa, rooted=rooted)

    # -- derived trees -----------------------------------------------------------
    def with_branch_lengths(self, branch_lengths: np.ndarray) -> "Tree":
        """The same topology with new branch lengths, shape (n_branches,)."""
        bl = np.asarray(branch_lengths, dtype=np.float64)
        if bl.shape != (self.n_branches,):
            raise TreeError(f"expected {self.n_branches} branch lengths, got shape {bl.shape}")
        return replace(self, branch_lengths=bl.copy())

    def with_taxa_order(self, taxa: Sequence[str]) -> "Tree":
        """Renumber the leaves so that leaf ``i`` is ``taxa[i]`` (same names, other order)."""
        taxa = tuple(taxa)
        if taxa == self.taxa:
            return self
        _check_taxa(self.taxa, taxa, source=self.source)
        position = {name: i for i, name in enumerate(taxa)}
        old_to_new = np.arange(self.n_nodes)
        for i, name in enumerate(self.taxa):
            old_to_new[i] = position[name]
        parent = np.full(self.n_nodes, -1, dtype=np.int64)
        lengths = np.full(self.n_nodes, np.nan)
        for v in range(self.n_nodes - 1):
            parent[old_to_new[v]] = old_to_new[self.parent[v]]
            lengths[old_to_new[v]] = self.branch_lengths[v]
        return Tree.from_parent_array(parent, lengths, taxa, rooted=self.rooted,
                                      weight=self.weight, name=self.name, source=self.source)

    def unrooted(self) -> "Tree":
        """The unrooted tree: a bifurcating root is removed, its two branches merged."""
        if self.n_children[self.root] != 2:
            return replace(self, rooted=False) if self.rooted else self
        a, b = self.children[self.root, :2]
        # keep the internal child as the new (trifurcating) root
        keep, other = (a, b) if a >= self.n_leaves else (b, a)
        if keep < self.n_leaves:
            raise TreeError("a two-taxon tree cannot be unrooted")
        parent = self.parent.astype(np.int64).copy()
        lengths = np.append(self.branch_lengths, 0.0)
        parent[keep] = -1
        parent[other] = keep
        lengths[other] = self.branch_lengths[a] + self.branch_lengths[b]
        keep_nodes = np.array([v for v in range(self.n_nodes) if v != self.root])
        remap = -np.ones(self.n_nodes, dtype=np.int64)
        remap[keep_nodes] = np.arange(keep_nodes.size)
        new_parent = np.where(parent[keep_nodes] >= 0, remap[np.maximum(parent[keep_nodes], 0)], -1)
        return Tree.from_parent_array(new_parent, lengths[keep_nodes], self.taxa, rooted=False,
                                      weight=self.weight, name=self.name, source=self.source)

    def rerooted(self, node: int) -> "Tree":
        """The same unrooted tree with internal node ``node`` as its root (trifurcation kept).

        Used to check that likelihoods of reversible models do not depend on the root
        (Felsenstein's pulley principle)."""
        if node < self.n_leaves or node >= self.n_nodes:
            raise TreeError(f"node {node} is not an internal node")
        parent = self.parent.astype(np.int64).copy()
        lengths = np.append(self.branch_lengths, 0.0)
        # reverse the path from node up to the old root
        v, p, carried = node, parent[node], lengths[node]
        parent[node] = -1
        while p >= 0:
            pp, pl = parent[p], lengths[p]
            parent[p] = v
            lengths[p] = carried
            v, p, carried = p, pp, pl
        tree = Tree.from_parent_array(parent, lengths, self.taxa, rooted=False,
                                      weight=self.weight, name=self.name, source=self.source)
        # the old root may now have a single child: splice it out
        return tree._without_unary_nodes()

    def _without_unary_nodes(self) -> "Tree":
        unary = [v for v in range(self.n_leaves, self.n_nodes - 1) if self.n_children[v] == 1]
        if not unary:
            return self
        parent = self.parent.astype(np.int64).copy()
        lengths = np.append(self.branch_lengths, 0.0)
        for u in unary:
            c = self.children[u, 0]
            parent[c] = parent[u]
            lengths[c] += lengths[u]
            parent[u] = -2
        keep = np.flatnonzero(parent != -2)
        remap = -np.ones(self.n_nodes, dtype=np.int64)
        remap[keep] = np.arange(keep.size)
        new_parent = np.where(parent[keep] >= 0, remap[np.maximum(parent[keep], 0)], -1)
        return Tree.from_parent_array(new_parent, lengths[keep], self.taxa, rooted=self.rooted,
                                      weight=self.weight, name=self.name, source=self.source)

    def validate_branch_lengths(self) -> None:
        """Raise :class:`TreeError` naming the taxon/node with a missing, negative or
        infinite length (any finite length >= 0 is valid: P(t) tends to the stationary
        matrix)."""
        bl = self.branch_lengths
        bad = np.flatnonzero(~((bl >= 0) & (bl < np.inf)))
        if bad.size:
            v = int(bad[0])
            what = f"taxon {self.taxa[v]!r}" if v < self.n_leaves else f"internal node {v}"
            problem = ("missing" if np.isnan(bl[v]) else "infinite" if bl[v] == np.inf
                       else f"negative ({bl[v]:g})")
            raise TreeError(f"{problem} branch length above {what}", path=self.source)

    def require_binary(self) -> None:
        if not self.is_binary():
            raise TreeError("the tree is not binary (a polytomy or unary node where a "
                            "binary tree is required)", path=self.source)

    def __repr__(self) -> str:
        return (f"Tree(n_leaves={self.n_leaves}, rooted={self.rooted}, "
                f"newick={self.to_newick(precision=4)[:80]!r})")


def _check_taxa(names: Iterable[str], taxa: Sequence[str], *, source: str | None = None) -> None:
    names = list(names)
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise TaxonMismatchError(f"duplicate taxon {name!r} in tree", path=source)
        seen.add(name)
    expected = set(taxa)          # once: a set per name made this quadratic
    missing = [t for t in taxa if t not in seen]
    extra = [t for t in names if t not in expected]
    if missing or extra:
        parts = []
        if extra:
            parts.append(f"taxa not expected: {', '.join(map(repr, extra[:5]))}")
        if missing:
            parts.append(f"taxa missing from the tree: {', '.join(map(repr, missing[:5]))}")
        raise TaxonMismatchError("; ".join(parts), path=source)


_NEEDS_QUOTES = set(" ():;,[]'\t\n")


def _quote(name: str) -> str:
    if any(ch in _NEEDS_QUOTES for ch in name):
        return "'" + name.replace("'", "''") + "'"
    return name


def _format_length(x: float, precision: int) -> str:
    text = f"{x:.{precision}g}"
    return text
