"""ln L of one alignment on many topologies at once (tree-space estimators, SBN draws).

:func:`log_likelihood_topologies` evaluates T trees, each with its own branch lengths,
under one model: on the CPU one prepared :class:`TreeLikelihood` per topology (its
post-order arrays differ), on a CUDA GPU in one launch where batch item t runs
topology t's own post-order program (:mod:`phylo.likelihood.cuda`).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import TreeError
from ..io.alignment import Alignment
from ..models import Model
from ..trees.tree import Tree
from .cuda import check_device


def _aligned_lengths(tree: Tree, renumbered: Tree, lengths: np.ndarray) -> np.ndarray:
    """``lengths`` (indexed by ``tree``'s branches) re-indexed by ``renumbered``'s."""
    if renumbered is tree:
        return lengths
    labels = tree.with_branch_lengths(np.arange(1, tree.n_branches + 1, dtype=np.float64))
    order = np.rint(labels.with_taxa_order(renumbered.taxa).branch_lengths).astype(np.int64) - 1
    return lengths[order]


def prepare_topologies(alignment: Alignment, trees: Sequence[Tree],
                       branch_lengths: Any = None) -> tuple[list[Tree], np.ndarray]:
    """The trees with leaves in alignment order, and their branch lengths (T, N-1) in
    that numbering. ``branch_lengths`` row t is indexed by ``trees[t]``'s own branch
    numbering (None: each tree's own lengths). All trees must be binary, on the
    alignment's taxa, and all rooted or all unrooted."""
    trees = list(trees)
    if not trees:
        raise TreeError("no trees to evaluate")
    if not all(isinstance(t, Tree) for t in trees):
        raise TreeError("trees must be phylo.trees.Tree objects")
    nb = trees[0].n_branches
    if any(t.n_branches != nb for t in trees):
        raise TreeError("all trees must have the same number of branches (all rooted or "
                        "all unrooted, on the same taxa)")
    if branch_lengths is None:
        bl = np.array([t.branch_lengths for t in trees], dtype=np.float64)
    else:
        bl = np.asarray(branch_lengths, dtype=np.float64)
        if bl.shape != (len(trees), nb):
            raise TreeError(f"expected branch lengths of shape ({len(trees)}, {nb}), "
                            f"got {bl.shape}")
    out_trees = []
    out_bl = np.empty_like(bl)
    for t, tree in enumerate(trees):
        ren = tree.with_taxa_order(alignment.taxa)
        ren.require_binary()
        row = _aligned_lengths(tree, ren, bl[t])
        if not (np.all(row >= 0) and np.all(np.isfinite(row))):
            ren.with_branch_lengths(np.where(np.isfinite(row), row, np.nan)).validate_branch_lengths()
            raise TreeError(f"tree {t}: non-finite branch length", path=tree.source)
        out_trees.append(ren)
        out_bl[t] = row
    return out_trees, out_bl


def log_likelihood_topologies(alignment: Alignment, trees: Sequence[Tree],
                              model: Model | str, branch_lengths: Any = None, *,
                              device: str = "cpu") -> np.ndarray:
    """ln L (natural log, summed over sites) of ``alignment`` on each of ``trees`` under
    ``model`` → (T,).

    ``branch_lengths``: None (each tree's own) or (T, n_branches), row t indexed by
    ``trees[t]``'s branch numbering (branch v above node v). ``device``: "cpu" (one
    prepared likelihood per topology) or "cuda" (all topologies in one launch; see
    :mod:`phylo.likelihood.cuda` for what it needs)."""
    from .engine import TreeLikelihood

    check_device(device)
    ren, bl = prepare_topologies(alignment, trees, branch_lengths)
    if device == "cpu":
        return np.array([TreeLikelihood(alignment, t, model).log_likelihood(bl[i])
                         for i, t in enumerate(ren)])
    from .cuda import CudaLikelihood
    first = TreeLikelihood(alignment, ren[0], model)
    state = CudaLikelihood.for_topologies(first, ren)
    return state.log_likelihood_batch(bl)


__all__ = ["log_likelihood_topologies", "prepare_topologies"]
