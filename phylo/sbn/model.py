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
from ..errors import FormatError, PhyloError, TreeError
from ..trees.splits import TopologySample, members, n_words, topology_sample_from_parents
from ._index import _LOW32, _NO_SIB, _Index, _log, _structures


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
        ``n_candidates`` topologies of appreciable mass). The candidates are drawn with
        ``seed``, so the result is reproducible from it.
        """
        if int(n_candidates) < 0:
            raise PhyloError(f"n_candidates must be >= 0, got {n_candidates}")
        top, lp = self.map_rooted()
        if self.rooted:
            return top, lp
        parts = [top.as_unrooted()]
        if int(n_candidates) > 0:  # 0: rank the rooted MAP tree's topology alone
            parts.append(self.sample(int(n_candidates), seed=seed, rooted=False))
        cand = TopologySample.concatenate(parts) if len(parts) > 1 else parts[0]
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
        """Rebuild a model from :meth:`to_dict` output, checking every field (types,
        index ranges, clade bitsets that really split their parents, probabilities in
        [0, 1] that sum to one per context): a damaged file is refused, never used."""
        try:
            if not isinstance(d, dict) or d.get("format") != "phylo-sbn":
                raise FormatError("not a phylo SBN model file", path=source)
            _check_sbn_fields(d, source)
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
            group_ids = index.groups.add(rows[:, :1])
            index.cond_group = np.asarray(d["cond_group"], dtype=np.int64)
            if not np.array_equal(group_ids, index.cond_group):
                raise FormatError("SBN model field 'cond_group' does not number the "
                                  "contexts (X, Y) of 'cond_keys' in order", path=source)
            theta = np.asarray(d["theta"], dtype=np.float64)
            nr = rk.shape[0]
            if theta.shape[0] != nr + ck.shape[0]:
                raise FormatError("theta length does not match the keys", path=source)
            fit = d.get("fit", {})
            info = FitInfo(d["method"], float(d.get("alpha", 0.0)), int(fit.get("n_iter", 0)),
                           bool(fit.get("converged", True)), list(fit.get("objective", [])),
                           int(fit.get("n_train_topologies", 0)), int(fit.get("n_train_trees", 0)))
            model = cls(taxa, index, theta[:nr], theta[nr:], rooted=bool(d["rooted"]),
                        info=info)
            _check_sbn_arrays(model, source)
            return model
        except (KeyError, TypeError, ValueError, IndexError, AttributeError,
                OverflowError) as exc:
            if isinstance(exc, PhyloError):
                raise
            what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise FormatError(f"malformed SBN model file ({what})", path=source) from None

    @classmethod
    def load(cls, path: str | os.PathLike):
        """Read a model written by :meth:`save` (SBN/CCD) or :meth:`SRF.save`."""
        from ..io._compressed import read_text
        p = os.fspath(path)
        text = read_text(p, what="SBN model file")  # gzip ok; clean errors for bad bytes
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FormatError(f"not JSON ({exc.msg}, line {exc.lineno})", path=p) from None
        if isinstance(d, dict) and d.get("format") == "phylo-srf":
            from .srf import SRF  # srf imports this module: resolve at call time
            return SRF.from_dict(d, source=p)
        return cls.from_dict(d, source=p)


#: A saved model's probabilities sum to one to within rounding; hand-edited files
#: rounded to 6 decimals over a few hundred entries stay well inside this.
SBN_FILE_SUM_TOL = 1e-4


def _int_list(d: dict, key: str, source, *, width: int | None = None) -> list:
    value = d[key]
    if not isinstance(value, list):
        raise FormatError(f"SBN model field {key!r} must be a list", path=source)
    for row in value:
        items = row if width is not None else [row]
        if width is not None and (not isinstance(row, list) or len(row) != width):
            raise FormatError(f"SBN model field {key!r} must hold lists of {width} integers",
                              path=source)
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in items):
            raise FormatError(f"SBN model field {key!r} must hold integers", path=source)
    return value


def _check_sbn_fields(d: dict, source) -> None:
    """Types and index ranges of a ``phylo-sbn`` JSON dict (before anything is built)."""
    version = d.get("version", 1)
    if version != 1 or isinstance(version, bool):
        raise FormatError(f"SBN model file version {version!r} is not supported (this phylo "
                          f"reads version 1)", path=source)
    taxa = d["taxa"]
    if (not isinstance(taxa, list) or len(taxa) < 2
            or not all(isinstance(t, str) and t for t in taxa)):
        raise FormatError("SBN model field 'taxa' must be a list of >= 2 taxon names",
                          path=source)
    if len(set(taxa)) != len(taxa):
        raise FormatError("SBN model has duplicate taxa", path=source)
    for key in ("rooted", "ccd"):
        if not isinstance(d[key], bool):
            raise FormatError(f"SBN model field {key!r} must be true or false", path=source)
    if not isinstance(d["method"], str):
        raise FormatError("SBN model field 'method' must be a string", path=source)
    s = len(taxa)
    clades = d["clades"]
    if not isinstance(clades, list) or not all(isinstance(c, list) and c for c in clades):
        raise FormatError("SBN model field 'clades' must be non-empty lists of taxon indices",
                          path=source)
    for c in clades:
        if not all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < s for t in c):
            raise FormatError(f"SBN model clade {c[:5]} has a taxon index outside 0..{s - 1}",
                              path=source)
    n = len(clades)
    roots = _int_list(d, "root_keys", source, width=2)
    conds = _int_list(d, "cond_keys", source, width=4)
    groups = _int_list(d, "cond_group", source)
    if any(r[0] >= r[1] for r in roots) or any(r[2] >= r[3] for r in conds):
        raise FormatError("SBN model subsplit keys must list their clades in increasing id "
                          "order (A < B)", path=source)
    if (len({frozenset(c) for c in clades}) != n or len({tuple(r) for r in roots}) != len(roots)
            or len({tuple(r) for r in conds}) != len(conds)):
        raise FormatError("SBN model repeats a clade or a subsplit key", path=source)
    if not roots:
        raise FormatError("SBN model has no root subsplits", path=source)
    if any(not 0 <= x < n for row in roots for x in row) or any(
            not 0 <= x < n for row in conds for k, x in enumerate(row) if k != 1) or any(
            not -1 <= row[1] < n for row in conds):
        raise FormatError(f"SBN model keys must be clade ids in 0..{n - 1}", path=source)
    if len(groups) != len(conds) or any(not 0 <= g < max(len(conds), 1) for g in groups):
        raise FormatError("SBN model field 'cond_group' must number the contexts of "
                          "'cond_keys' (one each)", path=source)
    theta = d["theta"]
    if (not isinstance(theta, list) or len(theta) != len(roots) + len(conds)
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in theta)):
        raise FormatError("SBN model field 'theta' must be one number per root and "
                          "conditional key", path=source)
    if not all(math.isfinite(x) and 0.0 <= x <= 1.0 for x in theta):
        raise FormatError("SBN model probabilities 'theta' must be finite and in [0, 1]",
                          path=source)
    fit = d.get("fit", {})
    if not isinstance(fit, dict):
        raise FormatError("SBN model field 'fit' must be an object", path=source)
    alpha = d.get("alpha", 0.0)
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not (
            math.isfinite(alpha) and alpha >= 0):
        raise FormatError("SBN model field 'alpha' must be a finite number >= 0", path=source)


def _check_sbn_arrays(model: "SBN", source) -> None:
    """Subsplits really split their clades, and probabilities sum to one per context."""
    clades = model.clades
    full = np.zeros(clades.shape[1], dtype=np.uint64)
    for t in range(model.n_taxa):
        full[t // 64] |= np.uint64(1) << np.uint64(t % 64)
    rk, ck = model.root_keys, model.cond_keys
    a, b = clades[rk[:, 0]], clades[rk[:, 1]]
    if np.any((a & b) != 0) or np.any((a | b) != full):
        raise FormatError("SBN model root subsplit does not split the taxa in two",
                          path=source)
    if ck.shape[0]:
        x, a, b = clades[ck[:, 0]], clades[ck[:, 2]], clades[ck[:, 3]]
        if np.any((a & b) != 0) or np.any((a | b) != x):
            raise FormatError("SBN model conditional subsplit does not split its clade",
                              path=source)
    if abs(model.root_prob.sum() - 1.0) > SBN_FILE_SUM_TOL:
        raise FormatError(f"SBN model root probabilities sum to {model.root_prob.sum():.6g}, "
                          f"not 1", path=source)
    if ck.shape[0]:
        sums = np.bincount(model.cond_group, weights=model.cond_prob)
        # a context the training trees never reach (rooted fits) keeps all-zero entries
        if np.any((np.abs(sums - 1.0) > SBN_FILE_SUM_TOL) & (sums > SBN_FILE_SUM_TOL)):
            raise FormatError("SBN model conditional probabilities do not sum to 1 (or 0, "
                              "for an unreached context) within a context", path=source)


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


