"""Named containers for the arrays the likelihood kernels read and write.

The kernels themselves take plain arrays (nothing but arrays and scalars crosses into
``@njit`` code, except :class:`KernelArguments`, a tuple of tuples that Numba types
field by field); these named tuples fix *which* array is which, so that the Python
engine (:class:`phylo.likelihood.TreeLikelihood`), the gradient, the batched and
incremental (MCMC) paths and a GPU twin all address them by name instead of by
position. In the pattern-parallel (blocked) engine the per-pattern arrays carry a
leading block axis K and P' becomes the block size B (:mod:`phylo._kernels.blocks`);
``pm`` and ``ptab`` are shared by all blocks. Shapes use S leaves, N nodes, C rate categories and P' padded patterns (a
multiple of 8, see :data:`phylo.likelihood.engine.PATTERN_BLOCK`); full layout notes
are in :mod:`phylo._kernels.pruning`.

``tuple(data) + tuple(state)`` is, in order, the argument list after ``bl`` of
:func:`phylo._kernels.pruning.log_likelihood`
(:meth:`KernelArguments.loglik_args`).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class EngineData(NamedTuple):
    """Read-only inputs shared by every evaluation of one (alignment, topology, model)."""
    children: np.ndarray     #: int32 (N, 3) post-order children, -1 padded
    n_children: np.ndarray   #: int32 (N,)
    tipx: np.ndarray         #: (S, 4, P') tip indicator rows (missing = all ones)
    tipc: np.ndarray         #: uint8 (S, P') tip 4-bit state masks (padding = 15)
    model: np.ndarray        #: packed model vector, see :func:`pruning.pack_model`
    weights: np.ndarray      #: (P',) pattern weights (site counts; 0 on padding)
    inv: np.ndarray          #: (P',) +I likelihoods Σ_{i compatible} π_i (0 without +I)


class EngineState(NamedTuple):
    """Scratch and results of one evaluation (``K`` = 1, or 2 when double-buffered for
    incremental updates: the live copy of internal node u is ``partials[cur[u-S], u-S]``)."""
    pm: np.ndarray           #: (N-1, C, 4, 4) transition matrices P_v,c
    ptab: np.ndarray         #: (S, C, 4, 16) tip-branch lookup tables
    partials: np.ndarray     #: (K, N-S, C, 4, P') conditional likelihoods
    cur: np.ndarray          #: int32 (N-S,) live buffer of each internal node
    scnt: np.ndarray         #: int32 (K, N-S, P') power-of-two scale exponents
    sflag: np.ndarray        #: int32 (K, N-S) 1 where the node was rescaled
    sbound: np.ndarray       #: (K, N-S, C) lower bounds on min_p max_i of the partials
    lnl: np.ndarray          #: (P',) ln L_p after an evaluation
    frac: np.ndarray         #: (P',) L_variable / L_p (1 without +I); rescaling scratch
    acc: np.ndarray          #: (4, P') root scratch
    escale: np.ndarray       #: int32 (P',) summed scale exponents scratch


class IncrementalBuffers(NamedTuple):
    """Extra buffers of :func:`pruning.propose_branch` / :func:`pruning.propose_all`."""
    parent: np.ndarray       #: int32 (N,) parent of each node, -1 at the root
    pm_save: np.ndarray      #: (C, 4, 4) the changed branch's old P
    path: np.ndarray         #: int32 (N,) recomputed nodes; their count in path[N-1]
    pm_all_save: np.ndarray  #: (N-1, C, 4, 4) every old P (tree-length move)


class McmcLayout(NamedTuple):
    """The MCMC loop's private topology: the tree re-rooted at its median node."""
    children: np.ndarray     #: int32 (N, 3)
    n_children: np.ndarray   #: int32 (N,)
    parent: np.ndarray       #: int32 (N,)
    bmap: np.ndarray         #: int64 (N-1,) layout index of the user's branch j


class GradientBuffers(NamedTuple):
    """Extra buffers of :func:`phylo._kernels.gradient.gradient`."""
    dpm: np.ndarray          #: (N-1, C, 4, 4) dP/dt
    hbuf: np.ndarray         #: (N-S, C, 3, 4, P') H = P x of each node's children
    pre: np.ndarray          #: (N-S+1, C, 3, 4, P') pre-order partials
    work: np.ndarray         #: (8, P') scratch
    loc: np.ndarray          #: int32 (N, 2) where each node's pre-order partial lives
    # (blocked: hbuf, pre, work and loc have a leading axis of T parallel chunks, T ≤ K)
    grads: np.ndarray | None = None  #: (K, N-1) per-block gradients (blocked layout only)


class KernelArguments(NamedTuple):
    """Everything the incremental kernels and the MCMC loop need, with private
    (double-buffered) state: :meth:`phylo.likelihood.TreeLikelihood.kernel_arguments`."""
    data: EngineData
    state: EngineState
    incremental: IncrementalBuffers
    layout: McmcLayout

    def loglik_args(self) -> tuple:
        """The arguments after ``bl`` of :func:`pruning.log_likelihood` (a plain tuple)."""
        return (*self.data, *self.state)
