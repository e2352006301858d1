"""Subsplit Bayesian networks (Zhang & Matsen 2018, NeurIPS, "Generalizing Tree
Probability Estimation via Bayesian Networks") and the SRF/CCD baselines.

Model (§2 of the paper)
-----------------------
A rooted binary tree is its root subsplit (the split of all taxa into the root's two
clades) plus, for every internal clade ``X`` with sibling clade ``Y``, the subsplit
``{A, B}`` dividing ``X``. The SBN probability of a rooted tree is

    p(T) = p(root subsplit) · Π_X p({A, B} | X, Y)

with conditional probability sharing: the conditional distribution is indexed by the
parent–child context ``(X, Y)`` (the parent subsplit ``{X, Y}`` and which of its
clades is divided), not by position in the tree. CCD (Larget 2013) conditions on the
clade ``X`` only. An unrooted tree's probability is the sum over its ``2S-3``
rootings (§3.2), computed for all rootings in linear time (:mod:`phylo._kernels.sbn`).

Estimators (:func:`fit`)
------------------------
``rooted``   rooted samples: maximum likelihood = counting (closed form, §3.1).
``sa``       unrooted samples: counts averaged over all rootings (§3.2, "SBN-SA").
``em``       unrooted samples: rootings as missing data, EM (§3.2, "SBN-EM"),
             started from SA, until the change of the mean log-likelihood < ``tol``.
``em-alpha`` EM for the MAP estimate under Dirichlet pseudo-counts ``alpha`` × the
             SA counts ("SBN-EM-α"); ``alpha = 0`` is plain EM.
``ccd``      CCD: like SA but the conditionals are indexed by the clade only (for
             rooted samples the true root is used).
``srf``      sample relative frequencies (:class:`SRF`): zero for unseen trees.

Weights: every training topology counts with its weight (MrBayes ``.trprobs``
``[&W w]`` or importance weights), normalised to sum to one (the SBN reference code
does the same), so results do not depend on the sample size scale.

Flat parameter layout (also the JSON file, :meth:`SBN.save`)
-----------------------------------------------------------
``theta = [root subsplits (n_root) ..., parent–child subsplit pairs (n_cond) ...]``.
Root subsplit ``i`` is the clade pair ``root_keys[i] = (A, B)`` (clade ids, A < B);
conditional ``j`` is ``cond_keys[j] = (X, Y, A, B)``: clade ``X`` with sibling ``Y``
(``-1`` for CCD) divided into ``A`` and ``B`` (``A < B``); ``cond_group[j]`` numbers
the context ``(X, Y)``; probabilities sum to one over root subsplits and within each
context. Clade ids index ``clades`` (bitsets over ``taxa``; in JSON as lists of taxon
indices).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .._kernels import sbn as _ks
from ..errors import EstimatorError, FormatError, PhyloError, TreeError
from ..trees.splits import (RowTable, TopologySample, members, n_words,
                            topology_sample_from_parents)

METHODS = ("srf", "ccd", "sa", "em", "em-alpha", "rooted")
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
        raise PhyloError("an SBN needs at least 3 taxa")
    w = n_words(s)
    E = 2 * s - 3
    T = sample.n_topologies
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


# ---------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------

@dataclass
class FitInfo:
    method: str
    alpha: float = 0.0
    n_iter: int = 0
    converged: bool = True
    objective: list[float] = field(default_factory=list)   # EM: mean log-lik (+ prior)
    n_train_topologies: int = 0
    n_train_trees: int = 0


class SBN:
    """A fitted subsplit Bayesian network (see module docstring for the layout).

    ``rooted``: whether the model was fitted to rooted trees (``rooted`` method; a
    rooted tree's probability is then meaningful); every model also gives unrooted
    probabilities (sum over rootings).
    """

    def __init__(self, taxa: Sequence[str], index: _Index, root_prob: np.ndarray,
                 cond_prob: np.ndarray, *, rooted: bool, info: FitInfo) -> None:
        self.taxa = tuple(taxa)
        self._index = index
        self.root_prob = np.asarray(root_prob, dtype=np.float64)
        self.cond_prob = np.asarray(cond_prob, dtype=np.float64)
        self.rooted = bool(rooted)
        self.info = info
        self._samplers = None
        self._sampler_flat = None

    # -- layout ------------------------------------------------------------------
    @property
    def ccd(self) -> bool:
        return self._index.ccd

    @property
    def n_taxa(self) -> int:
        return len(self.taxa)

    @property
    def method(self) -> str:
        return self.info.method

    @property
    def clades(self) -> np.ndarray:
        """(n_clades, W) uint64 clade bitsets; clade ids index these rows."""
        return self._index.clades.keys

    @property
    def root_keys(self) -> np.ndarray:
        """(n_root, 2) clade ids (A < B) of each root subsplit."""
        k = self._index.roots.keys[:, 0]
        return np.stack([(k >> np.uint64(32)).astype(np.int64),
                         (k & _LOW32).astype(np.int64)], axis=1)

    @property
    def cond_keys(self) -> np.ndarray:
        """(n_cond, 4) clade ids (X, Y, A, B): X with sibling Y (-1: CCD) → {A, B}."""
        k = self._index.conds.keys
        x = (k[:, 0] >> np.uint64(32)).astype(np.int64)
        y = (k[:, 0] & _LOW32).astype(np.int64)
        y[y == _NO_SIB] = -1
        a = (k[:, 1] >> np.uint64(32)).astype(np.int64)
        b = (k[:, 1] & _LOW32).astype(np.int64)
        return np.stack([x, y, a, b], axis=1)

    @property
    def cond_group(self) -> np.ndarray:
        return self._index.cond_group[:len(self._index.conds)]

    @property
    def theta(self) -> np.ndarray:
        """Flat parameter vector: root subsplits first, then parent–child pairs."""
        return np.concatenate([self.root_prob, self.cond_prob])

    @property
    def n_params(self) -> int:
        return int(self.root_prob.size + self.cond_prob.size)

    # -- probabilities ---------------------------------------------------------------
    def _rooting_logprobs(self, sample: TopologySample):
        sample = sample.with_taxa_order(self.taxa)
        st = _structures(sample)
        rp, cp, ip = self._index.param_indices(st, insert=False)
        out = np.empty(rp.shape, dtype=np.float64)
        _ks.rooting_logprobs(st.children, rp, cp, ip, _log(self.root_prob),
                             _log(self.cond_prob), out)
        return out, st

    def log_prob(self, topologies: TopologySample, *, rooted: bool | None = None) -> np.ndarray:
        """Natural-log probability of each topology of ``topologies``, shape (U,).

        Unrooted topologies (or ``rooted=False``): log of the sum over all rootings.
        Rooted topologies of a rooted model: the rooted tree's probability.
        ``-inf`` for topologies outside the model's support.
        """
        lp, st = self._rooting_logprobs(topologies)
        use_rooted = topologies.rooted if rooted is None else rooted
        if use_rooted:
            if np.any(st.root_edge < 0):
                raise TreeError("rooted probabilities need rooted trees")
            return lp[np.arange(lp.shape[0]), st.root_edge]
        out = np.empty(lp.shape[0])
        _ks.logsumexp_rows(lp, out)
        return out

    def log_prob_tree(self, tree) -> float:
        """log p of one :class:`~phylo.trees.Tree` (rooted if ``tree.rooted``)."""
        from ..trees.splits import topology_sample_from_trees
        smp = topology_sample_from_trees([tree], taxa=self.taxa, rooted=tree.rooted)
        return float(self.log_prob(smp)[0])

    def rooting_posterior(self, topologies: TopologySample) -> np.ndarray:
        """(U, 2S-3) posterior over the root edge of each unrooted topology."""
        lp, _ = self._rooting_logprobs(topologies)
        tot = np.empty(lp.shape[0])
        _ks.logsumexp_rows(lp, tot)
        with np.errstate(invalid="ignore"):
            return np.where(np.isfinite(tot)[:, None], np.exp(lp - tot[:, None]), 0.0)

    # -- sampling, MAP, entropy, support ------------------------------------------------
    def _tables(self):
        if self._samplers is None:
            ck = self.cond_keys
            groups: dict[tuple[int, int], list[int]] = {}
            for j in range(ck.shape[0]):
                if self.cond_prob[j] > 0:
                    groups.setdefault((int(ck[j, 0]), -1 if self.ccd else int(ck[j, 1])),
                                      []).append(j)
            leaf_of = {}
            for c, row in enumerate(self.clades):
                m = members(row)
                if len(m) == 1:
                    leaf_of[c] = m[0]
            self._samplers = (ck, {k: np.array(v) for k, v in groups.items()}, leaf_of)
        return self._samplers

    def _ctx(self, x: int, y: int):
        return (x, -1) if self.ccd else (x, y)

    def _sampler_arrays(self):
        """Flat tables for :func:`phylo._kernels.sbn.sample_topologies` (cached)."""
        if getattr(self, "_sampler_flat", None) is None:
            ck, groups, leaf_of = self._tables()
            keys = list(groups)
            gid = {k: g for g, k in enumerate(keys)}
            leaf_arr = np.full(len(self.clades), -1, dtype=np.int64)
            for c, taxon in leaf_of.items():
                leaf_arr[c] = taxon

            def group_of(x: int, y: int) -> int:
                if x in leaf_of:
                    return -1
                return gid.get(self._ctx(x, y), -2)

            idx = (np.concatenate([groups[k] for k in keys]) if keys
                   else np.zeros(0, dtype=np.int64)).astype(np.int64)
            sizes = np.array([groups[k].size for k in keys], dtype=np.int64)
            grp_off = np.zeros(len(keys) + 1, dtype=np.int64)
            grp_off[1:] = np.cumsum(sizes)
            cum = np.empty(idx.size)
            for g in range(len(keys)):
                lo, hi = grp_off[g], grp_off[g + 1]
                c = np.cumsum(self.cond_prob[idx[lo:hi]])
                cum[lo:hi] = c / c[-1]
                cum[hi - 1] = 1.0
            ca = ck[idx, 2].astype(np.int64)
            cb = ck[idx, 3].astype(np.int64)
            cga = np.array([group_of(int(x), int(y)) for x, y in zip(ca, cb)], dtype=np.int64)
            cgb = np.array([group_of(int(y), int(x)) for x, y in zip(ca, cb)], dtype=np.int64)
            rk = self.root_keys
            keep = np.flatnonzero(self.root_prob > 0)
            rc = np.cumsum(self.root_prob[keep])
            rc = rc / rc[-1]
            rc[-1] = 1.0
            ra = rk[keep, 0].astype(np.int64)
            rb = rk[keep, 1].astype(np.int64)
            rga = np.array([group_of(int(x), int(y)) for x, y in zip(ra, rb)], dtype=np.int64)
            rgb = np.array([group_of(int(y), int(x)) for x, y in zip(ra, rb)], dtype=np.int64)
            self._sampler_flat = (rc, ra, rb, rga, rgb, grp_off, cum, ca, cb, cga, cgb, leaf_arr)
        return self._sampler_flat

    def sample(self, n: int, *, seed: int | None = None,
               rng: np.random.Generator | None = None, rooted: bool | None = None
               ) -> TopologySample:
        """Draw ``n`` topologies (seeded); rooted trees collapsed unless ``rooted``.

        Ancestral sampling (§2): a root subsplit, then a subsplit for each clade from
        its conditional distribution, in a Numba kernel seeded with one integer drawn
        from ``rng`` (default ``numpy.random.default_rng(seed)``), so the draws are
        reproducible. Returns a :class:`TopologySample` (distinct topologies with counts).
        """
        rng = rng if rng is not None else np.random.default_rng(seed)
        n = int(n)
        s = self.n_taxa
        flat = self._sampler_arrays()
        kseed = int(rng.integers(0, 2**31 - 1))
        parents = np.full((n, 2 * s - 1), -2, dtype=np.int32)
        if flat[0].size == 0:
            raise PhyloError("the model has no root subsplit with positive probability")
        status = _ks.sample_topologies(n, kseed, *flat, s, parents)
        if status != 0:
            raise PhyloError("the model has no subsplit for a clade it generated")
        out_rooted = self.rooted if rooted is None else rooted
        n_nodes = np.full(n, 2 * s - 1, dtype=np.int32)
        return topology_sample_from_parents(parents, n_nodes, np.ones(n), self.taxa,
                                            rooted=out_rooted, n_trees=n)

    def _dp(self, combine, leaf_value, root_combine):
        """Generic recursion over contexts (memoised)."""
        ck, groups, leaf_of = self._tables()
        memo: dict = {}

        def value(x, y):
            if x in leaf_of:
                return leaf_value
            key = self._ctx(x, y)
            if key in memo:
                return memo[key]
            idx = groups.get(key, np.zeros(0, dtype=np.int64))
            res = combine([(j, value(int(ck[j, 2]), int(ck[j, 3])),
                            value(int(ck[j, 3]), int(ck[j, 2]))) for j in idx])
            memo[key] = res
            return res

        import sys
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(max(old, 10000))
        try:
            rk = self.root_keys
            return root_combine([(i, value(int(rk[i, 0]), int(rk[i, 1])),
                                  value(int(rk[i, 1]), int(rk[i, 0])))
                                 for i in range(rk.shape[0]) if self.root_prob[i] > 0])
        finally:
            sys.setrecursionlimit(old)

    def n_rooted_topologies(self) -> int:
        """Number of rooted topologies with positive probability (exact)."""
        mult = lambda items: sum(a * b for _, a, b in items)
        return int(self._dp(mult, 1, mult))

    def map_rooted(self) -> tuple[TopologySample, float]:
        """The most probable rooted topology (exact DP) and its log-probability."""
        lc = _log(self.cond_prob)
        lr = _log(self.root_prob)

        def best(items, lvec):
            if not items:
                return (-np.inf, None)
            scores = [(lvec[j] + a[0] + b[0], j, a, b) for j, a, b in items]
            sc, j, a, b = max(scores, key=lambda z: z[0])
            return (sc, (j, a[1], b[1]))

        val = self._dp(lambda it: best(it, lc), (0.0, None), lambda it: best(it, lr))
        score, tree = val
        parents = self._parents_from_choice(tree)
        smp = topology_sample_from_parents(parents[None, :], np.array([2 * self.n_taxa - 1]),
                                           np.ones(1), self.taxa, rooted=True)
        return smp, float(score)

    def _parents_from_choice(self, choice) -> np.ndarray:
        ck, groups, leaf_of = self._tables()
        rk = self.root_keys
        s = self.n_taxa
        par = np.full(2 * s - 1, -2, dtype=np.int32)
        counter = [s]

        def build(x, node):
            if x in leaf_of:
                return leaf_of[x]
            j, ca, cb = node
            a, b = int(ck[j, 2]), int(ck[j, 3])
            va = build(a, ca)
            vb = build(b, cb)
            v = counter[0]
            counter[0] += 1
            par[va] = v
            par[vb] = v
            return v

        i, ca, cb = choice
        va = build(int(rk[i, 0]), ca)
        vb = build(int(rk[i, 1]), cb)
        par[va] = counter[0]
        par[vb] = counter[0]
        par[counter[0]] = -1
        return par

    def map_topology(self, *, n_candidates: int = 1000, seed: int = 0) -> tuple[TopologySample, float]:
        """Most probable topology and its log-probability.

        Rooted models: exact (DP). Unrooted: the best of the unrooted topology of the
        rooted MAP tree and ``n_candidates`` sampled topologies, ranked by their exact
        unrooted probability (the unrooted MAP is a sum over rootings and has no
        exact DP; the search is exact whenever the support has at most
        ``n_candidates`` topologies of appreciable mass).
        """
        top, lp = self.map_rooted()
        if self.rooted:
            return top, lp
        cand = TopologySample.concatenate([top.as_unrooted(),
                                           self.sample(n_candidates, seed=seed, rooted=False)])
        lps = self.log_prob(cand, rooted=False)
        k = int(np.argmax(lps))
        sel = topology_sample_from_parents(cand.parents[k:k + 1], cand.n_nodes[k:k + 1],
                                           np.ones(1), self.taxa, rooted=False)
        return sel, float(lps[k])

    def entropy_rooted(self) -> float:
        """Exact entropy (nats) of the rooted-tree distribution (DP over contexts)."""
        lc = _log(self.cond_prob)
        lr = _log(self.root_prob)

        def comb(items, p, lvec):
            return sum(p[j] * (-lvec[j] + a + b) for j, a, b in items if p[j] > 0)

        return float(self._dp(lambda it: comb(it, self.cond_prob, lc), 0.0,
                              lambda it: comb(it, self.root_prob, lr)))

    def entropy(self, *, method: str = "auto", n: int = 10000, seed: int | None = 0,
                max_enumerate: int = 200000) -> tuple[float, float]:
        """Entropy (nats) of the model's topology distribution, with a standard error.

        Rooted models: exact. Unrooted: exact by enumerating the support when it has
        at most ``max_enumerate`` rooted topologies (``method='exact'``), else Monte
        Carlo ``-mean log q(T)`` over ``n`` samples (``method='mc'``), returning the
        standard error of the mean (0 for exact values).
        """
        if self.rooted:
            return self.entropy_rooted(), 0.0
        if method in ("auto", "exact"):
            support = self.support(max_enumerate=max_enumerate)
            if support is not None:
                p = np.exp(self.log_prob(support, rooted=False))
                p = p[p > 0]
                return float(-(p * np.log(p)).sum()), 0.0
            if method == "exact":
                raise PhyloError(f"the support has more than {max_enumerate} rooted "
                                 "topologies; use method='mc'")
        smp = self.sample(n, seed=seed, rooted=False)
        lq = self.log_prob(smp, rooted=False)
        vals = np.repeat(-lq, smp.counts.astype(np.int64))
        return float(vals.mean()), float(vals.std(ddof=1) / math.sqrt(vals.size))

    def support(self, *, max_enumerate: int = 200000) -> TopologySample | None:
        """All topologies of positive probability (unrooted unless the model is rooted),
        or None when there are more than ``max_enumerate`` rooted ones."""
        if self.n_rooted_topologies() > max_enumerate:
            return None
        ck, groups, leaf_of = self._tables()
        rk = self.root_keys
        s = self.n_taxa

        def trees(x, y):
            if x in leaf_of:
                yield ("leaf", leaf_of[x])
                return
            for j in groups.get(self._ctx(x, y), []):
                a, b = int(ck[j, 2]), int(ck[j, 3])
                for ta in trees(a, b):
                    for tb in trees(b, a):
                        yield ("node", ta, tb)

        rows = []
        for i in range(rk.shape[0]):
            if self.root_prob[i] <= 0:
                continue
            a, b = int(rk[i, 0]), int(rk[i, 1])
            for ta in trees(a, b):
                for tb in trees(b, a):
                    rows.append(_nested_to_parent(("node", ta, tb), s))
        if not rows:
            raise PhyloError("the model has an empty support")
        parents = np.stack(rows)
        return topology_sample_from_parents(parents, np.full(len(rows), 2 * s - 1), np.ones(len(rows)),
                                            self.taxa, rooted=self.rooted)

    def n_topologies(self, *, max_enumerate: int = 200000) -> int | None:
        """Number of topologies in the support (rooted models: exact DP; unrooted:
        by enumeration, None when the rooted support exceeds ``max_enumerate``)."""
        if self.rooted:
            return self.n_rooted_topologies()
        sup = self.support(max_enumerate=max_enumerate)
        return None if sup is None else sup.n_topologies

    def kl(self, reference: TopologySample, *, eps: float | None = None):
        """KL(reference ‖ model) over the reference's topologies; see
        :func:`phylo.diagnostics.kl.kl_divergence` for ``eps``."""
        from ..diagnostics.kl import kl_divergence
        ref = reference if self.rooted else reference.as_unrooted()
        return kl_divergence(ref.probabilities, self.log_prob(ref), eps=eps)

    # -- persistence -------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": "phylo-sbn",
            "version": 1,
            "method": self.info.method,
            "rooted": self.rooted,
            "ccd": self.ccd,
            "alpha": self.info.alpha,
            "taxa": list(self.taxa),
            "layout": "theta = root subsplits (root_keys order) then parent-child subsplit "
                      "pairs (cond_keys order); root_keys rows (A, B) and cond_keys rows "
                      "(X, Y, A, B) are clade ids into 'clades' (taxon indices); Y = -1 for "
                      "CCD; probabilities sum to 1 over root subsplits and within each "
                      "cond_group (context (X, Y))",
            "clades": [members(r) for r in self.clades],
            "root_keys": self.root_keys.tolist(),
            "cond_keys": self.cond_keys.tolist(),
            "cond_group": self.cond_group.tolist(),
            "theta": self.theta.tolist(),
            "fit": {"n_iter": self.info.n_iter, "converged": self.info.converged,
                    "objective": self.info.objective,
                    "n_train_topologies": self.info.n_train_topologies,
                    "n_train_trees": self.info.n_train_trees},
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the model as JSON (see :meth:`to_dict` and the module docstring)."""
        with open(path, "w") as fh:
            json.dump(self.to_dict(), fh)

    @classmethod
    def from_dict(cls, d: dict, *, source: str | None = None) -> "SBN":
        try:
            if not isinstance(d, dict) or d.get("format") != "phylo-sbn":
                raise FormatError("not a phylo SBN model file", path=source)
            taxa = tuple(d["taxa"])
            s = len(taxa)
            W = n_words(s)
            index = _Index(W, bool(d["ccd"]))
            clades = np.zeros((len(d["clades"]), W), dtype=np.uint64)
            for i, m in enumerate(d["clades"]):
                for t in m:
                    clades[i, t // 64] |= np.uint64(1) << np.uint64(t % 64)
            if clades.shape[0]:
                index.clades.add(clades)
            rk = np.asarray(d["root_keys"], dtype=np.int64).reshape(-1, 2)
            index.roots.add(((rk[:, 0].astype(np.uint64) << np.uint64(32))
                             | rk[:, 1].astype(np.uint64)).reshape(-1, 1))
            ck = np.asarray(d["cond_keys"], dtype=np.int64).reshape(-1, 4)
            y = np.where(ck[:, 1] < 0, _NO_SIB, ck[:, 1]).astype(np.uint64)
            rows = np.stack([(ck[:, 0].astype(np.uint64) << np.uint64(32)) | y,
                             (ck[:, 2].astype(np.uint64) << np.uint64(32))
                             | ck[:, 3].astype(np.uint64)], axis=1)
            index.conds.add(rows)
            index.groups.add(rows[:, :1])
            index.cond_group = np.asarray(d["cond_group"], dtype=np.int64)
            theta = np.asarray(d["theta"], dtype=np.float64)
            nr = rk.shape[0]
            if theta.shape[0] != nr + ck.shape[0]:
                raise FormatError("theta length does not match the keys", path=source)
            fit = d.get("fit", {})
            info = FitInfo(d["method"], float(d.get("alpha", 0.0)), int(fit.get("n_iter", 0)),
                           bool(fit.get("converged", True)), list(fit.get("objective", [])),
                           int(fit.get("n_train_topologies", 0)), int(fit.get("n_train_trees", 0)))
            return cls(taxa, index, theta[:nr], theta[nr:], rooted=bool(d["rooted"]), info=info)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, PhyloError):
                raise
            raise FormatError(f"malformed SBN model file ({exc})", path=source) from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SBN | SRF":
        """Read a model written by :meth:`save` (SBN/CCD) or :meth:`SRF.save`."""
        p = os.fspath(path)
        if not os.path.exists(p):
            raise FormatError("no such file", path=p)
        try:
            with open(p) as fh:
                d = json.load(fh)
        except json.JSONDecodeError as exc:
            raise FormatError(f"not JSON ({exc.msg}, line {exc.lineno})", path=p) from None
        if isinstance(d, dict) and d.get("format") == "phylo-srf":
            return SRF.from_dict(d, source=p)
        return cls.from_dict(d, source=p)


def _nested_to_parent(tree, s: int) -> np.ndarray:
    par = np.full(2 * s - 1, -2, dtype=np.int32)
    counter = [s]

    def build(node):
        if node[0] == "leaf":
            return node[1]
        a = build(node[1])
        b = build(node[2])
        v = counter[0]
        counter[0] += 1
        par[a] = v
        par[b] = v
        return v

    r = build(tree)
    par[r] = -1
    return par


# ---------------------------------------------------------------------------
# SRF
# ---------------------------------------------------------------------------

class SRF:
    """Sample relative frequencies of topologies: q(T) = weight of T / total weight."""

    def __init__(self, sample: TopologySample) -> None:
        self.taxa = sample.taxa
        self.rooted = sample.rooted
        self.sample_ = sample
        self.info = FitInfo("srf", n_train_topologies=sample.n_topologies,
                            n_train_trees=sample.n_trees)
        M, W = sample.keys.shape[1:]
        self._table = RowTable(M * W)
        self._table.add(sample.keys.reshape(sample.n_topologies, -1))
        self.prob = sample.probabilities

    @property
    def method(self) -> str:
        return "srf"

    def log_prob(self, topologies: TopologySample, *, rooted: bool | None = None) -> np.ndarray:
        t = topologies.with_taxa_order(self.taxa)
        if not self.rooted:
            t = t.as_unrooted()
        elif not t.rooted:
            raise TreeError("an SRF of rooted trees needs rooted query trees")
        ids = self._table.get(t.keys.reshape(t.n_topologies, -1))
        out = np.full(ids.shape, -np.inf)
        out[ids >= 0] = np.log(self.prob[ids[ids >= 0]])
        return out

    def sample(self, n: int, *, seed: int | None = None, rng=None, rooted=None) -> TopologySample:
        rng = rng if rng is not None else np.random.default_rng(seed)
        idx = rng.choice(self.prob.size, size=n, p=self.prob)
        s = self.sample_
        return topology_sample_from_parents(s.parents[idx], s.n_nodes[idx], np.ones(n), self.taxa,
                                            rooted=self.rooted, n_trees=n)

    def map_topology(self, **_) -> tuple[TopologySample, float]:
        k = int(np.argmax(self.prob))
        s = self.sample_
        return (topology_sample_from_parents(s.parents[k:k + 1], s.n_nodes[k:k + 1], np.ones(1),
                                             self.taxa, rooted=self.rooted),
                float(np.log(self.prob[k])))

    def entropy(self, **_) -> tuple[float, float]:
        p = self.prob[self.prob > 0]
        return float(-(p * np.log(p)).sum()), 0.0

    def n_topologies(self, **_) -> int:
        return int(np.count_nonzero(self.prob))

    def kl(self, reference: TopologySample, *, eps: float | None = None):
        from ..diagnostics.kl import kl_divergence
        ref = reference if self.rooted else reference.as_unrooted()
        return kl_divergence(ref.probabilities, self.log_prob(ref), eps=eps)

    def to_dict(self) -> dict:
        s = self.sample_
        from ..trees.tree import Tree  # noqa: F401
        return {"format": "phylo-srf", "version": 1, "method": "srf", "rooted": self.rooted,
                "taxa": list(self.taxa),
                "topologies": [s.tree(u).to_newick(lengths=False) for u in range(s.n_topologies)],
                "prob": self.prob.tolist()}

    def save(self, path) -> None:
        with open(path, "w") as fh:
            json.dump(self.to_dict(), fh)

    @classmethod
    def from_dict(cls, d: dict, *, source: str | None = None) -> "SRF":
        from ..io.newick import parse_newick
        from ..trees.splits import topology_sample_from_trees
        try:
            trees = [parse_newick(t, taxa=d["taxa"], rooted=d["rooted"], source=source)
                     for t in d["topologies"]]
            smp = topology_sample_from_trees(trees, taxa=d["taxa"], rooted=d["rooted"])
            ids = np.arange(len(trees))  # topologies are distinct and in order
            smp.counts[:] = np.asarray(d["prob"], dtype=np.float64)[ids]
            return cls(smp)
        except (KeyError, TypeError) as exc:
            raise FormatError(f"malformed SRF model file ({exc})", path=source) from None


# ---------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------

def fit(sample: TopologySample, method: str = "em", *, alpha: float = 1e-4,
        tol: float = 1e-5, max_iter: int = 1000, progress=None,
        alpha_prior: str = "sa") -> "SBN | SRF":
    """Fit an estimator to a (weighted) topology sample; see the module docstring.

    sample: :class:`TopologySample` (``phylo.io.read_topologies``); weights = counts.
    method: ``srf``, ``ccd``, ``sa``, ``em``, ``em-alpha`` (unrooted samples) or
        ``rooted`` (closed-form SBN for rooted samples).
    alpha: pseudo-count scale of ``em-alpha``; tol: EM stops when the mean
        log-likelihood (plus log prior for em-alpha) changes by less than ``tol``.
    progress: optional callable ``progress(iteration, objective)``.
    alpha_prior: the Dirichlet pseudo-counts of ``em-alpha`` within each parent–child
        context. ``"sa"`` (default): ``alpha`` times each child subsplit's own SA
        count; ``"uniform"`` (as the reference code zcrabbit/sbn ``models.py``,
        ``alpha * m~ / len``): the context's SA mass ``m~`` times ``alpha``, spread
        evenly over the child subsplits seen in that context. The root subsplits get
        ``alpha`` times their SA frequencies in both. Neither reproduces the
        published DS2/DS4 SBN-EM-α values (benchmarks/results/sbn_kl.md, notes).
    """
    method = method.lower()
    if alpha_prior not in ("uniform", "sa"):
        raise EstimatorError(f"alpha_prior must be 'uniform' or 'sa', got {alpha_prior!r}")
    if method not in METHODS:
        raise EstimatorError(f"unknown SBN method {method!r}; choose one of {', '.join(METHODS)}")
    if sample.n_topologies == 0 or sample.total <= 0:
        raise EstimatorError("the tree sample is empty (or all weights are zero)")
    if method == "srf":
        return SRF(sample)
    if method == "rooted" and not sample.rooted:
        raise EstimatorError("method 'rooted' needs rooted trees ([&R] or bifurcating roots); "
                             "use sa, em or em-alpha for unrooted samples")
    if method == "em-alpha" and not alpha > 0:
        raise EstimatorError(f"em-alpha needs alpha > 0, got {alpha}")
    if not (tol > 0) or max_iter < 1:
        raise EstimatorError("tol must be > 0 and max_iter >= 1")
    w = sample.counts / sample.counts.sum()
    st = _structures(sample)
    ccd = method == "ccd"
    index = _Index(n_words(sample.n_taxa), ccd)
    rp, cp, ip = index.param_indices(st, insert=True)
    T, E = rp.shape
    n_root, n_cond = len(index.roots), len(index.conds)
    n_groups = len(index.groups)
    group = index.cond_group[:n_cond]
    rooted_fit = method == "rooted" or (ccd and sample.rooted)
    info = FitInfo(method, alpha if method == "em-alpha" else 0.0,
                   n_train_topologies=sample.n_topologies, n_train_trees=sample.n_trees)

    def m_step(post):
        cr = np.zeros(n_root)
        cc = np.zeros(n_cond)
        _ks.expected_counts(st.children, rp, cp, ip, post, w, cr, cc)
        return cr, cc

    if rooted_fit:
        post = np.zeros((T, E))
        post[np.arange(T), st.root_edge] = 1.0
    else:
        post = np.full((T, E), 1.0 / E)
    cr_sa, cc_sa = m_step(post)
    root_prob = cr_sa / cr_sa.sum()
    cond_prob = _normalize(cc_sa, group, n_groups)
    if method in ("em", "em-alpha"):
        a = alpha if method == "em-alpha" else 0.0
        cc_prior = cc_sa
        if a > 0 and alpha_prior == "uniform":
            mass = np.bincount(group, weights=cc_sa, minlength=n_groups)
            size = np.bincount(group, minlength=n_groups)
            cc_prior = mass[group] / size[group]
            cond_prob = _normalize(cc_sa + a * cc_prior, group, n_groups)
            root_prob = (cr_sa + a * cr_sa) / (cr_sa + a * cr_sa).sum()
        lp = np.empty((T, E))
        ll = np.empty(T)
        prev = -np.inf
        info.converged = False
        for it in range(max_iter):
            _ks.rooting_logprobs(st.children, rp, cp, ip, _log(root_prob), _log(cond_prob), lp)
            _ks.logsumexp_rows(lp, ll)
            obj = float(w @ ll)
            if a > 0:
                obj += a * float(_xlogy(cr_sa, root_prob).sum() + _xlogy(cc_prior, cond_prob).sum())
            info.objective.append(obj)
            info.n_iter = it
            if progress is not None:
                progress(it, obj)
            if abs(obj - prev) < tol:
                info.converged = True
                break
            prev = obj
            post = np.exp(lp - ll[:, None])
            cr, cc = m_step(post)
            root_prob = (cr + a * cr_sa) / (cr + a * cr_sa).sum()
            cond_prob = _normalize(cc + a * cc_prior, group, n_groups)
    return SBN(sample.taxa, index, root_prob, cond_prob, rooted=rooted_fit, info=info)


def _xlogy(x, y):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, x * np.log(np.where(y > 0, y, 1.0)) + np.where(y > 0, 0, -np.inf), 0.0)
