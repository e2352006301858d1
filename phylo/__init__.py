"""phylo: probabilistic phylogenetic inference.

Public API (imported lazily so that ``import phylo`` stays fast and does not pull
Numba in until a kernel is needed):

- data: :func:`read_alignment`, :func:`read_trees`, :class:`Alignment`, :class:`Tree`
- data: :func:`read_topologies` (bulk tree samples), :func:`random_tree`,
  :func:`simulate_alignment`
- models and likelihood: :class:`Model`, :func:`log_likelihood`, :class:`TreeLikelihood`
- the main job: :func:`model_comparison_report` (what ``phylo compare`` runs)
- subpackages: :mod:`phylo.marginal`, :mod:`phylo.sbn`, :mod:`phylo.diagnostics`,
  :mod:`phylo.noise`, :mod:`phylo.report`
- errors: :class:`PhyloError` and its subclasses in :mod:`phylo.errors`
"""
from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__
from .errors import PhyloError

#: public name -> module that defines it
_EXPORTS = {
    "read_alignment": "phylo.io.alignment",
    "Alignment": "phylo.io.alignment",
    "read_trees": "phylo.io.trees",
    "parse_newick": "phylo.io.newick",
    "Tree": "phylo.trees.tree",
    "Model": "phylo.models",
    "log_likelihood": "phylo.likelihood",
    "TreeLikelihood": "phylo.likelihood",
    "read_topologies": "phylo.io.trees",
    "random_tree": "phylo.trees.random",
    "simulate_alignment": "phylo.likelihood.simulate",
    "model_comparison_report": "phylo.report.job",
}

__all__ = ["__version__", "PhyloError", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'phylo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
