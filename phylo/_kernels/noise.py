"""Numba kernels for genotype matrices: exact checks and mutation-tree search.

Array conventions (shared by every kernel here):

- A genotype matrix is ``int8[cells, mutations]`` with entries 0, 1 and
  ``MISSING`` (3) for an unobserved entry.
- A mutation tree over ``n`` mutations is ``parent: int64[n]`` with values in
  ``0..n``; the value ``n`` is the root (the normal, mutation-free genome).
  Mutations are the nodes; a cell attached to node ``v`` carries exactly the
  mutations on the root→v path (Jahn et al. 2016, SCITE).
- An attachment is ``int64[cells]`` with values in ``0..n`` (``n`` = root).
- Scores are natural logs. ``deltaT[j, c] = s1(c, j) - s0(c, j)`` (mutations ×
  cells, so that the path accumulation runs over contiguous rows) where
  ``s_k(c, j)`` is log P(observed D[c, j] | true state k); missing entries give 0.
- ``acc[v, c]`` (``(n + 1) × cells``, row ``n`` = root = 0) is the sum of
  ``deltaT`` over the root→v path: the log-likelihood of cell ``c`` attached at
  ``v`` minus its all-zero baseline.

No Python objects enter these functions; the validating wrappers live in
:mod:`phylo.noise`.
"""
from __future__ import annotations

import numpy as np
from numba import njit

MISSING = 3
#: score improvements smaller than this are treated as ties (float round-off)
_TOL = 1e-9


# --------------------------------------------------------------------------
# exact checks (Gusfield 1991)
# --------------------------------------------------------------------------

@njit(cache=True)
def sort_columns_desc(A):
    """Column order that sorts the columns of a 0/1 matrix as binary numbers,
    largest first, row 0 being the most significant bit (LSD radix sort,
    O(cells · mutations))."""
    n, m = A.shape
    perm = np.arange(m)
    tmp = np.empty(m, dtype=np.int64)
    for i in range(n - 1, -1, -1):
        k = 0
        row = A[i]
        for t in range(m):  # stable partition: ones first
            if row[perm[t]] == 1:
                tmp[k] = perm[t]
                k += 1
        for t in range(m):
            if row[perm[t]] != 1:
                tmp[k] = perm[t]
                k += 1
        perm, tmp = tmp, perm
    return perm


@njit(cache=True)
def perfect_phylogeny(A):
    """Gusfield's (1991) O(cells · mutations) perfect-phylogeny test.

    Returns ``(ok, a, b, parent, attach)``: when ``ok`` the mutation tree
    ``parent`` (int64[m], root = m) and cell attachments ``attach`` (int64[n])
    reproduce A exactly (identical columns become a chain, empty columns leaves
    under the root); otherwise columns ``a`` and ``b`` show all three gametes.
    """
    n, m = A.shape
    perm = sort_columns_desc(A)
    # identical neighbours after sorting are duplicates; keep the first (rep)
    rep_of = np.empty(m, dtype=np.int64)    # sorted position -> unique index
    uperm = np.empty(m, dtype=np.int64)     # unique index -> column
    last_in_chain = np.empty(m, dtype=np.int64)  # unique index -> bottom column
    parent = np.full(m, m, dtype=np.int64)
    mu = 0
    for k in range(m):
        j = perm[k]
        same = False
        if k > 0:
            same = True
            jp = perm[k - 1]
            for i in range(n):
                if A[i, j] != A[i, jp]:
                    same = False
                    break
        if same:
            u = mu - 1
            parent[j] = last_in_chain[u]   # chain duplicates below each other
            last_in_chain[u] = j
        else:
            uperm[mu] = j
            last_in_chain[mu] = j
            mu += 1
        rep_of[k] = mu - 1
    L = np.full(mu, -2, dtype=np.int64)     # -2: column has no 1 yet
    attach = np.full(n, m, dtype=np.int64)
    for i in range(n):
        last = -1
        row = A[i]
        for u in range(mu):
            if row[uperm[u]] == 1:
                if L[u] == -2:
                    L[u] = last
                elif L[u] != last:
                    # the row with the larger left neighbour b has 1 at b and u;
                    # the other has 0 at b and 1 at u; sorting gives (1, 0).
                    b = L[u] if L[u] > last else last
                    return False, uperm[b], uperm[u], parent, attach
                last = u
        if last >= 0:
            attach[i] = last_in_chain[last]
    for u in range(mu):
        if L[u] >= 0:
            parent[uperm[u]] = last_in_chain[L[u]]
    return True, -1, -1, parent, attach


@njit(cache=True)
def linear_order(A):
    """Are the columns of a 0/1 matrix one chain under inclusion?

    Returns ``(ok, a, b, order)``: ``order`` lists columns by decreasing number
    of ones (counting sort); when not ``ok``, columns ``a`` and ``b`` are not
    nested. O(cells · mutations): a chain needs only consecutive inclusions.
    """
    n, m = A.shape
    count = np.zeros(m, dtype=np.int64)
    for i in range(n):
        for j in range(m):
            if A[i, j] == 1:
                count[j] += 1
    bucket = np.zeros(n + 2, dtype=np.int64)
    for j in range(m):
        bucket[n - count[j] + 1] += 1
    for k in range(1, n + 2):
        bucket[k] += bucket[k - 1]
    order = np.empty(m, dtype=np.int64)
    for j in range(m):
        key = n - count[j]
        order[bucket[key]] = j
        bucket[key] += 1
    for i in range(n):
        row = A[i]
        for k in range(m - 1):
            if row[order[k + 1]] == 1 and row[order[k]] != 1:
                return False, order[k], order[k + 1], order
    return True, -1, -1, order


# --------------------------------------------------------------------------
# likelihood tables and tree evaluation
# --------------------------------------------------------------------------

@njit(cache=True)
def score_tables(D, logs):
    """``(base[cells], deltaT[mutations, cells])`` for observed matrix D.

    ``logs`` is ``float64[R, C, 4, 2]``: ``logs[r, c, d, t]`` = log P(observed
    d | true t) with ``r`` = cell (R = cells) or 0 (R = 1, one table for every
    cell), ``c`` likewise for mutations; rows ``d`` = 0, 1, 2 (homozygous
    call), 3 (missing: 0 for both t). Entries must be finite (the validating
    layer replaces log 0 by a finite penalty). base[c] = Σ_j s0(c, j); the
    log-likelihood of cell c attached at v is base[c] + Σ_{j on root→v}
    deltaT[j, c]."""
    n, m = D.shape
    R = logs.shape[0]
    C = logs.shape[1]
    base = np.zeros(n)
    deltaT = np.zeros((m, n))
    for i in range(n):
        r = i if R > 1 else 0
        for j in range(m):
            d = D[i, j]
            if d == MISSING:
                continue
            c = j if C > 1 else 0
            s0 = logs[r, c, d, 0]
            base[i] += s0
            deltaT[j, i] = logs[r, c, d, 1] - s0
    return base, deltaT


@njit(cache=True)
def preorder(parent):
    """``(order, pos, size)``: mutations in pre-order (root excluded), the
    position of each in ``order`` and its subtree size. A subtree is the block
    ``order[pos[v] : pos[v] + size[v]]``. Returns ``size[0] = -1`` if the parent
    array has a cycle."""
    n = parent.size
    cnt = np.zeros(n + 2, dtype=np.int64)
    for v in range(n):
        cnt[parent[v] + 1] += 1
    for k in range(1, n + 2):
        cnt[k] += cnt[k - 1]
    kids = np.empty(n, dtype=np.int64)
    fill = cnt.copy()
    for v in range(n):
        kids[fill[parent[v]]] = v
        fill[parent[v]] += 1
    order = np.empty(n, dtype=np.int64)
    pos = np.empty(n, dtype=np.int64)
    size = np.ones(n, dtype=np.int64)
    stack = np.empty(n + 1, dtype=np.int64)
    top = 0
    stack[0] = n
    top = 1
    k = 0
    while top > 0:
        top -= 1
        v = stack[top]
        if v < n:
            order[k] = v
            pos[v] = k
            k += 1
        for t in range(cnt[v + 1] - 1, cnt[v] - 1, -1):
            stack[top] = kids[t]
            top += 1
    if k < n:  # nodes unreachable from the root: a cycle
        size[0] = -1
        return order, pos, size
    for t in range(n - 1, -1, -1):
        v = order[t]
        if parent[v] < n:
            size[parent[v]] += size[v]
    return order, pos, size


@njit(cache=True)
def path_sums(deltaT, parent, order, acc):
    """Fill ``acc`` ((n + 1) × cells) with root→v sums of ``deltaT``."""
    n = parent.size
    acc[n, :] = 0.0
    for t in range(n):
        v = order[t]
        acc[v, :] = acc[parent[v], :] + deltaT[v, :]


@njit(cache=True)
def best_total(acc):
    """Σ over cells of the best attachment score (root included)."""
    n1, c = acc.shape
    best = acc[n1 - 1, :].copy()
    for v in range(n1 - 1):
        for i in range(c):
            if acc[v, i] > best[i]:
                best[i] = acc[v, i]
    return best.sum()


@njit(cache=True)
def best_attachment(acc):
    """Best attachment node of every cell (root = n on ties with the root)."""
    n1, c = acc.shape
    att = np.full(c, n1 - 1, dtype=np.int64)
    best = acc[n1 - 1, :].copy()
    for v in range(n1 - 1):
        for i in range(c):
            if acc[v, i] > best[i] + _TOL:
                best[i] = acc[v, i]
                att[i] = v
    return att


@njit(cache=True)
def evaluate(deltaT, parent, acc):
    order, pos, size = preorder(parent)
    path_sums(deltaT, parent, order, acc)
    return best_total(acc)


# --------------------------------------------------------------------------
# local search over mutation trees
# --------------------------------------------------------------------------

@njit(cache=True)
def _workspace(n, c):
    """Scratch arrays of the local search, allocated once per climb:
    ``(vec, cells, tops, ends)``: ``vec`` float64[4, c] (per-cell vectors),
    ``cells`` int64[3, c] (active-cell lists and node indices), and the
    pre-order prefix/suffix summaries of :func:`_tree_summaries`: ``tops``
    float64[2, 2, n + 1, c] and ``ends`` int32[2, 2, n + 1, c]. Compact
    per-move tables are allocated by the moves at their (small) size."""
    return (np.empty((4, c)), np.empty((3, c), dtype=np.int64),
            np.empty((2, 2, n + 1, c)), np.empty((2, 2, n + 1, c), dtype=np.int32))


@njit(cache=True)
def _tree_summaries(acc, order, tops, ends):
    """Per cell, the best score m1, the best strictly below it m2, and the
    first and last node (in pre-order) scoring m1, over every pre-order prefix
    and suffix of the tree's nodes: index 0 of ``tops``/``ends`` holds the
    prefixes (row t: the root and order[0..t-1]), index 1 the suffixes (row t:
    order[t..n-1], row n empty: m1 = −inf, nodes −1). ``tops[s, 0]`` = m1,
    ``tops[s, 1]`` = m2, ``ends[s, 0]`` = first, ``ends[s, 1]`` = last."""
    n = order.size
    c = acc.shape[1]
    p1, p2, pf, pl = tops[0, 0], tops[0, 1], ends[0, 0], ends[0, 1]
    p1[0, :] = 0.0          # the root scores 0
    p2[0, :] = -np.inf
    pf[0, :] = n
    pl[0, :] = n
    for t in range(n):
        x = order[t]
        row = acc[x]
        for i in range(c):
            a = row[i]
            m1 = p1[t, i]
            if a > m1:
                p1[t + 1, i] = a
                p2[t + 1, i] = m1
                pf[t + 1, i] = x
                pl[t + 1, i] = x
            else:
                p1[t + 1, i] = m1
                pf[t + 1, i] = pf[t, i]
                pl[t + 1, i] = x if a == m1 else pl[t, i]
                m2 = p2[t, i]
                p2[t + 1, i] = a if (a < m1 and a > m2) else m2
    s1, s2, sf, sl = tops[1, 0], tops[1, 1], ends[1, 0], ends[1, 1]
    s1[n, :] = -np.inf
    s2[n, :] = -np.inf
    sf[n, :] = -1
    sl[n, :] = -1
    for t in range(n - 1, -1, -1):   # x comes before the rest of the suffix
        x = order[t]
        row = acc[x]
        for i in range(c):
            a = row[i]
            m1 = s1[t + 1, i]
            if a > m1:
                s1[t, i] = a
                s2[t, i] = m1
                sf[t, i] = x
                sl[t, i] = x
            else:
                s1[t, i] = m1
                sl[t, i] = sl[t + 1, i]
                sf[t, i] = x if a == m1 else sf[t + 1, i]
                m2 = s2[t + 1, i]
                s2[t, i] = a if (a < m1 and a > m2) else m2


@njit(cache=True)
def _best_reattach(v, parent, order, pos, size, acc, ws):
    """Best new parent of the subtree S rooted at v, all candidates at once.

    Returns ``(u, gain)``: the best parent and the change of the total score
    (0 for the current parent, which wins ties). After moving S below u a
    cell scores max(best outside S, acc[u] + best inside S relative to v's old
    parent p). Only cells whose best inside S beats acc[p] (bs > 0) can change:
    for the others acc[u] + bs ≤ acc[u] ≤ best outside S whatever u. So the
    scan runs over those few cells (typically the cells attached in S), gathered
    into a contiguous (outside nodes × active cells) table: O(|S| · cells +
    n · active) instead of O(n · cells)."""
    n = parent.size
    c = acc.shape[1]
    vec, cells, _, _ = ws
    bs = vec[0]   # per cell; compacted to the active cells below
    lo = pos[v]
    hi = lo + size[v]
    p = parent[v]
    bs[:] = acc[v, :]
    for t in range(lo + 1, hi):
        row = acc[order[t]]
        for i in range(c):
            if row[i] > bs[i]:
                bs[i] = row[i]
    act = cells[0]
    k = 0
    ap = acc[p]
    for i in range(c):
        g = bs[i] - ap[i]
        if g > 0.0:
            act[k] = i
            bs[k] = g   # compacted in place (k ≤ i)
            k += 1
    if k == 0:
        return p, 0.0
    n_out = n + 1 - size[v]
    tab = np.empty((n_out, k))   # row 0 = root, then pre-order
    node = np.empty(n_out, dtype=np.int64)
    bo = vec[1]
    r = 0
    for t in range(-1, n):
        if t >= lo and t < hi:
            continue
        u = n if t < 0 else order[t]
        node[r] = u
        row = acc[u]
        out = tab[r]
        for j in range(k):
            out[j] = row[act[j]]
        r += 1
    bo[:k] = tab[0]
    for r in range(1, n_out):
        out = tab[r]
        for j in range(k):
            if out[j] > bo[j]:
                bo[j] = out[j]
    cur = vec[2]   # the cells' scores with S where it is (below p)
    for j in range(k):
        a = ap[act[j]] + bs[j]
        cur[j] = a if a > bo[j] else bo[j]
    best_u = p
    best_gain = -np.inf
    for r in range(n_out):
        u = node[r]
        out = tab[r]
        g = 0.0
        for j in range(k):
            a = out[j] + bs[j]
            g += (a if a > bo[j] else bo[j]) - cur[j]
        if g > best_gain + _TOL or (u == p and g >= best_gain - _TOL):
            best_gain = g
            best_u = u
    return best_u, best_gain


@njit(cache=True)
def _swap_labels(parent, a, b, out):
    """Tree with the labels of mutations a and b exchanged (SCITE's node swap)."""
    n = parent.size
    for x in range(n):
        px = parent[x]
        if px == a:
            px = b
        elif px == b:
            px = a
        y = x
        if x == a:
            y = b
        elif x == b:
            y = a
        out[y] = px


@njit(cache=True)
def tree_move(parent, trial, p_prune):
    """Propose a neighbour of ``parent`` into ``trial``: with probability ``p_prune``
    prune a subtree and reattach it to a uniform node outside it (the root
    included), else swap two mutations' labels (SCITE's moves; both symmetric, so a
    Metropolis ratio needs no proposal term). Root = parent.size. The random numbers
    are drawn in a fixed order, so seeded chains are reproducible."""
    n = parent.size
    if n == 1 or np.random.random() < p_prune:
        v = np.random.randint(n)
        order, pos, size = preorder(parent)
        lo = pos[v]
        hi = lo + size[v]
        t = np.random.randint(n + 1 - size[v]) - 1
        if t < 0:
            u = n
        else:
            u = order[t] if t < lo else order[t + (hi - lo)]
        trial[:] = parent
        trial[v] = u
    else:
        a = np.random.randint(n)
        b = np.random.randint(n - 1)
        if b >= a:
            b += 1
        _swap_labels(parent, a, b, trial)


@njit(cache=True)
def _best_relocate(v, parent, order, pos, size, acc, deltaT, ws, parent2):
    """Best new place of the single node v (its children move up to its
    parent p): as a leaf under any u, or inserted above any node w.

    Returns ``(kind, target, score)``: kind 0 = leaf under target, 1 =
    inserted above target; score = the total after the move. ``acc`` holds the
    current tree's path sums; ``parent2`` receives the tree T′ without v (v
    parked as a leaf under the root and skipped).

    In T′ a node x below v scores acc[x] − d (d = deltaT[v]); M = a cell's
    best over T′. Leaf under u gives a cell max(M, acc′[u] + d); inserting v
    above w gives max(outside(w), sub(w) + d, acc′[parent(w)] + d), with
    sub/outside the best inside/outside w's subtree. A cell with d = 0 keeps M
    everywhere. A cell with d < 0 whose best nodes (exact ties allowed, as
    missing entries make them) beat every other node by at least |d| keeps M
    except when v is inserted above an ancestor-or-self of their lowest
    common ancestor, where it scores exactly M − |d|: a weight |d| at that
    node, summed up the tree. Only the remaining cells (d > 0, or near-ties
    within |d|: a few per cent) need the O(n) scans of every place, run on a
    compact (n + 1) × active table. The per-cell best, best below it and the
    first and last best node over T′ merge the current tree's pre-order
    prefix before v and suffix after its subtree (``ws``, filled by
    :func:`_tree_summaries` once per tree) with v's descendants: O(|subtree|
    · cells) per node instead of the direct method's ten O(n · cells) passes.
    ``ws`` is :func:`_workspace`'s."""
    n = parent.size
    c = acc.shape[1]
    d = deltaT[v]
    p = parent[v]
    lo = pos[v]
    hi = lo + size[v]
    # 1. per cell over T′: best m1, best strictly below it m2, first and last
    # node scoring m1 in T's pre-order without v (a pre-order of T′), merged
    # from the nodes before v (prefix), v's descendants (shifted by −d) and
    # the nodes after its subtree (suffix), in that order
    vec, cells, tops, ends = ws
    m1 = vec[0]
    m2 = vec[1]
    first = cells[1]
    last = cells[2]
    m1[:] = tops[0, 0, lo]
    m2[:] = tops[0, 1, lo]
    for i in range(c):
        first[i] = ends[0, 0, lo, i]
        last[i] = ends[0, 1, lo, i]
    for t in range(lo + 1, hi):
        x = order[t]
        row = acc[x]
        for i in range(c):
            a = row[i] - d[i]
            if a > m1[i]:
                m2[i] = m1[i]
                m1[i] = a
                first[i] = x
                last[i] = x
            elif a == m1[i]:
                last[i] = x
            elif a > m2[i]:
                m2[i] = a
    s1 = tops[1, 0, hi]
    s2 = tops[1, 1, hi]
    sf = ends[1, 0, hi]
    sl = ends[1, 1, hi]
    for i in range(c):
        b1 = s1[i]
        a1 = m1[i]
        if b1 > a1:
            m1[i] = b1
            m2[i] = a1 if a1 > s2[i] else s2[i]
            first[i] = sf[i]
            last[i] = sl[i]
        elif b1 == a1:
            if s2[i] > m2[i]:
                m2[i] = s2[i]
            last[i] = sl[i]
        elif b1 > m2[i]:
            m2[i] = b1
    # 2. T′ structure
    for x in range(n):
        parent2[x] = p if parent[x] == v else parent[x]
    parent2[v] = n
    order2, pos2, size2 = preorder(parent2)
    # 3. split the cells. d = 0: scores m1 whatever the move. d < 0 with every
    # node but the best ones (tied exactly, e.g. through missing entries)
    # at least |d| lower: loses |d| exactly when v goes above the lowest
    # common ancestor l of the best ones (first and last in pre-order span
    # them), so weight |d| at l. The others (d > 0 or near-ties) are active.
    wt = np.zeros(n + 1)
    act = cells[0]
    k = 0
    const = 0.0
    for i in range(c):
        di = d[i]
        if di > 0.0 or (di < 0.0 and m2[i] > m1[i] + di):
            act[k] = i
            k += 1
        else:
            const += m1[i]
            if di < 0.0:
                l = first[i]
                b = pos2[last[i]] if last[i] < n else -1
                while l < n and not (pos2[l] <= b and b < pos2[l] + size2[l]):
                    l = parent2[l]
                wt[l] -= di
    for t in range(n - 1, -1, -1):   # wt[w] := weight inside w's subtree
        x = order2[t]
        wt[parent2[x]] += wt[x]
    # 4. the full scan over the active cells
    acc2 = np.empty((n + 1, k))
    sub = np.empty((n + 1, k))
    pre = np.empty((n + 1, k))
    suf = np.empty((n + 1, k))
    dc = vec[2]
    for j in range(k):
        dc[j] = d[act[j]]
    acc2[n, :] = 0.0
    for t in range(n):
        x = order[t]
        row = acc[x]
        out = acc2[x]
        if t == lo:
            out[:] = -np.inf
        elif t > lo and t < hi:
            for j in range(k):
                out[j] = row[act[j]] - dc[j]
        else:
            for j in range(k):
                out[j] = row[act[j]]
    for t in range(n - 1, -1, -1):  # subtree maxima, bottom-up
        x = order2[t]
        sub[x, :] = acc2[x, :]
    sub[n, :] = acc2[n, :]
    for t in range(n - 1, -1, -1):
        x = order2[t]
        px = parent2[x]
        for j in range(k):
            if sub[x, j] > sub[px, j]:
                sub[px, j] = sub[x, j]
    pre[0, :] = acc2[n, :]  # pre[t]: max of root and order2[0..t-1]
    for t in range(n):
        x = order2[t]
        for j in range(k):
            a = acc2[x, j]
            pre[t + 1, j] = a if a > pre[t, j] else pre[t, j]
    suf[n, :] = -np.inf    # suf[t]: max of order2[t..n-1]
    for t in range(n - 1, -1, -1):
        x = order2[t]
        for j in range(k):
            a = acc2[x, j]
            suf[t, j] = a if a > suf[t + 1, j] else suf[t + 1, j]
    best_kind = 0
    best_target = p
    best_score = -np.inf
    allmax = pre[n]
    for u in range(n + 1):  # leaf under u
        if u == v:
            continue
        s = const
        for j in range(k):
            a = acc2[u, j] + dc[j]
            s += a if a > allmax[j] else allmax[j]
        if s > best_score + _TOL:
            best_score = s
            best_kind = 0
            best_target = u
    for w in range(n):  # inserted above w
        if w == v:
            continue
        lo2 = pos2[w]
        hi2 = lo2 + size2[w]
        pw = parent2[w]
        s = const - wt[w]
        for j in range(k):
            o = pre[lo2, j] if pre[lo2, j] > suf[hi2, j] else suf[hi2, j]
            a = sub[w, j] + dc[j]
            b = acc2[pw, j] + dc[j]
            if b > a:
                a = b
            s += a if a > o else o
        if s > best_score + _TOL:
            best_score = s
            best_kind = 1
            best_target = w
    return best_kind, best_target, best_score


@njit(cache=True)
def _relocate_sweep(deltaT, parent, acc, score, ws):
    """One pass of single-node relocation over all nodes in random order;
    ``acc`` is kept equal to the current tree's path sums."""
    n = parent.size
    parent2 = np.empty(n, dtype=np.int64)
    improved = False
    order, pos, size = preorder(parent)
    _tree_summaries(acc, order, ws[2], ws[3])
    for v in np.random.permutation(n):
        kind, target, s = _best_relocate(v, parent, order, pos, size, acc, deltaT, ws,
                                         parent2)
        if s > score + _TOL:
            parent[:] = parent2
            if kind == 0:
                parent[v] = target
            else:
                parent[v] = parent2[target]
                parent[target] = v
            order, pos, size = preorder(parent)
            path_sums(deltaT, parent, order, acc)
            _tree_summaries(acc, order, ws[2], ws[3])
            score = best_total(acc)
            improved = True
    return score, improved


@njit(cache=True)
def _reattach_sweep(deltaT, parent, acc, score, ws):
    """One pass of best-position prune-and-reattach over all nodes in random
    order; an accepted move shifts only the moved subtree's rows of ``acc``."""
    n = parent.size
    improved = False
    order, pos, size = preorder(parent)
    for v in np.random.permutation(n):
        u, gain = _best_reattach(v, parent, order, pos, size, acc, ws)
        if gain > _TOL and u != parent[v]:
            p = parent[v]
            shift = acc[u, :] - acc[p, :]
            for t in range(pos[v], pos[v] + size[v]):
                acc[order[t], :] += shift
            parent[v] = u
            order, pos, size = preorder(parent)
            improved = True
    if improved:   # the gains were summed in changing orders: recount once
        score = best_total(acc)
    return score, improved


@njit(cache=True)
def _swap_score(a, b, trial, order, pos, size, acc, deltaT, ws, acc2, changed):
    """Total score of ``trial`` = the current tree with labels a and b
    exchanged (:func:`_swap_labels`), recomputing only the rows that change.

    Exactly the nodes below a or b (their subtrees, in either tree) get new
    root paths; their rows go to ``acc2`` (``changed`` marks them). Every other
    node keeps its row, and their per-cell best comes from the current tree's
    pre-order prefix before and suffix after those subtrees (``ws``, filled
    by :func:`_tree_summaries`) and the rows between two disjoint subtrees.
    Returns the score (without the base)."""
    n = trial.size
    c = acc.shape[1]
    vec = ws[0]
    tops = ws[2]
    l1, h1 = pos[a], pos[a] + size[a]
    l2, h2 = pos[b], pos[b] + size[b]
    if l2 < l1:
        l1, h1, l2, h2 = l2, h2, l1, h1
    nested = l2 < h1          # the later subtree lies inside the earlier one
    out = vec[2]
    out[:] = tops[0, 0, l1]
    last = tops[1, 0, h1 if nested else h2]
    for i in range(c):
        if last[i] > out[i]:
            out[i] = last[i]
    if not nested:
        for t in range(h1, l2):
            row = acc[order[t]]
            for i in range(c):
                if row[i] > out[i]:
                    out[i] = row[i]
    # new rows, in the new tree's pre-order so parents come first
    order2, pos2, size2 = preorder(trial)
    changed[:] = False
    for top in (a, b):
        for t in range(pos2[top], pos2[top] + size2[top]):
            changed[order2[t]] = True
    for t in range(n):
        x = order2[t]
        if not changed[x]:
            continue
        px = trial[x]
        if px == n:
            acc2[x, :] = deltaT[x, :]
        elif changed[px]:
            acc2[x, :] = acc2[px, :] + deltaT[x, :]
        else:
            acc2[x, :] = acc[px, :] + deltaT[x, :]
        row = acc2[x]
        for i in range(c):
            if row[i] > out[i]:
                out[i] = row[i]
    return out.sum()


@njit(cache=True)
def local_search(deltaT, parent, acc, n_random_swaps, max_rounds):
    """Hill-climb ``parent`` in place with prune-and-reattach (best position of
    every subtree) until no such move improves, then single-node relocation
    (best place of every node, leaf or inserted above a node) and random node
    swaps; repeat while these improve. Returns the score (without the base)."""
    n = parent.size
    c = deltaT.shape[1]
    ws = _workspace(n, c)
    trial = np.empty(n, dtype=np.int64)
    acc2 = np.empty_like(acc)
    changed = np.zeros(n, dtype=np.bool_)
    score = evaluate(deltaT, parent, acc)
    for _ in range(max_rounds):
        for _r in range(max_rounds):
            score, improved = _reattach_sweep(deltaT, parent, acc, score, ws)
            if not improved:
                break
        # the relocation sweep leaves ws's summaries equal to the current tree's
        score, improved = _relocate_sweep(deltaT, parent, acc, score, ws)
        order, pos, size = preorder(parent)
        for _k in range(n_random_swaps):
            a = np.random.randint(n)
            b = np.random.randint(n)
            if a == b:
                continue
            _swap_labels(parent, a, b, trial)
            s = _swap_score(a, b, trial, order, pos, size, acc, deltaT, ws, acc2, changed)
            if s > score + _TOL:
                parent[:] = trial
                for x in range(n):
                    if changed[x]:
                        acc[x, :] = acc2[x, :]
                order, pos, size = preorder(parent)
                _tree_summaries(acc, order, ws[2], ws[3])
                score = best_total(acc)
                improved = True
        if not improved:
            break
    return score


@njit(cache=True)
def _kick(parent, n_moves):
    """Random prune-and-reattach moves (perturbation for iterated local search)."""
    n = parent.size
    for _ in range(n_moves):
        v = np.random.randint(n)
        order, pos, size = preorder(parent)
        lo = pos[v]
        hi = lo + size[v]
        if hi - lo == n:
            parent[v] = n
            continue
        while True:
            t = np.random.randint(n + 1) - 1
            if t < 0:
                parent[v] = n
                break
            if t < lo or t >= hi:
                parent[v] = order[t]
                break


# --------------------------------------------------------------------------
# exact enumeration of all mutation trees (small n)
# --------------------------------------------------------------------------

@njit(cache=True)
def _prufer_parent(seq, n):
    """Decode a Prüfer sequence over n + 1 labels into a parent array rooted at n."""
    N = n + 1
    deg = np.ones(N, dtype=np.int64)
    for x in seq:
        deg[x] += 1
    adj_u = np.empty(N - 1, dtype=np.int64)
    adj_v = np.empty(N - 1, dtype=np.int64)
    e = 0
    for x in seq:
        for leaf in range(N):
            if deg[leaf] == 1:
                adj_u[e] = leaf
                adj_v[e] = x
                e += 1
                deg[leaf] -= 1
                deg[x] -= 1
                break
    u = -1
    for k in range(N):
        if deg[k] == 1:
            if u < 0:
                u = k
            else:
                adj_u[e] = u
                adj_v[e] = k
                e += 1
    # orient from the root n (BFS)
    parent = np.full(n, -1, dtype=np.int64)
    seen = np.zeros(N, dtype=np.bool_)
    queue = np.empty(N, dtype=np.int64)
    queue[0] = n
    seen[n] = True
    head = 0
    tail = 1
    while head < tail:
        x = queue[head]
        head += 1
        for k in range(N - 1):
            y = -1
            if adj_u[k] == x:
                y = adj_v[k]
            elif adj_v[k] == x:
                y = adj_u[k]
            if y >= 0 and not seen[y]:
                seen[y] = True
                parent[y] = x
                queue[tail] = y
                tail += 1
    return parent


@njit(cache=True)
def exhaustive_tree(deltaT):
    """Best mutation tree by enumerating all (n + 1)^(n - 1) rooted labelled
    trees (Cayley) through Prüfer sequences. Exact; for n ≤ 8."""
    n, c = deltaT.shape
    acc = np.empty((n + 1, c))
    if n == 1:
        parent = np.zeros(1, dtype=np.int64)
        parent[0] = 1
        return parent, evaluate(deltaT, parent, acc)
    L = n - 1
    seq = np.zeros(L, dtype=np.int64)
    best = -np.inf
    best_parent = np.full(n, n, dtype=np.int64)
    while True:
        parent = _prufer_parent(seq, n)
        s = evaluate(deltaT, parent, acc)
        if s > best + _TOL:
            best = s
            best_parent = parent
        k = 0
        while k < L:
            seq[k] += 1
            if seq[k] <= n:
                break
            seq[k] = 0
            k += 1
        if k == L:
            break
    return best_parent, best


# --------------------------------------------------------------------------
# linear (chain) trees
# --------------------------------------------------------------------------

@njit(cache=True)
def chain_score(deltaT, order):
    n, c = deltaT.shape
    run = np.zeros(c)
    best = np.zeros(c)
    for t in range(n):
        run += deltaT[order[t]]
        for i in range(c):
            if run[i] > best[i]:
                best[i] = run[i]
    return best.sum()


@njit(cache=True)
def _best_insert(deltaT, order, t0):
    """Best position to re-insert ``order[t0]`` in the chain, all positions at
    once: with Q the prefix sums of the chain without it, inserting after k
    gives max(max_{t≤k} Q[t], d + max_{t≥k} Q[t]) per cell."""
    n, c = deltaT.shape
    v = order[t0]
    Q = np.zeros((n, c))
    r = 1
    for t in range(n):
        if t == t0:
            continue
        Q[r] = Q[r - 1] + deltaT[order[t]]
        r += 1
    suf = Q.copy()
    for k in range(n - 2, -1, -1):
        for i in range(c):
            if suf[k + 1, i] > suf[k, i]:
                suf[k, i] = suf[k + 1, i]
    pre = np.full(c, -np.inf)
    best_k = t0
    best_s = -np.inf
    d = deltaT[v]
    for k in range(n):
        s = 0.0
        for i in range(c):
            if Q[k, i] > pre[i]:
                pre[i] = Q[k, i]
            a = d[i] + suf[k, i]
            s += a if a > pre[i] else pre[i]
        if s > best_s + _TOL or (k == t0 and s >= best_s - _TOL):
            best_s = s
            best_k = k
    return best_k, best_s


@njit(cache=True)
def search_chain(deltaT, init_order, seed, n_restarts, n_kicks, max_rounds):
    """Best linear tree (a chain of all mutations, cells attached along it) by
    iterated insertion local search with seeded restarts. Returns
    ``(order, score)``: order[0] is the child of the root."""
    np.random.seed(seed)
    n, c = deltaT.shape
    best_order = init_order.copy()
    best_score = -np.inf
    tmp = np.empty(n, dtype=np.int64)
    for r in range(n_restarts):
        order = init_order.copy() if r == 0 else np.random.permutation(n)
        score = chain_score(deltaT, order)
        for kick in range(n_kicks + 1):
            trial = order.copy()
            if kick > 0:
                for _ in range(2):
                    a = np.random.randint(n)
                    b = np.random.randint(n)
                    trial[a], trial[b] = trial[b], trial[a]
            s = chain_score(deltaT, trial)
            for _round in range(max_rounds):
                improved = False
                for v in np.random.permutation(n):
                    t0 = 0
                    for t in range(n):
                        if trial[t] == v:
                            t0 = t
                    k, sk = _best_insert(deltaT, trial, t0)
                    if sk > s + _TOL and k != t0:
                        r2 = 0
                        for t in range(n):
                            if t == t0:
                                continue
                            tmp[r2] = trial[t]
                            r2 += 1
                        # insert after k elements of the reduced chain
                        for t in range(n - 1, k, -1):
                            trial[t] = tmp[t - 1]
                        trial[k] = v
                        for t in range(k):
                            trial[t] = tmp[t]
                        s = chain_score(deltaT, trial)
                        improved = True
                if not improved:
                    break
            if s >= score - _TOL:
                order = trial
                score = s
        if score > best_score + _TOL:
            best_score = score
            best_order = order.copy()
    return best_order, best_score


# --------------------------------------------------------------------------
# posterior sampling over mutation trees (attachments summed out)
# --------------------------------------------------------------------------

@njit(cache=True)
def sum_score(deltaT, parent, acc):
    """Σ over cells of log Σ_v exp(acc[v, c]) (attachments summed out, without
    the base and the uniform attachment prior); −inf for a cyclic parent."""
    order, pos, size = preorder(parent)
    if size[0] < 0:
        return -np.inf
    path_sums(deltaT, parent, order, acc)
    n1, c = acc.shape
    total = 0.0
    for i in range(c):
        mx = acc[0, i]
        for v in range(1, n1):
            if acc[v, i] > mx:
                mx = acc[v, i]
        s = 0.0
        for v in range(n1):
            s += np.exp(acc[v, i] - mx)
        total += mx + np.log(s)
    return total


@njit(cache=True)
def mcmc_trees(deltaT, init_parent, seed, n_iter, burn_in, thin, p_prune):
    """Metropolis–Hastings over mutation trees with the cell attachments
    summed out (SCITE's ``-s`` sampling, Jahn et al. 2016), uniform prior on
    rooted labelled trees. Moves: prune a uniform node's subtree and reattach
    it below a uniform node outside it (probability ``p_prune``), else swap
    the labels of two uniform nodes; both proposals are symmetric.

    Returns ``(samples int64[k, n], scores float64[k], trace float64[n_iter],
    accepted)``: parents kept every ``thin`` iterations after ``burn_in``, their
    summed scores (without the base), the score after every iteration."""
    np.random.seed(seed)
    n, c = deltaT.shape
    acc = np.empty((n + 1, c))
    parent = init_parent.copy()
    score = sum_score(deltaT, parent, acc)
    k_max = 0
    if n_iter > burn_in:
        k_max = (n_iter - burn_in + thin - 1) // thin
    samples = np.empty((k_max, n), dtype=np.int64)
    scores = np.empty(k_max)
    trace = np.empty(n_iter)
    trial = np.empty(n, dtype=np.int64)
    accepted = 0
    k = 0
    for it in range(n_iter):
        tree_move(parent, trial, p_prune)
        s = sum_score(deltaT, trial, acc)
        if s >= score or np.random.random() < np.exp(s - score):
            parent[:] = trial
            score = s
            accepted += 1
        trace[it] = score
        if it >= burn_in and (it - burn_in) % thin == 0:
            samples[k] = parent
            scores[k] = score
            k += 1
    return samples, scores, trace, accepted


@njit(cache=True)
def binary_tables(D, alpha, beta):
    """``(base, deltaT)`` of the binary model with scalar rates (2 = mutated)."""
    n, m = D.shape
    la = np.log(alpha)
    l1a = np.log(1.0 - alpha)
    lb = np.log(beta)
    l1b = np.log(1.0 - beta)
    base = np.zeros(n)
    deltaT = np.zeros((m, n))
    for i in range(n):
        for j in range(m):
            d = D[i, j]
            if d == 0:
                base[i] += l1a
                deltaT[j, i] = lb - l1a
            elif d == 1 or d == 2:
                base[i] += la
                deltaT[j, i] = l1b - la
    return base, deltaT


@njit(cache=True)
def mcmc_trees_beta(D, alpha, beta0, prior_a, prior_b, init_parent, seed, n_iter, burn_in,
                    thin, p_prune, p_beta, step):
    """:func:`mcmc_trees` with the false-negative rate β sampled too (binary
    model, α fixed), as SCITE's ``-e``: with probability ``p_beta`` a step
    proposes log-odds(β') = log-odds(β) + N(0, ``step``²) under a
    Beta(``prior_a``, ``prior_b``) prior (the Jacobian of the log-odds walk
    is β(1 − β)). Returns ``(samples, scores, betas, accepted)``; ``scores``
    are full log-likelihoods (base included, attachment prior excluded)."""
    np.random.seed(seed)
    n_cells = D.shape[0]
    n = init_parent.size
    beta = beta0
    base, deltaT = binary_tables(D, alpha, beta)
    acc = np.empty((n + 1, n_cells))
    parent = init_parent.copy()
    score = sum_score(deltaT, parent, acc) + base.sum()
    k_max = 0
    if n_iter > burn_in:
        k_max = (n_iter - burn_in + thin - 1) // thin
    samples = np.empty((k_max, n), dtype=np.int64)
    scores = np.empty(k_max)
    betas = np.empty(k_max)
    trial = np.empty(n, dtype=np.int64)
    accepted = 0
    k = 0
    for it in range(n_iter):
        if np.random.random() < p_beta:
            z = np.log(beta / (1.0 - beta)) + step * np.random.standard_normal()
            nb = 1.0 / (1.0 + np.exp(-z))
            if nb > 1e-9 and nb < 0.5:
                b2, d2 = binary_tables(D, alpha, nb)
                s = sum_score(d2, parent, acc) + b2.sum()
                # prior ratio and the log-odds Jacobian
                log_r = (s - score + (prior_a - 1.0) * (np.log(nb) - np.log(beta))
                         + (prior_b - 1.0) * (np.log(1.0 - nb) - np.log(1.0 - beta))
                         + np.log(nb * (1.0 - nb)) - np.log(beta * (1.0 - beta)))
                if log_r >= 0.0 or np.random.random() < np.exp(log_r):
                    beta = nb
                    base = b2
                    deltaT = d2
                    score = s
                    accepted += 1
        else:
            tree_move(parent, trial, p_prune)
            s = sum_score(deltaT, trial, acc) + base.sum()
            if s >= score or np.random.random() < np.exp(s - score):
                parent[:] = trial
                score = s
                accepted += 1
        if it >= burn_in and (it - burn_in) % thin == 0:
            samples[k] = parent
            scores[k] = score
            betas[k] = beta
            k += 1
    return samples, scores, betas, accepted
