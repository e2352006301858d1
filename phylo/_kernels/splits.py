"""Numba kernels for bulk tree-sample work: Newick bytes → parent arrays → split bitsets.

Pure functions over NumPy arrays (no Python objects inside ``@njit``).

Conventions
-----------
* A clade / split is a bitset over the taxa stored as ``W = ceil(S / 64)`` uint64
  words, taxon ``i`` at bit ``i % 64`` of word ``i // 64`` (little-endian words).
* An *unrooted* split is normalised to the side that does NOT contain taxon 0.
* Parent arrays (as produced by :func:`parse_newick_batch`): leaves ``0..S-1`` in taxon
  order, internal nodes ``S..n-1`` in post-order (children before parents), root
  ``n-1``, padded with ``-2`` beyond ``n`` (``n`` = ``n_nodes[t]``).
* Row hash tables (:func:`hash_insert_rows`): open addressing with linear probing over
  rows of ``K`` uint64 words; ``table_ids`` holds ``-1`` for empty slots.
"""
from __future__ import annotations

import numpy as np
from numba import njit

# status codes of parse_newick_batch
OK = 0
UNKNOWN_LABEL = 1
DUPLICATE_TAXON = 2
MISSING_TAXA = 3
SYNTAX = 4
NEEDS_SLOW_PATH = 5     # quoted labels: the caller falls back to the regex parser
TOO_MANY_NODES = 6

_FNV_OFFSET = np.uint64(14695981039346656037)
_FNV_PRIME = np.uint64(1099511628211)


@njit(cache=True, nogil=True)
def fnv1a(buf, start, end):
    """64-bit FNV-1a hash of ``buf[start:end]`` (uint8)."""
    h = np.uint64(14695981039346656037)
    for i in range(start, end):
        h = (h ^ np.uint64(buf[i])) * np.uint64(1099511628211)
    return h


@njit(cache=True, nogil=True)
def _lookup_label(buf, s, e, lab_hash, lab_idx, lab_bytes, lab_off):
    """Binary search of a label's hash in the sorted table, verified byte by byte."""
    h = fnv1a(buf, s, e)
    lo = 0
    hi = lab_hash.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if lab_hash[mid] < h:
            lo = mid + 1
        else:
            hi = mid
    while lo < lab_hash.shape[0] and lab_hash[lo] == h:
        k = lab_idx[lo]
        a = lab_off[lo]
        b = lab_off[lo + 1]
        if b - a == e - s:
            same = True
            for j in range(e - s):
                if lab_bytes[a + j] != buf[s + j]:
                    same = False
                    break
            if same:
                return k
        lo += 1
    return -1


@njit(cache=True, nogil=True)
def _is_space(c):
    return c == 32 or c == 9 or c == 10 or c == 13


@njit(cache=True, nogil=True)
def parse_newick_batch(buf, starts, ends, lab_hash, lab_idx, lab_bytes, lab_off,
                       n_taxa, out_parent, out_nnodes, out_status, out_errpos):
    """Parse many Newick strings (topology only) into post-order parent arrays.

    buf: uint8 bytes holding all trees; tree ``t`` is ``buf[starts[t]:ends[t]]``.
    lab_*: label table (hash-sorted): a label's bytes map to taxon index ``lab_idx``.
    out_parent: (T, 2S-1) int32 (filled; -2 padding); out_nnodes (T,); out_status (T,)
    (0 ok, see module constants); out_errpos (T,) byte offset of the problem.
    Branch lengths, internal labels and ``[...]`` comments are skipped.
    """
    S = n_taxa
    maxn = out_parent.shape[1]
    max_internal = maxn - S
    tmp_parent = np.empty(max_internal + 1, dtype=np.int64)
    post_id = np.empty(max_internal + 1, dtype=np.int64)
    leaf_par = np.empty(S, dtype=np.int64)
    stack = np.empty(max_internal + 1, dtype=np.int64)
    for t in range(starts.shape[0]):
        for j in range(maxn):
            out_parent[t, j] = -2
        for j in range(S):
            leaf_par[j] = -3
        status = OK
        errpos = -1
        depth = 0
        n_open = 0
        n_closed = 0
        n_leaves = 0
        i = starts[t]
        end = ends[t]
        finished = False
        # after a label/close: 1 (may take ':' or label); expecting item: 0
        last = 0  # 0 start/after '(' or ',', 1 after leaf, 2 after ')'
        while i < end and status == OK:
            c = buf[i]
            if _is_space(c):
                i += 1
                continue
            if c == 91:  # '[' comment
                while i < end and buf[i] != 93:
                    i += 1
                i += 1
                continue
            if finished:
                status = SYNTAX
                errpos = i
                break
            if c == 40:  # '('
                if last != 0:
                    status = SYNTAX
                    errpos = i
                    break
                if n_open > max_internal:
                    status = TOO_MANY_NODES
                    errpos = i
                    break
                tmp_parent[n_open] = stack[depth - 1] if depth > 0 else -1
                stack[depth] = n_open
                depth += 1
                n_open += 1
                i += 1
                last = 0
            elif c == 44:  # ','
                if depth == 0 or last == 0:
                    status = SYNTAX
                    errpos = i
                    break
                last = 0
                i += 1
            elif c == 41:  # ')'
                if depth == 0 or last == 0:
                    status = SYNTAX
                    errpos = i
                    break
                depth -= 1
                post_id[stack[depth]] = n_closed
                n_closed += 1
                last = 2
                i += 1
            elif c == 59:  # ';'
                if depth != 0:
                    status = SYNTAX
                    errpos = i
                    break
                finished = True
                i += 1
            elif c == 58:  # ':' branch length: skip
                if last == 0:
                    status = SYNTAX
                    errpos = i
                    break
                i += 1
                while i < end:
                    d = buf[i]
                    if d == 44 or d == 41 or d == 59 or d == 91 or d == 40:
                        break
                    i += 1
            elif c == 39:  # quote: let the slow parser deal with it
                status = NEEDS_SLOW_PATH
                errpos = i
                break
            else:
                s0 = i
                while i < end:
                    d = buf[i]
                    if (d == 44 or d == 41 or d == 40 or d == 59 or d == 58 or d == 91
                            or _is_space(d)):
                        break
                    i += 1
                if last == 2:
                    continue  # internal node label (support value): ignored
                if last == 1 or depth == 0:
                    status = SYNTAX
                    errpos = s0
                    break
                k = _lookup_label(buf, s0, i, lab_hash, lab_idx, lab_bytes, lab_off)
                if k < 0:
                    status = UNKNOWN_LABEL
                    errpos = s0
                    break
                if leaf_par[k] != -3:
                    status = DUPLICATE_TAXON
                    errpos = s0
                    break
                leaf_par[k] = stack[depth - 1]
                n_leaves += 1
                last = 1
        if status == OK and (depth != 0 or n_open == 0):
            status = SYNTAX
            errpos = end
        if status == OK and n_leaves != S:
            status = MISSING_TAXA
            errpos = end
        out_status[t] = status
        out_errpos[t] = errpos
        if status != OK:
            out_nnodes[t] = 0
            continue
        n = S + n_open
        out_nnodes[t] = n
        for k in range(S):
            out_parent[t, k] = S + post_id[leaf_par[k]]
        for k in range(n_open):
            p = tmp_parent[k]
            out_parent[t, S + post_id[k]] = S + post_id[p] if p >= 0 else -1


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
