"""Exact checks on a complete binary genotype matrix (cells × mutations).

- Three-gametes test / perfect phylogeny (Gusfield 1991, "Efficient algorithms
  for inferring evolutionary trees", Networks 21:19–28): sort the columns as
  binary numbers (radix sort, largest first), drop duplicates, and record for
  every 1-entry the nearest 1 to its left in the same row; A is conflict-free iff
  within every column all 1-entries agree on it, and that common neighbour is the
  column's parent in the tree. O(cells · mutations).
- Linearity: the columns form one chain under inclusion (a tree without
  branching). Sort columns by their number of ones; a chain needs only
  consecutive inclusions. O(cells · mutations).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._kernels import noise as _k
from ..errors import GenotypeError
from .io import MISSING


@dataclass(frozen=True)
class PerfectPhylogeny:
    """Result of the three-gametes test.

    ``conflicting_pair``: two column indices showing (1,0), (0,1) and (1,1), or
    None. When conflict-free, ``parent`` (int64[mutations], root = mutations) and
    ``attachment`` (int64[cells], root = mutations) form a mutation tree whose
    matrix is A: identical columns become a chain, an empty column a leaf."""

    conflict_free: bool
    conflicting_pair: tuple[int, int] | None
    parent: np.ndarray | None
    attachment: np.ndarray | None


@dataclass(frozen=True)
class Linearity:
    """``linear``: columns totally ordered by inclusion; ``order``: columns by
    decreasing number of ones (the chain from the root when linear);
    ``unnested_pair``: two columns neither containing the other, or None."""

    linear: bool
    unnested_pair: tuple[int, int] | None
    order: np.ndarray


def as_binary(A, *, what: str = "matrix") -> np.ndarray:
    """Validate a complete 0/1 matrix (cells × mutations) as contiguous int8;
    homozygous calls (2) count as mutated (1)."""
    A = np.asarray(A)
    if A.ndim != 2 or A.shape[0] == 0 or A.shape[1] == 0:
        raise GenotypeError(f"{what} must be a non-empty 2-D array (cells × mutations), "
                            f"got shape {A.shape}")
    if (A == MISSING).any():
        raise GenotypeError(f"{what} has missing entries; the exact checks need a "
                            "complete 0/1 matrix (infer them first: `phylo noise solve`, "
                            "or phylo.noise.solve in Python)")
    if not np.isin(A, (0, 1, 2)).all():
        raise GenotypeError(f"{what} entries must be 0, 1 or 2 (homozygous, read as 1)")
    return np.ascontiguousarray(np.where(A == 2, 1, A), dtype=np.int8)


def perfect_phylogeny(A) -> PerfectPhylogeny:
    """Gusfield's three-gametes test and perfect phylogeny in O(cells · mutations)."""
    A = as_binary(A)
    ok, a, b, parent, attach = _k.perfect_phylogeny(A)
    if ok:
        return PerfectPhylogeny(True, None, parent, attach)
    a, b = sorted((int(a), int(b)))
    return PerfectPhylogeny(False, (a, b), None, None)


def is_conflict_free(A) -> bool:
    return perfect_phylogeny(A).conflict_free


def linearity(A) -> Linearity:
    """Do the mutation columns form one chain under inclusion?"""
    A = as_binary(A)
    ok, a, b, order = _k.linear_order(A)
    pair = None if ok else tuple(sorted((int(a), int(b))))
    return Linearity(bool(ok), pair, order)


def is_linear(A) -> bool:
    return linearity(A).linear
