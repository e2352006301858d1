"""Numba kernels: the one Newick front end of the bulk tree readers.

Pure functions over NumPy arrays (no Python objects inside ``@njit``).

:func:`parse_newick_batch` parses many Newick strings at once into post-order
parent arrays and branch lengths: leaves ``0..S-1`` by taxon index through a label
table (:func:`_lookup_label`), internal nodes ``S..n-1`` in the order in which their
``)`` closes (children before parents), the root last. Both tree-file paths use it:
``read_topologies`` keeps the parent arrays (topologies) and only validates each
branch length (``with_lengths=False``, :func:`_check_length`: the same rules, no float
built), ``read_trees`` adds the children rows (:func:`children_batch`) and keeps the
lengths.

The kernel accepts a strict subset of what :func:`phylo.io.newick.parse_newick`
(the grammar's reference, in Python) accepts: anything unusual (quoted labels, a
branch length that is not a plain non-negative decimal the kernel can convert
exactly, labels after a branch length, repeated ``:``, unterminated comments, a
missing or duplicate taxon, a unary node, bytes that Unicode might read as
whitespace, …) gives status ``SLOW`` and the caller re-parses that one string with
``parse_newick``, which returns the same tree or raises its precise error. A status
of 0 therefore promises ``parse_newick``'s result, bit for bit, and the two readers
accept exactly the same strings.

Branch lengths are converted exactly (correctly rounded, as Python's ``float``):
the decimal mantissa ``m`` (at most 2**53) and exponent ``e`` (``|e| <= 22``) give
``m * 10**e`` or ``m / 10**-e`` in one IEEE operation on exact operands (Clinger's
fast path); anything else falls back to the regex parser.
"""
from __future__ import annotations

import numpy as np
from numba import njit


OK = 0
SLOW = 1          # any problem or unusual input: re-parse with the regex parser

_POW10 = np.array([10.0 ** k for k in range(23)], dtype=np.float64)
_MAX_EXACT = 9007199254740992  # 2**53


# Helpers marked inline='always' are inlined in Numba's IR: a call with array
# arguments (reference counts, array structs) per label or length cost more than the
# work itself (read_topologies' kernel on 10^5 DS4 trees 0.50 -> 0.26 s CPU). Inlining
# _parse_length and _skip_blank as well measured slower (0.53 -> 0.66 s with lengths),
# so they stay calls.
_FNV_OFFSET = np.uint64(14695981039346656037)
_FNV_PRIME = np.uint64(1099511628211)


@njit(cache=True, nogil=True, inline='always')
def fnv1a(buf, start, end):
    """64-bit FNV-1a hash of ``buf[start:end]`` (uint8)."""
    h = np.uint64(14695981039346656037)
    for i in range(start, end):
        h = (h ^ np.uint64(buf[i])) * np.uint64(1099511628211)
    return h


@njit(cache=True, nogil=True, inline='always')
def _lookup_label(buf, s, e, lab_hash, lab_idx, lab_bytes, lab_off):
    """Taxon index of the label ``buf[s:e]``, -1 if absent: binary search of its hash in
    the hash-sorted table, verified byte by byte."""
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


@njit(cache=True, nogil=True, inline='always')
def _is_space(c):
    return c == 32 or c == 9 or c == 10 or c == 13


@njit(cache=True, nogil=True, inline='always')
def _odd_byte(c):
    """Bytes the regex parser (on decoded text) might read as whitespace: VT, FF,
    0x1c-0x1f and any non-ASCII byte (U+0085, U+00A0, … in UTF-8). The kernel hands
    such strings to the regex parser."""
    return c == 11 or c == 12 or (c >= 28 and c <= 31) or c >= 128


@njit(cache=True, nogil=True, inline='always')
def _is_delim(c):
    # the regex parser's word delimiters: whitespace ( ) : ; , [ ] '
    return (c == 40 or c == 41 or c == 58 or c == 59 or c == 44 or c == 91 or c == 93
            or c == 39 or _is_space(c))


@njit(cache=True, nogil=True)
def _skip_blank(buf, i, end):
    """Skip whitespace and complete ``[...]`` comments; -1 for an unterminated comment."""
    while i < end:
        c = buf[i]
        if _is_space(c):
            i += 1
        elif c == 91:
            i += 1
            while i < end and buf[i] != 93:
                i += 1
            if i >= end:
                return -1
            i += 1
        else:
            break
    return i


@njit(cache=True, nogil=True)
def _parse_length(buf, i, end, pow10, out):
    """Exactly convert the plain decimal at ``buf[i:]``; returns the end or -1 (slow)."""
    neg = False
    if i < end and (buf[i] == 43 or buf[i] == 45):
        neg = buf[i] == 45
        i += 1
    m = np.int64(0)
    exp10 = 0
    n_digits = 0
    while i < end and 48 <= buf[i] <= 57:
        m = m * 10 + (buf[i] - 48)
        if m > 9007199254740992:
            return -1
        n_digits += 1
        i += 1
    if i < end and buf[i] == 46:
        i += 1
        while i < end and 48 <= buf[i] <= 57:
            m = m * 10 + (buf[i] - 48)
            if m > 9007199254740992:
                return -1
            exp10 -= 1
            n_digits += 1
            i += 1
    if n_digits == 0:
        return -1
    if i < end and (buf[i] == 101 or buf[i] == 69):
        i += 1
        eneg = False
        if i < end and (buf[i] == 43 or buf[i] == 45):
            eneg = buf[i] == 45
            i += 1
        e = 0
        ne = 0
        while i < end and 48 <= buf[i] <= 57:
            if e < 10000:
                e = e * 10 + (buf[i] - 48)
            ne += 1
            i += 1
        if ne == 0:
            return -1
        exp10 += -e if eneg else e
    if i < end and not _is_delim(buf[i]):
        return -1
    x = np.float64(m)
    if m == 0:
        x = 0.0
    elif exp10 >= 0:
        if exp10 > 22:
            return -1
        x = x * pow10[exp10]
    else:
        if exp10 < -22:
            return -1
        x = x / pow10[-exp10]
    out[0] = -x if neg else x
    return i


@njit(cache=True, nogil=True, inline='always')
def _check_length(buf, i, end):
    """Validate the branch length at ``buf[i:]`` without converting it; returns the end,
    or -1 (slow) exactly when ``_parse_length`` returns -1 or a negative value.

    For ``read_topologies``, which drops the lengths: building the float (the mantissa
    multiply chain and the IEEE operation) was ~40% of the kernel's time. Same rules
    as :func:`_parse_length`: the mantissa ``m`` of the digits must be at most 2**53
    (certain below 16 significant digits, impossible above 16, computed at exactly
    16) and, unless ``m == 0`` (a zero of either sign), ``|exponent| <= 22`` and no
    ``-`` sign; anything else is the regex parser's to accept or refuse."""
    neg = False
    if i < end and (buf[i] == 43 or buf[i] == 45):
        neg = buf[i] == 45
        i += 1
    s0 = i
    exp10 = 0
    while i < end and buf[i] == 48:       # leading zeros: not significant
        i += 1
    z = i
    while i < end and 48 <= buf[i] <= 57:
        i += 1
    sig = i - z       # digits from the first non-zero one: m < 10**sig
    n_digits = i - s0
    if i < end and buf[i] == 46:
        i += 1
        f0 = i
        if sig == 0:
            while i < end and buf[i] == 48:
                i += 1
            z = i
        else:
            z = i
        while i < end and 48 <= buf[i] <= 57:
            i += 1
        sig += i - z
        exp10 = f0 - i
        n_digits += i - f0
    if n_digits == 0:
        return -1
    m_end = i
    if i < end and (buf[i] == 101 or buf[i] == 69):
        i += 1
        eneg = False
        if i < end and (buf[i] == 43 or buf[i] == 45):
            eneg = buf[i] == 45
            i += 1
        e = 0
        ne = 0
        while i < end and 48 <= buf[i] <= 57:
            if e < 10000:
                e = e * 10 + (buf[i] - 48)
            ne += 1
            i += 1
        if ne == 0:
            return -1
        exp10 += -e if eneg else e
    if i < end and not _is_delim(buf[i]):
        return -1
    if sig == 0:
        return i          # m == 0: +-0.0, accepted whatever the exponent
    if sig > 16:
        return -1         # m >= 10**16 > 2**53
    if sig == 16:
        m = np.int64(0)
        for j in range(s0, m_end):
            if buf[j] != 46:
                m = m * 10 + (buf[j] - 48)
        if m > 9007199254740992:
            return -1
    if exp10 > 22 or exp10 < -22 or neg:
        return -1
    return i


@njit(cache=True, nogil=True)
def parse_newick_batch(buf, starts, ends, lab_hash, lab_idx, lab_bytes, lab_off, n_taxa,
                       pow10, out_parent, out_lengths, out_nnodes, out_first, out_status,
                       with_lengths):
    """Parse Newick strings ``buf[starts[t]:ends[t]]`` into post-order parent arrays.

    lab_*: hash-sorted label table (``phylo.io.trees._label_table``) mapping a label's
    bytes (taxon name, its blank/underscore twin, or translate token) to a taxon index.
    Outputs for tree ``t`` with ``n = out_nnodes[t]`` nodes:
    out_parent (T, M) int32, ``M >= 2S-1``: parent of each node, -1 at the root,
    -2 after ``n``; out_lengths (T, M) float64: length above each node (NaN where the
    string gives none; the root's entry is NaN too); out_first (T,): byte offset of
    the first node (the comments before it set rooting and weight);
    out_status (T,): ``OK``, or ``SLOW`` when the string needs the regex parser.
    with_lengths: False (topologies only) validates each length by the same rules
    (:func:`_check_length`) without converting it and leaves out_lengths untouched
    (any float64 2-D array will do), so the statuses are the same either way.
    """
    S = n_taxa
    maxn = out_parent.shape[1]
    max_internal = maxn - S
    tmp_parent = np.empty(max_internal + 1, dtype=np.int64)
    post_id = np.empty(max_internal + 1, dtype=np.int64)
    n_kids = np.empty(max_internal + 1, dtype=np.int64)
    int_len = np.empty(max_internal + 1, dtype=np.float64)
    leaf_par = np.empty(S, dtype=np.int64)
    leaf_len = np.empty(S, dtype=np.float64)
    stack = np.empty(max_internal + 1, dtype=np.int64)
    val = np.empty(1, dtype=np.float64)
    for t in range(starts.shape[0]):
        for j in range(S):
            leaf_par[j] = -3
            if with_lengths:
                leaf_len[j] = np.nan
        status = OK
        depth = 0
        n_open = 0
        n_closed = 0
        n_leaves = 0
        i = starts[t]
        end = ends[t]
        finished = False
        first = -1
        last = 0          # 0: expecting a node; 1: after a leaf; 2: after ')'
        has_len = False   # the current node (leaf or closed clade) has its length
        has_lab = False   # the closed clade has its (ignored) label
        cur = -1          # leaf taxon (last == 1) or clade id (last == 2)
        while status == OK:
            if i >= end:
                break
            c = buf[i]
            if _is_space(c) or c == 91:
                # blanks and comments are rare inside a tree: skip them out of line
                # (calling _skip_blank before every token made the loop ~20% slower)
                i = _skip_blank(buf, i, end)
                if i < 0:
                    status = SLOW
                    break
                continue
            if finished:
                status = SLOW
                break
            c = buf[i]
            if first < 0:
                first = i - starts[t]
            if c == 40:  # '('
                if last != 0 or n_open > max_internal:
                    status = SLOW
                    break
                tmp_parent[n_open] = stack[depth - 1] if depth > 0 else -1
                if depth > 0:
                    n_kids[stack[depth - 1]] += 1
                if with_lengths:
                    int_len[n_open] = np.nan
                n_kids[n_open] = 0
                stack[depth] = n_open
                depth += 1
                n_open += 1
                i += 1
            elif c == 44:  # ','
                if depth == 0 or last == 0:
                    status = SLOW
                    break
                last = 0
                i += 1
            elif c == 41:  # ')'
                if depth == 0 or last == 0:
                    status = SLOW
                    break
                depth -= 1
                cur = stack[depth]
                if n_kids[cur] < 2:     # a unary node: parse_newick collapses it
                    status = SLOW
                    break
                post_id[cur] = n_closed
                n_closed += 1
                last = 2
                has_len = False
                has_lab = False
                i += 1
            elif c == 59:  # ';'
                if depth != 0 or last != 2:
                    status = SLOW
                    break
                finished = True
                i += 1
            elif c == 58:  # ':' branch length
                if last == 0 or has_len:
                    status = SLOW
                    break
                i += 1
                if i < end and (_is_space(buf[i]) or buf[i] == 91):
                    i = _skip_blank(buf, i, end)
                if i < 0 or i >= end:
                    status = SLOW
                    break
                if not with_lengths:
                    i = _check_length(buf, i, end)
                    if i < 0:
                        status = SLOW
                        break
                    has_len = True
                    continue
                i = _parse_length(buf, i, end, pow10, val)
                if i < 0 or val[0] < 0.0:     # negative: parse_newick's error
                    status = SLOW
                    break
                if last == 1:
                    leaf_len[cur] = val[0]
                else:
                    int_len[cur] = val[0]
                has_len = True
            elif c == 39 or c == 93:  # quote or stray ']'
                status = SLOW
                break
            else:
                s0 = i
                while i < end and not _is_delim(buf[i]):
                    if _odd_byte(buf[i]):
                        status = SLOW
                        break
                    i += 1
                if status != OK:
                    break
                if last == 2 and not has_len and not has_lab:
                    has_lab = True      # internal node label (support value): ignored
                    continue
                if last != 0 or depth == 0:
                    status = SLOW
                    break
                k = _lookup_label(buf, s0, i, lab_hash, lab_idx, lab_bytes, lab_off)
                if k < 0 or leaf_par[k] != -3:
                    status = SLOW
                    break
                leaf_par[k] = stack[depth - 1]
                n_kids[stack[depth - 1]] += 1
                n_leaves += 1
                cur = k
                last = 1
                has_len = False
        if status == OK and (depth != 0 or n_open == 0 or n_leaves != S):
            status = SLOW
        out_first[t] = first
        out_status[t] = status
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
        for v in range(n, maxn):
            out_parent[t, v] = -2
        if with_lengths:
            for k in range(S):
                out_lengths[t, k] = leaf_len[k]
            for k in range(n_open):
                out_lengths[t, S + post_id[k]] = int_len[k] if tmp_parent[k] >= 0 else np.nan
            for v in range(n, maxn):
                out_lengths[t, v] = np.nan


@njit(cache=True, nogil=True)
def children_batch(parents, n_nodes, out_children, out_nchildren, out_maxdeg):
    """Children rows of post-order parent arrays (the :class:`~phylo.trees.Tree` layout).

    parents (T, M) int32, n_nodes (T,); out_children (T, M, K) int32: children in
    ascending order, padded with -1; out_nchildren (T, M) int32. out_maxdeg (T,): the
    largest number of children, or ``K + 1`` when a node has more than ``K`` (its
    row is then incomplete: the caller builds that tree another way).
    """
    K = out_children.shape[2]
    for t in range(parents.shape[0]):
        n = n_nodes[t]
        for v in range(n):
            out_nchildren[t, v] = 0
            for j in range(K):
                out_children[t, v, j] = -1
        maxdeg = 0
        for v in range(n - 1):
            p = parents[t, v]
            d = out_nchildren[t, p]
            if d >= K:
                maxdeg = K + 1
                break
            out_children[t, p, d] = v
            out_nchildren[t, p] = d + 1
            if d + 1 > maxdeg:
                maxdeg = d + 1
        out_maxdeg[t] = maxdeg
