"""Random trees: uniform labelled topologies (stepwise addition) and Yule trees.

Uniform: adding taxon k to an edge chosen uniformly among the 2k−5 edges of an
unrooted tree (2k−3 of a rooted tree, counting the edge above the root) gives every
labelled binary topology the same probability (Felsenstein 2004, ch. 3).
Yule: pure-birth process — each step splits a uniformly chosen current leaf (Yule
1925; Harding 1971), giving the Yule–Harding distribution over ranked shapes.
Branch lengths are i.i.d. Exponential(rate ``branch_length_rate``), in expected
substitutions per site (the prior of Fourment et al. 2020, rate 10).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import TreeError
from .tree import Tree


def random_tree(taxa_or_n: int | Sequence[str], *, seed: int | None = None,
                rng: np.random.Generator | None = None, model: str = "uniform",
                rooted: bool = False, branch_length_rate: float = 10.0) -> Tree:
    """A random binary tree.

    Parameters
    ----------
    taxa_or_n: taxon names, or a number n (names ``t1 .. tn``).
    seed / rng: randomness (exactly one should be given; ``seed`` builds a Generator).
    model: ``"uniform"`` (uniform over labelled topologies) or ``"yule"`` (always rooted
        by construction; returned unrooted unless ``rooted``).
    rooted: return a rooted tree (2S−2 branches) or an unrooted one (2S−3).
    branch_length_rate: rate of the exponential branch lengths (mean 1/rate).
    """
    taxa = ([f"t{i + 1}" for i in range(int(taxa_or_n))] if isinstance(taxa_or_n, (int, np.integer))
            else [str(t) for t in taxa_or_n])
    n = len(taxa)
    if n < (2 if rooted else 3):
        raise TreeError(f"a random {'rooted' if rooted else 'unrooted'} tree needs at least "
                        f"{2 if rooted else 3} taxa, got {n}")
    if branch_length_rate <= 0:
        raise TreeError(f"branch_length_rate must be positive, got {branch_length_rate}")
    if rng is None:
        rng = np.random.default_rng(seed)
    order = rng.permutation(n)  # which taxon is added when (labels stay exchangeable)
    parent: list[int] = [-1] * n
    next_id = n
    if model == "uniform":
        if rooted:
            root = next_id; next_id += 1
            parent.append(-1)
            parent[order[0]] = root
            parent[order[1]] = root
            start = 2
        else:
            root = next_id; next_id += 1
            parent.append(-1)
            for i in range(3):
                parent[order[i]] = root
            start = 3
        edges = [int(x) for x in order[:start]]  # nodes with an edge above them
        for k in range(start, n):
            leaf = int(order[k])
            n_choices = len(edges) + (1 if rooted else 0)
            pick = int(rng.integers(n_choices))
            w = next_id; next_id += 1
            parent.append(-1)
            if pick == len(edges):           # the edge above the root (rooted only)
                parent[root] = w
                edges.append(root)           # the old root now has an edge above it
                root = w
            else:
                x = edges[pick]
                parent[w] = parent[x]
                parent[x] = w
                edges.append(w)
            parent[leaf] = w
            edges.append(leaf)
    elif model == "yule":
        root = next_id; next_id += 1
        parent.append(-1)
        lineages = [root]
        # grow a labelled-free shape: split random lineages until n tips
        while len(lineages) < n:
            i = int(rng.integers(len(lineages)))
            v = lineages.pop(i)
            for _ in range(2):
                c = next_id; next_id += 1
                parent.append(v)
                lineages.append(c)
        # the lineages become the leaves (relabel shape nodes to taxa in random order)
        remap = {}
        for t, v in zip(order, lineages):
            remap[v] = int(t)
        shape_parent = parent[n:]
        new_parent = [-1] * n
        internal = [v for v in range(n, next_id) if v not in remap]
        inner_id = {v: n + j for j, v in enumerate(internal)}
        new_parent += [-1] * len(internal)
        for v in range(n, next_id):
            p = shape_parent[v - n]
            nid = remap[v] if v in remap else inner_id[v]
            new_parent[nid] = -1 if p < 0 else inner_id[p]
        parent = new_parent
    else:
        raise TreeError(f"unknown random tree model {model!r} (uniform, yule)")
    lengths = rng.exponential(1.0 / branch_length_rate, size=len(parent))
    tree = Tree.from_parent_array(parent, lengths, taxa, rooted=True)
    if model == "uniform" and not rooted:
        return Tree.from_parent_array(parent, lengths, taxa, rooted=False)
    return tree if rooted else tree.unrooted()
