"""Brute-force references for SBN tests: enumerate all topologies of 4–6 taxa and
compute SBN probabilities with plain dictionaries (slow, obviously correct).

Trees are nested tuples of taxon indices: a leaf is an int, a rooted tree a pair
``(left, right)``; an unrooted tree is a rooted tree whose root is then ignored.
"""
from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np

from phylo.io.newick import parse_newick
from phylo.trees.splits import topology_sample_from_trees


def clade(t) -> frozenset:
    return frozenset([t]) if isinstance(t, int) else clade(t[0]) | clade(t[1])


def rooted_trees(taxa: frozenset):
    """All rooted binary topologies on a set of taxon indices."""
    taxa = frozenset(taxa)
    if len(taxa) == 1:
        yield next(iter(taxa))
        return
    items = sorted(taxa)
    first, rest = items[0], items[1:]
    for k in range(0, len(rest)):
        for extra in itertools.combinations(rest, k):
            a = frozenset((first,) + extra)
            b = taxa - a
            if not b:
                continue
            for ta in rooted_trees(a):
                for tb in rooted_trees(b):
                    yield (ta, tb)


def unrooted_trees(n: int):
    """All unrooted binary topologies on taxa 0..n-1: taxon 0 joined to a rooted tree
    of the others, i.e. rooted at the edge of taxon 0."""
    for t in rooted_trees(frozenset(range(1, n))):
        yield (0, t)


def to_newick(t, names, rooted: bool) -> str:
    def rec(x):
        return names[x] if isinstance(x, int) else f"({rec(x[0])},{rec(x[1])})"
    if not rooted and not isinstance(t[1], int):
        # write with a trifurcating root
        return f"({names[t[0]] if isinstance(t[0], int) else rec(t[0])},{rec(t[1][0])},{rec(t[1][1])});"
    return rec(t) + ";"


def as_sample(trees, weights, names, rooted: bool):
    objs = []
    for t, w in zip(trees, weights):
        tr = parse_newick(to_newick(t, names, rooted), taxa=names, rooted=rooted)
        object.__setattr__(tr, "weight", float(w))
        objs.append(tr)
    return topology_sample_from_trees(objs, taxa=names, rooted=rooted)


def adjacency(t):
    """Undirected adjacency of a nested-tuple tree (root node removed when binary)."""
    adj = defaultdict(set)
    counter = itertools.count(1000)

    def rec(x):
        if isinstance(x, int):
            return x
        v = next(counter)
        for c in x:
            u = rec(c)
            adj[v].add(u)
            adj[u].add(v)
        return v

    r = rec(t)
    if len(adj[r]) == 2:   # suppress the degree-2 root
        a, b = adj.pop(r)
        adj[a].discard(r)
        adj[b].discard(r)
        adj[a].add(b)
        adj[b].add(a)
    return adj


def rootings(t):
    """All rooted versions (nested tuples) of an unrooted tree, one per edge."""
    adj = adjacency(t)
    edges = {tuple(sorted((u, v))) for u in adj for v in adj[u]}

    def away(u, frm):
        if isinstance(u, int) and u < 1000:
            return u
        kids = [w for w in adj[u] if w != frm]
        return (away(kids[0], u), away(kids[1], u))

    return [(away(u, v), away(v, u)) for u, v in sorted(edges)]


def subsplit_items(t):
    """Root subsplit and (X, sibling Y, {A, B}) items of a rooted tree."""
    root = frozenset([clade(t[0]), clade(t[1])])
    items = []

    def rec(x, sib):
        if isinstance(x, int):
            return
        items.append((clade(x), clade(sib), frozenset([clade(x[0]), clade(x[1])])))
        rec(x[0], x[1])
        rec(x[1], x[0])

    rec(t[0], t[1])
    rec(t[1], t[0])
    return root, items


def naive_fit(rooted_weighted, ccd=False):
    """Counting estimator from (rooted tree, weight) pairs → (root dict, cond dict)."""
    rc = defaultdict(float)
    cc = defaultdict(float)
    for t, w in rooted_weighted:
        root, items = subsplit_items(t)
        rc[root] += w
        for x, y, s in items:
            cc[(x, None if ccd else y, s)] += w
    rtot = sum(rc.values())
    gtot = defaultdict(float)
    for (x, y, s), v in cc.items():
        gtot[(x, y)] += v
    return ({k: v / rtot for k, v in rc.items()},
            {k: v / gtot[(k[0], k[1])] for k, v in cc.items()})


def naive_rooted_prob(t, params, ccd=False) -> float:
    rp, cp = params
    root, items = subsplit_items(t)
    p = rp.get(root, 0.0)
    for x, y, s in items:
        p *= cp.get((x, None if ccd else y, s), 0.0)
    return p


def naive_unrooted_prob(t, params, ccd=False) -> float:
    return sum(naive_rooted_prob(r, params, ccd) for r in rootings(t))


def naive_sa(trees, weights, ccd=False):
    pairs = []
    tot = sum(weights)
    for t, w in zip(trees, weights):
        rs = rootings(t)
        for r in rs:
            pairs.append((r, w / tot / len(rs)))
    return naive_fit(pairs, ccd=ccd)


def entropy(p) -> float:
    p = np.asarray([x for x in p if x > 0])
    return float(-(p * np.log(p)).sum())


def log(x: float) -> float:
    return math.log(x) if x > 0 else -math.inf
