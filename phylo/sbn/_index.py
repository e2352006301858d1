"""SBN internals: per-topology edge structures and the parameter index tables
(clades, root subsplits, parent–child subsplit pairs → parameter ids).

The parameter layout is documented in :mod:`phylo.sbn.model`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._kernels import sbn as _ks
from ..errors import PhyloError, TreeError
from ..trees.splits import RowTable, TopologySample, n_words


METHODS = ("srf", "ccd", "sa", "em", "em-alpha", "rooted")
CLADE_BYTES_LIMIT = 1 << 30   # refuse SBN structures beyond this (a clear error, not a crash)
_LOW32 = np.uint64(0xFFFFFFFF)
_NO_SIB = 0xFFFFFFFF


# ---------------------------------------------------------------------------
# tree structures and parameter indices
# ---------------------------------------------------------------------------

@dataclass
class _Structures:
    children: np.ndarray    # (T, 2E, 2) int32
    clades: np.ndarray      # (T, 2E, W) uint64
    root_edge: np.ndarray   # (T,) int64, -1 when unrooted


def _structures(sample: TopologySample) -> _Structures:
    s = sample.n_taxa
    if s < 3:
        raise PhyloError(f"an SBN needs at least 3 taxa, the trees have {s}",
                         path=sample.sources[0] if sample.sources else None)
    w = n_words(s)
    E = 2 * s - 3
    T = sample.n_topologies
    need = T * 2 * E * (w * 8 + 8)
    if need > CLADE_BYTES_LIMIT:
        raise PhyloError(
            f"an SBN over {T} distinct topologies of {s} taxa needs {need / 2**30:.1f} GiB "
            f"of clade bitsets (limit {CLADE_BYTES_LIMIT / 2**30:.0f} GiB: SBNs keep every "
            "clade of every topology); use fewer distinct topologies (burn-in, thinning) "
            "or fewer taxa. (asdsf and split frequencies have no such limit.)",
            path=sample.sources[0] if sample.sources else None)
    children = np.empty((T, 2 * E, 2), dtype=np.int32)
    clades = np.empty((T, 2 * E, w), dtype=np.uint64)
    status = np.empty(T, dtype=np.int32)
    root_edge = np.empty(T, dtype=np.int64)
    _ks.structures(np.ascontiguousarray(sample.parents, dtype=np.int32),
                   np.ascontiguousarray(sample.n_nodes, dtype=np.int32), s, w,
                   children, clades, status, root_edge)
    bad = np.flatnonzero(status != 0)
    if bad.size:
        raise TreeError(f"{bad.size} of the {T} topologies are not binary trees "
                        f"(SBNs need binary trees)",
                        path=sample.sources[0] if sample.sources else None)
    return _Structures(children, clades, root_edge)


class _Index:
    """Hash tables from clades / subsplits / contexts to parameter ids."""

    def __init__(self, W: int, ccd: bool) -> None:
        self.W = W
        self.ccd = ccd
        self.clades = RowTable(W)
        self.roots = RowTable(1)
        self.conds = RowTable(2)
        self.groups = RowTable(1)
        self.cond_group = np.zeros(0, dtype=np.int64)

    def clade_ids(self, clades: np.ndarray, insert: bool) -> np.ndarray:
        T, D, W = clades.shape
        flat = clades.reshape(-1, W)
        ids = self.clades.add(flat) if insert else self.clades.get(flat)
        return ids.reshape(T, D)

    def param_indices(self, st: _Structures, insert: bool):
        """root_par (T,E), rootctx_par (T,2E), inner_par (T,2E,2) (see kernel docs)."""
        cid = self.clade_ids(st.clades, insert)
        T, D = cid.shape
        E = D // 2
        ch = st.children.astype(np.int64)
        # root subsplits
        a = cid[:, 0::2]
        b = cid[:, 1::2]
        lo = np.minimum(a, b)
        hi = np.maximum(a, b)
        miss = lo < 0
        keys = (lo.astype(np.uint64) << np.uint64(32)) | hi.astype(np.uint64)
        root_par = self._lookup(self.roots, keys[~miss].reshape(-1, 1), insert, miss)
        root_par = root_par.reshape(T, E)
        # root-context conditionals: clade d, sibling d^1
        dd = np.broadcast_to(np.arange(D), (T, D))
        rootctx_par = self._cond(cid, ch, dd, dd ^ 1, insert)
        # inner conditionals: children[d, k] with sibling children[d, 1-k]
        inner = np.empty((T, D, 2), dtype=np.int64)
        for k in range(2):
            inner[:, :, k] = self._cond(cid, ch, ch[:, :, k], ch[:, :, 1 - k], insert)
        return root_par, rootctx_par, inner

    def _lookup(self, table: RowTable, rows, insert, miss) -> np.ndarray:
        out = np.full(miss.shape, -1, dtype=np.int64)
        ids = table.add(rows) if insert else table.get(rows)
        out[~miss] = ids
        return out

    def _cond(self, cid, ch, xd, yd, insert):
        T, D = xd.shape
        valid = xd >= 0
        xs = np.where(valid, xd, 0)
        ys = np.where(valid, yd, 0)
        ca = np.take_along_axis(ch[:, :, 0], xs, axis=1)
        cb = np.take_along_axis(ch[:, :, 1], xs, axis=1)
        need = valid & (ca >= 0)
        ca = np.where(need, ca, 0)
        cb = np.where(need, cb, 0)
        X = np.take_along_axis(cid, xs, axis=1)
        Y = np.take_along_axis(cid, ys, axis=1)
        A = np.take_along_axis(cid, ca, axis=1)
        B = np.take_along_axis(cid, cb, axis=1)
        miss = need & ((X < 0) | (Y < 0) | (A < 0) | (B < 0))
        ok = need & ~miss
        out = np.full((T, D), -2, dtype=np.int64)
        out[miss] = -1
        Xo = X[ok].astype(np.uint64)
        Yo = (np.full(Xo.shape, _NO_SIB, dtype=np.uint64) if self.ccd
              else Y[ok].astype(np.uint64))
        lo = np.minimum(A[ok], B[ok]).astype(np.uint64)
        hi = np.maximum(A[ok], B[ok]).astype(np.uint64)
        rows = np.empty((Xo.shape[0], 2), dtype=np.uint64)
        rows[:, 0] = (Xo << np.uint64(32)) | Yo
        rows[:, 1] = (lo << np.uint64(32)) | hi
        if insert:
            ids = self.conds.add(rows)
            g = self.groups.add(rows[:, :1])
            if len(self.conds) > self.cond_group.shape[0]:
                grown = np.zeros(len(self.conds), dtype=np.int64)
                grown[:self.cond_group.shape[0]] = self.cond_group
                self.cond_group = grown
            self.cond_group[ids] = g
        else:
            ids = self.conds.get(rows)
        out[ok] = ids
        return out


def _normalize(counts: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    out = np.empty_like(counts)
    _ks.normalize_groups(counts, group, n_groups, out)
    return out


def _log(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(p)

