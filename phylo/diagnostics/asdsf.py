"""Average standard deviation of split frequencies (ASDSF), MrBayes' convention.

MrBayes (``sumt``/``mcmc`` diagnostics, 3.2.7a) computes, over the post-burn-in tree
samples of ``R >= 2`` runs:

* the frequency of each non-trivial split in each run = (summed weight of the run's
  trees containing the split) / (summed weight of the run's trees), i.e. relative to
  the run's own number of post-burn-in samples;
* the splits used are those whose frequency is ``>= minpartfreq`` in at least one run
  (with ``minpartfreq = 0`` every split seen in any run);
* for each such split the sample standard deviation (denominator ``R - 1``) of its
  frequency across runs (a run that never saw it contributes 0);
* ASDSF = the plain mean of these standard deviations; max SDSF = their maximum.

Burn-in is MrBayes' ``relburnin=yes burninfrac=0.25``: the first ``int(0.25 * n)`` of
the ``n`` trees of each file are dropped, the tree of generation 0 counted as one of
the ``n``. See METHODS.md §3. Checked against MrBayes' own values in
``shared/reference`` (tests/test_diagnostics.py).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Sequence

import numpy as np

from ..errors import PhyloError
from ..trees.splits import RowTable, TopologySample, n_words, split_counts


@dataclass
class SplitTable:
    """Split frequencies per run.

    fingerprints: (k, 2) uint64 split identities (:class:`~phylo.trees.splits.SplitCounts`);
    freq: (k, R) frequency of each split in each run; taxa: leaf order;
    n_samples: (R,) post-burn-in trees (or summed weights) per run.
    ``splits`` gives the (k, W) normalised split bitsets (side without taxon 0),
    built when first asked for (k x W words: large at 10⁴ taxa).
    """

    taxa: tuple[str, ...]
    fingerprints: np.ndarray
    freq: np.ndarray
    n_samples: np.ndarray
    _runs: list = field(default_factory=list, repr=False)
    _first: np.ndarray | None = field(default=None, repr=False)   # (k, 2): run, local id

    @property
    def n_runs(self) -> int:
        return int(self.freq.shape[1])

    @cached_property
    def splits(self) -> np.ndarray:
        w = n_words(len(self.taxa))
        out = np.zeros((self.freq.shape[0], w), dtype=np.uint64)
        for r, counts in enumerate(self._runs):
            rows = np.flatnonzero(self._first[:, 0] == r)
            out[rows] = counts.bitsets(self._first[rows, 1])
        return out


@dataclass
class AsdsfResult:
    asdsf: float
    max_sdsf: float
    n_splits: int
    minpartfreq: float
    n_runs: int
    n_samples: list[float]
    table: SplitTable

    def to_dict(self) -> dict:
        return {"asdsf": self.asdsf, "max_sdsf": self.max_sdsf, "n_splits": self.n_splits,
                "minpartfreq": self.minpartfreq, "n_runs": self.n_runs,
                "n_samples": self.n_samples}


def split_table(samples: Sequence[TopologySample]) -> SplitTable:
    """Frequencies of every split seen in any of the samples (one column per run).

    Splits are matched across runs by their fingerprints (:func:`split_counts`):
    40 bytes per distinct split, so 10⁴-taxon samples fit in memory."""
    if not samples:
        raise PhyloError("no tree samples")
    taxa = samples[0].taxa
    table = RowTable(2, capacity=1024)
    per_run = []
    runs = []
    first = np.zeros((0, 2), dtype=np.int64)
    for r, smp in enumerate(samples):
        counts = split_counts(smp.with_taxa_order(taxa))
        old = len(table)
        ids = table.add(counts.fingerprints)
        new = np.flatnonzero(ids >= old)      # ids of one run are distinct
        got = np.empty((new.shape[0], 2), dtype=np.int64)
        got[:, 0] = r
        got[:, 1] = new
        first = np.concatenate([first, got[np.argsort(ids[new])]])
        per_run.append((ids, counts.weight / counts.sample.total))
        runs.append(counts)
    freq = np.zeros((len(table), len(samples)))
    for r, (ids, f) in enumerate(per_run):
        freq[ids, r] = f
    return SplitTable(taxa, table.keys.copy(), freq,
                      np.array([s.total for s in samples], dtype=np.float64), runs, first)


def asdsf_from_samples(samples: Sequence[TopologySample], *,
                       minpartfreq: float = 0.10) -> AsdsfResult:
    """ASDSF and max SDSF of already-read samples (one per run); see module docstring."""
    if len(samples) < 2:
        raise PhyloError(f"ASDSF needs at least two runs, got {len(samples)}")
    if not 0.0 <= minpartfreq <= 1.0:
        raise PhyloError(f"minpartfreq must be in [0, 1], got {minpartfreq}")
    tab = split_table(samples)
    keep = np.any(tab.freq >= minpartfreq, axis=1) & np.any(tab.freq > 0, axis=1)
    f = tab.freq[keep]
    if f.shape[0] == 0:
        sd = np.zeros(0)
    else:
        sd = np.std(f, axis=1, ddof=1)
    return AsdsfResult(asdsf=float(sd.mean()) if sd.size else 0.0,
                       max_sdsf=float(sd.max()) if sd.size else 0.0,
                       n_splits=int(f.shape[0]), minpartfreq=float(minpartfreq),
                       n_runs=len(samples), n_samples=tab.n_samples.tolist(), table=tab)


def asdsf(runs: Sequence[str | os.PathLike | TopologySample], *, burnin: float | int = 0.25,
          minpartfreq: float = 0.10, thin: int = 1, threads: int | None = None) -> AsdsfResult:
    """ASDSF of tree files (one per run, e.g. MrBayes ``.run1.t``, ``.run2.t``).

    burnin: per-file fraction (MrBayes ``burninfrac``, default 0.25) or count.
    minpartfreq: MrBayes' ``minpartfreq`` (default 0.10).
    The run files are read concurrently on ``threads`` threads (default: the Numba
    thread count in effect, :func:`phylo.threads.threads`; all cores unless set); the
    result is the same, bit for bit, as reading them one after the other.
    Returns :class:`AsdsfResult` (``asdsf``, ``max_sdsf``, ``n_splits``, the table).
    """
    runs = list(runs)
    from ..threads import check_threads, current_threads
    workers = check_threads(threads) or current_threads()
    return asdsf_from_samples(_read_runs(runs, burnin, thin, workers), minpartfreq=minpartfreq)


def _read_runs(runs: list, burnin, thin, workers: int = 1) -> list[TopologySample]:
    """One TopologySample per run, in order; files read on concurrent threads.

    The taxa of the first run fix the leaf order of the others (as reading them one
    after the other would): a first run that is a sample or a file whose header names
    the taxa lets every file be read at once; otherwise the first file is read first.
    Each file is read by itself (the Numba kernels release the GIL), so the samples,
    and every sum over them, are the same as when read one by one.
    """
    from ..io.trees import read_topologies, tree_file_info
    samples: list = list(runs)
    taxa = None
    if runs and isinstance(runs[0], TopologySample):
        taxa = runs[0].taxa
    elif runs:
        try:
            taxa = tree_file_info(runs[0]).taxa
        except PhyloError:
            taxa = None        # reading it (below) raises the error in order
    todo = [i for i, r in enumerate(runs) if not isinstance(r, TopologySample)]
    if taxa is None and todo:
        samples[0] = read_topologies(runs[0], burnin=burnin, thin=thin, taxa=None, rooted=False)
        taxa = samples[0].taxa
        todo = todo[1:]

    def read(i):
        return read_topologies(runs[i], burnin=burnin, thin=thin, taxa=taxa, rooted=False)

    workers = min(len(todo), workers)
    if workers <= 1:
        for i in todo:
            samples[i] = read(i)
        return samples
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [(i, pool.submit(read, i)) for i in todo]
        try:
            for i, fut in futures:        # in run order: the first failing run's error
                samples[i] = fut.result()
        finally:
            for _, fut in futures:
                fut.cancel()
    return samples
