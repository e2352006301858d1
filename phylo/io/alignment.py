"""DNA alignments: reading (FASTA, NEXUS, PHYLIP through Biopython) and site patterns.

States are encoded as 4-bit masks, A=1, C=2, G=4, T=8; an IUPAC ambiguity code is
the OR of its states and gaps/missing (``-``, ``?``, ``N``, ``.``, ``X``) are 15, so a
tip's partial likelihood vector is the indicator of the mask's bits — the convention
of MrBayes, IQ-TREE, PhyML and BEAGLE (../shared/METHODS.md §1).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import AlignmentError, FormatError, TaxonMismatchError
from ._compressed import read_bytes

#: IUPAC nucleotide code → 4-bit state mask (A=1, C=2, G=4, T=8).
IUPAC_MASKS: Mapping[str, int] = {
    "A": 1, "C": 2, "G": 4, "T": 8, "U": 8,
    "R": 5, "Y": 10, "S": 6, "W": 9, "K": 12, "M": 3,
    "B": 14, "D": 13, "H": 11, "V": 7,
    "N": 15, "X": 15, "?": 15, "-": 15, ".": 15,
}
NUCLEOTIDES = "ACGT"

_LOOKUP = np.zeros(256, dtype=np.uint8)  # 0 marks an unknown character
for _ch, _mask in IUPAC_MASKS.items():
    _LOOKUP[ord(_ch)] = _mask
    _LOOKUP[ord(_ch.lower())] = _mask


@dataclass(frozen=True, eq=False)
class Alignment:
    """A DNA alignment compressed to unique site patterns.

    Attributes
    ----------
    taxa: taxon names, in the order of the rows.
    patterns: uint8 array, shape (n_taxa, n_patterns): state masks (A=1, C=2, G=4, T=8).
    weights: float64 array, shape (n_patterns,): how many sites show each pattern.
    site_pattern: int64 array, shape (n_sites,): the pattern of each original site.
    source: the file it was read from, if any.
    """

    taxa: tuple[str, ...]
    patterns: np.ndarray
    weights: np.ndarray
    site_pattern: np.ndarray
    source: str | None = field(default=None, repr=False)

    @property
    def n_taxa(self) -> int:
        return len(self.taxa)

    @property
    def n_sites(self) -> int:
        return int(self.site_pattern.shape[0])

    @property
    def n_patterns(self) -> int:
        return int(self.patterns.shape[1])

    @classmethod
    def from_sequences(cls, sequences: Mapping[str, str] | Sequence[tuple[str, str]], *,
                       source: str | None = None) -> "Alignment":
        """Build from ``{name: sequence}`` (or pairs), validating names and characters."""
        items = list(sequences.items()) if isinstance(sequences, Mapping) else list(sequences)
        if not items:
            raise AlignmentError("the alignment has no sequences", path=source)
        names = [str(n) for n, _ in items]
        seen: set[str] = set()
        for name in names:
            if not name.strip():
                raise AlignmentError("a sequence has an empty taxon name", path=source)
            if name in seen:
                raise AlignmentError(f"duplicate taxon {name!r}", path=source)
            seen.add(name)
        seqs = [str(s) for _, s in items]
        length = len(seqs[0])
        for name, seq in zip(names, seqs):
            if len(seq) != length:
                raise AlignmentError(
                    f"sequence {name!r} has {len(seq)} sites, {names[0]!r} has {length}",
                    path=source)
        if length == 0:
            raise AlignmentError("the alignment has no sites", path=source)
        raw = np.frombuffer("".join(seqs).encode("latin-1", "replace"), dtype=np.uint8)
        states = _LOOKUP[raw].reshape(len(seqs), length)
        bad = np.argwhere(states == 0)
        if bad.size:
            row, col = bad[0]
            hint = describe_non_dna(seqs) or " (expected IUPAC DNA codes, '-', '?')"
            raise AlignmentError(
                f"unknown character {seqs[row][col]!r} in taxon {names[row]!r} at site "
                f"{col + 1}{hint}", path=source)
        return cls.from_states(names, states, source=source)

    @classmethod
    def from_states(cls, taxa: Sequence[str], states: np.ndarray, *,
                    source: str | None = None) -> "Alignment":
        """Build from a state-mask matrix, shape (n_taxa, n_sites), compressing patterns."""
        states = np.ascontiguousarray(states, dtype=np.uint8)
        if states.ndim != 2 or states.shape[1] == 0 or states.shape[0] == 0:
            raise AlignmentError("empty alignment", path=source)
        if states.shape[0] != len(taxa):
            raise AlignmentError(f"{len(taxa)} names for {states.shape[0]} sequences", path=source)
        if np.any((states == 0) | (states > 15)):
            raise AlignmentError("state masks must be in 1..15", path=source)
        patterns, inverse, counts = np.unique(states.T, axis=0, return_inverse=True,
                                              return_counts=True)
        return cls(tuple(taxa), np.ascontiguousarray(patterns.T), counts.astype(np.float64),
                   inverse.reshape(-1).astype(np.int64), source)

    def states(self) -> np.ndarray:
        """The uncompressed state-mask matrix, shape (n_taxa, n_sites)."""
        return self.patterns[:, self.site_pattern]

    def subset(self, taxa: Sequence[str]) -> "Alignment":
        """The rows of ``taxa`` in that order (patterns recompressed)."""
        index = {t: i for i, t in enumerate(self.taxa)}
        missing = [t for t in taxa if t not in index]
        if missing:
            raise TaxonMismatchError(f"taxa not in the alignment: {', '.join(map(repr, missing[:5]))}",
                                     path=self.source)
        rows = [index[t] for t in taxa]
        return Alignment.from_states(list(taxa), self.states()[rows], source=self.source)

    def tip_partials(self) -> np.ndarray:
        """Indicator partials, shape (n_taxa, n_patterns, 4), float64."""
        bits = np.array([1, 2, 4, 8], dtype=np.uint8)
        return ((self.patterns[:, :, None] & bits) != 0).astype(np.float64)

    def sequences(self) -> list[str]:
        """The sequences as IUPAC text (all-state masks written as '-'), in row order."""
        decode = np.array(list("?ACMGRSVTWYHKDB-"))  # index = state mask
        return ["".join(decode[row]) for row in self.states()]

    def to_fasta(self) -> str:
        return "".join(f">{n}\n{s}\n" for n, s in zip(self.taxa, self.sequences()))

    def to_phylip(self) -> str:
        """Relaxed sequential PHYLIP (names end at the first space, so none may hold one)."""
        spaced = [n for n in self.taxa if len(n.split()) != 1 or n != n.strip()]
        if spaced:
            raise FormatError(f"taxon name {spaced[0]!r} holds a space: PHYLIP cannot write "
                              f"it (write FASTA or NEXUS)", path=self.source)
        width = max(len(n) for n in self.taxa) + 2
        rows = [f"{n.ljust(width)}{s}\n" for n, s in zip(self.taxa, self.sequences())]
        return f"{self.n_taxa} {self.n_sites}\n" + "".join(rows)

    def to_nexus(self) -> str:
        names = [_nexus_name(n) for n in self.taxa]
        width = max(len(n) for n in names) + 2
        rows = [f"  {n.ljust(width)}{s}\n" for n, s in zip(names, self.sequences())]
        return ("#NEXUS\nbegin data;\n"
                f"  dimensions ntax={self.n_taxa} nchar={self.n_sites};\n"
                "  format datatype=dna missing=? gap=-;\n  matrix\n" + "".join(rows)
                + "  ;\nend;\n")

    def to_text(self, format: str) -> str:
        """The alignment as ``fasta``, ``phylip`` or ``nexus`` text."""
        writers = {"fasta": self.to_fasta, "phylip": self.to_phylip, "nexus": self.to_nexus}
        if format not in writers:
            raise FormatError(f"unknown alignment format {format!r} ({', '.join(writers)})")
        return writers[format]()

    def __repr__(self) -> str:
        return (f"Alignment(n_taxa={self.n_taxa}, n_sites={self.n_sites}, "
                f"n_patterns={self.n_patterns})")


#: ``fasta_names`` values: how a FASTA ``>`` header names its taxon.
FASTA_NAME_RULES = ("first-word", "full-line")


def read_alignment(path: str | os.PathLike, *, format: str | None = None,
                   fasta_names: str = "first-word") -> Alignment:
    """Read a DNA alignment from FASTA, NEXUS or PHYLIP (optionally gzip-compressed).

    The format is detected from the content when ``format`` is None.

    * FASTA: a taxon is named by the first word of its ``>`` header
      (``fasta_names="first-word"``, the convention of IQ-TREE, RAxML and MrBayes'
      converters) or by the whole header line (``fasta_names="full-line"``).
    * PHYLIP: sequential or interleaved, relaxed (names end at whitespace) or strict
      (10-character name field); when several readings fit the header's dimensions
      and give different alignments the file is refused as ambiguous.
    * NEXUS: DATA or CHARACTERS block (with an optional TAXA block), ``interleave``,
      ``missing``, ``gap`` and ``matchchar``; ambiguity sets ``{AG}`` and
      polymorphisms ``(AG)`` become the IUPAC code of their states; other blocks
      (``sets``, ``assumptions``, ``trees``, ``mrbayes``…) are skipped.

    Only nucleotide data is read: protein, morphological (standard) or mixed data is
    refused with a message that says what the file appears to hold. Errors (missing
    file, truncated gzip, malformed content, unknown characters, unequal lengths,
    duplicate or no taxa) raise a :class:`phylo.errors.PhyloError` naming the file.
    """
    path = os.fspath(path)
    if fasta_names not in FASTA_NAME_RULES:
        raise FormatError(f"fasta_names must be one of {', '.join(FASTA_NAME_RULES)}, "
                          f"got {fasta_names!r}")
    text = _read_text(path)
    if not text.replace("\ufeff", "").strip():
        raise AlignmentError("the file is empty", path=path)
    fmt = (format or _detect_format(text, path)).lower()
    if fmt in ("fasta", "fa", "fas"):
        records = _parse_fasta(text, path, full_line=fasta_names == "full-line")
    elif fmt in ("nexus", "nex"):
        records = _parse_nexus(text, path)
    elif fmt in ("phylip", "phy", "phylip-relaxed"):
        records = _parse_phylip(text, path)
    else:
        raise FormatError(f"unknown alignment format {fmt!r} (fasta, nexus, phylip)", path=path)
    return Alignment.from_sequences(records, source=path)


def _read_text(path: str) -> str:
    data = read_bytes(path, what="alignment file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # Old files may be Latin-1 (accented names); binary data is not an alignment.
    if any(b < 32 and b not in (9, 10, 12, 13) for b in data[:65536]):
        raise FormatError("binary data, not a FASTA, NEXUS or PHYLIP alignment", path=path)
    return data.decode("latin-1")


_SUFFIX_FORMATS = {"fa": "fasta", "fasta": "fasta", "fas": "fasta", "fna": "fasta",
                   "nex": "nexus", "nexus": "nexus", "phy": "phylip", "phylip": "phylip"}


def _detect_format(text: str, path: str) -> str:
    head = text.lstrip("\ufeff \t\r\n")
    if not head:
        raise AlignmentError("the file is empty", path=path)
    if "\x00" in text[:4096]:
        raise FormatError("binary data, not a FASTA, NEXUS or PHYLIP alignment", path=path)
    if head.startswith(">"):
        return "fasta"
    if head[:6].upper() == "#NEXUS":
        return "nexus"
    first = head.splitlines()[0].split()
    if len(first) >= 2 and first[0].isdigit() and first[1].isdigit():
        return "phylip"
    suffix = Path(path.removesuffix(".gz")).suffix.lower().lstrip(".")
    if suffix in _SUFFIX_FORMATS:  # content is inconclusive: trust the extension
        return _SUFFIX_FORMATS[suffix]
    raise FormatError("not a FASTA, NEXUS or PHYLIP alignment (cannot tell the format "
                      "from the first line)", path=path)


# ---------------------------------------------------------------------------
# FASTA
# ---------------------------------------------------------------------------

def _parse_fasta(text: str, path: str, *, full_line: bool = False) -> list[tuple[str, str]]:
    records: list[tuple[str, str]] = []
    headers: list[str] = []
    name: str | None = None
    chunks: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            if name is not None:
                records.append((name, "".join(chunks)))
            header = line[1:].strip()
            if not header:
                raise AlignmentError("sequence without a name", path=path, line=lineno)
            name = header if full_line else header.split()[0]
            headers.append(header)
            chunks = []
        else:
            if name is None:
                raise FormatError("sequence data before the first '>' header", path=path,
                                  line=lineno)
            chunks.append("".join(line.split()))
    if name is not None:
        records.append((name, "".join(chunks)))
    if not full_line:
        _check_first_word_duplicates(records, headers, path)
    return records


def _check_first_word_duplicates(records, headers, path) -> None:
    """Two headers that differ only after their first word would become one taxon."""
    first_header: dict[str, str] = {}
    for (name, _), header in zip(records, headers):
        if name in first_header and first_header[name] != header:
            raise AlignmentError(
                f"duplicate taxon {name!r}: taxa are named by the first word of the '>' "
                f"header, and {first_header[name]!r} and {header!r} share it; name them by "
                f"the whole header with fasta_names='full-line' (command line: "
                f"--fasta-names full-line)", path=path)
        first_header.setdefault(name, header)


# ---------------------------------------------------------------------------
# PHYLIP
# ---------------------------------------------------------------------------

#: Width of the name field of strict (original) PHYLIP.
STRICT_PHYLIP_NAME_WIDTH = 10


def _parse_phylip(text: str, path: str) -> list[tuple[str, str]]:
    """PHYLIP, sequential or interleaved, relaxed or strict names.

    Every reading of the lines is tried (interleaved: the first ``ntax`` lines start
    with names and later lines cycle through the taxa; sequential: each taxon's name
    line is followed by continuation lines until it has ``nchar`` sites). A reading
    fits when every taxon gets exactly ``nchar`` sites; readings of valid DNA are
    preferred. One distinct fitting alignment is returned; several are refused."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise AlignmentError("the file is empty", path=path)
    header = lines[0].split()
    try:
        ntax, nchar = int(header[0]), int(header[1])
    except (ValueError, IndexError):
        raise FormatError("PHYLIP header must be 'ntax nchar'", path=path, line=1) from None
    if ntax < 1 or nchar < 1:
        raise AlignmentError(f"PHYLIP header says {ntax} taxa and {nchar} sites; both must "
                             f"be >= 1", path=path, line=1)
    body = lines[1:]
    if len(body) < ntax:
        raise AlignmentError(f"header says {ntax} taxa, found {len(body)} lines of data",
                             path=path)
    fits: list[list[tuple[str, str]]] = []
    problems: dict[str, str] = {}
    for layout in ("interleaved", "sequential"):
        for names in ("relaxed", "strict"):
            try:
                records = _phylip_reading(body, ntax, nchar, layout, names)
            except _NoFit as exc:
                problems.setdefault(layout, str(exc))
                continue
            if records not in fits:
                fits.append(records)
    if not fits:
        raise AlignmentError(f"the lines do not give {ntax} taxa of {nchar} sites (header) "
                             f"read as interleaved ({problems['interleaved']}) or as "
                             f"sequential ({problems['sequential']})", path=path)
    dna = [r for r in fits if all(_is_dna(s) for _, s in r)]
    if len(dna) > 1:
        raise AlignmentError("ambiguous PHYLIP: the lines fit more than one layout "
                             "(interleaved/sequential, relaxed/strict names) with "
                             "different results; write it as FASTA or NEXUS", path=path)
    return dna[0] if dna else fits[0]


class _NoFit(Exception):
    """A PHYLIP reading that does not give ntax sequences of nchar sites."""


def _phylip_name_line(line: str, names: str) -> tuple[str, str]:
    if names == "strict":
        return line[:STRICT_PHYLIP_NAME_WIDTH].strip(), "".join(
            line[STRICT_PHYLIP_NAME_WIDTH:].split())
    parts = line.split(None, 1)
    return parts[0], "".join(parts[1].split()) if len(parts) > 1 else ""


def _phylip_reading(body: list[str], ntax: int, nchar: int, layout: str,
                    names: str) -> list[tuple[str, str]]:
    if layout == "interleaved":
        heads = [_phylip_name_line(ln, names) for ln in body[:ntax]]
        rest = body[ntax:]
        if len(rest) % ntax:
            raise _NoFit(f"{len(rest)} lines after the first block is not a multiple of "
                         f"{ntax}")
        chunks = [[c] for _, c in heads]
        for i, line in enumerate(rest):
            chunks[i % ntax].append("".join(line.split()))
        records = [(n, "".join(c)) for (n, _), c in zip(heads, chunks)]
    else:
        records = []
        it = iter(body)
        for t in range(ntax):
            line = next(it, None)
            if line is None:
                raise _NoFit(f"the data ends after {t} of {ntax} taxa")
            name, seq = _phylip_name_line(line, names)
            parts = [seq]
            size = len(seq)
            while size < nchar:
                more = next(it, None)
                if more is None:
                    raise _NoFit(f"taxon {name!r} has {size} sites")
                chunk = "".join(more.split())
                parts.append(chunk)
                size += len(chunk)
            records.append((name, "".join(parts)))
        left = sum(1 for _ in it)
        if left:
            raise _NoFit(f"{left} lines left after the last taxon")
    for name, seq in records:
        if not name:
            raise _NoFit("a taxon has no name")
        if len(seq) != nchar:
            raise _NoFit(f"taxon {name!r} has {len(seq)} sites")
    return records


def _is_dna(seq: str) -> bool:
    raw = np.frombuffer(seq.encode("latin-1", "replace"), dtype=np.uint8)
    return bool(np.all(_LOOKUP[raw] != 0))


# ---------------------------------------------------------------------------
# NEXUS
# ---------------------------------------------------------------------------

_NEXUS_DNA_TYPES = ("dna", "rna", "nucleotide", "nucleotides")


_COMMENT_OR_QUOTE = re.compile(r"[\['\]]")
_SEMICOLON_OR_QUOTE = re.compile(r"[;']")


def _strip_nexus_comments(text: str, path: str) -> str:
    """Replace ``[...]`` comments (nested ones too) by a space; quotes are kept.

    Scans only the ``[``, ``]`` and ``'`` characters (regex), so a large matrix without
    comments costs one pass in C."""
    if "[" not in text:
        return text
    out: list[str] = []
    pos = 0
    depth = 0
    quote = False
    for m in _COMMENT_OR_QUOTE.finditer(text):
        ch, i = m.group(), m.start()
        if quote:
            quote = ch != "'"      # '' (an escaped quote) reopens at the next match
        elif depth:
            if ch == "[":
                depth += 1
            elif ch == "]":
                depth -= 1
                if depth == 0:
                    out.append(" ")
                    pos = i + 1
        elif ch == "[":
            out.append(text[pos:i])
            depth = 1
        elif ch == "'":
            quote = True
    if depth:
        raise FormatError("NEXUS: a '[' comment is never closed", path=path)
    if quote:
        raise FormatError("NEXUS: a quoted name is never closed", path=path)
    out.append(text[pos:])
    return "".join(out)


def _nexus_commands(text: str) -> list[str]:
    """Split at ';' outside quotes."""
    commands: list[str] = []
    start = 0
    quote = False
    for m in _SEMICOLON_OR_QUOTE.finditer(text):
        if m.group() == "'":
            quote = not quote
        elif not quote:
            commands.append(text[start:m.start()])
            start = m.end()
    tail = text[start:].strip()
    if tail:
        commands.append(tail)
    return commands


_NEXUS_OPTION = re.compile(r"""(\w+)\s*(?:=\s*("[^"]*"|'[^']*'|\([^)]*\)|[^\s=]+))?""")


def _nexus_options(text: str) -> dict[str, str]:
    """``key=value`` pairs (and bare flags, as "yes") of a DIMENSIONS/FORMAT command."""
    options: dict[str, str] = {}
    for key, value in _NEXUS_OPTION.findall(text):
        options[key.lower()] = value.strip("\"'") if value else "yes"
    return options


def _nexus_words(text: str, path: str) -> list[str]:
    """Whitespace-separated words; a quoted word may hold spaces ('' is a quote)."""
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        if text[i] == "'":
            j = i + 1
            chars: list[str] = []
            while True:
                if j >= n:
                    raise FormatError("NEXUS: a quoted name is never closed", path=path)
                if text[j] == "'":
                    if j + 1 < n and text[j + 1] == "'":
                        chars.append("'")
                        j += 2
                        continue
                    break
                chars.append(text[j])
                j += 1
            words.append("".join(chars))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace():
                j += 1
            words.append(text[i:j])
            i = j
    return words


def _parse_nexus(text: str, path: str) -> list[tuple[str, str]]:
    body = _strip_nexus_comments(text.lstrip("\ufeff \t\r\n"), path)
    if body[:6].upper() != "#NEXUS":
        raise FormatError("NEXUS files begin with '#NEXUS'", path=path)
    commands = _nexus_commands(body[6:])
    block: str | None = None
    taxlabels: list[str] | None = None
    found = None
    for command in commands:
        stripped = command.strip()
        if not stripped:
            continue
        word = stripped.split(None, 1)[0].lower()
        rest = stripped[len(word):].strip()
        if word == "begin":
            block = rest.lower()
            continue
        if word in ("end", "endblock"):
            block = None
            continue
        if block == "taxa" and word == "taxlabels":
            taxlabels = _nexus_words(rest, path)
        elif block in ("data", "characters"):
            found = found or {"dimensions": {}, "format": {}, "matrix": None}
            if word in ("dimensions", "format"):
                found[word].update(_nexus_options(rest))
            elif word == "matrix":
                found["matrix"] = command[command.lower().index("matrix") + 6:]
        elif block == "unaligned":
            raise FormatError("NEXUS UNALIGNED block: phylo reads aligned DNA only",
                              path=path)
    if found is None or found["matrix"] is None:
        raise FormatError("no NEXUS DATA or CHARACTERS block with a MATRIX (phylo reads "
                          "DNA alignments)", path=path)
    return _nexus_matrix(found, taxlabels, path)


def _nexus_matrix(found: dict, taxlabels: list[str] | None, path: str) -> list[tuple[str, str]]:
    dims, fmt = found["dimensions"], found["format"]
    datatype = fmt.get("datatype", "dna").lower()
    if datatype not in _NEXUS_DNA_TYPES:
        kind = {"protein": "protein", "standard": "morphological (standard)",
                "restriction": "restriction-site", "continuous": "continuous"}.get(
            datatype.split("(")[0], datatype)
        raise AlignmentError(f"NEXUS datatype={datatype}: this is {kind} data; phylo reads "
                             f"DNA alignments only", path=path)
    if fmt.get("transpose", "no").lower() in ("yes", "true"):
        raise FormatError("NEXUS: transposed matrices are not supported", path=path)
    try:
        nchar = int(dims["nchar"])
        ntax = int(dims["ntax"]) if "ntax" in dims else (
            len(taxlabels) if taxlabels is not None else None)
    except KeyError:
        raise FormatError("NEXUS: DIMENSIONS must give NCHAR", path=path) from None
    except ValueError:
        raise FormatError(f"NEXUS: DIMENSIONS must be whole numbers, got "
                          f"{dims}", path=path) from None
    if ntax is None:
        raise FormatError("NEXUS: no NTAX in DIMENSIONS and no TAXA block", path=path)
    if ntax < 1 or nchar < 1:
        raise AlignmentError(f"NEXUS DIMENSIONS says ntax={ntax} nchar={nchar}; both must "
                             f"be >= 1", path=path)
    missing = fmt.get("missing", "?")[:1]
    gap = fmt.get("gap", "-")[:1]
    match = fmt.get("matchchar", "")[:1] or None
    interleaved = fmt.get("interleave", "no").lower() in ("yes", "true", "")
    rows: dict[str, list[str]] = {}   # name -> chunks of one character per site
    order: list[str] = []
    matrix = found["matrix"]
    has_sets = "{" in matrix or "(" in matrix
    if interleaved:
        for line in matrix.splitlines():
            if not line.strip():
                continue
            name, pos = _nexus_row_name(line, 0, path)
            if name not in rows:
                if len(rows) == ntax:
                    raise FormatError(f"NEXUS matrix: taxon {name!r} is not among the "
                                      f"{ntax} of the first block", path=path)
                rows[name] = []
                order.append(name)
            sites, _ = _nexus_take_sites(line, pos, None, name, missing, gap, path,
                                         has_sets=has_sets)
            rows[name].append(sites)
    else:
        pos = _SPACE.match(matrix, 0).end()
        while pos < len(matrix) and len(order) < ntax:
            name, pos = _nexus_row_name(matrix, pos, path)
            if name in rows:
                raise AlignmentError(f"duplicate taxon {name!r} in the NEXUS matrix",
                                     path=path)
            sites, pos = _nexus_take_sites(matrix, pos, nchar, name, missing, gap, path,
                                           has_sets=has_sets)
            rows[name] = [sites]
            order.append(name)
            pos = _SPACE.match(matrix, pos).end()
        if pos < len(matrix):
            raise FormatError(f"NEXUS matrix: text after the {ntax} taxa of DIMENSIONS "
                              f"({matrix[pos:pos + 20]!r}…); is the matrix interleaved "
                              f"without INTERLEAVE in FORMAT?", path=path)
    if len(order) != ntax:
        raise FormatError(f"NEXUS matrix has {len(order)} taxa, DIMENSIONS says ntax={ntax}",
                          path=path)
    if taxlabels is not None and sorted(taxlabels) != sorted(order):
        extra = sorted(set(order) - set(taxlabels))[:3]
        raise FormatError(f"NEXUS matrix taxa differ from TAXLABELS (e.g. {extra})", path=path)
    records = []
    first: str | None = None
    for name in order:
        sites = "".join(rows[name])
        if len(sites) != nchar:
            raise AlignmentError(f"NEXUS taxon {name!r} has {len(sites)} sites, DIMENSIONS "
                                 f"says nchar={nchar}", path=path)
        if match is not None:
            if first is None:
                if match in sites:
                    raise AlignmentError(f"NEXUS matchchar {match!r} in the first taxon",
                                         path=path)
            else:
                sites = "".join(f if s == match else s for s, f in zip(sites, first))
        if first is None:
            first = sites
        records.append((name, sites))
    return records


_WORD = re.compile(r"\S+")
_SPACE = re.compile(r"\s*")


def _nexus_row_name(text: str, pos: int, path: str) -> tuple[str, int]:
    """The taxon name at ``pos`` (after blanks) in ``text``, and the position after it.

    Positions rather than slices: a row costs its own length, not the matrix's."""
    pos = _SPACE.match(text, pos).end()
    if text.startswith("'", pos):
        chars: list[str] = []
        j = pos + 1
        while True:
            k = text.find("'", j)
            if k < 0:
                raise FormatError("NEXUS: a quoted name is never closed", path=path)
            chars.append(text[j:k])
            if text.startswith("'", k + 1):   # '' is a quote inside the name
                chars.append("'")
                j = k + 2
                continue
            return "".join(chars), k + 1
    m = _WORD.match(text, pos)
    return (m.group(), m.end()) if m else ("", pos)


def _nexus_take_sites(text: str, pos: int, limit: int | None, name: str, missing: str,
                      gap: str, path: str, *, has_sets: bool) -> tuple[str, int]:
    """Up to ``limit`` sites (all when None) from ``pos``: one character each, with
    ``{AG}``/``(AG)`` as the IUPAC code of their states (``R``), missing as ``?`` and
    gap as ``-``; and the position after them."""
    if not has_sets:  # no state sets in the matrix: whole words at a time
        return _nexus_take_plain_sites(text, pos, limit, missing, gap)
    sites: list[str] = []
    i, n = pos, len(text)
    while i < n and (limit is None or len(sites) < limit):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "{(":
            close = "}" if ch == "{" else ")"
            j = text.find(close, i)
            if j < 0:
                raise FormatError(f"NEXUS taxon {name!r}: {ch!r} is never closed", path=path)
            mask = 0
            for state in text[i + 1:j]:
                if state.isspace() or state == ",":
                    continue
                m = 15 if state in (missing, gap) else IUPAC_MASKS.get(state.upper(), 0)
                if m == 0:
                    raise AlignmentError(
                        f"unknown state {state!r} in {text[i:j + 1]!r} of taxon {name!r}"
                        f"{_non_dna_hint(text[i:j + 1])}", path=path)
                mask |= m
            if mask == 0:
                raise AlignmentError(f"empty state set {text[i:j + 1]!r} in taxon {name!r}",
                                     path=path)
            sites.append(_MASK_LETTER[mask])
            i = j + 1
            continue
        sites.append("?" if ch == missing else "-" if ch == gap else ch)
        i += 1
    return "".join(sites), i


def _nexus_take_plain_sites(text: str, pos: int, limit: int | None, missing: str,
                            gap: str) -> tuple[str, int]:
    table = str.maketrans({missing: "?", gap: "-"}) if (missing, gap) != ("?", "-") else None
    chunks: list[str] = []
    count = 0
    end = len(text)
    for m in _WORD.finditer(text, pos):
        if limit is not None and count >= limit:
            end = m.start()
            break
        word = m.group()
        if limit is not None and count + len(word) > limit:  # the row runs into the next
            word = word[:limit - count]
            end = m.start() + len(word)
            chunks.append(word)
            count += len(word)
            break
        chunks.append(word)
        count += len(word)
    joined = "".join(chunks)
    if table is not None:
        joined = joined.translate(table)
    return joined, end


#: state mask → one IUPAC letter (mask 15 as N: an ambiguity set of all four bases).
_MASK_LETTER = "?ACMGRSVTWYHKDBN"


# ---------------------------------------------------------------------------
# non-DNA data
# ---------------------------------------------------------------------------

#: Letters of the amino-acid alphabet that are not IUPAC nucleotide codes.
_PROTEIN_ONLY = set("EFIJLOPQZ*")


def _non_dna_hint(text: str) -> str:
    """``"; this looks like …"`` when ``text`` has protein or morphology characters."""
    chars = set(text.upper())
    if chars & _PROTEIN_ONLY:
        letters = "".join(sorted(chars & _PROTEIN_ONLY))
        return (f"; this looks like a protein alignment (amino-acid letters {letters}): "
                f"phylo reads DNA alignments only")
    if chars & set("0123456789"):
        return ("; this looks like a morphological (standard, digit-coded) matrix: "
                "phylo reads DNA alignments only")
    return ""


def describe_non_dna(sequences: Sequence[str]) -> str:
    """What a set of sequences with non-nucleotide characters appears to be ("" if unclear).

    Protein: amino-acid letters that no IUPAC nucleotide code uses (E, F, I, L, P, Q…);
    morphology: digit states; mixed: both nucleotide-only rows and such rows."""
    kinds = []
    for seq in sequences:
        hint = _non_dna_hint(seq)
        kinds.append("protein" if "protein" in hint else "morphology" if hint else "dna")
    found = set(kinds)
    if found == {"dna"}:
        return ""
    if len(found) > 1:
        what = " and ".join(sorted(k for k in found if k != "dna"))
        return (f"; this looks like mixed data ({what} rows beside nucleotide rows): "
                f"phylo reads DNA alignments only")
    return _non_dna_hint("".join(sequences))


_NEXUS_PLAIN_NAME = re.compile(r"[^\s()\[\]{}/\\,;:=*'\"`<>^]+")


def _nexus_name(name: str) -> str:
    """A NEXUS word for ``name``: unquoted when it has no blank or punctuation."""
    if _NEXUS_PLAIN_NAME.fullmatch(name):
        return name
    return "'" + name.replace("'", "''") + "'"


def write_fasta(alignment: Alignment, path: str | os.PathLike) -> None:
    Path(path).write_text(alignment.to_fasta())
