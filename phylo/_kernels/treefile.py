"""Numba kernels: find the tree statements in a block of tree-file bytes.

Pure functions over NumPy arrays (no Python objects inside ``@njit``); ``nogil`` so
that several files can be scanned on several threads.

Both scanners fill per-statement arrays (``cap`` = their length) and return
``(n, stop_pos, stop_line, reason)``: ``n`` statements found, scanning stopped at byte
``stop_pos`` with ``stop_line`` lines wholly consumed before it (NEXUS) or on line
``stop_line`` (Newick), for ``reason``:

* ``DONE``: everything up to ``end`` consumed (only when ``at_eof``);
* ``MORE``: ``stop_pos`` starts an incomplete statement: read more bytes and rescan;
* ``OTHER`` (NEXUS only): the line at ``stop_pos`` is not a plain tree statement
  (``end;``, a quoted or ``*`` name, a comment across lines, a statement unterminated
  at the end of the file, …): the Python line parser takes it;
* ``FULL``: the output arrays are full.

Per statement: ``out_bs``/``out_be`` the Newick text (``[&U] (…);`` with its leading
comments); ``out_rs`` where the statement's raw text starts (NEXUS: the name;
Newick: just after the previous ``;``); ``out_ne`` the end of the NEXUS name
(``out_rs[t]:out_ne[t]``); ``out_line`` its (first) line number; ``out_w`` the weight
of a leading ``[&W w]`` comment (1.0 without); ``out_root`` 1 for ``[&R]``, 0 for
``[&U]``, -1 without; ``out_lead`` 0 when these two were read exactly as
``phylo.io.newick.parse_newick`` reads them (:func:`lead_flags`), 1 when the regex
parser must read them.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .newick import _parse_length

DONE = 0
MORE = 1
OTHER = 2
FULL = 3


@njit(cache=True, nogil=True)
def _ws(c):
    """Python's bytes whitespace (``bytes.strip``, bytes regex ``\\s``): 9-13 and 32."""
    return c == 32 or (c >= 9 and c <= 13)


@njit(cache=True, nogil=True)
def lead_flags(buf, s, e, pow10, scratch):
    r"""Rooting and weight from the ``[...]`` comments at the start of ``buf[s:e]``.

    Returns ``(rooted, weight, ok)``: rooted 1 (``[&R]``), 0 (``[&U]``), -1 (none).
    Mirrors :func:`phylo.io.newick.parse_newick` (the comments before the first node;
    each comment's text, from just after ``[``, matched against ``&\s*[RrUu]\s*$``
    and ``&\s*[Ww]\s+\S+``; the last match wins). ``ok`` is False when a
    weight is not a plain decimal converted exactly, or a comment holds a byte that
    Python's Unicode ``\s`` might read differently (0x1c-0x1f, >= 0x80): the caller
    asks the regex parser.
    """
    rooted = -1
    weight = 1.0
    i = s
    while True:
        while i < e and _ws(buf[i]):
            i += 1
        if i >= e or buf[i] != 91:
            break
        j = i + 1
        while j < e and buf[j] != 93:
            c = buf[j]
            if c >= 128 or (c >= 28 and c <= 31):
                return rooted, weight, False
            j += 1
        if j >= e:
            break
        a = i + 1
        b = j
        if a < b and buf[a] == 38:   # '&'
            k = a + 1
            while k < b and _ws(buf[k]):
                k += 1
            if k < b:
                c = buf[k]
                if c == 82 or c == 114 or c == 85 or c == 117:   # R r U u
                    k2 = k + 1
                    while k2 < b and _ws(buf[k2]):
                        k2 += 1
                    if k2 == b:
                        rooted = 1 if (c == 82 or c == 114) else 0
                elif c == 87 or c == 119:   # W w
                    k2 = k + 1
                    while k2 < b and _ws(buf[k2]):
                        k2 += 1
                    if k2 > k + 1:
                        t0 = k2
                        while k2 < b and not _ws(buf[k2]):
                            k2 += 1
                        if k2 > t0:
                            if _parse_length(buf, t0, k2, pow10, scratch) != k2:
                                return rooted, weight, False
                            weight = scratch[0]
        i = j + 1
    if weight < 0.0:          # refused by parse_newick, with its message
        return rooted, weight, False
    return rooted, weight, True


@njit(cache=True, nogil=True)
def _line_end(buf, p, end):
    while p < end and buf[p] != 10:
        p += 1
    return p


@njit(cache=True, nogil=True)
def _ends_with_semicolon(buf, p, le):
    """Whether ``buf[p:le]`` ends with ``;`` once trailing blanks and complete ``[...]``
    comments are set aside (``tree t = (...); [comment]`` ends its statement)."""
    j = le
    while True:
        while j > p and _ws(buf[j - 1]):
            j -= 1
        if j > p and buf[j - 1] == 93:     # ']': skip back over the comment
            k = j - 2
            while k >= p and buf[k] != 91:
                if buf[k] == 93:           # as the line parser: no ']' inside
                    return False
                k -= 1
            if k < p:
                return False
            j = k
            continue
        return j > p and buf[j - 1] == 59


@njit(cache=True, nogil=True)
def scan_nexus(buf, pos, end, at_eof, line0, pow10, out_bs, out_be, out_rs, out_ne,
               out_line, out_w, out_root, out_lead):
    """Consecutive NEXUS tree-statement lines from ``buf[pos:end]`` (``pos`` starts a line).

    Only called inside a ``trees`` block, outside comments and statements. A line is a
    plain tree statement when it reads ``tree NAME [comments] = BODY`` (keyword in any
    case; NAME without quotes, ``*``, whitespace, ``=`` or ``[``); the statement ends
    on the first line (this one or a later one) whose last non-blank byte is ``;`` —
    the Python line parser's rule — and BODY runs from after ``=`` to the end of that
    line. Blank lines are skipped. ``line0``: lines consumed before ``pos``.
    """
    cap = out_bs.shape[0]
    scratch = np.empty(1, dtype=np.float64)
    n = 0
    line = line0
    while True:
        if pos >= end:
            return n, pos, line, (DONE if at_eof else MORE)
        if n >= cap:
            return n, pos, line, FULL
        le = _line_end(buf, pos, end)
        if le >= end and not at_eof:
            return n, pos, line, MORE
        nxt = le + 1 if le < end else end
        i = pos
        while i < le and _ws(buf[i]):
            i += 1
        if i >= le:            # blank line
            pos = nxt
            line += 1
            continue
        if (i + 4 >= le or (buf[i] | 32) != 116 or (buf[i + 1] | 32) != 114
                or (buf[i + 2] | 32) != 101 or (buf[i + 3] | 32) != 101
                or not _ws(buf[i + 4])):
            return n, pos, line, OTHER
        i += 4
        while i < le and _ws(buf[i]):
            i += 1
        ns = i
        while i < le:
            c = buf[i]
            if _ws(c) or c == 61 or c == 91:
                break
            if c == 39 or c == 42:      # quote or '*': the regex decides
                return n, pos, line, OTHER
            i += 1
        if i == ns:
            return n, pos, line, OTHER
        ne = i
        while i < le and _ws(buf[i]):
            i += 1
        while i < le and buf[i] == 91:
            while i < le and buf[i] != 93:
                i += 1
            if i >= le:
                return n, pos, line, OTHER
            i += 1
            while i < le and _ws(buf[i]):
                i += 1
        if i >= le or buf[i] != 61:
            return n, pos, line, OTHER
        bs = i + 1
        if _ends_with_semicolon(buf, pos, le):
            be = nxt
            n_lines = 1
        else:                   # continued on the following lines
            q = nxt
            n_lines = 1
            be = -1
            while q < end:
                le2 = _line_end(buf, q, end)
                if le2 >= end and not at_eof:
                    return n, pos, line, MORE
                nxt2 = le2 + 1 if le2 < end else end
                n_lines += 1
                if _ends_with_semicolon(buf, q, le2):
                    be = nxt2
                    break
                q = nxt2
            if be < 0:
                if at_eof:
                    return n, pos, line, OTHER   # the Python parser reports it
                return n, pos, line, MORE
        out_bs[n] = bs
        out_be[n] = be
        out_rs[n] = ns
        out_ne[n] = ne
        out_line[n] = line + 1
        r, w, ok = lead_flags(buf, bs, be, pow10, scratch)
        out_root[n] = r
        out_w[n] = w
        out_lead[n] = 0 if ok else 1
        n += 1
        line += n_lines
        pos = be


@njit(cache=True, nogil=True)
def scan_newick(buf, pos, end, at_eof, line0, pow10, out_bs, out_be, out_rs, out_ne,
                out_line, out_w, out_root, out_lead):
    """Newick statements (text up to a ``;`` outside ``[...]`` and quotes) from ``buf[pos:end]``.

    ``pos`` follows the previous statement's ``;`` (or starts the file), on line
    ``line0``. A statement's line is that of its first non-blank byte; a tail without
    ``;`` at the end of the file is a statement too unless it holds only blanks and
    complete comments.
    ``out_bs`` is the first non-blank byte, ``out_rs`` the raw start (after the
    previous ``;``); ``out_ne`` is unused (set to ``out_rs``).
    """
    cap = out_bs.shape[0]
    scratch = np.empty(1, dtype=np.float64)
    n = 0
    line = line0
    while True:
        if n >= cap:
            return n, pos, line, FULL
        i = pos
        ln = line
        first = -1
        first_line = 0
        in_c = False
        in_q = False
        content = False     # a byte outside comments that is not blank
        found = False
        while i < end:
            c = buf[i]
            if c == 10:
                ln += 1
            elif first < 0 and not _ws(c):
                first = i
                first_line = ln
            if in_c:
                if c == 93:
                    in_c = False
            elif in_q:
                if c == 39:         # '' inside a quoted name toggles twice
                    in_q = False
            elif c == 91:
                in_c = True
            elif c == 39:
                in_q = True
                content = True
            elif c == 59:
                found = True
                break
            elif not _ws(c):
                content = True
            i += 1
        if not found:
            if not at_eof:
                return n, pos, line, MORE
            if content or in_c:     # a trailing text of comments only is no statement
                be = end
            else:
                return n, end, ln, DONE
        else:
            be = i + 1
        out_bs[n] = first
        out_be[n] = be
        out_rs[n] = pos
        out_ne[n] = pos
        out_line[n] = first_line
        r, w, ok = lead_flags(buf, first, be, pow10, scratch)
        out_root[n] = r
        out_w[n] = w
        out_lead[n] = 0 if ok else 1
        n += 1
        pos = be
        line = ln
        if not found:
            return n, end, ln, DONE
