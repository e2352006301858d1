"""Neighbour-joining starting trees from Jukes–Cantor distances.

Used by ``phylo compare`` when the user gives no topology: the NJ tree is a
reasonable, deterministic starting topology (its branch lengths are only a starting
point; the marginal likelihood integrates them out).

References: Saitou N, Nei M (1987) Mol. Biol. Evol. 4:406–425 (the method);
Studier JA, Keppler KJ (1988) Mol. Biol. Evol. 5:729–731 (the Q-criterion and the
branch-length formulas used here); Jukes TH, Cantor CR (1969) for the distance
``d = -3/4 ln(1 - 4/3 p)``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import AlignmentError, PhyloError
from .tree import Tree

#: JC distance used when the p-distance reaches 3/4 (saturation: the formula diverges)
#: or when two taxa share no unambiguous site; in expected substitutions per site.
SATURATED_DISTANCE = 10.0

_SINGLE_STATES = np.array([1, 2, 4, 8], dtype=np.uint8)


def p_distances(alignment) -> np.ndarray:
    """Pairwise proportions of differing sites, shape (n_taxa, n_taxa), float64.

    Only sites where both taxa have one unambiguous nucleotide count (gaps and IUPAC
    ambiguity codes are skipped pairwise). Pairs without such a site get NaN.
    """
    patterns = alignment.patterns            # (S, P) uint8 masks
    weights = alignment.weights              # (P,)
    single = np.isin(patterns, _SINGLE_STATES)  # (S, P)
    s = patterns.shape[0]
    out = np.zeros((s, s))
    for i in range(s):
        both = single[i][None, :] & single            # (S, P)
        differ = both & (patterns[i][None, :] != patterns)
        n = both.astype(np.float64) @ weights
        k = differ.astype(np.float64) @ weights
        with np.errstate(invalid="ignore", divide="ignore"):
            out[i] = np.where(n > 0, k / np.where(n > 0, n, 1.0), np.nan)
    out[np.arange(s), np.arange(s)] = 0.0
    return out


def jc_distances(alignment) -> np.ndarray:
    """Jukes–Cantor distances ``-3/4 ln(1 - 4/3 p)``, shape (n_taxa, n_taxa).

    In expected substitutions per site. Saturated pairs (``p >= 3/4``) and pairs
    without a comparable site get :data:`SATURATED_DISTANCE`.
    """
    p = p_distances(alignment)
    with np.errstate(invalid="ignore", divide="ignore"):
        arg = 1.0 - 4.0 / 3.0 * p
        d = np.where(arg > 0, -0.75 * np.log(np.where(arg > 0, arg, 1.0)), SATURATED_DISTANCE)
    d = np.where(np.isnan(p), SATURATED_DISTANCE, d)
    d = np.minimum(d, SATURATED_DISTANCE)
    np.fill_diagonal(d, 0.0)
    return d


def neighbor_joining(distances: np.ndarray, taxa: Sequence[str], *,
                     constraints: Sequence[tuple[frozenset[int], frozenset[int]]] = ()) -> Tree:
    """Neighbour-joining tree from a distance matrix, optionally under split constraints.

    Parameters
    ----------
    distances: symmetric, shape (S, S), non-negative, zero diagonal (any additive
        unit; JC distances are in expected substitutions per site).
    taxa: the S taxon names, in the rows' order.
    constraints: splits the tree must contain, each as ``(side, constrained_taxa)``
        of taxon indices: ``side`` is separated from ``constrained_taxa - side`` (a
        constraint may name a subset of the taxa, as IQ-TREE's ``-g``). Only joins
        whose cluster keeps every constraint intact are allowed (constrained NJ):
        a cluster X is compatible with a split A|B of the constrained taxa T when
        X∩T lies within A or within B, or X contains A or B.

    Returns
    -------
    An unrooted binary :class:`Tree` (trifurcating root: the last three clusters
    joined), leaves numbered in ``taxa`` order. Negative NJ branch estimates are set
    to 0. Ties in the Q-criterion go to the first pair in row-major order, so the
    result is deterministic.
    """
    d = np.array(distances, dtype=np.float64)
    s = len(taxa)
    if d.shape != (s, s):
        raise PhyloError(f"distance matrix has shape {d.shape}, expected ({s}, {s})")
    if s < 3:
        raise AlignmentError(f"neighbour joining needs at least 3 taxa, got {s}")
    if not np.all(np.isfinite(d)) or np.any(d < 0) or not np.allclose(d, d.T):
        raise PhyloError("distances must be finite, non-negative and symmetric")
    n_nodes = 2 * s - 2
    parent = np.full(n_nodes, -1, dtype=np.int64)
    lengths = np.zeros(n_nodes)
    active = list(range(s))          # node ids of the current clusters
    members = [frozenset([k]) for k in range(s)]   # taxa of each active cluster
    next_node = s
    while len(active) > 3:
        m = len(active)
        r = d.sum(axis=1)
        q = (m - 2) * d - r[:, None] - r[None, :]
        np.fill_diagonal(q, np.inf)
        if constraints:
            for a in range(m):
                for b in range(a + 1, m):
                    if not _keeps_constraints(members[a] | members[b], constraints):
                        q[a, b] = q[b, a] = np.inf
            if not np.isfinite(q).any():
                raise PhyloError("the topology constraints are incompatible with each other")
        i, j = np.unravel_index(int(np.argmin(q)), q.shape)
        if i > j:
            i, j = j, i
        li = 0.5 * d[i, j] + (r[i] - r[j]) / (2.0 * (m - 2))
        lj = d[i, j] - li
        u = next_node
        next_node += 1
        for node, length in ((active[i], li), (active[j], lj)):
            parent[node] = u
            lengths[node] = max(length, 0.0)
        du = 0.5 * (d[i] + d[j] - d[i, j])        # distances to the new cluster
        keep = [k for k in range(m) if k not in (i, j)]
        new_d = np.empty((m - 1, m - 1))
        new_d[:-1, :-1] = d[np.ix_(keep, keep)]
        new_d[-1, :-1] = new_d[:-1, -1] = du[keep]
        new_d[-1, -1] = 0.0
        d = new_d
        members = [members[k] for k in keep] + [members[i] | members[j]]
        active = [active[k] for k in keep] + [u]
    # the last three clusters meet at the (trifurcating) root
    root = next_node
    a, b, c = 0, 1, 2
    la = 0.5 * (d[a, b] + d[a, c] - d[b, c])
    lb = 0.5 * (d[a, b] + d[b, c] - d[a, c])
    lc = 0.5 * (d[a, c] + d[b, c] - d[a, b])
    for k, length in zip((a, b, c), (la, lb, lc)):
        parent[active[k]] = root
        lengths[active[k]] = max(length, 0.0)
    assert root == n_nodes - 1
    return Tree.from_parent_array(parent, lengths, tuple(taxa), rooted=False,
                                  name="neighbour-joining (JC distances)")


def _keeps_constraints(cluster: frozenset[int],
                       constraints: Sequence[tuple[frozenset[int], frozenset[int]]]) -> bool:
    for side, constrained in constraints:
        other = constrained - side
        inside = cluster & constrained
        if not (inside <= side or inside <= other or side <= cluster or other <= cluster):
            return False
    return True


def constraint_splits(constraint: Tree, taxa: Sequence[str]) -> list[tuple[frozenset[int], frozenset[int]]]:
    """The non-trivial splits of a (possibly multifurcating, possibly partial) constraint
    tree, as ``(side, constrained_taxa)`` over indices of ``taxa``."""
    index = {t: i for i, t in enumerate(taxa)}
    unknown = [t for t in constraint.taxa if t not in index]
    if unknown:
        raise PhyloError(f"constraint names taxa not in the alignment: "
                         f"{', '.join(map(repr, unknown[:5]))}", path=constraint.source)
    below: list[frozenset[int]] = [frozenset([index[constraint.taxa[v]]])
                                   for v in range(constraint.n_leaves)]
    below += [frozenset()] * (constraint.n_nodes - constraint.n_leaves)
    for v in range(constraint.n_leaves, constraint.n_nodes):
        below[v] = frozenset().union(*(below[c] for c in
                                       constraint.children[v, :constraint.n_children[v]]))
    constrained = below[constraint.root]
    splits = []
    for v in range(constraint.n_leaves, constraint.root):
        side = below[v]
        if 1 < len(side) < len(constrained) - 1:
            splits.append((side, constrained))
    return splits


def nj_tree(alignment, *, constraint: Tree | None = None) -> Tree:
    """The neighbour-joining tree of an alignment's Jukes–Cantor distances.

    Unrooted binary, leaves in ``alignment.taxa`` order, branch lengths in expected
    substitutions per site. With ``constraint`` (a Newick topology over all or some
    taxa, polytomies allowed), the tree contains every split of the constraint.
    """
    splits = () if constraint is None else constraint_splits(constraint, alignment.taxa)
    return neighbor_joining(jc_distances(alignment), alignment.taxa, constraints=splits)
