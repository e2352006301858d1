"""Numba kernels for subsplit Bayesian networks (Zhang & Matsen 2018, NeurIPS).

Every tree is handled as an *unrooted* binary tree with ``E = 2S-3`` edges and
``2E`` directed edges: directed edge ``2e`` points "down" the stored tree (its clade
is the set of taxa below node ``v_e``), ``2e+1`` points "up" (the complement). A
rooting of the tree at edge ``e`` makes the two directed edges ``2e``, ``2e+1`` the
children of the root subsplit, and every directed edge pointing away from ``e`` a
clade of the rooted tree whose two children are ``children[d, 0]``, ``children[d, 1]``.

Parameter indices (into the flat log-parameter vectors) per tree:

``root_par (E,)``      root subsplit of the rooting at edge e;
``rootctx_par (2E,)``  the subsplit of clade d when its sibling is the complement
                       (i.e. d is a child of the root subsplit);
``inner_par (2E, 2)``  the subsplit of ``children[d, k]`` when its sibling is
                       ``children[d, 1-k]`` (both children of d).

Index ``-2`` means "no parameter" (a leaf clade has no subsplit: factor 1) and ``-1``
a parameter the model does not have (probability 0). All log-probabilities are
natural logs.

The rooting log-probabilities of all ``E`` rootings come from one post-order and one
pre-order pass over the directed edges (``order``), as in §3.2 of the paper ("two
traversals"), hence linear time per tree.
"""
from __future__ import annotations

import numpy as np
from numba import njit

NEG_INF = -np.inf


@njit(cache=True)
def unrooted_structure(parent, n, S, W, out_children, out_clades, out_root_edge_node):
    """Directed-edge structure of one tree (see module docstring).

    parent: post-order parent array of ``n`` nodes (leaves 0..S-1, root n-1), a rooted
    (bifurcating root) or unrooted (trifurcating root) binary tree.
    out_children (2E, 2) int32, out_clades (2E, W) uint64.
    Returns ``(status, root_edge)``: status 0 ok, 1 not binary; ``root_edge`` is the
    edge that carried a bifurcating root (-1 for a trifurcating root).
    The edge of directed edges 2e, 2e+1 is ``e``; edges are numbered in post-order
    of their lower node in the unrooted tree.
    """
    E = 2 * S - 3
    # children lists
    nch = np.zeros(n, dtype=np.int64)
    ch = np.full((n, 3), -1, dtype=np.int64)
    for v in range(n - 1):
        p = parent[v]
        if nch[p] >= 3:
            return 1, -1
        ch[p, nch[p]] = v
        nch[p] += 1
    r = n - 1
    for v in range(S, n - 1):
        if nch[v] != 2:
            return 1, -1
    newpar = np.empty(n, dtype=np.int64)
    for v in range(n):
        newpar[v] = parent[v]
    merged = -1
    root = r
    if nch[r] == 2:
        a = ch[r, 0]
        b = ch[r, 1]
        if a < S:
            a, b = b, a
        if a < S:
            return 1, -1
        # a becomes the root; b hangs from a
        newpar[a] = -1
        newpar[b] = a
        ch[a, 2] = b
        nch[a] = 3
        merged = b
        root = a
    elif nch[r] != 3:
        return 1, -1
    # post-order of the unrooted tree from `root`
    order = np.empty(n, dtype=np.int64)
    stack = np.empty(2 * n, dtype=np.int64)
    flag = np.zeros(2 * n, dtype=np.int64)
    top = 0
    stack[0] = root
    flag[0] = 0
    top = 1
    k = 0
    while top > 0:
        top -= 1
        v = stack[top]
        if flag[top] == 1 or v < S:
            order[k] = v
            k += 1
            continue
        stack[top] = v
        flag[top] = 1
        top += 1
        m = nch[v]
        for j in range(m - 1, -1, -1):
            stack[top] = ch[v, j]
            flag[top] = 0
            top += 1
    # order[:k] holds every node except r when r was removed; edge index of node v
    edge_of = np.full(n, -1, dtype=np.int64)
    e = 0
    for i in range(k):
        v = order[i]
        if v != root:
            edge_of[v] = e
            e += 1
    if e != E:
        return 1, -1
    for d in range(2 * E):
        out_children[d, 0] = -1
        out_children[d, 1] = -1
        for w in range(W):
            out_clades[d, w] = 0
    full = np.zeros(W, dtype=np.uint64)
    for t in range(S):
        full[t // 64] |= np.uint64(1) << np.uint64(t % 64)
    # down clades, children (post-order)
    for i in range(k):
        v = order[i]
        if v == root:
            continue
        d = 2 * edge_of[v]
        if v < S:
            out_clades[d, v // 64] |= np.uint64(1) << np.uint64(v % 64)
        else:
            c0 = ch[v, 0]
            c1 = ch[v, 1]
            out_children[d, 0] = 2 * edge_of[c0]
            out_children[d, 1] = 2 * edge_of[c1]
            for w in range(W):
                out_clades[d, w] = out_clades[2 * edge_of[c0], w] | out_clades[2 * edge_of[c1], w]
    # up clades
    for i in range(k):
        v = order[i]
        if v == root:
            continue
        e = edge_of[v]
        for w in range(W):
            out_clades[2 * e + 1, w] = full[w] ^ out_clades[2 * e, w]
        u = newpar[v]
        # the other two directions at u
        j = 0
        for q in range(nch[u]):
            c = ch[u, q]
            if c != v:
                if j < 2:
                    out_children[2 * e + 1, j] = 2 * edge_of[c]
                j += 1
        if u != root:
            out_children[2 * e + 1, 1] = 2 * edge_of[u] + 1
    root_edge = edge_of[merged] if merged >= 0 else -1
    out_root_edge_node[0] = root_edge
    return 0, root_edge


@njit(cache=True)
def structures(parents, n_nodes, S, W, out_children, out_clades, out_status, out_root_edge):
    """:func:`unrooted_structure` for many trees: parents (T, 2S-1) → (T, 2E, ...)."""
    tmp = np.zeros(1, dtype=np.int64)
    for t in range(parents.shape[0]):
        st, re = unrooted_structure(parents[t], n_nodes[t], S, W, out_children[t],
                                    out_clades[t], tmp)
        out_status[t] = st
        out_root_edge[t] = re


@njit(cache=True)
def directed_order(E):
    """A topological order of the directed edges: children before parents.

    Down edges in post-order (edge index ascending), then up edges with the edge
    index descending (the up edge of a node needs the up edge of its parent, which
    has a larger index, and down edges only).
    """
    out = np.empty(2 * E, dtype=np.int64)
    for e in range(E):
        out[e] = 2 * e
    for i in range(E):
        out[E + i] = 2 * (E - 1 - i) + 1
    return out


@njit(cache=True)
def _lp(vec, i):
    if i == -2:
        return 0.0
    if i < 0:
        return NEG_INF
    return vec[i]


@njit(cache=True)
def rooting_logprobs(children, root_par, rootctx_par, inner_par, logroot, logcond, out):
    """Log-probability of every rooting of every tree: out (T, E).

    ``out[t, e] = log p(root subsplit at e) + log p(rest of the rooted tree)``; the
    unrooted tree's log-probability is ``logsumexp(out[t])``.
    """
    T = children.shape[0]
    D = children.shape[1]
    E = D // 2
    order = directed_order(E)
    inner = np.empty(D, dtype=np.float64)
    for t in range(T):
        for i in range(D):
            d = order[i]
            c0 = children[t, d, 0]
            if c0 < 0:
                inner[d] = 0.0
            else:
                c1 = children[t, d, 1]
                inner[d] = (_lp(logcond, inner_par[t, d, 0]) + inner[c0]
                            + _lp(logcond, inner_par[t, d, 1]) + inner[c1])
        for e in range(E):
            out[t, e] = (_lp(logroot, root_par[t, e])
                         + _lp(logcond, rootctx_par[t, 2 * e]) + inner[2 * e]
                         + _lp(logcond, rootctx_par[t, 2 * e + 1]) + inner[2 * e + 1])


@njit(cache=True)
def expected_counts(children, root_par, rootctx_par, inner_par, post, tree_w,
                    out_root, out_cond):
    """Add the expected parameter counts given rooting posteriors ``post`` (T, E).

    Tree ``t`` contributes ``tree_w[t] * post[t, e]`` to the root subsplit of rooting
    ``e`` and to its two root-child subsplits, and ``tree_w[t] * (1 - In[d])`` to the
    subsplits of the children of directed edge ``d``, where ``In[d]`` is the
    posterior mass of rootings strictly inside ``d``'s clade (d points away from the
    root in every other rooting). Used by SBN-SA (uniform ``post``), SBN-EM (E step)
    and rooted SBNs (``post`` one-hot at the true root).
    """
    T = children.shape[0]
    D = children.shape[1]
    E = D // 2
    order = directed_order(E)
    inside = np.empty(D, dtype=np.float64)
    for t in range(T):
        w = tree_w[t]
        for i in range(D):
            d = order[i]
            c0 = children[t, d, 0]
            if c0 < 0:
                inside[d] = 0.0
            else:
                c1 = children[t, d, 1]
                inside[d] = post[t, c0 // 2] + inside[c0] + post[t, c1 // 2] + inside[c1]
        for e in range(E):
            pe = w * post[t, e]
            if pe == 0.0:
                continue
            i = root_par[t, e]
            if i >= 0:
                out_root[i] += pe
            i = rootctx_par[t, 2 * e]
            if i >= 0:
                out_cond[i] += pe
            i = rootctx_par[t, 2 * e + 1]
            if i >= 0:
                out_cond[i] += pe
        for d in range(D):
            if children[t, d, 0] < 0:
                continue
            c = w * (1.0 - inside[d])
            if c <= 0.0:
                continue
            for k in range(2):
                i = inner_par[t, d, k]
                if i >= 0:
                    out_cond[i] += c


@njit(cache=True)
def logsumexp_rows(x, out):
    """Row-wise log-sum-exp of (T, E) → (T,), -inf rows stay -inf."""
    for t in range(x.shape[0]):
        m = NEG_INF
        for e in range(x.shape[1]):
            if x[t, e] > m:
                m = x[t, e]
        if m == NEG_INF:
            out[t] = NEG_INF
            continue
        s = 0.0
        for e in range(x.shape[1]):
            s += np.exp(x[t, e] - m)
        out[t] = m + np.log(s)


@njit(cache=True)
def normalize_groups(counts, group, n_groups, out):
    """out[i] = counts[i] / sum of counts in group[i] (0 where the group sums to 0)."""
    tot = np.zeros(n_groups, dtype=np.float64)
    for i in range(counts.shape[0]):
        tot[group[i]] += counts[i]
    for i in range(counts.shape[0]):
        g = tot[group[i]]
        out[i] = counts[i] / g if g > 0.0 else 0.0


@njit(cache=True)
def _pick(cum, lo, hi, u):
    """Index in [lo, hi) of the first cumulative weight above ``u`` (last one on ties)."""
    for k in range(lo, hi - 1):
        if u < cum[k]:
            return k
    return hi - 1


@njit(cache=True)
def sample_topologies(n, seed, root_cum, root_a, root_b, root_ga, root_gb, grp_off,
                      cond_cum, cond_a, cond_b, cond_ga, cond_gb, leaf_of, S, out_parent):
    """Draw ``n`` rooted topologies from an SBN (Zhang & Matsen 2018, §2: root subsplit,
    then a subsplit for every clade given its parent–child context).

    root_cum (R,): cumulative root-subsplit probabilities (last = 1); root_a/root_b
    (R,) its clade ids; root_ga/root_gb (R,) the context group of clade a (sibling b)
    and of clade b (sibling a): -1 when the clade is a leaf, -2 when the model has no
    subsplit for it. Group g holds entries ``grp_off[g]:grp_off[g+1]`` of cond_cum
    (cumulative within the group, last = 1), cond_a/cond_b (the two child clades),
    cond_ga/cond_gb (their context groups, coded like root_ga). leaf_of (n_clades,):
    taxon of a single-taxon clade, else -1. The generator is seeded with ``seed``.
    out_parent (n, 2S-1) int32: post-order parent arrays (leaves 0..S-1, the left
    clade's subtree numbered before the right one's, root 2S-2, -1 at the root).
    Returns 0, or -1 when a clade without any subsplit was generated.
    """
    np.random.seed(seed)
    M = S - 1
    left = np.empty(M, dtype=np.int64)
    right = np.empty(M, dtype=np.int64)
    pend_node = np.empty(M, dtype=np.int64)
    pend_grp = np.empty(M, dtype=np.int64)
    st_node = np.empty(M, dtype=np.int64)
    st_state = np.empty(M, dtype=np.int64)
    post = np.empty(M, dtype=np.int64)
    R = root_cum.shape[0]
    for t in range(n):
        # top-down: choose the subsplit of every clade (node 0 = root)
        i = _pick(root_cum, 0, R, np.random.random())
        cnt = 1
        npend = 0
        for side in range(2):
            c = root_a[i] if side == 0 else root_b[i]
            g = root_ga[i] if side == 0 else root_gb[i]
            if g == -1:
                child = -(leaf_of[c] + 1)
            elif g == -2:
                return -1
            else:
                child = cnt
                cnt += 1
                pend_node[npend] = child
                pend_grp[npend] = g
                npend += 1
            if side == 0:
                left[0] = child
            else:
                right[0] = child
        while npend > 0:
            npend -= 1
            v = pend_node[npend]
            g = pend_grp[npend]
            j = _pick(cond_cum, grp_off[g], grp_off[g + 1], np.random.random())
            for side in range(2):
                c = cond_a[j] if side == 0 else cond_b[j]
                gg = cond_ga[j] if side == 0 else cond_gb[j]
                if gg == -1:
                    child = -(leaf_of[c] + 1)
                elif gg == -2:
                    return -1
                else:
                    child = cnt
                    cnt += 1
                    pend_node[npend] = child
                    pend_grp[npend] = gg
                    npend += 1
                if side == 0:
                    left[v] = child
                else:
                    right[v] = child
        # post-order numbering (left subtree, right subtree, node)
        nxt = S
        sp = 0
        st_node[0] = 0
        st_state[0] = 0
        sp = 1
        while sp > 0:
            v = st_node[sp - 1]
            s_ = st_state[sp - 1]
            if s_ < 2:
                st_state[sp - 1] = s_ + 1
                c = left[v] if s_ == 0 else right[v]
                if c >= 0:
                    st_node[sp] = c
                    st_state[sp] = 0
                    sp += 1
            else:
                post[v] = nxt
                nxt += 1
                sp -= 1
        for v in range(cnt):
            pv = post[v]
            for side in range(2):
                c = left[v] if side == 0 else right[v]
                cv = -c - 1 if c < 0 else post[c]
                out_parent[t, cv] = pv
        out_parent[t, post[0]] = -1
    return 0
