"""Finding the tree statements of a tree file (the layer under :mod:`phylo.io.trees`).

Two readers give the same statements:

* :func:`_scan_batches` (used by the readers) reads the file in bounded blocks
  (:data:`BLOCK` bytes, an incomplete trailing statement carried into the next block)
  and lets the Numba scanners in :mod:`phylo._kernels.treefile` find the statements
  as byte offsets into the block (:class:`_Batch`); NEXUS header lines and any line
  the scanner does not classify go through the line parser (:class:`_NexusParser`)
  one at a time, so errors (file:line + what) are those of the line parser.
* :func:`_iter_file_slow` feeds every line to the line parser (header-only reads by
  ``tree_file_info``; the reference in the tests).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from .._kernels import treefile as _kt
from .._kernels.newick import _POW10
from ..errors import FormatError
from ._compressed import open_binary

# ``tree [comments] [*] [comments] NAME [comments] =`` (Mesquite: ``TREE [!c] 'x' =``)
_TREE_STMT = re.compile(rb"^\s*tree(?=[\s\[])\s*(?:\[[^\]]*\]\s*)*(\*\s*)?"
                        rb"(?:\[[^\]]*\]\s*)*(?P<name>'(?:[^']|'')*'|[^\s=\[]+)\s*"
                        rb"(?:\[[^\]]*\]\s*)*=", re.IGNORECASE)
_WORD = re.compile(r"'(?:[^']|'')*'|[^\s,;']+")
_LINE_PIECE = re.compile(rb"[^\n]*\n|[^\n]+")
BLOCK = 32 << 20     # bytes read per block (a longer statement grows the block)


@dataclass
class TreeFileInfo:
    """What the header of a tree file says (before the trees)."""

    path: str
    nexus: bool
    translate: dict[str, str] | None
    taxa: tuple[str, ...] | None   # translate order, else the taxa block, else None


@dataclass
class _Record:
    line: int
    name: str | None
    body: bytes        # the Newick text (with its leading comments), ';' optional


def _unquote(word: str) -> str:
    if len(word) >= 2 and word[0] == "'" and word[-1] == "'":
        return word[1:-1].replace("''", "'")
    return word


def _open(path: str | os.PathLike):
    """The tree file as a binary stream (gunzipped; a missing file, a directory and
    truncated or corrupt gzip data are one FormatError naming the file)."""
    return open_binary(path, what="tree file")


def _is_trace_header(line: bytes) -> bool:
    """A tab-separated trace (RevBayes ``mnFile``: ``Iteration<TAB>Posterior<TAB>…<TAB>tree``)
    starts with a header line of tab-separated column names, no Newick in it."""
    t = line.strip()
    return b"\t" in t and b"(" not in t and b";" not in t and not t.startswith(b"[")


def _iter_trace(path: str, header: bytes, rows):
    """Tree statements of a tab-separated trace: the Newick column is the first field of
    the first row that starts with ``(`` or ``[``; the record's name is the first
    column's value (the iteration). ``rows`` yields (line number, raw line)."""
    n_cols = len(header.rstrip(b"\r\n").split(b"\t"))
    col = None
    for ln, raw in rows:
        if not raw.strip():
            continue
        fields = raw.rstrip(b"\r\n").split(b"\t")
        if len(fields) != n_cols:
            raise FormatError(f"a row of {len(fields)} tab-separated fields under a header "
                              f"of {n_cols} columns", path=path, line=ln)
        if col is None:
            col = next((i for i, f in enumerate(fields) if f.lstrip()[:1] in (b"(", b"[")),
                       None)
            if col is None:
                raise FormatError("a tab-separated file without a Newick column (no field "
                                  "of the first row starts with '(')", path=path, line=ln)
        name = fields[0].strip().decode("utf-8", "replace") if col else None
        yield _Record(ln, name, fields[col])


def _strip_comments(line: bytes, in_comment: bool) -> tuple[bytes, bool]:
    """Remove [...] comments from a header line, tracking comments across lines; a
    ``[`` inside a quoted name (``'p[q]'``) is part of the name."""
    out = bytearray()
    in_q = False
    for c in line:
        if in_comment:
            in_comment = c != 93
        elif c == 91 and not in_q:
            in_comment = True
        else:
            if c == 39:
                in_q = not in_q
            out.append(c)
    return bytes(out), in_comment


_TRAILING_COMMENT = re.compile(rb"\[[^\]\[]*\]\s*$")


def _ends_statement(raw: bytes) -> bool:
    """Whether a tree-statement line ends the statement: its last byte, once blanks and
    complete trailing ``[...]`` comments are set aside, is ``;`` (the rule of the
    Numba scanner's ``_ends_with_semicolon``)."""
    text = raw.rstrip()
    while text.endswith(b"]"):
        m = _TRAILING_COMMENT.search(text)
        if m is None:
            return False
        text = text[:m.start()].rstrip()
    return text.endswith(b";")


_QUOTED_OR_SEP = re.compile(r"'(?:[^']|'')*'?|[;,]")


def _split_statements(text: str, sep: str = ";") -> list[str]:
    """``text.split(sep)`` where a separator inside a quoted name does not count."""
    out = []
    start = 0
    for m in _QUOTED_OR_SEP.finditer(text):
        if m.group() == sep:
            out.append(text[start:m.start()])
            start = m.end()
    out.append(text[start:])
    return out


def _parse_translate(text: str, path: str, line: int) -> dict[str, str]:
    table: dict[str, str] = {}
    items = [t.strip() for t in _split_statements(text, ",")]
    for item in items:
        if not item:
            continue
        words = _WORD.findall(item)
        if len(words) != 2:
            raise FormatError(f"malformed translate entry {item!r} (expected 'TOKEN NAME')",
                              path=path, line=line)
        key, name = _unquote(words[0]), _unquote(words[1])
        if key in table:
            raise FormatError(f"translate token {key!r} defined twice", path=path, line=line)
        table[key] = name
    if len(set(table.values())) != len(table):
        raise FormatError("translate table maps two tokens to one taxon", path=path, line=line)
    return table


class _NexusParser:
    """The NEXUS line parser: ``feed`` one line at a time (after the ``#NEXUS`` line)."""

    def __init__(self, path: str, lineno: int):
        self.path = path
        self.lineno = lineno          # lines consumed so far
        self.translate: dict[str, str] | None = None
        self.taxa_block: list[str] | None = None
        self.in_comment = False
        self.block: str | None = None
        self.stmt: list[bytes] = []   # a header statement being collected up to ';'
        self.stmt_line = 0
        self.info_sent = False
        self.tree_parts: list[bytes] | None = None   # a tree statement spanning lines
        self.tree_line = 0
        self.tree_name: str | None = None

    def make_info(self) -> TreeFileInfo:
        taxa = tuple(self.translate.values()) if self.translate else (
            tuple(self.taxa_block) if self.taxa_block else None)
        return TreeFileInfo(self.path, True, self.translate, taxa)

    @property
    def ready(self) -> bool:
        """Whether the next line may start a tree statement (the scanner's state)."""
        return (self.tree_parts is None and not self.in_comment and self.block == "trees"
                and not self.stmt)

    def feed(self, raw: bytes) -> list:
        """One line; returns the TreeFileInfo/_Record items it completes."""
        self.lineno += 1
        lineno = self.lineno
        path = self.path
        out: list = []
        if self.tree_parts is not None:
            self.tree_parts.append(raw)
            if _ends_statement(raw):
                out.append(_Record(self.tree_line, self.tree_name, b"".join(self.tree_parts)))
                self.tree_parts = None
            return out
        if not self.in_comment and self.block == "trees" and not self.stmt:
            m = _TREE_STMT.match(raw)
            if m:
                if not self.info_sent:
                    out.append(self.make_info())
                    self.info_sent = True
                name = _unquote(m.group("name").decode("utf-8", "replace"))
                body = raw[m.end():]
                if _ends_statement(raw):
                    out.append(_Record(lineno, name, body))
                else:
                    self.tree_parts, self.tree_line, self.tree_name = [body], lineno, name
                return out
        text, self.in_comment = _strip_comments(raw, self.in_comment)
        if not text.strip():
            return out
        if not self.stmt:
            self.stmt_line = lineno
        self.stmt.append(text)
        if b";" not in text:
            return out
        whole = b" ".join(self.stmt).decode("utf-8", "replace").strip()
        pieces = _split_statements(whole)
        if len(pieces) == 1:         # the ';' was inside a quoted name
            return out
        self.stmt = []
        stmt_line = self.stmt_line
        for piece in pieces:
            p = piece.strip()
            if not p:
                continue
            low = p.lower()
            if low.startswith("begin"):
                words = low.split()
                if len(words) < 2:
                    raise FormatError("'begin' without a block name", path=path, line=stmt_line)
                self.block = words[1]
            elif low in ("end", "endblock"):
                if self.block == "trees" and not self.info_sent:
                    out.append(self.make_info())
                    self.info_sent = True
                self.block = None
            elif self.block == "trees" and low.startswith("translate"):
                self.translate = _parse_translate(p[len("translate"):], path, stmt_line)
            elif self.block == "trees" and low.startswith("tree"):
                raise FormatError("malformed tree statement (expected 'tree NAME = (...);')",
                                  path=path, line=stmt_line)
            elif self.block == "taxa" and low.startswith("taxlabels"):
                self.taxa_block = [_unquote(w) for w in _WORD.findall(p[len("taxlabels"):])]
            elif self.block is None and not low.startswith("#nexus"):
                raise FormatError(f"text outside a NEXUS block: {p[:40]!r}",
                                  path=path, line=stmt_line)
        return out

    def finish(self) -> list:
        """End of file: the errors of an unfinished file, else the info if not yet sent."""
        path = self.path
        if self.tree_parts is not None:
            raise FormatError("the file ends inside a tree statement (missing ';')",
                              path=path, line=self.tree_line)
        if self.stmt and b"".join(self.stmt).strip():
            raise FormatError("the file ends inside a statement (missing ';')",
                              path=path, line=self.stmt_line)
        if self.in_comment:
            raise FormatError("unclosed '[' comment", path=path, line=self.lineno)
        if self.block is not None:
            raise FormatError(f"the '{self.block}' block is not closed with 'end;'", path=path,
                              line=self.lineno)
        return [] if self.info_sent else [self.make_info()]


# ---------------------------------------------------------------------------
# line-based reader: headers (tree_file_info) and the tests' reference
# ---------------------------------------------------------------------------

def _iter_file_slow(path: str, info_only: bool = False):
    """Yield the TreeFileInfo first, then _Record for each tree statement (line by line)."""
    with _open(path) as fh:
        first = b""
        lineno = 0
        lines = iter(fh)
        pending: list[tuple[int, bytes]] = []
        for raw in lines:
            lineno += 1
            if raw.strip():
                first = raw
                pending.append((lineno, raw))
                break
        nexus = first.strip().upper().startswith(b"#NEXUS")
        if not nexus:
            yield TreeFileInfo(path, False, None, None)
            if info_only:
                return
            if _is_trace_header(first):
                yield from _iter_trace(path, first, enumerate(lines, lineno + 1))
                return
            yield from _iter_newick(pending, lines, lineno)
            return
        parser = _NexusParser(path, lineno)
        for raw in lines:
            for item in parser.feed(raw):
                yield item
                if info_only and isinstance(item, TreeFileInfo):
                    return
        yield from parser.finish()


def _iter_newick(pending, lines, lineno):
    """Newick statements line by line: text up to a ``;`` outside ``[...]`` comments and
    quoted names (the reference for :func:`phylo._kernels.treefile.scan_newick`)."""
    buf: list[bytes] = []
    start_line = None
    in_c = in_q = content = False

    def chunks():
        for ln, raw in pending:
            yield ln, raw
        n = lineno
        for raw in lines:
            n += 1
            yield n, raw

    for ln, raw in chunks():
        pos = 0
        for i, c in enumerate(raw):
            if in_c:
                in_c = c != 93
            elif in_q:
                in_q = c != 39
            elif c == 91:
                in_c = True
            elif c == 39:
                in_q = content = True
            elif c == 59:
                piece = raw[pos:i + 1]
                if piece.strip() and start_line is None:
                    start_line = ln
                buf.append(piece)
                yield _Record(start_line, None, b"".join(p for p in buf if p.strip()))
                buf, start_line, content, pos = [], None, False, i + 1
            elif not (c == 32 or 9 <= c <= 13):
                content = True
        piece = raw[pos:]
        if piece.strip():
            if start_line is None:
                start_line = ln
            buf.append(piece)
    if buf and (content or in_c):    # a tail of comments only is no statement
        yield _Record(start_line, None, b"".join(buf))


# ---------------------------------------------------------------------------
# block reader + Numba scanners
# ---------------------------------------------------------------------------

class _Batch:
    """Tree statements of one block: ``data[bs[t]:be[t]]`` is statement ``t``'s Newick.

    ``arr`` is ``data`` as uint8; ``line``, ``w``, ``root``, ``lead``: see
    :mod:`phylo._kernels.treefile`. ``body``/``name``/``record``/``flags`` give
    exactly what the line parser gives for that statement.
    """

    __slots__ = ("data", "arr", "bs", "be", "rs", "ne", "line", "w", "root", "lead",
                 "nexus", "names")

    def __init__(self, data, arr, bs, be, rs, ne, line, w, root, lead, nexus, names=None):
        self.data, self.arr, self.bs, self.be, self.rs, self.ne = data, arr, bs, be, rs, ne
        self.line, self.w, self.root, self.lead = line, w, root, lead
        self.nexus, self.names = nexus, names

    @classmethod
    def from_records(cls, records: list[_Record]) -> "_Batch":
        bodies = [r.body for r in records]
        lens = np.array([len(b) for b in bodies], dtype=np.int64)
        be = np.cumsum(lens)
        bs = be - lens
        data = b"".join(bodies)
        arr = np.frombuffer(data, dtype=np.uint8) if data else np.zeros(1, np.uint8)
        n = len(records)
        return cls(data, arr, bs, be, bs, bs, np.array([r.line for r in records], np.int64),
                   np.ones(n), np.full(n, -1, np.int8), np.ones(n, np.int8), True,
                   [r.name for r in records])

    def __len__(self) -> int:
        return self.bs.shape[0]

    def body(self, t: int) -> bytes:
        if self.nexus:
            return bytes(self.data[self.bs[t]:self.be[t]])
        # the Newick line reader's text: per-line pieces, blank pieces dropped
        raw = bytes(self.data[self.rs[t]:self.be[t]])
        return b"".join(p for p in _LINE_PIECE.findall(raw) if p.strip())

    def name(self, t: int) -> str | None:
        if self.names is not None:
            return self.names[t]
        if not self.nexus:
            return None
        return self.data[self.rs[t]:self.ne[t]].decode("utf-8", "replace")

    def record(self, t: int) -> _Record:
        return _Record(int(self.line[t]), self.name(t), self.body(t))

    def flags(self, t: int) -> tuple[bool | None, float]:
        """(rooted flag, weight) of the leading comments, as ``parse_newick`` reads them
        (:class:`~phylo.errors.TreeError` for a malformed weight)."""
        if self.lead[t]:
            from .newick import leading_flags
            return leading_flags(self.body(t))
        r = int(self.root[t])
        return (None if r < 0 else bool(r)), float(self.w[t])


class _Reader:
    """A file read in blocks: ``data[pos:]`` is what is not consumed yet."""

    def __init__(self, fh, block: int):
        self.fh = fh
        self.block = block
        self.data = b""
        self.pos = 0
        self.start = 0
        self.eof = False

    def fill(self) -> None:
        """Keep the unconsumed bytes and read a block after them (one copy, no concat)."""
        rest = len(self.data) - self.pos
        want = max(self.block, rest)
        data = bytearray(rest + want)
        data[:rest] = memoryview(self.data)[self.pos:]
        view = memoryview(data)
        got = rest
        while got < len(data):
            k = self.fh.readinto(view[got:])
            if not k:
                self.eof = True
                break
            got += k
        view.release()
        if got < len(data):
            del data[got:]
        self.data = data
        self.pos = 0

    def line(self) -> bytes | None:
        """The next line (with its newline), None at the end of the file."""
        while True:
            j = self.data.find(b"\n", self.pos)
            if j >= 0 or self.eof:
                end = j + 1 if j >= 0 else len(self.data)
                if end <= self.pos:
                    return None
                raw = bytes(self.data[self.pos:end])
                self.start = self.pos
                self.pos = end
                return raw
            self.fill()


def _scan_batches(path: str, max_batch: int = 8192, block: int | None = None):
    """Yield :class:`_Batch` es of at most ``max_batch`` statements, in file order."""
    with _open(path) as fh:
        rd = _Reader(fh, BLOCK if block is None else block)
        first = b""
        lineno = 0
        while True:
            raw = rd.line()
            if raw is None:
                break
            lineno += 1
            if raw.strip():
                first = raw
                break
        if not first.strip().upper().startswith(b"#NEXUS"):
            if _is_trace_header(first):
                yield from _scan_trace(rd, path, first, lineno, max_batch)
            elif first:
                rd.pos = rd.start       # rescan the first non-blank line
                yield from _scan_newick(rd, lineno, max_batch)
            return
        yield from _scan_nexus(rd, _NexusParser(path, lineno), max_batch)


def _outs(cap: int):
    return (np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.int64),
            np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.float64),
            np.empty(cap, np.int8), np.empty(cap, np.int8))


def _kernel_batch(rd, arr, outs, n, nexus) -> _Batch:
    bs, be, rs, ne, line, w, root, lead = (a[:n] for a in outs)
    return _Batch(rd.data, arr, bs, be, rs, ne, line, w, root, lead, nexus)


def _scan_nexus(rd: _Reader, parser: _NexusParser, max_batch: int):
    pending: list[_Record] = []     # statements the line parser found
    while True:
        if parser.ready:
            arr = np.frombuffer(rd.data, dtype=np.uint8)
            outs = _outs(max_batch)
            n, stop, line, why = _kt.scan_nexus(arr, rd.pos, len(rd.data), rd.eof,
                                                parser.lineno, _POW10, *outs)
            if n:
                parser.info_sent = True
                if pending:
                    yield _Batch.from_records(pending)
                    pending = []
                yield _kernel_batch(rd, arr, outs, n, True)
            rd.pos = stop
            parser.lineno = line
            if why == _kt.FULL:
                continue
            if why == _kt.MORE:
                rd.fill()
                continue
            if why == _kt.DONE:
                break
        raw = rd.line()       # a header line, or one the scanner left to the parser
        if raw is None:
            break
        for item in parser.feed(raw):
            if isinstance(item, _Record):
                pending.append(item)
        if len(pending) >= max_batch:
            yield _Batch.from_records(pending)
            pending = []
    if pending:
        yield _Batch.from_records(pending)
    parser.finish()


def _scan_newick(rd: _Reader, line: int, max_batch: int):
    while True:
        arr = np.frombuffer(rd.data, dtype=np.uint8)
        outs = _outs(max_batch)
        n, stop, line, why = _kt.scan_newick(arr, rd.pos, len(rd.data), rd.eof, line,
                                             _POW10, *outs)
        if n:
            yield _kernel_batch(rd, arr, outs, n, False)
        rd.pos = stop
        if why == _kt.DONE:
            return
        if why == _kt.MORE:
            rd.fill()


def _scan_trace(rd: _Reader, path: str, header: bytes, lineno: int, max_batch: int):
    """A tab-separated trace, line by line (one Newick field per row)."""
    def rows():
        n = lineno
        while True:
            raw = rd.line()
            if raw is None:
                return
            n += 1
            yield n, raw
    pending: list[_Record] = []
    for rec in _iter_trace(path, header, rows()):
        pending.append(rec)
        if len(pending) >= max_batch:
            yield _Batch.from_records(pending)
            pending = []
    if pending:
        yield _Batch.from_records(pending)


def _selection(g0: int, n: int, skip: int, thin: int) -> np.ndarray:
    """Indices (within a batch of ``n`` starting at file index ``g0``) kept by burn-in
    ``skip`` and thinning ``thin``: file index ``i >= skip`` with ``(i - skip) % thin == 0``."""
    first = max(skip, g0)
    r = (first - skip) % thin
    if r:
        first += thin - r
    return np.arange(first - g0, n, thin, dtype=np.int64)
