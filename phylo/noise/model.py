"""Error models of single-cell genotype observations (SCITE's binary and ternary).

The true genotype of a cell at a mutation site is 0 (reference) or 1 (mutated,
heterozygous); the observation is 0, 1, 2 (homozygous mutant call) or missing
(3). Given the true state every observed entry is independent, with

======================  ======================  =====================
observed \\ true         0                       1
======================  ======================  =====================
0                       1 − α − cc              β
1                       α                       1 − β − hom
2 (ternary model)       cc                      hom
missing                 1                       1
======================  ======================  =====================

This is the model of Jahn, Kuipers & Beerenwinkel (2016, *Genome Biology*
17:86, SCITE), whose command-line rates map as ``-fd`` = α, ``-ad β hom`` =
(β, hom) and ``-cc`` = cc. In the **binary** model (``ternary=False``, the
default, hom = cc = 0) an observed 2 is read as an observed 1 (mutated); SCITE
with a single ``-ad`` instead ignores 2 entries (scores them 0 under both
states), so a user running SCITE's README command on Hou18 (ternary, ``-ad
0.21545 0.21545 -cc 1.3e-05``) and ``phylo noise solve --fp 6.04e-5 --fn
0.21545`` optimise different objectives: pass ``--hom 0.21545 --cc 1.3e-05``
to get SCITE's.

Rates may be scalars, per-cell vectors (length cells) or per-mutation vectors
(length mutations); a rate of exactly 0 is allowed (PhISCS-BnB assumes α = 0):
observations it makes impossible get log-probability −inf, and the search
handles them exactly (:func:`log_tables`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import PhyloError

MISSING = 3


_LABELS = {"fp": "false-positive rate alpha (fp)", "fn": "false-negative rate beta (fn)",
           "hom": "homozygous-call rate of mutated sites (hom)",
           "cc": "homozygous-call rate of unmutated sites (cc)"}


def _rate_array(name: str, value, n_cells: int, n_mutations: int) -> np.ndarray:
    """A rate as float64[R, C] with R in {1, cells}, C in {1, mutations}."""
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        out = a.reshape(1, 1)
    elif a.ndim == 1 and a.size == n_cells and a.size != n_mutations:
        out = a.reshape(-1, 1)
    elif a.ndim == 1 and a.size == n_mutations and a.size != n_cells:
        out = a.reshape(1, -1)
    elif a.ndim == 1 and a.size == n_cells == n_mutations:
        raise PhyloError(f"{name}: a vector of length {a.size} is ambiguous on a square "
                         f"matrix; pass it as shape ({a.size}, 1) for cells or (1, {a.size}) "
                         "for mutations")
    elif a.ndim == 2 and a.shape[0] in (1, n_cells) and a.shape[1] in (1, n_mutations):
        out = a
    else:
        raise PhyloError(f"{name} must be a number, one rate per cell ({n_cells}) or one "
                         f"per mutation ({n_mutations}), got shape {a.shape}")
    if not np.all(np.isfinite(out)) or np.any(out < 0.0) or np.any(out >= 1.0):
        raise PhyloError(f"{name} rates must be in [0, 1), got {_describe(out)}")
    return out


def _describe(a: np.ndarray) -> str:
    bad = a[~(np.isfinite(a) & (a >= 0.0) & (a < 1.0))]
    return str(bad.flat[0]) if bad.size else str(a.flat[0])


@dataclass(frozen=True)
class ErrorModel:
    """Rates of the observation model (see the module docstring).

    ``fp`` = α (observed 1 | true 0), ``fn`` = β (observed 0 | true 1, SCITE's
    first ``-ad``), ``hom`` (observed 2 | true 1, SCITE's second ``-ad``),
    ``cc`` (observed 2 | true 0, SCITE's ``-cc``). Each is a float or an array
    (per cell or per mutation). ``ternary``: distinguish observed 2 from 1."""

    fp: float | np.ndarray
    fn: float | np.ndarray
    hom: float | np.ndarray = 0.0
    cc: float | np.ndarray = 0.0
    ternary: bool = False

    def __post_init__(self) -> None:
        if not self.ternary and (np.any(np.asarray(self.hom) != 0)
                                 or np.any(np.asarray(self.cc) != 0)):
            raise PhyloError("hom and cc rates need the ternary model (ternary=True)")

    @property
    def scalar(self) -> bool:
        return all(np.ndim(r) == 0 for r in (self.fp, self.fn, self.hom, self.cc))

    def probabilities(self, n_cells: int, n_mutations: int) -> np.ndarray:
        """float64[R, C, 4, 2]: P(observed d | true t), validated (each column
        of the 3×2 table sums to 1; rows for missing are 1)."""
        rates = {k: _rate_array(_LABELS[k], getattr(self, k), n_cells, n_mutations)
                 for k in ("fp", "fn", "hom", "cc")}
        R = max(r.shape[0] for r in rates.values())
        C = max(r.shape[1] for r in rates.values())
        fp, fn, hom, cc = (np.broadcast_to(rates[k], (R, C)) for k in ("fp", "fn", "hom", "cc"))
        P = np.empty((R, C, 4, 2))
        P[..., 0, 0] = 1.0 - fp - cc
        P[..., 0, 1] = fn
        P[..., 1, 0] = fp
        P[..., 1, 1] = 1.0 - fn - hom
        if self.ternary:
            P[..., 2, 0] = cc
            P[..., 2, 1] = hom
        else:  # binary: an observed 2 is an observed 1
            P[..., 2, :] = P[..., 1, :]
        P[..., 3, :] = 1.0
        if np.any(P[..., :3, :] < 0.0) or np.any(P[..., :3, :] > 1.0):
            raise PhyloError("rates leave a negative probability: need fp + cc < 1 and "
                             "fn + hom < 1")
        return P

    def log_probabilities(self, n_cells: int, n_mutations: int) -> np.ndarray:
        """log of :meth:`probabilities` (natural log; −inf for probability 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.probabilities(n_cells, n_mutations))

    def as_dict(self) -> dict:
        def val(x):
            return float(x) if np.ndim(x) == 0 else np.asarray(x).tolist()
        return {"model": "ternary" if self.ternary else "binary", "fp": val(self.fp),
                "fn": val(self.fn), "hom": val(self.hom), "cc": val(self.cc)}


def log_tables(D: np.ndarray, model: ErrorModel) -> tuple[np.ndarray, float]:
    """Finite log tables for the kernels and the penalty that replaced −inf.

    A rate of 0 makes some observations impossible under one true state
    (log 0 = −inf). The kernels need finite scores, so −inf becomes −P with P
    larger than the whole range of finite log-likelihoods of D (1 + Σ over
    observed entries of the largest finite |log p|): then any matrix with an
    impossible entry scores below every matrix without one, so the search
    optimises exactly the lexicographic objective (fewest impossible entries,
    then likelihood) and finds the exact optimum whenever a possible matrix
    exists. Returns ``(logs, P)`` with P = 0 when nothing is impossible."""
    L = model.log_probabilities(*D.shape)
    if np.all(np.isfinite(L)):
        return np.ascontiguousarray(L), 0.0
    finite = np.abs(L[np.isfinite(L)])
    n_obs = int(np.count_nonzero(D != MISSING))
    penalty = 1.0 + n_obs * 2.0 * (float(finite.max()) if finite.size else 1.0)
    # an entry impossible under both states can never be explained
    both = ~np.isfinite(L[..., :3, 0]) & ~np.isfinite(L[..., :3, 1])
    if both.any():
        _, _, d = np.nonzero(both)
        present = set(int(x) for x in np.unique(D[D != MISSING]))
        bad = sorted(present.intersection(int(x) for x in d))
        if bad:
            raise PhyloError(f"observed {bad[0]} entries have probability 0 under both true "
                             "states with these rates")
    L = np.where(np.isfinite(L), L, -penalty)
    return np.ascontiguousarray(L), penalty


def entry_log_likelihood(D: np.ndarray, A: np.ndarray, model: ErrorModel) -> float:
    """log P(D | A) = Σ over entries of log P(D[c, j] | A[c, j]) (natural log;
    −inf when some observed entry is impossible under A)."""
    L = model.log_probabilities(*D.shape)
    R, C = L.shape[:2]
    rows = np.arange(D.shape[0])[:, None] if R > 1 else np.zeros((1, 1), dtype=np.int64)
    cols = np.arange(D.shape[1])[None, :] if C > 1 else np.zeros((1, 1), dtype=np.int64)
    terms = L[rows, cols, D.astype(np.int64), A.astype(np.int64)]
    if np.any(terms == -np.inf):
        return -math.inf
    return float(terms.sum())
