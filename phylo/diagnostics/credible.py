"""Topology posterior summaries: credible sets of topologies."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import PhyloError
from ..trees.splits import TopologySample


@dataclass
class CredibleSet:
    """The most probable topologies whose cumulative probability first reaches ``level``.

    indices: topology indices into the sample (most probable first); prob: their
    probabilities; cumulative: running sums; level: the requested level.
    """

    indices: np.ndarray
    prob: np.ndarray
    cumulative: np.ndarray
    level: float

    @property
    def size(self) -> int:
        return int(self.indices.size)


def credible_set(sample: TopologySample, level: float = 0.95) -> CredibleSet:
    """Smallest set of most-probable topologies with cumulative probability >= level.

    MrBayes' ``sumt`` rule (the ``.trprobs`` "credible set contains N trees").
    """
    if not 0.0 < level <= 1.0:
        raise PhyloError(f"credible level must be in (0, 1], got {level}")
    order = sample.order()
    p = sample.probabilities[order]
    cum = np.cumsum(p)
    k = int(np.searchsorted(cum, level - 1e-12)) + 1
    k = min(k, order.size)
    return CredibleSet(order[:k], p[:k], cum[:k], float(level))
