"""Numba kernels for bulk tree-sample work: parent arrays → split bitsets → hash tables.

Pure functions over NumPy arrays (no Python objects inside ``@njit``).

Conventions
-----------
* A clade / split is a bitset over the taxa stored as ``W = ceil(S / 64)`` uint64
  words, taxon ``i`` at bit ``i % 64`` of word ``i // 64`` (little-endian words).
* An *unrooted* split is normalised to the side that does NOT contain taxon 0.
* Parent arrays (as produced by :func:`phylo._kernels.newick.parse_newick_batch`): leaves ``0..S-1`` in taxon
  order, internal nodes ``S..n-1`` in post-order (children before parents), root
  ``n-1``, padded with ``-2`` beyond ``n`` (``n`` = ``n_nodes[t]``).
* Row hash tables (:func:`hash_insert_rows`): open addressing with linear probing over
  rows of ``K`` uint64 words; ``table_ids`` holds ``-1`` for empty slots.
"""
from __future__ import annotations

import numpy as np
from numba import njit

@njit(cache=True, nogil=True)
def node_clades(parent, n, S, W, out):
    """Clade bitsets of every node of one parent array: out (>= n, W) uint64."""
    for v in range(n):
        for w in range(W):
            out[v, w] = 0
    for v in range(S):
        out[v, v // 64] |= np.uint64(1) << np.uint64(v % 64)
    for v in range(n - 1):
        p = parent[v]
        if p >= 0:
            for w in range(W):
                out[p, w] |= out[v, w]


@njit(cache=True, nogil=True)
def _row_less(a, b):
    """Lexicographic order of two bitset rows (most significant word first)."""
    for w in range(a.shape[0] - 1, -1, -1):
        if a[w] != b[w]:
            return a[w] < b[w]
    return False


@njit(cache=True, nogil=True)
def _popcount(x):
    c = 0
    while x:
        x &= x - np.uint64(1)
        c += 1
    return c


@njit(cache=True, nogil=True)
def topology_keys(parents, n_nodes, S, W, rooted, out):
    """Canonical topology keys: sorted non-trivial splits (unrooted) or clades (rooted).

    parents (T, 2S-1), n_nodes (T,); out (T, M, W) uint64 with M = S - 2: rows sorted
    ascending, zero rows as padding at the end. Unrooted splits are normalised to the
    side without taxon 0; duplicates (the two root branches of a rooted tree) merged.
    Returns nothing; ``out[t]`` viewed as bytes identifies the topology.
    """
    M = out.shape[1]
    maxn = parents.shape[1]
    cl = np.zeros((maxn, W), dtype=np.uint64)
    full = np.zeros(W, dtype=np.uint64)
    for k in range(S):
        full[k // 64] |= np.uint64(1) << np.uint64(k % 64)
    rows = np.zeros((maxn, W), dtype=np.uint64)
    tmp = np.zeros(W, dtype=np.uint64)
    for t in range(parents.shape[0]):
        n = n_nodes[t]
        if t > 0 and n_nodes[t - 1] == n:
            # MCMC samples often repeat the previous tree verbatim: same key
            same = True
            for v in range(n):
                if parents[t, v] != parents[t - 1, v]:
                    same = False
                    break
            if same:
                for a in range(M):
                    for w in range(W):
                        out[t, a, w] = out[t - 1, a, w]
                continue
        node_clades(parents[t], n, S, W, cl)
        m = 0
        for v in range(S, n - 1):
            pc = 0
            for w in range(W):
                pc += _popcount(cl[v, w])
            if rooted:
                if pc < 2 or pc > S - 1:
                    continue
                for w in range(W):
                    rows[m, w] = cl[v, w]
            else:
                flip = (cl[v, 0] & np.uint64(1)) != 0
                if flip:
                    pc = S - pc
                if pc < 2 or pc > S - 2:
                    continue
                for w in range(W):
                    rows[m, w] = (full[w] ^ cl[v, w]) if flip else cl[v, w]
            m += 1
        # insertion sort of rows[:m]
        for a in range(1, m):
            for w in range(W):
                tmp[w] = rows[a, w]
            b = a - 1
            while b >= 0 and _row_less(tmp, rows[b]):
                for w in range(W):
                    rows[b + 1, w] = rows[b, w]
                b -= 1
            for w in range(W):
                rows[b + 1, w] = tmp[w]
        # dedup and write
        k = 0
        for a in range(m):
            if k > 0:
                same = True
                for w in range(W):
                    if rows[a, w] != out[t, k - 1, w]:
                        same = False
                        break
                if same:
                    continue
            if k < M:
                for w in range(W):
                    out[t, k, w] = rows[a, w]
                k += 1
        for a in range(k, M):
            for w in range(W):
                out[t, a, w] = 0


@njit(cache=True, nogil=True)
def _hash_row(row):
    h = np.uint64(0x9E3779B97F4A7C15)
    for w in range(row.shape[0]):
        x = row[w] + h
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        h = x ^ (x >> np.uint64(31))
    return h


@njit(cache=True, nogil=True)
def hash_insert_rows(rows, stored, table_ids, n_used, insert, out_ids):
    """Look up (and optionally insert) rows of uint64 words in an open-addressing table.

    rows (n, K); stored (cap_rows, K): the distinct rows by id (row ``i`` has id ``i``;
    the table keeps only ids, so each distinct row is stored once); table_ids (cap,)
    int64, -1 = empty; cap a power of two with room for every insertion (the caller
    keeps the load below 1/2, and ``stored`` long enough for ``n_used + n`` rows).
    New rows get ids ``n_used, n_used+1, ...`` (and are copied into ``stored``) when
    ``insert``; otherwise -1. Returns the new ``n_used``.
    """
    cap = table_ids.shape[0]
    mask = np.uint64(cap - 1)
    K = rows.shape[1]
    for i in range(rows.shape[0]):
        slot = np.int64(_hash_row(rows[i]) & mask)
        while True:
            tid = table_ids[slot]
            if tid < 0:
                if insert:
                    for w in range(K):
                        stored[n_used, w] = rows[i, w]
                    table_ids[slot] = n_used
                    out_ids[i] = n_used
                    n_used += 1
                else:
                    out_ids[i] = -1
                break
            same = True
            for w in range(K):
                if stored[tid, w] != rows[i, w]:
                    same = False
                    break
            if same:
                out_ids[i] = tid
                break
            slot = (slot + 1) & (cap - 1)
    return n_used


@njit(cache=True, nogil=True)
def rehash(stored, n_used, table_ids):
    """Fill an empty id table (all -1) with the ids of ``stored[:n_used]``."""
    cap = table_ids.shape[0]
    mask = np.uint64(cap - 1)
    for i in range(n_used):
        slot = np.int64(_hash_row(stored[i]) & mask)
        while table_ids[slot] >= 0:
            slot = (slot + 1) & (cap - 1)
        table_ids[slot] = i


@njit(cache=True, nogil=True)
def canonical_topologies(parents, n_nodes, S, rooted, out):
    """Canonical parent arrays: equal rows iff equal topologies (exact, O(S) per tree).

    parents (T, M) int32 post-order parent arrays (leaves ``0..S-1``, root ``n-1``,
    ``n = n_nodes[t]``); out (T, M) int32. The tree is rooted at its root (``rooted``)
    or, unrooted, at the neighbour of taxon 0 after a bifurcating root is suppressed;
    children are ordered by their smallest taxon, internal nodes renumbered
    ``S, S+1, …`` in that post-order (the root last); rows are padded with -2.
    Unrooted, every internal non-root node's clade is then a split already
    normalised to the side without taxon 0 (:func:`canonical_splits`).
    Returns nothing.
    """
    M = parents.shape[1]
    deg = np.zeros(M + 1, dtype=np.int64)
    off = np.zeros(M + 1, dtype=np.int64)
    adj = np.empty(2 * M, dtype=np.int64)
    fill = np.zeros(M, dtype=np.int64)
    dpar = np.empty(M, dtype=np.int64)
    order = np.empty(M, dtype=np.int64)
    minleaf = np.empty(M, dtype=np.int64)
    stack = np.empty(M, dtype=np.int64)
    pos = np.empty(M, dtype=np.int64)
    newid = np.empty(M, dtype=np.int64)
    for t in range(parents.shape[0]):
        n = n_nodes[t]
        r = n - 1
        # root children (a bifurcating root of an unrooted tree is suppressed)
        rc0 = -1
        rc1 = -1
        n_rc = 0
        for v in range(n - 1):
            if parents[t, v] == r:
                if n_rc == 0:
                    rc0 = v
                elif n_rc == 1:
                    rc1 = v
                n_rc += 1
        skip_root = (not rooted) and n_rc == 2
        for v in range(n):
            deg[v] = 0
        # undirected edges (rooted: oriented later from the root anyway)
        for v in range(n - 1):
            p = parents[t, v]
            if skip_root and p == r:
                if v == rc0:
                    deg[rc0] += 1
                    deg[rc1] += 1
                continue
            deg[v] += 1
            deg[p] += 1
        off[0] = 0
        for v in range(n):
            off[v + 1] = off[v] + deg[v]
            fill[v] = 0
        for v in range(n - 1):
            p = parents[t, v]
            if skip_root and p == r:
                if v != rc0:
                    continue
                p = rc1
            adj[off[v] + fill[v]] = p
            fill[v] += 1
            adj[off[p] + fill[p]] = v
            fill[p] += 1
        root = r if rooted else adj[off[0]]      # unrooted: the neighbour of taxon 0
        # pre-order from the root (iterative), with the DFS parent of each node
        k = 0
        top = 0
        stack[0] = root
        dpar[root] = -1
        while top >= 0:
            v = stack[top]
            top -= 1
            order[k] = v
            k += 1
            for j in range(off[v], off[v + 1]):
                u = adj[j]
                if u != dpar[v]:
                    dpar[u] = v
                    top += 1
                    stack[top] = u
        # smallest taxon below each node (reverse pre-order: children first)
        for i in range(k - 1, -1, -1):
            v = order[i]
            if v < S:
                minleaf[v] = v
            else:
                m = S
                for j in range(off[v], off[v + 1]):
                    u = adj[j]
                    if u != dpar[v] and minleaf[u] < m:
                        m = minleaf[u]
                minleaf[v] = m
        # children of each node in adj, sorted by minleaf (insertion sort; the DFS
        # parent is moved to the end of the row)
        for v in range(n):
            if v == r and skip_root:
                continue
            a = off[v]
            b = off[v + 1]
            for i in range(a + 1, b):
                x = adj[i]
                kx = minleaf[x] if x != dpar[v] else S + 1
                j = i - 1
                while j >= a:
                    y = adj[j]
                    ky = minleaf[y] if y != dpar[v] else S + 1
                    if ky <= kx:
                        break
                    adj[j + 1] = y
                    j -= 1
                adj[j + 1] = x
        # post-order with sorted children: internal ids S, S+1, ...
        nxt = S
        top = 0
        stack[0] = root
        pos[root] = off[root]
        while top >= 0:
            v = stack[top]
            end = off[v + 1]
            if pos[v] < end and adj[pos[v]] != dpar[v]:
                u = adj[pos[v]]
                pos[v] += 1
                top += 1
                stack[top] = u
                pos[u] = off[u]
            else:
                top -= 1
                if v < S:
                    newid[v] = v
                else:
                    newid[v] = nxt
                    nxt += 1
        for j in range(M):
            out[t, j] = -2
        for i in range(k):
            v = order[i]
            out[t, newid[v]] = newid[dpar[v]] if dpar[v] >= 0 else -1


@njit(cache=True, nogil=True)
def canonical_splits(canon, S, W, weights, scratch, out_rows, out_w):
    """Non-trivial splits (side without taxon 0) of unrooted canonical parent arrays.

    canon (T, M) int32 from :func:`canonical_topologies` (unrooted); weights (T,);
    scratch (M, W) uint64; out_rows (T * (S-3), W) uint64 and out_w (T * (S-3),):
    every split (a clade of an internal non-root node with 2..S-2 taxa) with its
    topology's weight. Returns the number of rows written.
    """
    k = 0
    for t in range(canon.shape[0]):
        n = 0
        while n < canon.shape[1] and canon[t, n] != -2:
            n += 1
        node_clades(canon[t], n, S, W, scratch)
        for v in range(S, n - 1):
            pc = 0
            for w in range(W):
                pc += _popcount(scratch[v, w])
            if pc >= 2 and pc <= S - 2:
                for w in range(W):
                    out_rows[k, w] = scratch[v, w]
                out_w[k] = weights[t]
                k += 1
    return k


@njit(cache=True, nogil=True)
def canonical_split_fingerprints(canon, S, weights, z0, z1, fp, size, out_fp, out_w,
                                 out_ref):
    """128-bit fingerprints of the non-trivial splits of unrooted canonical parent arrays.

    A clade's fingerprint is the sum (mod 2**64) of its taxa's random words in two
    independent lanes ``z0``, ``z1`` (S,) uint64 (Zobrist hashing): O(1) per node,
    whatever the number of taxa. canon (T, M) int32 (unrooted, so every internal
    non-root clade is a split on the side without taxon 0); weights (T,); scratch
    fp (M, 2) uint64 and size (M,) int64. Outputs per split: out_fp (R, 2) uint64
    (lane 0, lane 1), out_w (R,) its topology's weight, out_ref (R, 2) int64
    (topology row ``t``, node) to rebuild its bitset. Returns the number of splits.
    """
    k = 0
    for t in range(canon.shape[0]):
        n = 0
        while n < canon.shape[1] and canon[t, n] != -2:
            n += 1
        for v in range(n):
            fp[v, 0] = 0
            fp[v, 1] = 0
            size[v] = 0
        for v in range(S):
            fp[v, 0] = z0[v]
            fp[v, 1] = z1[v]
            size[v] = 1
        for v in range(n - 1):
            p = canon[t, v]
            fp[p, 0] += fp[v, 0]
            fp[p, 1] += fp[v, 1]
            size[p] += size[v]
        for v in range(S, n - 1):
            if size[v] >= 2 and size[v] <= S - 2:
                out_fp[k, 0] = fp[v, 0]
                out_fp[k, 1] = fp[v, 1]
                out_w[k] = weights[t]
                out_ref[k, 0] = t
                out_ref[k, 1] = v
                k += 1
    return k
