"""Tree likelihoods on a CUDA GPU (numba-cuda): device-resident state, batched calls.

The kernels are :mod:`phylo._kernels.cuda_pruning`; this module prepares what they
read (the post-order schedule of each topology, the tip masks, pattern weights, +I
likelihoods and the packed model, all copied to the device once) and splits large
batches into launches that fit a memory budget. Nothing here imports ``numba.cuda``
until a CUDA object is built, so :mod:`phylo` imports without numba-cuda or a GPU.

Device selection: ``device="cpu"`` or ``"cuda"``. ``"cuda"`` needs numba-cuda and
either a CUDA GPU or numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, a slow
pure-Python stand-in used by the tests); otherwise :class:`phylo.errors.DeviceError`
names what is missing.
"""
from __future__ import annotations

import math
from types import ModuleType
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..errors import DeviceError

if TYPE_CHECKING:
    from ..trees.tree import Tree
    from .engine import TreeLikelihood

DEVICES = ("cpu", "cuda")
#: patterns per thread in the likelihood kernel: the 4x4 matrix loads are shared by
#: this many patterns (the measured kernel was bound by those loads).
PATTERNS_PER_THREAD = 2
#: threads per block on a GPU (64 and 128 measured the same on an H200)
THREADS_PER_BLOCK = 128
#: a batch item's transition matrices are staged in shared memory up to this size
#: (below the 48 KB a block may use without opting in; DS1 GTR+Γ4 needs 26 KB)
SHARED_MATRIX_BYTES = 40 * 1024
#: device scratch per launch (transition matrices, per-pattern results, gradient
#: partials); larger batches are split into several launches
MEMORY_BUDGET_BYTES = 1 << 30


def check_device(device: str) -> str:
    """``device`` validated ("cpu" or "cuda"); the CUDA check is :func:`require_cuda`."""
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}: expected one of {', '.join(DEVICES)}")
    return device


def require_cuda() -> ModuleType:
    """The CUDA kernel module, or :class:`DeviceError` naming what is missing (cheap
    after the first call: the imports are cached and numba caches the driver probe)."""
    from .._kernels.cuda_import import import_cuda, simulator_requested
    try:
        cuda = import_cuda()
    except ImportError as exc:
        raise DeviceError("device 'cuda' needs numba-cuda, which is not installed or does "
                          f"not import ({exc}); install it with pip install 'phylo[gpu]'") from None
    if not cuda.is_available():
        hint = ("" if simulator_requested() else
                "; set NUMBA_ENABLE_CUDASIM=1 to run the CUDA kernels "
                "on numba's (slow) CUDA simulator")
        raise DeviceError("device 'cuda' needs a CUDA GPU and driver, and numba.cuda finds "
                          f"none{hint}")
    from .._kernels import cuda_pruning
    return cuda_pruning


def simulated() -> bool:
    """Whether the CUDA kernels run on numba's CUDA simulator."""
    from numba.core import config
    return bool(config.ENABLE_CUDASIM)


# --- schedules ------------------------------------------------------------------------------
def schedule(children: np.ndarray, n_children: np.ndarray, n_leaves: int, *,
             reuse_slots: bool = True) -> tuple[np.ndarray, int]:
    """The post-order program of one topology for the CUDA kernels.

    Returns ``(ops, n_slots)`` with ``ops`` int32 (N-S, 8) in the column order of
    :mod:`phylo._kernels.cuda_pruning` (children, their slots, the node's slot, the
    node), children before parents and the root last.

    With ``reuse_slots`` (the likelihood kernel) nodes are ordered Sethi–Ullman
    style — at every node the child needing more live partials first — and a node's
    partials overwrite one of its children's slots, so ``n_slots`` is the most partial
    vectors alive at once (O(log S) for balanced trees, at most ~S/2+1). Without it
    (the gradient, which keeps every node) the order is the tree's own and the slot of
    node u is u - S."""
    n = children.shape[0]
    s = int(n_leaves)
    root = n - 1
    kids = [[int(children[u, k]) for k in range(int(n_children[u]))] for u in range(n)]
    if any(len(kids[u]) != 2 for u in range(s, root)) or not 2 <= len(kids[root]) <= 3:
        raise DeviceError("the CUDA kernels need a binary tree (2 children per internal "
                          "node, 2 or 3 at the root)")
    ops = np.full((n - s, 8), -1, dtype=np.int32)
    if not reuse_slots:
        for u in range(s, n):
            ks = kids[u]
            for j, v in enumerate(ks):
                ops[u - s, j] = v
                ops[u - s, 3 + j] = v - s if v >= s else -1
            ops[u - s, 6] = u - s if u != root else -1
            ops[u - s, 7] = u
        return ops, n - s - 1
    need = np.zeros(n, dtype=np.int64)        # live slots needed to evaluate a subtree
    for u in range(s, n):
        ns = sorted((int(need[v]) for v in kids[u]), reverse=True)
        # evaluating child k (in decreasing need) keeps the k earlier results alive
        need[u] = max(max(nk + k for k, nk in enumerate(ns)), 1)
    order: list[int] = []
    stack = [(root, False)]
    while stack:                               # iterative post-order, needier child first
        u, done = stack.pop()
        if u < s:
            continue
        if done:
            order.append(u)
            continue
        stack.append((u, True))
        for v in sorted(kids[u], key=lambda v: int(need[v])):   # pushed last = popped first
            stack.append((v, False))
    slot_of: dict[int, int] = {}
    free: list[int] = []
    n_slots = 0
    for row, u in enumerate(order):
        ks = sorted(kids[u], key=lambda v: -int(need[v]))
        for j, v in enumerate(ks):
            ops[row, j] = v
            ops[row, 3 + j] = slot_of.get(v, -1)
        if u == root:
            ops[row, 6] = -1
        else:
            inner = [slot_of.pop(v) for v in ks if v >= s]
            if inner:
                dst = inner[0]
                free.extend(inner[1:])
            elif free:
                dst = free.pop()
            else:
                dst = n_slots
                n_slots += 1
            slot_of[u] = dst
            ops[row, 6] = dst
        ops[row, 7] = u
    return ops, max(n_slots, 1)


def engine_arrays(engine: "TreeLikelihood") -> tuple:
    """(tipc (S, W) uint8, weights (W,), inv (W,), packed model) of a CPU engine in
    the unblocked padded layout the CUDA kernels read: W = n_blocks × block_size, a
    multiple of 8; with several pattern blocks (:mod:`phylo._kernels.blocks`) the
    blocks are concatenated (they hold consecutive patterns, padding at the end)."""
    d = engine.data
    if d.tipc.ndim == 3:
        k, s, b = d.tipc.shape
        tipc = np.ascontiguousarray(d.tipc.transpose(1, 0, 2).reshape(s, k * b))
        return tipc, d.weights.reshape(-1), d.inv.reshape(-1), d.model
    return d.tipc, d.weights, d.inv, d.model


# --- device-resident state ------------------------------------------------------------------
class CudaLikelihood:
    """Tip data, pattern weights, +I likelihoods, model and topologies on the GPU.

    Built once (:meth:`for_engine`, :meth:`for_topologies`); every call copies only
    branch lengths (and per-item models, if given) in and results out — both counted in
    any timing of a call. ``arrays`` = (tipc, weights, inv, model) as
    :func:`engine_arrays`: padded tip masks (S, P'), pattern weights (P', 0 on
    padding), +I likelihoods (P') and the packed model; ``n_patterns`` the real pattern count P ≤ P'; ``ops`` (T, N-S, 8) and ``n_slots``
    from :func:`schedule` with slot reuse (T = 1: every batch item on one topology;
    T = B: item b on topology b), ``gops`` the same without reuse (the gradient).
    ``scale_threshold``: a power of two ≤ 1 replacing the CPU kernels'
    ``SCALE_THRESHOLD`` (a testing aid: 1.0 rescales every node of every pattern; ln L
    is unchanged up to rounding)."""

    def __init__(self, arrays: tuple, n_patterns: int, ops: np.ndarray, n_slots: int,
                 gops: np.ndarray, *, scale_threshold: float | None = None) -> None:
        self._k = require_cuda()
        cuda = self._k.cuda
        self._cuda = cuda
        tipc, weights, inv, model = arrays
        self.n_leaves, self.width = tipc.shape
        self.n_patterns = int(n_patterns)
        self.n_branches = ops.shape[1] + self.n_leaves - 1
        self.n_topologies = ops.shape[0]
        self.model_length = model.shape[0]
        self.nc = int(model[0])
        self.n_slots = int(n_slots)
        self._tipc = cuda.to_device(np.ascontiguousarray(tipc, dtype=np.uint8))
        self._weights = cuda.to_device(np.ascontiguousarray(weights, dtype=np.float64))
        self._models = cuda.to_device(np.ascontiguousarray(model[None, :], dtype=np.float64))
        self._invs = cuda.to_device(np.ascontiguousarray(inv[None, :], dtype=np.float64))
        self._ops = cuda.to_device(np.ascontiguousarray(ops, dtype=np.int32))
        self._gops = cuda.to_device(np.ascontiguousarray(gops, dtype=np.int32))
        self._sim = simulated()
        self._threshold = (self._k.SCALE_THRESHOLD if scale_threshold is None
                           else float(scale_threshold))
        if not (0.0 < self._threshold <= 1.0 and math.frexp(self._threshold)[0] == 0.5):
            raise DeviceError(f"scale_threshold must be a power of two <= 1, got {scale_threshold}")
        self._shared = self.n_branches * 16 * self.nc * 8 <= SHARED_MATRIX_BYTES
        self._kernel = self._k.make_loglik_kernel(self.n_slots, self.nc, PATTERNS_PER_THREAD,
                                                  self.n_branches, self._shared, self._threshold)
        self._gkernel = self._k.make_gradient_kernel(self.nc, self._threshold)

    @classmethod
    def for_engine(cls, engine: "TreeLikelihood", **options: Any) -> "CudaLikelihood":
        """The device state of a prepared CPU :class:`~phylo.likelihood.TreeLikelihood`
        (same padded tip masks, weights, +I likelihoods, packed model, topology)."""
        return cls.for_topologies(engine, [engine.tree], **options)

    @classmethod
    def for_topologies(cls, engine: "TreeLikelihood", trees: Sequence["Tree"],
                       **options: Any) -> "CudaLikelihood":
        """Like :meth:`for_engine`, with item t of every batch on ``trees[t]`` (binary,
        leaves in the alignment's order, as many branches as ``engine.tree``)."""
        arrays = engine_arrays(engine)
        s = arrays[0].shape[0]
        progs = [schedule(t.children, t.n_children, s) for t in trees]
        if any(p[0].shape != progs[0][0].shape for p in progs):
            raise DeviceError("all topologies must have the same number of nodes")
        gprogs = [schedule(t.children, t.n_children, s, reuse_slots=False)[0] for t in trees]
        return cls(arrays, engine.alignment.n_patterns, np.stack([p[0] for p in progs]),
                   max(p[1] for p in progs), np.stack(gprogs), **options)

    def with_model_of(self, engine: "TreeLikelihood") -> "CudaLikelihood":
        """The same tips and topologies (already on the device) under the packed model
        and +I likelihoods of ``engine`` (same alignment and pattern layout; any number
        of categories: kernels are compiled per category count)."""
        _, _, inv, model = engine_arrays(engine)
        if inv.shape[0] != self.width:
            raise DeviceError("the engine's pattern layout differs from the device state's")
        other = object.__new__(CudaLikelihood)
        other.__dict__.update(self.__dict__)
        other.model_length = model.shape[0]
        other.nc = int(model[0])
        other._models = self._cuda.to_device(np.ascontiguousarray(model[None, :]))
        other._invs = self._cuda.to_device(np.ascontiguousarray(inv[None, :]))
        other._shared = self.n_branches * 16 * other.nc * 8 <= SHARED_MATRIX_BYTES
        other._kernel = self._k.make_loglik_kernel(self.n_slots, other.nc, PATTERNS_PER_THREAD,
                                                   self.n_branches, other._shared,
                                                   self._threshold)
        other._gkernel = self._k.make_gradient_kernel(other.nc, self._threshold)
        return other

    # -- launch geometry ---------------------------------------------------------------
    def _threads(self, per_thread: int) -> int:
        need = -(-self.width // per_thread)
        if self._sim:            # the simulator runs every thread as a Python thread
            return max(1, min(THREADS_PER_BLOCK, need))
        return max(32, min(THREADS_PER_BLOCK, -(-need // 32) * 32))

    def _chunk(self, per_item_bytes: int, total: int) -> int:
        return max(1, min(total, MEMORY_BUDGET_BYTES // max(per_item_bytes, 1)))

    def _check(self, bls: Any, models: Any) -> tuple[np.ndarray, tuple | None]:
        bls = np.ascontiguousarray(bls, dtype=np.float64)
        if bls.ndim != 2 or bls.shape[1] != self.n_branches:
            raise DeviceError(f"expected branch lengths of shape (B, {self.n_branches}), "
                              f"got {bls.shape}")
        if self.n_topologies > 1 and bls.shape[0] != self.n_topologies:
            raise DeviceError(f"{self.n_topologies} topologies need {self.n_topologies} "
                              f"branch-length rows, got {bls.shape[0]}")
        if models is None:
            return bls, None
        packed, invs = (np.ascontiguousarray(m, dtype=np.float64) for m in models)
        if (packed.shape != (bls.shape[0], self.model_length)
                or invs.shape != (bls.shape[0], self.width)
                or np.any(packed[:, 0] != self.nc)):
            raise DeviceError("per-item models must be packed (B, L) with the state's number "
                              "of rate categories, and +I likelihoods (B, P')")
        return bls, (packed, invs)

    def _models_for(self, models: tuple | None, lo: int, hi: int):
        if models is None:
            return self._models, self._invs
        return (self._cuda.to_device(models[0][lo:hi]), self._cuda.to_device(models[1][lo:hi]))

    def _matrices(self, d_bls, d_models, nrows: int, want_derivative: bool):
        cuda = self._cuda
        shape = (nrows, self.n_branches, 16 * self.nc)
        pm = cuda.device_array(shape)
        dpm = cuda.device_array(shape if want_derivative else (1, 1, 1))
        n = nrows * self.n_branches * self.nc
        threads = 64 if not self._sim else min(64, n)
        self._k.transition_kernel[-(-n // threads), threads](d_bls, d_models, pm, dpm,
                                                              want_derivative)
        return pm, dpm

    # -- evaluation --------------------------------------------------------------------
    def log_likelihood_batch(self, bls: Any, *, patterns: bool = False, models: Any = None):
        """ln L of every row of ``bls`` (B, n_branches) → (B,); with ``patterns`` also
        the per-pattern ln L_p (B, P) (unweighted, real patterns only). ``models``:
        optional (packed (B, L), +I likelihoods (B, P')) giving item b its own model
        (:meth:`phylo.likelihood.TreeLikelihood.data` of that model)."""
        bls, models = self._check(bls, models)
        nrows = bls.shape[0]
        out = np.empty(nrows)
        pat = np.empty((nrows, self.n_patterns)) if patterns else None
        per_item = 8 * (self.n_branches * (16 * self.nc + 1) + 3 * self.width + self.model_length)
        chunk = self._chunk(per_item, nrows)
        cuda = self._cuda
        for lo in range(0, nrows, chunk):
            hi = min(nrows, lo + chunk)
            nr = hi - lo
            d_bls = cuda.to_device(bls[lo:hi])
            d_models, d_invs = self._models_for(models, lo, hi)
            pm, _ = self._matrices(d_bls, d_models, nr, False)
            lnl = cuda.device_array((nr, self.width))
            frac = cuda.device_array((nr, self.width))
            ops = self._ops if self.n_topologies == 1 else self._ops[lo:hi]
            threads = self._threads(PATTERNS_PER_THREAD)
            blocks = -(-self.width // (threads * PATTERNS_PER_THREAD))
            self._kernel[(blocks, nr), threads](pm, ops, self._tipc, d_models, d_invs, lnl, frac)
            d_out = cuda.device_array(nr)
            self._k.weighted_sum_kernel[nr, self._k.REDUCE_THREADS](lnl, self._weights, d_out)
            d_out.copy_to_host(out[lo:hi])
            if pat is not None:
                pat[lo:hi] = lnl.copy_to_host()[:, :self.n_patterns]
        return (out, pat) if patterns else out

    def gradient_batch(self, bls: Any, *, models: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """(ln L (B,), d ln L/dt (B, n_branches)) for every row of ``bls`` (``models``
        as in :meth:`log_likelihood_batch`)."""
        bls, models = self._check(bls, models)
        nrows = bls.shape[0]
        rows = self._gops.shape[1] - 1            # internal nodes below the root
        per_item = 8 * (2 * self.n_branches * 16 * self.nc + 2 * rows * 4 * self.nc * self.width
                        + (self.n_branches + 2) * self.width)
        chunk = self._chunk(per_item, nrows)
        lnl_out = np.empty(nrows)
        grad = np.empty((nrows, self.n_branches))
        cuda = self._cuda
        for lo in range(0, nrows, chunk):
            hi = min(nrows, lo + chunk)
            nr = hi - lo
            d_bls = cuda.to_device(bls[lo:hi])
            d_models, d_invs = self._models_for(models, lo, hi)
            pm, dpm = self._matrices(d_bls, d_models, nr, True)
            post = cuda.device_array((nr, max(rows, 1), 4 * self.nc, self.width))
            pre = cuda.device_array((nr, max(rows, 1), 4 * self.nc, self.width))
            lnl = cuda.device_array((nr, self.width))
            frac = cuda.device_array((nr, self.width))
            contrib = cuda.device_array((nr, self.n_branches, self.width))
            ops = self._gops if self.n_topologies == 1 else self._gops[lo:hi]
            threads = self._threads(1)
            blocks = -(-self.width // threads)
            self._gkernel[(blocks, nr), threads](pm, dpm, ops, self._tipc, d_models, d_invs,
                                                 self._weights, post, pre, lnl, frac, contrib)
            d_tot = cuda.device_array(nr)
            self._k.weighted_sum_kernel[nr, self._k.REDUCE_THREADS](lnl, self._weights, d_tot)
            d_grad = cuda.device_array((nr, self.n_branches))
            self._k.row_sum_kernel[(self.n_branches, nr), self._k.REDUCE_THREADS](contrib, d_grad)
            d_tot.copy_to_host(lnl_out[lo:hi])
            grad[lo:hi] = d_grad.copy_to_host()
        return lnl_out, grad


def flops_per_evaluation(n_leaves: int, n_patterns: int, nc: int) -> float:
    """Floating-point operations of one likelihood evaluation by the kernel's count
    (per internal node, pattern and category: two 4×4 matrix-vector products, 56, and
    4 products; 8 more at the root), for the benchmark's fraction-of-peak figure."""
    return float((n_leaves - 1) * n_patterns * nc * (56 + 4 + 8))


__all__ = ["CudaLikelihood", "DEVICES", "check_device", "require_cuda", "schedule",
           "simulated", "flops_per_evaluation", "engine_arrays"]
