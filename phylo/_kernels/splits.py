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
def hash_insert_rows(rows, table_keys, table_ids, n_used, insert, out_ids):
    """Look up (and optionally insert) rows of uint64 words in an open-addressing table.

    rows (n, K); table_keys (cap, K); table_ids (cap,) int64, -1 = empty; cap a power
    of two with room for every insertion (the caller keeps the load below 1/2).
    New rows get ids ``n_used, n_used+1, ...`` when ``insert``; otherwise -1.
    Returns the new ``n_used``.
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
                        table_keys[slot, w] = rows[i, w]
                    table_ids[slot] = n_used
                    out_ids[i] = n_used
                    n_used += 1
                else:
                    out_ids[i] = -1
                break
            same = True
            for w in range(K):
                if table_keys[slot, w] != rows[i, w]:
                    same = False
                    break
            if same:
                out_ids[i] = tid
                break
            slot = (slot + 1) & (cap - 1)
    return n_used


@njit(cache=True, nogil=True)
def accumulate_splits(keys, weights, S, out_rows, out_w):
    """Flatten non-zero split rows of topology keys with their topology's weight.

    keys (T, M, W); weights (T,); out_rows (T*M, W); out_w (T*M,). Returns the count.
    """
    k = 0
    W = keys.shape[2]
    for t in range(keys.shape[0]):
        for m in range(keys.shape[1]):
            nz = False
            for w in range(W):
                if keys[t, m, w] != 0:
                    nz = True
                    break
            if not nz:
                break
            for w in range(W):
                out_rows[k, w] = keys[t, m, w]
            out_w[k] = weights[t]
            k += 1
    return k
