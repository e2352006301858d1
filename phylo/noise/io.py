"""Reading and writing genotype matrices in the formats of SCITE and PhISCS.

In memory a genotype matrix is ``int8[cells, mutations]`` with entries 0
(reference), 1 (mutated) and :data:`MISSING` (3, not observed).

- SCITE (Jahn et al. 2016): plain text, **mutations × cells**, whitespace
  separated, entries 0, 1, 2 (homozygous mutant, kept as 2: the binary error
  model reads it as mutated, the ternary one as a homozygous call) and 3
  (missing); no names in the file. Mutation names come from a ``.geneNames``
  file (one name per line, SCITE's ``-names``): given explicitly, or found
  beside the matrix with the same stem (``dataHou18.csv`` →
  ``dataHou18.geneNames``). Any line ending (LF, CRLF, or the CR-only ends of
  SCITE's ``dataHou18.csv``) is read.
- PhISCS (Malikic et al. 2019): tab separated, **cells × mutations**, a header
  row whose first field names the corner (``cellID/mutID``) followed by the
  mutation names, then one row per cell starting with its name; entries 0, 1 and
  ``?`` (some PhISCS files write 3) for missing.

Files may be gzip-compressed (detected by their magic bytes). Every problem
(including truncated or corrupt gzip data and duplicate cell or mutation
names) raises :class:`phylo.errors.GenotypeError` naming the file and line.
"""
from __future__ import annotations

import gzip
import math
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import GenotypeError

MISSING = 3
FORMATS = ("scite", "phiscs")
_SCITE_VALUES = {"0": 0, "1": 1, "2": 2, "3": MISSING}
_PHISCS_VALUES = {"0": 0, "1": 1, "?": MISSING, "3": MISSING}


@dataclass(frozen=True)
class GenotypeMatrix:
    """A genotype matrix with names. ``values`` is int8[cells, mutations]."""

    values: np.ndarray
    cells: list[str] = field(default_factory=list)
    mutations: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape

    @property
    def missing_fraction(self) -> float:
        return float(np.mean(self.values == MISSING)) if self.values.size else 0.0


def default_names(n_cells: int, n_mutations: int) -> tuple[list[str], list[str]]:
    return ([f"cell{i + 1}" for i in range(n_cells)],
            [f"mut{j + 1}" for j in range(n_mutations)])


def _lines(path: str | os.PathLike) -> list[str]:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise GenotypeError(f"cannot read: {exc.strerror}", path=path) from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise GenotypeError(f"truncated or corrupt gzip data ({exc})", path=path) from None
    try:
        return raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise GenotypeError(f"not a text file ({exc.reason})", path=path) from None


def detect_format(path: str | os.PathLike) -> str:
    """'phiscs' when the first non-empty line starts with a non-numeric field
    (a header), else 'scite'."""
    for line in _lines(path):
        fields = line.split()
        if fields:
            return "scite" if fields[0] in _SCITE_VALUES else "phiscs"
    raise GenotypeError("empty file: no genotype data", path=path)


def read_matrix(path: str | os.PathLike, format: str = "auto", *,
                names: str | os.PathLike | None = None) -> GenotypeMatrix:
    """Read a genotype matrix; ``format`` is 'scite', 'phiscs' or 'auto'.

    ``names``: SCITE mutation-names file (one per line); by default a
    ``.geneNames`` file beside a SCITE matrix with the same stem is used when
    present. PhISCS files carry their names."""
    if format == "auto":
        format = detect_format(path)
    if format == "scite":
        gm = _read_scite(path)
        if names is None:
            sibling = Path(path).with_suffix(".geneNames")
            names = sibling if sibling.is_file() and sibling != Path(path) else None
        if names is not None:
            gm = GenotypeMatrix(gm.values, gm.cells, read_names(names, gm.shape[1]))
        return gm
    if names is not None:
        raise GenotypeError("a names file applies to SCITE matrices only (PhISCS files "
                            "name their mutations in the header)", path=names)
    if format == "phiscs":
        return _read_phiscs(path)
    raise GenotypeError(f"unknown matrix format {format!r}; expected one of "
                        f"auto, {', '.join(FORMATS)}", path=path)


def read_names(path: str | os.PathLike, expected: int) -> list[str]:
    """Mutation names, one per non-empty line (SCITE's ``.geneNames``)."""
    names = [line.strip() for line in _lines(path) if line.strip()]
    if len(names) != expected:
        raise GenotypeError(f"{len(names)} names for {expected} mutations (rows of the "
                            "matrix)", path=path)
    _check_unique(names, "mutation", path)
    return names


def _check_unique(names: Sequence[str], what: str, path) -> None:
    seen: dict[str, int] = {}
    for k, name in enumerate(names):
        if name in seen:
            raise GenotypeError(f"duplicate {what} name {name!r} ({what}s {seen[name] + 1} "
                                f"and {k + 1}): results would be ambiguous", path=path)
        seen[name] = k


def _read_scite(path) -> GenotypeMatrix:
    rows: list[list[int]] = []
    width = None
    for lineno, line in enumerate(_lines(path), start=1):
        fields = line.split()
        if not fields:
            continue
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            raise GenotypeError(f"ragged rows: {len(fields)} entries, expected {width} "
                                "like the first row", path=path, line=lineno)
        try:
            rows.append([_SCITE_VALUES[f] for f in fields])
        except KeyError:
            bad = next(f for f in fields if f not in _SCITE_VALUES)
            col = fields.index(bad) + 1
            raise GenotypeError(f"unknown entry {bad!r} in column {col}; SCITE "
                                "matrices hold 0, 1, 2 (mutant) or 3 (missing)",
                                path=path, line=lineno) from None
    if not rows:
        raise GenotypeError("empty file: no genotype data", path=path)
    values = np.array(rows, dtype=np.int8).T.copy()  # mutations × cells -> cells × mutations
    cells, muts = default_names(*values.shape)
    return GenotypeMatrix(values, cells, muts)


def _read_phiscs(path) -> GenotypeMatrix:
    header = None
    cells: list[str] = []
    rows: list[list[int]] = []
    for lineno, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\n\r").split("\t")
        if len(fields) == 1:  # tolerate space-separated files
            fields = line.split()
        fields = [f.strip() for f in fields]
        if header is None:
            if len(fields) < 2:
                raise GenotypeError("PhISCS header needs a corner field (cellID/mutID) "
                                    "and at least one mutation name", path=path, line=lineno)
            if fields[0] in _PHISCS_VALUES:
                raise GenotypeError(f"PhISCS header expected (e.g. 'cellID/mutID\\tmut1...'), "
                                    f"found entry {fields[0]!r}", path=path, line=lineno)
            header = fields
            continue
        if len(fields) != len(header):
            raise GenotypeError(f"ragged rows: {len(fields)} fields, expected {len(header)} "
                                "(cell name + one per mutation in the header)",
                                path=path, line=lineno)
        values = []
        for col, f in enumerate(fields[1:], start=2):
            v = _PHISCS_VALUES.get(f)
            if v is None:
                raise GenotypeError(f"unknown entry {f!r} in column {col} (mutation "
                                    f"{header[col - 1]}); PhISCS matrices hold 0, 1 or ? "
                                    "(or 3) for missing", path=path, line=lineno)
            values.append(v)
        cells.append(fields[0])
        rows.append(values)
    if header is None:
        raise GenotypeError("empty file: no genotype data", path=path)
    if not rows:
        raise GenotypeError("no cells: the file has a header but no rows", path=path)
    _check_unique(header[1:], "mutation", path)
    _check_unique(cells, "cell", path)
    return GenotypeMatrix(np.array(rows, dtype=np.int8), cells, header[1:])


def write_matrix(path: str | os.PathLike, matrix: np.ndarray | GenotypeMatrix,
                 format: str = "scite", *, cells: Sequence[str] | None = None,
                 mutations: Sequence[str] | None = None,
                 missing_symbol: str = "?") -> None:
    """Write ``matrix`` (int8[cells, mutations] or :class:`GenotypeMatrix`).

    SCITE files are written mutations × cells with 3 for missing (names are
    not part of the format: see :func:`write_names`); PhISCS files cells ×
    mutations with ``missing_symbol`` ('?' or '3')."""
    if isinstance(matrix, GenotypeMatrix):
        cells = cells or matrix.cells
        mutations = mutations or matrix.mutations
        matrix = matrix.values
    values = np.asarray(matrix)
    if values.ndim != 2 or values.size == 0:
        raise GenotypeError("cannot write an empty or non-2D matrix", path=path)
    if not np.isin(values, (0, 1, 2, MISSING)).all():
        raise GenotypeError("entries must be 0, 1, 2 (homozygous) or 3 (missing)", path=path)
    n, m = values.shape
    dc, dm = default_names(n, m)
    cells = list(cells) if cells else dc
    mutations = list(mutations) if mutations else dm
    if format == "scite":
        text = "\n".join(" ".join(str(int(v)) for v in row) for row in values.T) + "\n"
    elif format == "phiscs":
        if missing_symbol not in ("?", "3"):
            raise GenotypeError("missing_symbol must be '?' or '3'", path=path)
        if (values == 2).any():
            raise GenotypeError("PhISCS files hold 0/1 only: the matrix has homozygous "
                                "(2) calls; write it as scite", path=path)
        sym = {0: "0", 1: "1", MISSING: missing_symbol}
        out = ["\t".join(["cellID/mutID", *mutations])]
        for name, row in zip(cells, values):
            out.append("\t".join([name, *(sym[int(v)] for v in row)]))
        text = "\n".join(out) + "\n"
    else:
        raise GenotypeError(f"unknown matrix format {format!r}; expected one of "
                            f"{', '.join(FORMATS)}", path=path)
    Path(path).write_text(text, encoding="utf-8")


def write_names(path: str | os.PathLike, names: Sequence[str]) -> None:
    """Write mutation names one per line (SCITE's ``.geneNames``)."""
    Path(path).write_text("\n".join(names) + "\n", encoding="utf-8")


#: rate columns of a rates file, in :class:`phylo.noise.ErrorModel`'s names
RATE_COLUMNS = ("fp", "fn", "hom", "cc")


@dataclass(frozen=True)
class RateTable:
    """Per-cell or per-mutation error rates read by :func:`read_rates`.

    ``axis``: 'cell' or 'mutation'; ``rates``: column name ('fp', 'fn',
    'hom', 'cc') → float64 array shaped (cells, 1) for per-cell rates or
    (1, mutations) for per-mutation rates, in the matrix's order (the 2-D
    shape is what :class:`phylo.noise.ErrorModel` takes unambiguously, also
    on square matrices)."""

    axis: str
    rates: dict


def read_rates(path: str | os.PathLike, cells: Sequence[str],
               mutations: Sequence[str]) -> RateTable:
    """Read per-cell or per-mutation error rates from a CSV file.

    Layout: a header whose first field is ``cell`` or ``mutation`` (which
    names the rows hold), followed by one or more of ``fp``, ``fn``, ``hom``,
    ``cc``; then one row per cell (or mutation) of the matrix: its name and
    its rates. Commas separate fields (tabs are accepted too); blank lines
    and lines starting with ``#`` are skipped. Refused, naming the file and
    line: an unknown header or duplicate column, a row of the wrong length,
    a name that is not in the matrix or appears twice, names of the matrix
    with no row, and a rate that is not a finite number in [0, 1)."""
    header = None
    axis = ""
    names: list[str] = []
    values: dict[str, list[float]] = {}
    seen: dict[str, int] = {}
    for lineno, line in enumerate(_lines(path), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = [f.strip() for f in (text.split("\t") if "\t" in text else text.split(","))]
        if header is None:
            axis = fields[0].lower()
            if axis not in ("cell", "mutation") or len(fields) < 2:
                raise GenotypeError("rates header must be 'cell' or 'mutation' followed by "
                                    f"rate columns ({', '.join(RATE_COLUMNS)}), got "
                                    f"{text!r}", path=path, line=lineno)
            header = [f.lower() for f in fields[1:]]
            for col in header:
                if col not in RATE_COLUMNS:
                    raise GenotypeError(f"unknown rate column {col!r}; expected "
                                        f"{', '.join(RATE_COLUMNS)}", path=path, line=lineno)
                if header.count(col) > 1:
                    raise GenotypeError(f"rate column {col!r} appears twice", path=path,
                                        line=lineno)
            values = {col: [] for col in header}
            known = set(cells if axis == "cell" else mutations)
            continue
        if len(fields) != len(header) + 1:
            raise GenotypeError(f"{len(fields)} fields, expected {len(header) + 1} (the "
                                f"{axis} name and {', '.join(header)})", path=path, line=lineno)
        name = fields[0]
        if name not in known:
            raise GenotypeError(f"unknown {axis} {name!r}: not in the genotype matrix",
                                path=path, line=lineno)
        if name in seen:
            raise GenotypeError(f"{axis} {name!r} appears twice (lines {seen[name]} and "
                                f"{lineno})", path=path, line=lineno)
        seen[name] = lineno
        for col, f in zip(header, fields[1:]):
            try:
                x = float(f)
            except ValueError:
                x = math.nan
            if not (math.isfinite(x) and 0.0 <= x < 1.0):
                raise GenotypeError(f"{col} rate of {axis} {name!r} must be a finite number "
                                    f"in [0, 1), got {f!r}", path=path, line=lineno)
            values[col].append(x)
        names.append(name)
    if header is None:
        raise GenotypeError("empty rates file: expected a header 'cell,...' or "
                            "'mutation,...' and one row per name", path=path)
    order = list(cells if axis == "cell" else mutations)
    absent = [x for x in order if x not in seen]
    if absent:
        more = f" and {len(absent) - 3} more" if len(absent) > 3 else ""
        raise GenotypeError(f"no rates for {len(absent)} {axis}s of the genotype matrix: "
                            f"{', '.join(repr(x) for x in absent[:3])}{more}", path=path)
    index = {x: k for k, x in enumerate(names)}
    rates = {}
    for col in header:
        arr = np.array([values[col][index[x]] for x in order], dtype=np.float64)
        rates[col] = arr.reshape(-1, 1) if axis == "cell" else arr.reshape(1, -1)
    return RateTable(axis, rates)
