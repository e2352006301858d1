"""Sample relative frequencies (SRF): the empirical topology distribution, zero for
unseen trees — the baseline of Zhang & Matsen (2018), Table 1."""
from __future__ import annotations

import json
import math

import numpy as np

from ..errors import FormatError, PhyloError, TreeError
from ..trees.splits import RowTable, TopologySample, topology_sample_from_parents
from .model import FitInfo


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
        self._table = RowTable(sample.keys.shape[1])
        self._table.add(sample.keys)
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
        ids = self._table.get(t.keys)
        out = np.full(ids.shape, -np.inf)
        with np.errstate(divide="ignore"):   # a stored zero probability is ln 0 = -inf
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
            taxa, tops, prob = d["taxa"], d["topologies"], d["prob"]
            if (not isinstance(taxa, list) or len(taxa) < 2
                    or not all(isinstance(t, str) and t for t in taxa)
                    or len(set(taxa)) != len(taxa)):
                raise FormatError("SRF model field 'taxa' must be >= 2 distinct names",
                                  path=source)
            if not isinstance(d["rooted"], bool):
                raise FormatError("SRF model field 'rooted' must be true or false", path=source)
            if (not isinstance(tops, list) or not tops
                    or not all(isinstance(t, str) for t in tops)):
                raise FormatError("SRF model field 'topologies' must be Newick strings",
                                  path=source)
            if (not isinstance(prob, list) or len(prob) != len(tops)
                    or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                               and math.isfinite(x) and x >= 0 for x in prob)
                    or sum(prob) <= 0):
                raise FormatError("SRF model field 'prob' must be one finite number >= 0 per "
                                  "topology, not all zero", path=source)
            trees = [parse_newick(t, taxa=d["taxa"], rooted=d["rooted"], source=source)
                     for t in d["topologies"]]
            smp = topology_sample_from_trees(trees, taxa=d["taxa"], rooted=d["rooted"])
            ids = np.arange(len(trees))  # topologies are distinct and in order
            smp.counts[:] = np.asarray(d["prob"], dtype=np.float64)[ids]
            return cls(smp)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            if isinstance(exc, PhyloError):
                raise
            what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise FormatError(f"malformed SRF model file ({what})", path=source) from None

