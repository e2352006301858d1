"""Chain-segment moves and the iterated local search built on them.

Conventions are those of :mod:`phylo._kernels.noise` (``parent``: int64[n],
value n = root; ``deltaT[j, c]``: per-cell score difference of mutation j
being present; scores are natural logs without the all-zero baseline).

Why segments: on real single-cell data (SCITE's Hou78: 78 mutations, 58
cells, 48% missing, α = 6e-5) the ML trees are a few long chains. In a chain
the order of the mutations decides the score, and ordering problems need
*block* moves (Or-opt): take a run of consecutive chain nodes out and put it
back elsewhere, keeping its order. A subtree move (prune and reattach) moves
the whole lower part of a chain, a node relocation one node; a local optimum
of both was still 1.5 log units below the best tree on Hou78 and no single
such move followed by a hill climb escaped it.

A segment is a path ``a_1 → … → a_k`` in which every node but the last has
exactly one child. Removing it hangs the children of ``a_k`` on the parent
of ``a_1``. For each cell, with ``S`` the sum of ``deltaT`` over the segment
and ``P`` the best prefix sum (the cell attaching inside the segment), the
segment placed

- as a chain below node u gives  max(best elsewhere, acc[u] + P),
- inserted above node w gives    max(best outside w's subtree,
  best in w's subtree + S, acc[parent(w)] + P),

so every place is scored in one O(n · cells) pass, as in
:func:`phylo._kernels.noise._best_relocate` (the case k = 1).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .noise import _kick, best_attachment, evaluate, local_search, preorder

_TOL = 1e-9


@njit(cache=True)
def _segment(parent, n_children, only_child, v, k, seg):
    """Fill seg[:k] with the chain segment of length k starting at v (each of
    the first k - 1 nodes has exactly one child). Returns the length found
    (< k when the chain ends earlier)."""
    seg[0] = v
    t = 1
    x = v
    while t < k and n_children[x] == 1:
        x = only_child[x]
        seg[t] = x
        t += 1
    return t


@njit(cache=True)
def _child_index(parent, n_children, only_child):
    n = parent.size
    n_children[:] = 0
    for x in range(n):
        p = parent[x]
        n_children[p] += 1
        only_child[p] = x


@njit(cache=True)
def best_segment_place(seg, k, parent, deltaT, acc2, sub, pre, suf, parent2, in_seg, P, S):
    """Best place of the segment ``seg[:k]`` (see the module docstring).

    Returns ``(kind, target, score)``: kind 0 = chain below ``target``, 1 =
    inserted above ``target``; ``parent2`` is the tree without the segment
    (its nodes parked under the root and excluded)."""
    n = parent.size
    c = deltaT.shape[1]
    top = seg[0]
    bottom = seg[k - 1]
    in_seg[:] = False
    for t in range(k):
        in_seg[seg[t]] = True
    up = parent[top]
    for x in range(n):
        p = parent[x]
        parent2[x] = up if p == bottom else p
    for t in range(k):
        parent2[seg[t]] = n   # parked; excluded below
    order, pos, size = preorder(parent2)
    acc2[n, :] = 0.0
    for t in range(n):
        x = order[t]
        if in_seg[x]:
            acc2[x, :] = -np.inf
        else:
            acc2[x, :] = acc2[parent2[x], :] + deltaT[x, :]
    for t in range(n - 1, -1, -1):
        x = order[t]
        sub[x, :] = acc2[x, :]
    sub[n, :] = acc2[n, :]
    for t in range(n - 1, -1, -1):
        x = order[t]
        px = parent2[x]
        for i in range(c):
            if sub[x, i] > sub[px, i]:
                sub[px, i] = sub[x, i]
    pre[0, :] = acc2[n, :]
    for t in range(n):
        x = order[t]
        for i in range(c):
            a = acc2[x, i]
            pre[t + 1, i] = a if a > pre[t, i] else pre[t, i]
    suf[n, :] = -np.inf
    for t in range(n - 1, -1, -1):
        x = order[t]
        for i in range(c):
            a = acc2[x, i]
            suf[t, i] = a if a > suf[t + 1, i] else suf[t + 1, i]
    # per-cell segment sum S and best prefix sum P
    S[:] = 0.0
    P[:] = -np.inf
    for t in range(k):
        d = deltaT[seg[t]]
        for i in range(c):
            S[i] += d[i]
            if S[i] > P[i]:
                P[i] = S[i]
    best_kind = 0
    best_target = up
    best_score = -np.inf
    allmax = pre[n]
    for u in range(n + 1):  # the segment as a chain below u
        if u < n and in_seg[u]:
            continue
        s = 0.0
        for i in range(c):
            a = acc2[u, i] + P[i]
            s += a if a > allmax[i] else allmax[i]
        if s > best_score + _TOL:
            best_score = s
            best_kind = 0
            best_target = u
    for w in range(n):  # inserted above w
        if in_seg[w]:
            continue
        lo = pos[w]
        hi = lo + size[w]
        pw = parent2[w]
        s = 0.0
        for i in range(c):
            o = pre[lo, i] if pre[lo, i] > suf[hi, i] else suf[hi, i]
            a = sub[w, i] + S[i]
            b = acc2[pw, i] + P[i]
            if b > a:
                a = b
            s += a if a > o else o
        if s > best_score + _TOL:
            best_score = s
            best_kind = 1
            best_target = w
    return best_kind, best_target, best_score


@njit(cache=True)
def _place_segment(parent, parent2, seg, k, kind, target):
    """Write into ``parent`` the tree ``parent2`` with the segment placed."""
    parent[:] = parent2
    for t in range(1, k):
        parent[seg[t]] = seg[t - 1]
    if kind == 0:
        parent[seg[0]] = target
    else:
        parent[seg[0]] = parent2[target]
        parent[target] = seg[k - 1]


@njit(cache=True)
def segment_sweep(deltaT, parent, acc, score, max_len):
    """One pass over all chain segments of length 2..``max_len`` (starting
    nodes in random order), moving each to its best place when that improves
    the score. Returns ``(score, improved)``; ``acc`` is refreshed."""
    n = parent.size
    c = deltaT.shape[1]
    acc2 = np.empty((n + 1, c))
    sub = np.empty((n + 1, c))
    pre = np.empty((n + 1, c))
    suf = np.empty((n + 1, c))
    parent2 = np.empty(n, dtype=np.int64)
    in_seg = np.zeros(n, dtype=np.bool_)
    P = np.empty(c)
    S = np.empty(c)
    seg = np.empty(max(max_len, 1), dtype=np.int64)
    n_children = np.zeros(n + 1, dtype=np.int64)
    only_child = np.zeros(n + 1, dtype=np.int64)
    improved = False
    for v in np.random.permutation(n):
        for k in range(2, max_len + 1):
            _child_index(parent, n_children, only_child)
            got = _segment(parent, n_children, only_child, v, k, seg)
            if got < k:
                break
            kind, target, s = best_segment_place(seg, k, parent, deltaT, acc2, sub, pre, suf,
                                                 parent2, in_seg, P, S)
            if s > score + _TOL:
                _place_segment(parent, parent2, seg, k, kind, target)
                score = s
                improved = True
    if improved:
        score = evaluate(deltaT, parent, acc)
    return score, improved


@njit(cache=True)
def local_search_segments(deltaT, parent, acc, n_random_swaps, max_rounds, max_len):
    """:func:`phylo._kernels.noise.local_search` (subtree moves, node
    relocation, random label swaps) alternated with :func:`segment_sweep`
    until neither improves. Returns the score (without the base)."""
    score = local_search(deltaT, parent, acc, n_random_swaps, max_rounds)
    if max_len < 2:
        return score
    for _ in range(max_rounds):
        score, improved = segment_sweep(deltaT, parent, acc, score, max_len)
        if not improved:
            break
        score = local_search(deltaT, parent, acc, n_random_swaps, max_rounds)
    return score


# --------------------------------------------------------------------------
# the transposed view: binary trees over cells (SCITE's -transpose)
# --------------------------------------------------------------------------
#
# A conflict-free matrix is a laminar family of cell sets (one per mutation,
# or empty), and every laminar family is a set of clades of some rooted binary
# tree over the cells. So the ML conflict-free matrix is also
#     max over binary cell trees of  Σ_j max(0, max over clades X of Σ_{c∈X} deltaT[j, c]),
# each mutation placed on its best clade independently. Moving a cell (or a
# clade of cells) in this tree moves every mutation between two attachment
# depths at once: on a long chain of mutations that is the move the
# mutation-tree neighbourhoods lack (the order of the cells along the chain).
#
# Cell-tree layout (m cells): nodes 0..m-1 are the cells (leaves), m..2m-2
# the inner nodes (each with two children), node 2m-1 a fixed super-root with
# one child (the top); ``cpar[2m-1] = -1``. ``C[z, j]`` is the clade sum of
# node z for mutation j (the super-root's row is unused).


@njit(cache=True)
def _cell_order(cpar):
    """Pre-order of the cell tree below the super-root (super-root excluded),
    children lists (``first``/``second``; -1 for leaves)."""
    N = cpar.size
    S = N - 1
    first = np.full(N, -1, dtype=np.int64)
    second = np.full(N, -1, dtype=np.int64)
    for z in range(N - 1):
        p = cpar[z]
        if p < 0:
            continue
        if first[p] < 0:
            first[p] = z
        else:
            second[p] = z
    order = np.empty(N - 1, dtype=np.int64)
    stack = np.empty(N, dtype=np.int64)
    top = 0
    stack[0] = first[S]
    top = 1
    k = 0
    while top > 0:
        top -= 1
        z = stack[top]
        order[k] = z
        k += 1
        if second[z] >= 0:
            stack[top] = second[z]
            top += 1
        if first[z] >= 0:
            stack[top] = first[z]
            top += 1
    return order[:k], first, second


@njit(cache=True)
def cell_tree_score(deltaT, cpar, C):
    """Score of a cell tree (without the base); fills clade sums ``C``."""
    n, m = deltaT.shape
    order, first, second = _cell_order(cpar)
    for t in range(order.size - 1, -1, -1):
        z = order[t]
        if z < m:
            for j in range(n):
                C[z, j] = deltaT[j, z]
        else:
            a = first[z]
            b = second[z]
            for j in range(n):
                C[z, j] = C[a, j] + C[b, j]
    total = 0.0
    for j in range(n):
        best = 0.0
        for t in range(order.size):
            v = C[order[t], j]
            if v > best:
                best = v
        total += best
    return total


@njit(cache=True)
def mutation_to_cell_tree(parent, attachment, m):
    """A binary cell tree whose clades include every column of the matrix of
    (``parent``, ``attachment``): children of a mutation node (sub-clades and
    cells attached there) are joined as a caterpillar."""
    n = parent.size
    N = 2 * m
    S = N - 1
    cpar = np.full(N, -1, dtype=np.int64)
    comp = np.full(n + 1, -1, dtype=np.int64)   # cell-tree node of each mutation node's clade
    order, pos, size = preorder(parent)
    nxt = m
    # items below each mutation node: child clades and attached cells
    for idx in range(n + 1):   # children before parents, the root last
        t = n - 1 - idx
        v = order[t] if t >= 0 else n
        cur = -1
        for c in range(m):
            if attachment[c] == v:
                if cur < 0:
                    cur = c
                else:
                    cpar[cur] = nxt
                    cpar[c] = nxt
                    cur = nxt
                    nxt += 1
        for u in range(n):
            if parent[u] == v and comp[u] >= 0:
                if cur < 0:
                    cur = comp[u]
                else:
                    cpar[cur] = nxt
                    cpar[comp[u]] = nxt
                    cur = nxt
                    nxt += 1
        comp[v] = cur
    cpar[comp[n]] = S
    return cpar


@njit(cache=True)
def cell_to_mutation_tree(deltaT, cpar, C):
    """Mutation tree of a cell tree: each mutation on its best clade (none
    when no clade has a positive sum); mutations on one clade form a chain,
    unplaced ones hang from the root."""
    n, m = deltaT.shape
    order, first, second = _cell_order(cpar)
    cell_tree_score(deltaT, cpar, C)
    N = cpar.size
    place = np.full(n, -1, dtype=np.int64)
    for j in range(n):
        best = 0.0
        for t in range(order.size):
            z = order[t]
            if C[z, j] > best + _TOL:
                best = C[z, j]
                place[j] = z
    anchor = np.full(N, n, dtype=np.int64)   # deepest mutation on the root→z path
    parent = np.full(n, n, dtype=np.int64)
    last_on = np.full(N, -1, dtype=np.int64)
    for j in range(n):
        z = place[j]
        if z >= 0:
            if last_on[z] >= 0:
                parent[j] = last_on[z]   # chain of mutations on one clade
            else:
                parent[j] = -2           # the chain's head: fixed below
            last_on[z] = j
    head_of = np.full(N, -1, dtype=np.int64)
    for j in range(n):
        if parent[j] == -2:
            head_of[place[j]] = j
    for t in range(order.size):
        z = order[t]
        up = cpar[z]
        a = anchor[up] if up < N - 1 else n
        if head_of[z] >= 0:
            parent[head_of[z]] = a
            anchor[z] = last_on[z]
        else:
            anchor[z] = a
    return parent


@njit(cache=True)
def _sibling(cpar, x):
    """The other child of x's parent in the cell tree."""
    p = cpar[x]
    for z in range(cpar.size - 1):
        if z != x and cpar[z] == p:
            return z
    return -1


@njit(cache=True)
def _without_clade(cpar, x, sib):
    """A copy of the cell tree with x's clade pruned: x's parent is removed and
    the sibling ``sib`` takes its place; x and its old parent get -1."""
    p = cpar[x]
    tmp = cpar.copy()
    tmp[sib] = cpar[p]
    tmp[p] = -1
    tmp[x] = -1
    return tmp


@njit(cache=True)
def _regraft(cpar, x, sib, y):
    """Prune x's clade (its parent p removed, ``sib`` in p's place) and regraft
    it above y, reusing p as the new parent of x and y (in place)."""
    p = cpar[x]
    cpar[sib] = cpar[p]
    cpar[p] = cpar[y]
    cpar[y] = p
    cpar[x] = p


@njit(cache=True)
def _cell_spr_best(x, cpar, C, Cx, Cp, M, A, Nn, Xm, n):
    """Best regraft of the clade x (pruned with its parent) in the cell tree:
    returns (y, score) for placing x above y, all y in one pass."""
    N = cpar.size
    S = N - 1
    # T' = tree without x's clade; x's parent is removed (the sibling takes its place)
    sib = _sibling(cpar, x)
    tmp = _without_clade(cpar, x, sib)
    order, first, second = _cell_order(tmp)
    for j in range(n):
        Cx[j] = C[x, j]
    # clade sums in T' (nodes outside x's clade), bottom-up
    for t in range(order.size - 1, -1, -1):
        z = order[t]
        if first[z] < 0:
            for j in range(n):
                Cp[z, j] = C[z, j]
        else:
            a = first[z]
            b = second[z]
            for j in range(n):
                Cp[z, j] = Cp[a, j] + Cp[b, j]
    # subtree maxima M (bottom-up), path-with-gain maxima A and off-path maxima Nn (top-down)
    for t in range(order.size - 1, -1, -1):
        z = order[t]
        for j in range(n):
            M[z, j] = Cp[z, j]
        if first[z] >= 0:
            a = first[z]
            b = second[z]
            for j in range(n):
                if M[a, j] > M[z, j]:
                    M[z, j] = M[a, j]
                if M[b, j] > M[z, j]:
                    M[z, j] = M[b, j]
    for t in range(order.size):
        z = order[t]
        up = tmp[z]
        if up == S:
            for j in range(n):
                A[z, j] = Cp[z, j] + Cx[j]
                Nn[z, j] = -np.inf
        else:
            s2 = first[up] if first[up] != z else second[up]
            for j in range(n):
                g = Cp[z, j] + Cx[j]
                A[z, j] = g if g > A[up, j] else A[up, j]
                o = M[s2, j]
                Nn[z, j] = o if o > Nn[up, j] else Nn[up, j]
    best_y = sib
    best_s = -np.inf
    for t in range(order.size):
        y = order[t]
        s = 0.0
        for j in range(n):
            v = Xm[j]
            if A[y, j] > v:
                v = A[y, j]
            if M[y, j] > v:
                v = M[y, j]
            if Nn[y, j] > v:
                v = Nn[y, j]
            s += v
        if s > best_s + _TOL or (y == sib and s >= best_s - _TOL):
            best_s = s
            best_y = y
    return best_y, best_s


@njit(cache=True)
def _clade_max(x, cpar, C, Xm, n):
    """Xm[j] = max(0, max over the clade x's nodes of C[·, j])."""
    N = cpar.size
    Xm[:] = 0.0
    stack = np.empty(N, dtype=np.int64)
    stack[0] = x
    top = 1
    while top > 0:
        top -= 1
        z = stack[top]
        for j in range(n):
            if C[z, j] > Xm[j]:
                Xm[j] = C[z, j]
        for w in range(N - 1):
            if cpar[w] == z:
                stack[top] = w
                top += 1


@njit(cache=True)
def cell_local_search(deltaT, cpar, max_rounds):
    """Hill-climb a cell tree in place by pruning every clade (random order)
    and regrafting it at its best place, until no move improves. Returns the
    score (without the base)."""
    n, m = deltaT.shape
    N = cpar.size
    S = N - 1
    C = np.empty((N, n))
    Cp = np.empty((N, n))
    M = np.empty((N, n))
    A = np.empty((N, n))
    Nn = np.empty((N, n))
    Cx = np.empty(n)
    Xm = np.empty(n)
    score = cell_tree_score(deltaT, cpar, C)
    if m < 3:
        return score
    for _ in range(max_rounds):
        improved = False
        for x in np.random.permutation(N - 1):
            p = cpar[x]
            if p == S or p < 0:
                continue     # the top clade: nothing to regraft
            _clade_max(x, cpar, C, Xm, n)
            y, s = _cell_spr_best(x, cpar, C, Cx, Cp, M, A, Nn, Xm, n)
            if s > score + _TOL:
                _regraft(cpar, x, _sibling(cpar, x), y)
                score = cell_tree_score(deltaT, cpar, C)
                improved = True
        if not improved:
            break
    return score


@njit(cache=True)
def _cell_kick(deltaT, parent, acc, n_moves):
    """Perturb a mutation tree through its cell tree: ``n_moves`` random
    clade prune-and-regraft moves among the cells, then back to a mutation
    tree (in place). Moves cells between attachment depths, which the
    mutation-tree kicks rarely do in a coordinated way."""
    n, m = deltaT.shape
    if m < 3:
        _kick(parent, n_moves)
        return
    evaluate(deltaT, parent, acc)
    cpar = mutation_to_cell_tree(parent, best_attachment(acc), m)
    N = cpar.size
    S = N - 1
    for _ in range(n_moves):
        x = np.random.randint(N - 1)
        p = cpar[x]
        if p == S or p < 0:
            continue
        sib = _sibling(cpar, x)
        order, first, second = _cell_order(_without_clade(cpar, x, sib))
        y = order[np.random.randint(order.size)]
        _regraft(cpar, x, sib, y)
    C = np.empty((N, n))
    parent[:] = cell_to_mutation_tree(deltaT, cpar, C)


@njit(cache=True)
def local_search_both(deltaT, parent, acc, n_random_swaps, max_rounds, max_len, cells=True):
    """Hill-climb alternating the mutation-tree neighbourhoods
    (:func:`local_search_segments`) and the cell-tree one
    (:func:`cell_local_search`, through the best attachments and back) until
    neither improves. ``parent`` is updated in place; returns the score."""
    n, m = deltaT.shape
    score = local_search_segments(deltaT, parent, acc, n_random_swaps, max_rounds, max_len)
    if m < 3 or not cells:
        return score
    C = np.empty((2 * m, n))
    for _ in range(max_rounds):
        evaluate(deltaT, parent, acc)   # attachments from this very tree
        cpar = mutation_to_cell_tree(parent, best_attachment(acc), m)
        cell_local_search(deltaT, cpar, max_rounds)
        trial = cell_to_mutation_tree(deltaT, cpar, C)
        s = evaluate(deltaT, trial, acc)
        if s <= score + _TOL:
            evaluate(deltaT, parent, acc)
            break
        parent[:] = trial
        score = local_search_segments(deltaT, parent, acc, n_random_swaps, max_rounds, max_len)
    return score


@njit(cache=True)
def search_both(deltaT, init_parent, seed, patience, max_kicks, kick_size,
                n_random_swaps, max_rounds, temperature, max_len, cells):
    """One seeded restart of the search (iterated local search, basin hopping):
    from ``init_parent`` climb with :func:`local_search_both`; then repeatedly
    perturb the current tree (``kick_size`` random subtree moves, or with
    ``cells`` half the time a cell-tree move, :func:`_cell_kick`), climb, and
    move there when at least as good or, when worse by d, with probability
    exp(−d / ``temperature``); stop after ``patience`` perturbations in a row
    without a new best or ``max_kicks`` in all. ``max_len``: longest chain
    segment moved as a block (< 2: none). Returns the best ``(parent, score)``
    visited (score without the base)."""
    np.random.seed(seed)
    n, c = deltaT.shape
    acc = np.empty((n + 1, c))
    parent = init_parent.copy()
    score = local_search_both(deltaT, parent, acc, n_random_swaps, max_rounds, max_len, cells)
    best_parent = parent.copy()
    best = score
    since = 0
    for _k in range(max_kicks):
        if since >= patience:
            break
        since += 1
        trial = parent.copy()
        if cells and np.random.random() < 0.5:
            _cell_kick(deltaT, trial, acc, kick_size)
        else:
            _kick(trial, kick_size)
        s = local_search_both(deltaT, trial, acc, n_random_swaps, max_rounds, max_len, cells)
        if s >= score - _TOL or (temperature > 0.0
                                 and np.random.random() < np.exp((s - score) / temperature)):
            parent = trial
            score = s
            if s > best + _TOL:
                best = s
                best_parent = parent.copy()
                since = 0
    return best_parent, best
