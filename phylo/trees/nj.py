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


def neighbor_joining(distances: np.ndarray, taxa: Sequence[str]) -> Tree:
    """Neighbour-joining tree from a distance matrix.

    Parameters
    ----------
    distances: symmetric, shape (S, S), non-negative, zero diagonal (any additive
        unit; JC distances are in expected substitutions per site).
    taxa: the S taxon names, in the rows' order.

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
    next_node = s
    while len(active) > 3:
        m = len(active)
        r = d.sum(axis=1)
        q = (m - 2) * d - r[:, None] - r[None, :]
        np.fill_diagonal(q, np.inf)
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


def nj_tree(alignment) -> Tree:
    """The neighbour-joining tree of an alignment's Jukes–Cantor distances.

    Unrooted binary, leaves in ``alignment.taxa`` order, branch lengths in expected
    substitutions per site.
    """
    return neighbor_joining(jc_distances(alignment), alignment.taxa)
