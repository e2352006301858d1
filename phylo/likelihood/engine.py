"""The prepared tree likelihood: a thin validating layer over the Numba kernels.

``TreeLikelihood(alignment, tree, model)`` is built once per (alignment, topology,
model) and then called with new branch-length vectors; all buffers are allocated at
construction so a call does no allocation beyond its result. Kernels:
:mod:`phylo._kernels.pruning` (Felsenstein 1981 pruning with rescaling) and
:mod:`phylo._kernels.gradient` (Ji et al. 2020 linear-time gradient).
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np

from .._kernels import blocks as _blocks
from .._kernels import gradient as _grad
from .._kernels import pruning as _k
from .._kernels.state import (EngineData, EngineState, GradientBuffers, IncrementalBuffers,
                              KernelArguments, McmcLayout)
from ..errors import ModelError, PhyloError, TreeError
from ..io.alignment import Alignment
from ..models import Model
from ..threads import check_threads, current_threads, threads as _threads
from ..trees.tree import Tree
from .cuda import check_device

def _pad3(children: np.ndarray) -> np.ndarray:
    if children.shape[1] >= 3:
        return np.ascontiguousarray(children[:, :3], dtype=np.int32)
    return np.ascontiguousarray(np.pad(children, ((0, 0), (0, 3 - children.shape[1])),
                                       constant_values=-1), dtype=np.int32)


def _median_rooted_layout(tree: Tree) -> McmcLayout:
    """The MCMC kernels' private layout of an unrooted tree: the same tree re-rooted
    at its median node (the internal node minimising the summed edge distance to all
    nodes), where a single-branch proposal has the shortest mean path to the root and
    so recomputes the fewest partials. Returns (children (N, 3) int32, n_children,
    parent, bmap) with ``bmap[j]`` (int64, (N-1,)) the layout's index of the user's
    branch j. Rooted trees (and trees already rooted at a median) keep their layout
    (bmap = identity). The likelihood does not depend on the root (pulley principle)."""
    n, s = tree.n_nodes, tree.n_leaves
    ident = McmcLayout(_pad3(tree.children), np.ascontiguousarray(tree.n_children, dtype=np.int32),
                       np.ascontiguousarray(tree.parent, dtype=np.int32),
                       np.arange(n - 1, dtype=np.int64))
    if tree.rooted or tree.n_children[n - 1] != 3 or n - s < 2:
        return ident
    parent = tree.parent
    size = np.ones(n, dtype=np.int64)
    depth = np.zeros(n, dtype=np.int64)
    for v in range(n - 1):                   # post-order: children before parents
        size[parent[v]] += size[v]
    for v in range(n - 2, -1, -1):           # parents before children
        depth[v] = depth[parent[v]] + 1
    dist = np.empty(n, dtype=np.int64)
    dist[n - 1] = int(depth.sum())
    for v in range(n - 2, s - 1, -1):        # internal nodes only (a leaf is never best)
        dist[v] = dist[parent[v]] + n - 2 * size[v]
    best = n - 1
    for v in range(s, n - 1):
        if dist[v] < dist[best]:
            best = v
    if best == n - 1:
        return ident
    # label each branch with its index + 1 and let Tree.rerooted carry the labels
    labelled = tree.with_branch_lengths(np.arange(1, n, dtype=np.float64))
    rer = labelled.rerooted(best)
    if rer.n_nodes != n or rer.taxa != tree.taxa:
        return ident
    labels = np.rint(rer.branch_lengths).astype(np.int64) - 1
    bmap = np.empty(n - 1, dtype=np.int64)
    bmap[labels] = np.arange(n - 1)
    return McmcLayout(_pad3(rer.children), np.ascontiguousarray(rer.n_children, dtype=np.int32),
                      np.ascontiguousarray(rer.parent, dtype=np.int32), bmap)


#: The kernels see the patterns padded to a multiple of this (8 float64 = one 64-byte
#: cache line and one AVX-512 register) with weight-0 all-missing patterns, in
#: 64-byte-aligned buffers: every row of partials then starts on a cache line and the
#: pattern loops have no remainder (DS1 GTR+Γ4 post-order: 80 µs instead of 93).
PATTERN_BLOCK = 8
_ALIGN_BYTES = 64


def _padded_patterns(npat: int) -> int:
    return -(-npat // PATTERN_BLOCK) * PATTERN_BLOCK


def _aligned(shape: tuple, dtype=np.float64, fill: float | None = None) -> np.ndarray:
    """A C-contiguous array whose data starts on a 64-byte boundary."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + _ALIGN_BYTES, dtype=np.uint8)
    start = (-raw.ctypes.data) % _ALIGN_BYTES
    out = raw[start:start + nbytes].view(dtype).reshape(shape)
    if fill is not None:
        out.fill(fill)
    return out


def _pad_last(a: np.ndarray, width: int, value) -> np.ndarray:
    """``a`` padded along its last axis to ``width`` with ``value``, 64-byte aligned."""
    out = _aligned(a.shape[:-1] + (width,), a.dtype, fill=value)
    out[..., :a.shape[-1]] = a
    return out


#: Pattern-parallel evaluation (:mod:`phylo._kernels.blocks`): when an evaluation has
#: at least ``PARALLEL_MIN_WORK`` internal-node × pattern entries (per category) and
#: 2 × ``PARALLEL_MIN_BLOCK`` padded patterns, the patterns are cut into K ≥ 2 equal
#: blocks of at most about ``PARALLEL_BLOCK`` (multiples of PATTERN_BLOCK) that the
#: Numba threads evaluate in parallel; otherwise one block (the single-thread kernels).
#: The blocking depends on the data only, never on the thread count, so results have
#: the same bits for any number of threads. Measured on this 2-core Zen 4 (one thread,
#: CPU time, GTR+Γ4; benchmarks/large_data.py): a block costs a fixed overhead per node
#: (calls, bounds, the root), 500 × 19,765 patterns: 58.5 ms unblocked, 60.0-60.6 ms
#: with blocks of 2,048-4,096, 63.9 ms with 1,024; 200 × 4,558: 5.2 ms unblocked,
#: 6.3 ms with 1,024 (+20%) — hence large blocks and a floor on the work per block.
PARALLEL_BLOCK = 2048
PARALLEL_MIN_BLOCK = 512
PARALLEL_MIN_WORK = 1_000_000


def _block_size(npat_padded: int, n_internal: int, block_size: int | None) -> int:
    """Patterns per block (a multiple of PATTERN_BLOCK; = npat_padded: one block)."""
    if block_size is None:
        if (npat_padded < 2 * PARALLEL_MIN_BLOCK
                or n_internal * npat_padded < PARALLEL_MIN_WORK):
            return npat_padded
        k = max(2, -(-npat_padded // PARALLEL_BLOCK))
        return _padded_patterns(-(-npat_padded // k))
    if (isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer))
            or block_size < PATTERN_BLOCK or block_size % PATTERN_BLOCK):
        raise PhyloError(f"block_size must be a positive multiple of {PATTERN_BLOCK}, "
                         f"got {block_size!r}")
    return min(int(block_size), npat_padded)


def _blocked(a: np.ndarray, nblk: int, width: int, value) -> np.ndarray:
    """``a`` (..., P) cut along its last axis into ``nblk`` blocks of ``width`` (the
    last padded with ``value``): shape (nblk, ..., width), 64-byte aligned."""
    out = _aligned((nblk,) + a.shape[:-1] + (width,), a.dtype, fill=value)
    for k in range(nblk):
        lo = k * width
        hi = min(lo + width, a.shape[-1])
        if hi > lo:
            out[k, ..., :hi - lo] = a[..., lo:hi]
    return out


def _common_states(patterns: np.ndarray) -> np.ndarray:
    """0/1 indicators (4, P) of the states compatible with every tip of each pattern."""
    common = np.bitwise_and.reduce(patterns, axis=0)                     # (P,)
    return ((common[None, :] >> np.arange(4, dtype=np.uint8)[:, None]) & 1).astype(np.float64)


def _invariant_likelihoods(patterns: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """Σ_{i compatible with every tip} π_i per pattern, shape (P,) (the +I class), summed
    in state order as :func:`phylo._kernels.models.invariant_likelihoods_into` (the
    samplers' compiled twin gives the same bits)."""
    bits = _common_states(patterns)
    return ((bits[0] * pi[0] + bits[1] * pi[1]) + bits[2] * pi[2]) + bits[3] * pi[3]


class TreeLikelihood:
    """Log-likelihood of an alignment on one topology under one model.

    Parameters
    ----------
    alignment: :class:`phylo.io.alignment.Alignment` (site patterns + weights).
    tree: binary :class:`phylo.trees.Tree`, rooted (2S-2 branches) or unrooted
        (2S-3); leaves are matched to alignment rows by name. Its branch lengths
        (expected substitutions per site) are the default for every method.
    model: :class:`phylo.models.Model`; ``+F`` (empirical) frequencies are counted
        from ``alignment`` here.

    All log-likelihoods are natural logs summed over sites (pattern weights = site
    counts). Branch-length vectors have shape (n_branches,) = (N-1,), indexed by
    the tree's node numbering (branch v is above node v of :attr:`tree`, which has
    its leaves in alignment order — it may differ from the tree passed in).

    device: "cpu" (default) or "cuda": with "cuda", :meth:`log_likelihood`, the
    pattern/site log-likelihoods, :meth:`gradient` and :meth:`log_likelihood_batch`
    run on a CUDA GPU (tip data and topology stay on the device between calls;
    :mod:`phylo.likelihood.cuda`), and :class:`phylo.errors.DeviceError` is raised
    here if numba-cuda or a GPU is missing. Incremental (MCMC) evaluation always
    runs on the CPU kernels.
    """

    def __init__(self, alignment: Alignment, tree: Tree, model: Model | str, *,
                 threads: int | None = None, block_size: int | None = None,
                 device: str = "cpu", _shared: dict | None = None,
                 _cuda_base: Any = None) -> None:
        threads = check_threads(threads)
        check_device(device)
        if isinstance(model, str):
            model = Model.from_string(model)
        model = model.with_empirical_frequencies(alignment)
        if _shared is None:
            tree = tree.with_taxa_order(alignment.taxa)
            tree.require_binary()
            if tree.n_leaves < 3 and not tree.rooted:
                raise TreeError("an unrooted tree needs at least 3 taxa", path=tree.source)
            if tree.has_branch_lengths or np.any(np.isfinite(tree.branch_lengths)):
                tree.validate_branch_lengths()
            _shared = dict(
                children=np.ascontiguousarray(tree.children[:, :3], dtype=np.int32)
                if tree.children.shape[1] >= 3 else
                np.ascontiguousarray(np.pad(tree.children, ((0, 0), (0, 3 - tree.children.shape[1])),
                                            constant_values=-1), dtype=np.int32),
                n_children=np.ascontiguousarray(tree.n_children, dtype=np.int32),
                tip_states=np.ascontiguousarray(alignment.patterns, dtype=np.uint8),
            )
        npat = alignment.patterns.shape[1]
        width = _padded_patterns(npat)
        n_internal = _shared["children"].shape[0] - alignment.patterns.shape[0]
        bsz = _block_size(width, n_internal, block_size)
        nblk = -(-width // bsz)
        key = ("tips", bsz)
        if key not in _shared:
            # the kernels' tip data, padded (see PATTERN_BLOCK) and cut into nblk blocks
            # of bsz patterns: state masks (K, S, B), indicator rows (K, S, 4, B),
            # padding = missing (15), weight 0 there
            codes = _blocked(np.asarray(alignment.patterns, dtype=np.uint8), nblk, bsz, 15)
            tipx = _aligned(codes.shape[:2] + (4, bsz))
            np.copyto(tipx, (codes[:, :, None, :] >> np.arange(4, dtype=np.uint8)[:, None]) & 1)
            weights = _blocked(np.asarray(alignment.weights, dtype=np.float64), nblk, bsz, 0.0)
            _shared[key] = (tipx, codes, weights) if nblk > 1 else (tipx[0], codes[0], weights[0])
        self._threads = threads
        self._block_size = bsz
        self._nblocks = nblk
        self._alignment = alignment
        self._tree = tree
        self._model = model
        self._shared = _shared
        self._children = _shared["children"]
        self._n_children = _shared["n_children"]
        self._tips = _shared["tip_states"]
        self._tipx, self._tipc, self._weights = _shared[key]
        if "parent" not in _shared:
            parent = np.full(self._children.shape[0], -1, dtype=np.int32)
            for u in range(self._children.shape[0]):
                for k in range(int(self._n_children[u])):
                    parent[self._children[u, k]] = u
            _shared["parent"] = parent
        self._parent = _shared["parent"]
        self._packed, self._inv = self.kernel_model(model)
        self._kern = _blocks if nblk > 1 else _k
        n = self._children.shape[0]
        self._nb = n - 1
        self._data = EngineData(self._children, self._n_children, self._tipx, self._tipc,
                                self._packed, self._weights, self._inv)
        self._state = self._new_state(n_copies=1)
        self._grad_buffers: GradientBuffers | None = None
        self._buffer_home: TreeLikelihood | None = None     # set on with_kernel_model views
        self._incremental: KernelArguments | None = None
        self._pending: tuple | None = None
        bl = np.asarray(tree.branch_lengths, dtype=np.float64)
        self._default_bl = np.ascontiguousarray(bl) if np.all(np.isfinite(bl)) else None
        self._cuda = None
        if device == "cuda":
            from .cuda import CudaLikelihood
            self._cuda = (_cuda_base.with_model_of(self) if _cuda_base is not None
                          else CudaLikelihood.for_engine(self))

    def _new_state(self, n_copies: int) -> EngineState:
        """Fresh buffers of :func:`phylo._kernels.pruning.log_likelihood` (after the data),
        with ``n_copies`` (1, or 2 for incremental updates) copies of the partials."""
        s, npat = self._tipc.shape[-2:]     # padded pattern count (per block)
        n = self._children.shape[0]
        c = int(self._packed[_k.MODEL_NCAT])
        if self._nblocks > 1:
            k = self._nblocks
            # the blocked layout of phylo._kernels.blocks: per-pattern arrays per block
            return EngineState(
                pm=np.empty((n - 1, c, 4, 4)), ptab=_aligned((s, c, 4, 16)),
                partials=_aligned((k, n_copies, n - s, c, 4, npat)),
                cur=np.zeros((k, n - s), dtype=np.int32),
                scnt=_aligned((k, n_copies, n - s, npat), np.int32),
                sflag=np.zeros((k, n_copies, n - s), dtype=np.int32),
                sbound=np.zeros((k, n_copies, n - s, c)),
                lnl=_aligned((k, npat)), frac=_aligned((k, npat)), acc=_aligned((k, 4, npat)),
                escale=_aligned((k, npat), np.int32))
        return EngineState(
            pm=np.empty((n - 1, c, 4, 4)), ptab=_aligned((s, c, 4, 16)),
            partials=_aligned((n_copies, n - s, c, 4, npat)),
            cur=np.zeros(n - s, dtype=np.int32),
            scnt=_aligned((n_copies, n - s, npat), np.int32),
            sflag=np.zeros((n_copies, n - s), dtype=np.int32),
            sbound=np.zeros((n_copies, n - s, c)),
            lnl=_aligned((npat,)), frac=_aligned((npat,)), acc=_aligned((4, npat)),
            escale=_aligned((npat,), np.int32))

    @property
    def data(self) -> EngineData:
        """The kernels' read-only inputs (tip data padded to a multiple of 8 patterns;
        with :attr:`n_blocks` > 1 the per-pattern arrays carry a leading block axis, the
        layout of :mod:`phylo._kernels.blocks`)."""
        return self._data

    @property
    def n_blocks(self) -> int:
        """Pattern blocks evaluated in parallel (1: the single-thread kernels)."""
        return self._nblocks

    @property
    def block_size(self) -> int:
        """Patterns per block (padded; the last block is filled with weight-0 patterns)."""
        return self._block_size

    @property
    def threads(self) -> int | None:
        """Threads for this likelihood's parallel paths (None: Numba's current count)."""
        return self._threads

    @property
    def state(self) -> EngineState:
        """The buffers of the last :meth:`log_likelihood` / :meth:`gradient` call
        (``state.lnl[:n_patterns]`` = ln L_p, ``state.sflag`` = rescaled nodes)."""
        return self._state

    def kernel_model(self, model: Model) -> tuple[np.ndarray, np.ndarray]:
        """(packed model, +I pattern likelihoods): the two kernel arguments that depend
        on the substitution model (:func:`phylo._kernels.pruning.pack_model`; the +I
        likelihoods laid out like the patterns, zeros without +I). ``model`` must have
        as many rate categories as this likelihood's and resolved frequencies."""
        lam, v, vinv = model.eigen()
        packed = _k.pack_model(lam, v, vinv, model.category_rates(), model.category_weights(),
                               model.frequencies, model.pinv, model.rate_matrix())
        if model.pinv > 0:
            return packed, self._pattern_layout(
                _invariant_likelihoods(self._tips, model.frequencies))
        # zeros shared by the likelihoods of one alignment, tree and block size (the
        # kernels only read them): samplers call this at every model-parameter move
        return packed, self.no_invariant()

    def invariant_basis(self) -> np.ndarray:
        """0/1 indicators of the states common to all tips, laid out as the kernels'
        +I likelihoods: shape (4, n_blocks × block_size) (padding 0). The +I
        likelihoods of frequencies π are Σ_i π_i basis[i]
        (:func:`phylo._kernels.models.invariant_likelihoods_into`)."""
        key = ("invariant_basis", self._block_size)
        if key not in self._shared:
            bits = _common_states(self._tips)
            self._shared[key] = np.ascontiguousarray(
                np.stack([self._pattern_layout(b).reshape(-1) for b in bits]))
        return self._shared[key]

    def no_invariant(self) -> np.ndarray:
        """The +I likelihoods of a model without +I (zeros, kernel layout; shared, read-only)."""
        key = ("no_invariant", self._block_size)
        if key not in self._shared:
            self._shared[key] = self._pattern_layout(np.zeros(self._tips.shape[1]))
        return self._shared[key]

    def with_kernel_model(self, packed: np.ndarray, inv: np.ndarray) -> "TreeLikelihood":
        """A view of this likelihood evaluating another model given only its kernel
        arrays (:meth:`kernel_model`; same number of rate categories): tip data, scratch
        and gradient buffers are SHARED with this object, so the two must not be used
        concurrently. Its :attr:`model` is unknown (raises). For samplers that build
        models in compiled code (:func:`phylo._kernels.models.packed_from_unconstrained`)."""
        if self._cuda is not None:
            raise ModelError("with_kernel_model is a CPU path; use with_model on a device")
        if packed.shape != self._packed.shape or inv.shape != self._inv.shape:
            raise ModelError(f"kernel model of shape {packed.shape}/{inv.shape}, expected "
                             f"{self._packed.shape}/{self._inv.shape}")
        view = copy.copy(self)
        view._packed, view._inv = packed, inv
        view._data = self._data._replace(model=packed, inv=inv)
        view._model = None
        view._buffer_home = self if self._buffer_home is None else self._buffer_home
        view._incremental = None
        view._pending = None
        return view

    def _pattern_layout(self, values: np.ndarray) -> np.ndarray:
        """Per-pattern values (P,) laid out as the kernels' tip data (padded, blocked)."""
        if self._nblocks > 1:
            return _blocked(values, self._nblocks, self._block_size, 0.0)
        return _pad_last(values, self._tipc.shape[-1], 0.0)

    def kernel_arguments(self) -> KernelArguments:
        """Arguments for the Numba kernels, with private (double-buffered) scratch:
        ``data`` (shared, read-only), ``state`` (partials with 2 copies),
        ``incremental`` (the extra buffers of ``propose_branch``, ``revert_branch``,
        ``propose_all``, ``revert_all``) and ``layout``, the topology that the MCMC loop
        :func:`phylo._kernels.mcmc.run_chain_tree` uses internally (the tree re-rooted at
        its median node, see :func:`_median_rooted_layout`; the branch indices it sees
        are still the user's). ``args.loglik_args()`` are the arguments after ``bl`` of
        :func:`phylo._kernels.pruning.log_likelihood`. Every call returns new buffers."""
        state = self._new_state(n_copies=2)
        c = state.pm.shape[1]
        if "mcmc_layout" not in self._shared:
            self._shared["mcmc_layout"] = _median_rooted_layout(self._tree)
        inc = IncrementalBuffers(parent=self._parent, pm_save=np.empty((c, 4, 4)),
                                 path=np.zeros(self._children.shape[0], dtype=np.int32),
                                 pm_all_save=np.empty_like(state.pm))
        return KernelArguments(self._data, state, inc, self._shared["mcmc_layout"])

    # -- properties ------------------------------------------------------------
    @property
    def n_branches(self) -> int:
        return self._nb

    @property
    def tree(self) -> Tree:
        """The tree with leaves renumbered in alignment order (defines branch indices)."""
        return self._tree

    @property
    def alignment(self) -> Alignment:
        return self._alignment

    @property
    def model(self) -> Model:
        if self._model is None:
            raise ModelError("this likelihood was built from kernel arrays only "
                             "(with_kernel_model); its Model is not known")
        return self._model

    def with_model(self, model: Model | str) -> "TreeLikelihood":
        """The same alignment and topology under another model (tip data, threads and
        blocks shared; on the device too)."""
        return TreeLikelihood(self._alignment, self._tree, model, threads=self._threads,
                              block_size=self._block_size, device=self.device,
                              _shared=self._shared, _cuda_base=self._cuda)

    @property
    def device(self) -> str:
        """"cpu" or "cuda": where the non-incremental evaluations run."""
        return "cpu" if self._cuda is None else "cuda"

    def model_arrays(self, model: Model | str) -> tuple[np.ndarray, np.ndarray]:
        """(packed model, +I likelihoods (n_blocks × block_size,), unblocked) of
        another model with as many rate categories, on this alignment, without
        preparing an engine: per-item models for the device batches
        (:mod:`phylo.likelihood.cuda`)."""
        if isinstance(model, str):
            model = Model.from_string(model)
        packed, inv = self.kernel_model(model.with_empirical_frequencies(self._alignment))
        return packed, inv.reshape(-1)

    def _cuda_row(self, branch_lengths: np.ndarray, patterns: bool = False):
        """One evaluation on the device (NaN, as on the CPU, for invalid lengths)."""
        bl = branch_lengths
        if bl.size and not (bl.min() >= 0.0 and np.isfinite(bl.sum())):
            return (np.nan, np.full(self._tips.shape[1], np.nan)) if patterns else np.nan
        out = self._cuda.log_likelihood_batch(bl[None, :], patterns=patterns)
        return (float(out[0][0]), out[1][0]) if patterns else float(out[0])

    # -- validation --------------------------------------------------------------
    def _bl(self, bl: Any) -> np.ndarray:
        if bl is None:
            if self._default_bl is None:
                raise TreeError("the tree has no branch lengths; pass branch_lengths",
                                path=self._tree.source)
            return self._default_bl
        bl = np.asarray(bl, dtype=np.float64)
        if bl.shape != (self._nb,):
            raise TreeError(f"expected {self._nb} branch lengths, got shape {bl.shape}")
        # one vectorised test: min >= 0 is False for NaN; the sum catches +inf
        if not (bl.min() >= 0.0 and np.isfinite(bl.sum())):
            self._tree.with_branch_lengths(np.where(np.isfinite(bl), bl, np.nan)).validate_branch_lengths()
            raise TreeError("non-finite branch length", path=self._tree.source)
        if not bl.flags.c_contiguous:
            bl = np.ascontiguousarray(bl)
        return bl

    # -- evaluation ----------------------------------------------------------------
    def log_likelihood(self, branch_lengths: Any = None) -> float:
        """ln L (natural log, summed over sites) for branch lengths (n_branches,).

        Validation is folded into the kernel (it returns NaN on a negative or
        non-finite length, and only then is the vector inspected to name the branch),
        so the checked call costs about the same as :meth:`log_likelihood_unchecked`."""
        if branch_lengths is None:
            return self.log_likelihood_unchecked(self._bl(None))
        bl = np.asarray(branch_lengths, dtype=np.float64)
        if bl.shape != (self._nb,) or not bl.flags.c_contiguous:
            bl = self._bl(bl)
        value = self.log_likelihood_unchecked(bl)
        if value != value:  # NaN: an invalid length (raises naming it)
            self._bl(bl)
        return value

    def log_likelihood_unchecked(self, branch_lengths: np.ndarray) -> float:
        """Fast path for samplers: ``branch_lengths`` must be a C-contiguous float64
        array of shape (n_branches,) (not checked; invalid lengths give NaN)."""
        if self._cuda is not None:
            return self._cuda_row(branch_lengths)
        if self._nblocks == 1:
            return _k.log_likelihood(branch_lengths, *self._data, *self._state)
        with _threads(self._threads):
            return _blocks.log_likelihood(branch_lengths, *self._data, *self._state)

    def pattern_log_likelihoods(self, branch_lengths: Any = None) -> np.ndarray:
        """ln L_p of every site pattern, shape (n_patterns,) (not weighted)."""
        if self._cuda is not None:
            return self._cuda_row(self._bl(branch_lengths), patterns=True)[1]
        self.log_likelihood(branch_lengths)
        return self._state.lnl.reshape(-1)[:self._tips.shape[1]].copy()

    def pattern_log_likelihoods_unchecked(self, branch_lengths: np.ndarray) -> np.ndarray:
        """:meth:`pattern_log_likelihoods` on the fast path of
        :meth:`log_likelihood_unchecked` (NaN everywhere for invalid lengths)."""
        if self._cuda is not None:
            return self._cuda_row(branch_lengths, patterns=True)[1]
        value = self.log_likelihood_unchecked(branch_lengths)
        if value != value:
            return np.full(self._tips.shape[1], np.nan)
        return self._state.lnl.reshape(-1)[:self._tips.shape[1]].copy()

    def site_log_likelihoods(self, branch_lengths: Any = None) -> np.ndarray:
        """ln L of every alignment site, shape (n_sites,), in alignment column order."""
        return self.pattern_log_likelihoods(branch_lengths)[self._alignment.site_pattern]

    def gradient(self, branch_lengths: Any = None) -> tuple[float, np.ndarray]:
        """(ln L, d ln L / d t) with the gradient of shape (n_branches,), per unit of
        branch length, in O(S) by post- and pre-order passes (Ji et al. 2020)."""
        return self.gradient_unchecked(self._bl(branch_lengths))

    def gradient_unchecked(self, branch_lengths: np.ndarray) -> tuple[float, np.ndarray]:
        """:meth:`gradient` without validating ``branch_lengths`` (see
        :meth:`log_likelihood_unchecked`). The returned array is new."""
        if self._cuda is not None:
            lnl, grad = self._cuda.gradient_batch(branch_lengths[None, :])
            return float(lnl[0]), grad[0]
        nchunk = 1
        if self._nblocks > 1:
            with _threads(self._threads):
                nchunk = min(self._nblocks, current_threads())
        # a with_kernel_model view keeps its buffers on the engine it views
        home = self if self._buffer_home is None else self._buffer_home
        if home._grad_buffers is None or (self._nblocks > 1
                                          and home._grad_buffers.hbuf.shape[0] != nchunk):
            st = self._state
            _, rows, c, _, npat = st.partials.shape[-5:]
            n = self._children.shape[0]
            # blocked: pre-order scratch per parallel chunk (phylo._kernels.blocks.gradient)
            k = () if self._nblocks == 1 else (nchunk,)
            # H slabs (children of each internal node) and pre-order slabs (+1 row for
            # the root's third child): see phylo._kernels.gradient; per block if blocked
            home._grad_buffers = GradientBuffers(
                dpm=np.empty_like(st.pm), hbuf=_aligned(k + (rows, c, 3, 4, npat)),
                pre=_aligned(k + (rows + 1, c, 3, 4, npat)), work=_aligned(k + (8, npat)),
                loc=np.zeros(k + (n, 2), dtype=np.int32),
                grads=np.empty((self._nblocks, n - 1)) if k else None)
        g, st = home._grad_buffers, self._state
        grad = np.empty(self._nb)
        if self._nblocks == 1:
            total = _grad.gradient(branch_lengths, *self._data, st.pm, g.dpm, st.ptab,
                                   st.partials, st.cur, st.scnt, st.sflag, st.sbound, g.hbuf,
                                   g.pre, st.lnl, st.frac, st.acc, st.escale, g.work, g.loc,
                                   grad)
        else:
            with _threads(self._threads):
                total = _blocks.gradient(branch_lengths, *self._data, st.pm, g.dpm, st.ptab,
                                         st.partials, st.cur, st.scnt, st.sflag, st.sbound,
                                         g.hbuf, g.pre, st.lnl, st.frac, st.acc, st.escale,
                                         g.work, g.loc, g.grads, grad)
        return total, grad

    def log_likelihood_batch(self, branch_lengths: Any, *, parallel: bool = True,
                             check: bool = True) -> np.ndarray:
        """ln L for each row of ``branch_lengths`` (B, n_branches) → (B,).

        With ``parallel`` the work is split over :attr:`threads` threads (default: Numba's
        current count); otherwise one thread. Each row has the bits of
        :meth:`log_likelihood`. Memory: with one pattern block every row-thread holds a
        full set of partials (small by construction: one block means fewer than
        PARALLEL_MIN_WORK node-pattern entries); with :attr:`n_blocks` > 1 a row-thread
        holds the buffers of one block only (1/K of a full set), or, with fewer rows than
        threads, the rows are evaluated one by one, each split over the blocks.

        On ``device="cuda"`` all rows go to the GPU in one launch (or a few, to bound
        device memory); ``parallel`` and :attr:`threads` are then ignored."""
        bl = np.ascontiguousarray(branch_lengths, dtype=np.float64)
        if bl.ndim != 2 or bl.shape[1] != self._nb:
            raise TreeError(f"expected branch lengths of shape (B, {self._nb}), got {bl.shape}")
        if check and bl.size and not (bl.min() >= 0.0 and np.isfinite(bl.sum())):
            row = int(np.flatnonzero(~np.all(np.isfinite(bl) & (bl >= 0), axis=1))[0])
            try:
                self._bl(bl[row])
            except TreeError as exc:
                raise TreeError(f"row {row}: {exc.detail}", path=self._tree.source) from None
        if bl.shape[0] == 0:
            return np.empty(0)
        if self._cuda is not None:
            out = self._cuda.log_likelihood_batch(bl)
            if not check:       # as on the CPU: NaN for a row with an invalid length
                out[~np.all(np.isfinite(bl) & (bl >= 0), axis=1)] = np.nan
            return out
        with _threads(self._threads if parallel else 1):
            nthreads = current_threads()
            out = np.empty(bl.shape[0])
            if self._nblocks > 1:
                if bl.shape[0] < nthreads:
                    for r in range(bl.shape[0]):       # pattern-parallel, row by row
                        out[r] = _blocks.log_likelihood(bl[r], *self._data, *self._state)
                else:
                    _blocks.log_likelihood_batch(bl, *self._data, nthreads, out)
                return out
            chunks = min(bl.shape[0], nthreads)
            if chunks == 1:
                for r in range(bl.shape[0]):
                    out[r] = _k.log_likelihood(bl[r], *self._data, *self._state)
                return out
            _k.log_likelihood_batch(bl, *self._data, chunks, out)
            return out

    def log_likelihood_batch_models(self, branch_lengths: np.ndarray, models: np.ndarray,
                                    invs: np.ndarray, *, parallel: bool = True) -> np.ndarray:
        """ln L of row r of ``branch_lengths`` (B, n_branches) under packed model
        ``models[r]`` (B, L) with +I likelihoods ``invs[r]`` (B, n_blocks × block_size)
        (:meth:`kernel_model` layout, flattened); every model with this likelihood's
        number of rate categories. Nothing is validated (invalid lengths give NaN).
        Rows run in parallel over :attr:`threads` threads (one pattern block), or one by
        one pattern-parallel (several blocks); each value has the bits of
        :meth:`log_likelihood` under its model. CPU only."""
        bl = np.ascontiguousarray(branch_lengths, dtype=np.float64)
        models = np.ascontiguousarray(models, dtype=np.float64)
        invs = np.ascontiguousarray(invs, dtype=np.float64)
        out = np.empty(bl.shape[0])
        if bl.shape[0] == 0:
            return out
        with _threads(self._threads if parallel else 1):
            if self._nblocks > 1:
                d = self._data
                for r in range(bl.shape[0]):
                    out[r] = _blocks.log_likelihood(
                        bl[r], d.children, d.n_children, d.tipx, d.tipc, models[r], d.weights,
                        invs[r].reshape(self._inv.shape), *self._state)
                return out
            chunks = min(bl.shape[0], current_threads())
            _k.log_likelihood_batch_models(bl, self._children, self._n_children, self._tipx,
                                           self._tipc, models, self._weights, invs, chunks, out)
        return out

    # -- incremental evaluation (MCMC) ------------------------------------------------------
    def set_branch_lengths(self, branch_lengths: Any = None) -> float:
        """Start incremental evaluation at ``branch_lengths``: full evaluation into a
        private double-buffered state; returns ln L. Then :meth:`propose_branch` /
        :meth:`propose_all` followed by :meth:`accept` or :meth:`reject`."""
        bl = self._bl(branch_lengths).copy()
        if self._incremental is None:
            self._incremental = self.kernel_arguments()
        self._pending = None
        self._current_bl = bl
        with _threads(self._threads):
            return float(self._kern.log_likelihood(bl, *self._incremental.loglik_args()))

    def propose_branch(self, branch: int, length: float) -> float:
        """ln L with branch ``branch`` set to ``length`` (others as the current state),
        recomputing only the partials on the path from that branch to the root."""
        self._require_incremental()
        length = float(length)
        if not (0.0 <= length < np.inf):
            raise TreeError(f"invalid length {length} for branch {branch}")
        a = self._incremental
        d, inc = a.data, a.incremental
        with _threads(self._threads):
            value = self._kern.propose_branch(int(branch), length, d.children, d.n_children,
                                              inc.parent, d.tipx, d.tipc, d.model, d.weights,
                                              d.inv, *a.state, inc.pm_save, inc.path)
        self._pending = ("branch", int(branch), length)
        return float(value)

    def propose_all(self, branch_lengths: Any) -> float:
        """ln L with every branch changed (full evaluation into the spare buffers)."""
        self._require_incremental()
        bl = self._bl(branch_lengths).copy()
        a = self._incremental
        with _threads(self._threads):
            value = self._kern.propose_all(bl, *a.loglik_args(), a.incremental.pm_all_save)
        self._pending = ("all", bl)
        return float(value)

    def accept(self) -> None:
        if self._pending is None:
            raise TreeError("no pending proposal to accept")
        if self._pending[0] == "branch":
            self._current_bl[self._pending[1]] = self._pending[2]
        else:
            self._current_bl = self._pending[1]
        self._pending = None

    def reject(self) -> None:
        if self._pending is None:
            raise TreeError("no pending proposal to reject")
        a = self._incremental
        model, st, inc = a.data.model, a.state, a.incremental
        if self._pending[0] == "branch":
            self._kern.revert_branch(self._pending[1], self._tips.shape[0], model, st.pm,
                                     st.ptab, st.cur, inc.pm_save, inc.path)
        else:
            self._kern.revert_all(model, st.pm, st.ptab, st.cur, inc.pm_all_save)
        self._pending = None

    @property
    def current_branch_lengths(self) -> np.ndarray:
        """Branch lengths of the incremental state (a copy)."""
        self._require_incremental()
        return self._current_bl.copy()

    def _require_incremental(self) -> None:
        if self._incremental is None:
            raise TreeError("call set_branch_lengths first")
        if self._pending is not None:
            raise TreeError("accept or reject the pending proposal first")

    def __repr__(self) -> str:
        return (f"TreeLikelihood(n_taxa={self._tips.shape[0]}, n_patterns={self._tips.shape[1]}, "
                f"model={self._model.to_string()!r})")


def log_likelihood(alignment: Alignment, tree: Tree, model: Model | str) -> float:
    """ln L of ``alignment`` on ``tree`` (with its branch lengths) under ``model``."""
    return TreeLikelihood(alignment, tree, model).log_likelihood()
