"""Numba kernel: Newick bytes → full :class:`~phylo.trees.Tree` layout (with lengths).

Pure functions over NumPy arrays (no Python objects inside ``@njit``).

:func:`parse_tree_layout_batch` parses many Newick strings at once into exactly the
arrays that :func:`phylo.io.newick.parse_newick` produces (leaves ``0..S-1`` by taxon
index through a label table, internal nodes in post-order = the order in which their
``)`` closes, root last, children rows ascending, branch lengths above each node).

It accepts a strict subset of what the regex parser accepts: anything unusual
(quoted labels, a branch length that is not a plain decimal the kernel can convert
exactly, labels after a branch length, repeated ``:``, unterminated comments, a
missing or duplicate taxon, a node of degree > ``K``, …) gives a non-zero status and
the caller re-parses that one string with the regex parser, which then returns the
same tree or raises its precise error. A status of 0 therefore promises the regex
parser's result, bit for bit.

Branch lengths are converted exactly (correctly rounded, as Python's ``float``):
the decimal mantissa ``m`` (at most 2**53) and exponent ``e`` (``|e| <= 22``) give
``m * 10**e`` or ``m / 10**-e`` in one IEEE operation on exact operands (Clinger's
fast path); anything else falls back to the regex parser.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .splits import _is_space, _lookup_label

OK = 0
SLOW = 1          # any problem or unusual input: re-parse with the regex parser

_POW10 = np.array([10.0 ** k for k in range(23)], dtype=np.float64)
_MAX_EXACT = 9007199254740992  # 2**53


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def parse_tree_layout_batch(buf, starts, ends, lab_hash, lab_idx, lab_bytes, lab_off, n_taxa,
                            pow10, out_parent, out_children, out_nchildren, out_lengths,
                            out_nnodes, out_maxdeg, out_first, out_status):
    """Parse Newick strings ``buf[starts[t]:ends[t]]`` into Tree layout arrays.

    lab_*: hash-sorted label table (see ``phylo.io.trees._label_table``) mapping a
    label's bytes (taxon name or translate token) to its taxon index.
    Outputs, for tree ``t`` with ``n = out_nnodes[t]`` nodes (rows beyond ``n`` are
    unspecified):
    out_parent (T, M) int32: parent of each node, -1 at the root (``M >= 2S-1``);
    out_children (T, M, K) int32: children ascending, padded with -1;
    out_nchildren (T, M) int32; out_lengths (T, M) float64: length above each node
    (NaN where the string gives none; the root's entry is meaningless);
    out_maxdeg (T,): the largest number of children; out_first (T,): byte offset of
    the first node (comments before it set rooting and weight);
    out_status (T,): 0 ok, else the string needs the regex parser.
    """
    S = n_taxa
    maxn = out_parent.shape[1]
    K = out_children.shape[2]
    max_internal = maxn - S
    tmp_parent = np.empty(max_internal + 1, dtype=np.int64)
    post_id = np.empty(max_internal + 1, dtype=np.int64)
    int_len = np.empty(max_internal + 1, dtype=np.float64)
    leaf_par = np.empty(S, dtype=np.int64)
    leaf_len = np.empty(S, dtype=np.float64)
    stack = np.empty(max_internal + 1, dtype=np.int64)
    val = np.empty(1, dtype=np.float64)
    for t in range(starts.shape[0]):
        for j in range(S):
            leaf_par[j] = -3
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
            i = _skip_blank(buf, i, end)
            if i < 0:
                status = SLOW
                break
            if i >= end:
                break
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
                int_len[n_open] = np.nan
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
                i = _skip_blank(buf, i + 1, end)
                if i < 0 or i >= end:
                    status = SLOW
                    break
                i = _parse_length(buf, i, end, pow10, val)
                if i < 0:
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
                    i += 1
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
                n_leaves += 1
                cur = k
                last = 1
                has_len = False
        if status == OK and (depth != 0 or n_open == 0 or n_leaves != S):
            status = SLOW
        out_first[t] = first
        if status != OK:
            out_status[t] = status
            out_nnodes[t] = 0
            continue
        n = S + n_open
        for v in range(n):
            out_nchildren[t, v] = 0
            for j in range(K):
                out_children[t, v, j] = -1
        for k in range(S):
            out_parent[t, k] = S + post_id[leaf_par[k]]
            out_lengths[t, k] = leaf_len[k]
        for k in range(n_open):
            p = tmp_parent[k]
            v = S + post_id[k]
            out_parent[t, v] = S + post_id[p] if p >= 0 else -1
            out_lengths[t, v] = int_len[k]
        maxdeg = 0
        for v in range(n - 1):
            p = out_parent[t, v]
            d = out_nchildren[t, p]
            if d >= K:
                status = SLOW
                break
            out_children[t, p, d] = v
            out_nchildren[t, p] = d + 1
            if d + 1 > maxdeg:
                maxdeg = d + 1
        out_status[t] = status
        out_nnodes[t] = n if status == OK else 0
        out_maxdeg[t] = maxdeg
