"""Majority-rule consensus trees with split support."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import PhyloError
from .splits import TopologySample, members, popcount, split_frequencies
from .tree import Tree


@dataclass
class Consensus:
    """A consensus tree and the support (frequency) of each of its splits.

    tree: unrooted :class:`Tree`, no branch lengths (polytomies where splits are
    missing); splits (k, W): its non-trivial splits; support (k,): their frequency;
    node_support: {internal node index: support} for the node below each split.
    """

    tree: Tree
    splits: np.ndarray
    support: np.ndarray
    node_support: dict[int, float]


def majority_rule_consensus(sample: TopologySample, threshold: float = 0.5) -> Consensus:
    """Splits with frequency > ``threshold`` (default 0.5; these are always compatible),
    assembled into a tree; ``threshold`` below 0.5 adds further compatible splits
    greedily by decreasing frequency (extended majority rule)."""
    if not 0.0 <= threshold < 1.0:
        raise PhyloError(f"threshold must be in [0, 1), got {threshold}")
    splits, freq = split_frequencies(sample)
    order = np.argsort(-freq, kind="stable")
    s = sample.n_taxa
    chosen: list[int] = []
    for i in order:
        if freq[i] <= threshold:
            break
        if all(_compatible(splits[i], splits[j]) for j in chosen):
            chosen.append(int(i))
    rows = splits[chosen]
    sup = freq[chosen]
    # clades of the tree rooted at taxon 0's side: splits are normalised (no taxon 0)
    sizes = popcount(rows) if rows.shape[0] else np.zeros(0, dtype=int)
    by_size = np.argsort(-sizes, kind="stable")
    n_int = rows.shape[0]
    root = s + n_int
    parent = np.full(s + n_int + 1, root, dtype=np.int64)
    parent[root] = -1
    node_of = {}
    for rank, i in enumerate(by_size):
        node_of[int(i)] = s + rank
    # each clade's parent: the smallest chosen clade strictly containing it
    for a_rank, a in enumerate(by_size):
        for b in by_size[:a_rank][::-1]:
            if _subset(rows[a], rows[b]):
                parent[node_of[int(a)]] = node_of[int(b)]
                break
    for leaf in range(1, s):
        best = None
        for b in by_size[::-1]:
            if leaf in members(rows[b], s):
                best = node_of[int(b)]
                break
        if best is not None:
            parent[leaf] = best
    tree = Tree.from_parent_array(parent, None, sample.taxa, rooted=False)
    # map supports to nodes of the renumbered tree through clades
    from .splits import tree_clades
    cl = tree_clades(tree)
    node_support = {}
    for k, i in enumerate(chosen):
        hit = np.flatnonzero(np.all(cl == rows[k], axis=1))
        if hit.size:
            node_support[int(hit[0])] = float(sup[k])
    return Consensus(tree, rows, sup, node_support)


def _subset(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all((a & b) == a))


def _compatible(a: np.ndarray, b: np.ndarray) -> bool:
    """Two normalised splits (both without taxon 0) are compatible iff nested or disjoint."""
    inter = a & b
    return bool(np.all(inter == 0) or np.all(inter == a) or np.all(inter == b))
