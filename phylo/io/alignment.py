"""DNA alignments: reading (FASTA, NEXUS, PHYLIP through Biopython) and site patterns.

States are encoded as 4-bit masks, A=1, C=2, G=4, T=8; an IUPAC ambiguity code is
the OR of its states and gaps/missing (``-``, ``?``, ``N``, ``.``, ``X``) are 15, so a
tip's partial likelihood vector is the indicator of the mask's bits — the convention
of MrBayes, IQ-TREE, PhyML and BEAGLE (../shared/METHODS.md §1).
"""
from __future__ import annotations

import gzip
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import AlignmentError, FormatError, TaxonMismatchError

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
            raise AlignmentError(
                f"unknown character {seqs[row][col]!r} in taxon {names[row]!r} at site {col + 1} "
                f"(expected IUPAC DNA codes, '-', '?')", path=source)
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
        """Relaxed sequential PHYLIP (names end at the first space)."""
        width = max(len(n) for n in self.taxa) + 2
        rows = [f"{n.ljust(width)}{s}\n" for n, s in zip(self.taxa, self.sequences())]
        return f"{self.n_taxa} {self.n_sites}\n" + "".join(rows)

    def to_nexus(self) -> str:
        width = max(len(n) for n in self.taxa) + 2
        rows = [f"  {n.ljust(width)}{s}\n" for n, s in zip(self.taxa, self.sequences())]
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


def read_alignment(path: str | os.PathLike, *, format: str | None = None) -> Alignment:
    """Read a DNA alignment from FASTA, NEXUS or PHYLIP (optionally gzip-compressed).

    The format is detected from the content when ``format`` is None. Errors (missing
    file, malformed content, unknown characters, unequal lengths, duplicate or no
    taxa) raise a :class:`phylo.errors.PhyloError` naming the file.
    """
    path = os.fspath(path)
    text = _read_text(path)
    fmt = (format or _detect_format(text, path)).lower()
    if fmt in ("fasta", "fa", "fas"):
        records = _parse_fasta(text, path)
    elif fmt in ("nexus", "nex"):
        records = _parse_with_biopython(text, "nexus", path)
    elif fmt in ("phylip", "phy", "phylip-relaxed"):
        records = _parse_phylip(text, path)
    else:
        raise FormatError(f"unknown alignment format {fmt!r} (fasta, nexus, phylip)", path=path)
    return Alignment.from_sequences(records, source=path)


def _read_text(path: str) -> str:
    if not os.path.exists(path):
        raise FormatError("no such file", path=path)
    if os.path.isdir(path):
        raise FormatError("is a directory, expected an alignment file", path=path)
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except OSError as exc:
            raise FormatError(f"corrupt gzip data ({exc})", path=path) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


_SUFFIX_FORMATS = {"fa": "fasta", "fasta": "fasta", "fas": "fasta", "fna": "fasta",
                   "nex": "nexus", "nexus": "nexus", "phy": "phylip", "phylip": "phylip"}


def _detect_format(text: str, path: str) -> str:
    head = text.lstrip()
    if not head:
        raise AlignmentError("the file is empty", path=path)
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


def _parse_fasta(text: str, path: str) -> list[tuple[str, str]]:
    records: list[tuple[str, str]] = []
    name: str | None = None
    chunks: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            if name is not None:
                records.append((name, "".join(chunks)))
            name = line[1:].strip().split()[0] if line[1:].strip() else ""
            if not name:
                raise AlignmentError("sequence without a name", path=path, line=lineno)
            chunks = []
        else:
            if name is None:
                raise FormatError("sequence data before the first '>' header", path=path,
                                  line=lineno)
            chunks.append("".join(line.split()))
    if name is not None:
        records.append((name, "".join(chunks)))
    return records


def _parse_phylip(text: str, path: str) -> list[tuple[str, str]]:
    """Relaxed PHYLIP (sequential or interleaved; names end at whitespace)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    try:
        ntax, nchar = (int(x) for x in lines[0].split()[:2])
    except ValueError:
        raise FormatError("PHYLIP header must be 'ntax nchar'", path=path, line=1) from None
    names: list[str] = []
    seqs: list[list[str]] = []
    row = 0
    for lineno, line in enumerate(lines[1:], 2):
        if len(names) < ntax:
            parts = line.split(None, 1)
            names.append(parts[0])
            seqs.append([("".join(parts[1].split())) if len(parts) > 1 else ""])
            continue
        current = sum(len(c) for c in seqs[row])
        if current >= nchar:
            row = (row + 1) % ntax
        seqs[row].append("".join(line.split()))
        if sum(len(c) for c in seqs[row]) >= nchar:
            row = (row + 1) % ntax
    if len(names) != ntax:
        raise AlignmentError(f"header says {ntax} taxa, found {len(names)}", path=path)
    records = [(n, "".join(s)) for n, s in zip(names, seqs)]
    for n, s in records:
        if len(s) != nchar:
            raise AlignmentError(f"header says {nchar} sites, taxon {n!r} has {len(s)}", path=path)
    return records


def _parse_with_biopython(text: str, fmt: str, path: str) -> list[tuple[str, str]]:
    from Bio import AlignIO
    try:
        aln = AlignIO.read(io.StringIO(text), fmt)
    except Exception as exc:  # Biopython raises many types; report one clear error
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FormatError(f"cannot read {fmt.upper()} alignment: {message}", path=path) from None
    return [(rec.id, str(rec.seq)) for rec in aln]


def write_fasta(alignment: Alignment, path: str | os.PathLike) -> None:
    Path(path).write_text(alignment.to_fasta())
