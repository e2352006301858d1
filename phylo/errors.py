"""One exception hierarchy for every error `phylo` raises on bad input.

Every error derives from :class:`PhyloError` (itself a ``ValueError`` so that
generic callers can catch it). Messages name the file, and where known the line
and the taxon, so that the command line can print them as one line.
"""
from __future__ import annotations

from os import PathLike


class PhyloError(ValueError):
    """Base class of all `phylo` input and usage errors."""

    def __init__(self, message: str, *, path: str | PathLike | None = None,
                 line: int | None = None) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.detail = message
        where = ""
        if self.path is not None:
            where = self.path + (f":{line}" if line is not None else "") + ": "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(where + message)


class FormatError(PhyloError):
    """A file is malformed or in an unsupported format."""


class AlignmentError(PhyloError):
    """An alignment is empty, ragged, or has unknown characters."""


class TreeError(PhyloError):
    """A tree is malformed: bad Newick, non-binary, negative or missing branch lengths."""


class TaxonMismatchError(PhyloError):
    """Taxa of an alignment and a tree (or of several inputs) do not match."""


class ModelError(PhyloError):
    """A substitution model string or its parameters are invalid."""


class EstimatorError(PhyloError):
    """An estimator name or its settings are invalid."""


class GenotypeError(PhyloError):
    """A genotype matrix is malformed or has invalid entries."""


class ReportError(PhyloError):
    """Results given to a report cannot be summarised (no candidate, no finite value)."""


class CheckpointError(PhyloError):
    """A checkpoint file does not match the run that tries to resume from it."""


class DeviceError(PhyloError):
    """A requested compute device (``device="cuda"``) is not available here."""
