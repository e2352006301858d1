"""Pattern-parallel evaluation: the pruning and gradient kernels split over blocks of
site patterns, one block per Numba ``prange`` iteration.

Everything a kernel computes per pattern (partials, their power-of-two rescaling, ln L_p,
the pre-order partials) depends on that pattern only, so a block of patterns is an
independent evaluation: block k runs the unchanged single-thread kernels of
:mod:`.pruning` and :mod:`.gradient` on its own slices, and its site log-likelihoods are
bit for bit those of any other blocking. What a block does not own are the sums over
patterns (ln L = Σ_p w_p ln L_p and each branch's gradient): every block returns its own
partial sum and they are added in block order 0, 1, …, K-1 after the parallel loop
(:func:`sum_blocks`). The block size is fixed by the data (not by the thread count), so
the result has the same bits for any number of threads.

Layout (the blocked form of :class:`.state.EngineData` / :class:`.state.EngineState`; K
blocks of B patterns, B a multiple of 8 so that every block starts on a cache line and
the vector loops keep no remainder; the last block is padded with weight-0, all-missing
patterns):

``tipx``  (K, S, 4, B)   ``tipc`` uint8 (K, S, B)   ``weights``, ``inv`` (K, B)
``partials`` (K, copies, N-S, C, 4, B)   ``cur`` int32 (K, N-S)
``scnt`` int32 (K, copies, N-S, B)   ``sflag`` int32 (K, copies, N-S)
``sbound`` (K, copies, N-S, C)   ``lnl``, ``frac`` (K, B)   ``acc`` (K, 4, B)
``escale`` int32 (K, B)

``pm`` (N-1, C, 4, 4) and ``ptab`` (S, C, 4, 16) are not per block: the transition
matrices are computed once, before the parallel loop, and only read inside it. Each
block keeps its own ``cur`` (all blocks flip together, so they stay equal) and its own
rescaling flags and bounds (a block's bound is over its own patterns: whether the
rescaling pass runs can differ between blockings, what it produces per pattern cannot,
see :func:`.pruning.node_partials`).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange
from numba.extending import overload

from . import pruning as _pr
from .gradient import gradient_after_loglik
from .pruning import (FASTMATH, MODEL_NCAT, branch_matrices, node_partials, postorder_all,
                      root_and_finish, tip_table, tip_tables, transition_matrices)


@njit(cache=True, fastmath=FASTMATH)
def _valid(bl):
    for b in range(bl.shape[0]):
        if not (bl[b] >= 0.0 and bl[b] < np.inf):
            return False
    return True


@njit(cache=True)
def sum_blocks(parts):
    """Σ_k parts[k] in block order (a plain loop, compiled without fast-math so that it
    is never reassociated): the one reduction order every path shares."""
    total = 0.0
    for k in range(parts.shape[0]):
        total += parts[k]
    return total


@njit(cache=True)
def sum_block_rows(parts, out):
    """out[j] = Σ_k parts[k, j] in block order (see :func:`sum_blocks`)."""
    for j in range(out.shape[0]):
        out[j] = 0.0
    for k in range(parts.shape[0]):
        for j in range(out.shape[0]):
            out[j] += parts[k, j]


@njit(cache=True, fastmath=FASTMATH)
def evaluate_one(flip, children, n_children, tipx, tipc, model, weights, inv, pm, ptab,
                 partials, cur, scnt, sflag, sbound, lnl, frac, acc, escale):
    """Post-order and root of ONE block, given in the unblocked layout of
    :mod:`.pruning` (transition matrices and tip tables already in pm/ptab); returns the
    block's Σ_p w_p ln L_p. ``flip``: into the other buffers."""
    postorder_all(children, tipx, tipc, model, pm, ptab, partials, cur, scnt, sflag, sbound,
                  frac, flip)
    return root_and_finish(children, n_children, tipx, tipc, model, weights, inv, pm, ptab,
                           partials, cur, scnt, sflag, lnl, frac, acc, escale)


@njit(cache=True, fastmath=FASTMATH)
def block_evaluate(k, flip, children, n_children, tipx, tipc, model, weights, inv, pm, ptab,
                   partials, cur, scnt, sflag, sbound, lnl, frac, acc, escale):
    """:func:`evaluate_one` on block k of the blocked layout."""
    return evaluate_one(flip, children, n_children, tipx[k], tipc[k], model, weights[k],
                        inv[k], pm, ptab, partials[k], cur[k], scnt[k], sflag[k], sbound[k],
                        lnl[k], frac[k], acc[k], escale[k])


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _evaluate_all(flip, children, n_children, tipx, tipc, model, weights, inv, pm, ptab,
                  partials, cur, scnt, sflag, sbound, lnl, frac, acc, escale):
    nblk = tipc.shape[0]
    parts = np.empty(nblk)
    for k in prange(nblk):
        parts[k] = block_evaluate(k, flip, children, n_children, tipx, tipc, model, weights,
                                  inv, pm, ptab, partials, cur, scnt, sflag, sbound, lnl,
                                  frac, acc, escale)
    return sum_blocks(parts)


@njit(cache=True, fastmath=FASTMATH)
def log_likelihood(bl, children, n_children, tipx, tipc, model, weights, inv, pm, ptab,
                   partials, cur, scnt, sflag, sbound, lnl, frac, acc, escale):
    """Blocked :func:`.pruning.log_likelihood` (same arguments, blocked layout)."""
    if not _valid(bl):
        return np.nan
    transition_matrices(bl, model, pm, pm, False)
    tip_tables(model, pm, ptab)
    return _evaluate_all(False, children, n_children, tipx, tipc, model, weights, inv, pm,
                         ptab, partials, cur, scnt, sflag, sbound, lnl, frac, acc, escale)


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _gradient_all(bl, children, n_children, tipx, tipc, model, weights, inv, pm, dpm, ptab,
                  partials, cur, scnt, sflag, sbound, hbuf, pre, lnl, frac, acc, escale, work,
                  loc, grads):
    nblk = tipc.shape[0]
    nchunk = hbuf.shape[0]
    parts = np.empty(nblk)
    # chunk q takes blocks q, q + T, ... with its own pre-order scratch (T = nchunk
    # sets, not K): which chunk computes a block does not change the block's result
    for q in prange(nchunk):
        for k in range(q, nblk, nchunk):
            t = block_evaluate(k, False, children, n_children, tipx, tipc, model, weights,
                               inv, pm, ptab, partials, cur, scnt, sflag, sbound, lnl, frac,
                               acc, escale)
            parts[k] = t
            if t == t:
                gradient_after_loglik(bl, children, n_children, tipx[k], tipc[k], model,
                                      weights[k], pm, dpm, ptab, partials[k], cur[k],
                                      sflag[k], hbuf[q], pre[q], lnl[k], frac[k], work[q],
                                      loc[q], grads[k], True)
    return sum_blocks(parts)


@njit(cache=True, fastmath=FASTMATH)
def gradient(bl, children, n_children, tipx, tipc, model, weights, inv, pm, dpm, ptab,
             partials, cur, scnt, sflag, sbound, hbuf, pre, lnl, frac, acc, escale, work, loc,
             grads, grad):
    """Blocked :func:`.gradient.gradient`: returns ln L and fills ``grad`` (N-1,) with
    Σ_k (block k's gradient) in block order. Pre-order scratch for each of T ≤ K
    parallel chunks (memory T/K of the unblocked gradient's): hbuf (T, N-S, C, 3, 4, B),
    pre (T, N-S+1, C, 3, 4, B), work (T, 8, B), loc int32 (T, N, 2); per block: grads
    (K, N-1)."""
    if not _valid(bl):
        return np.nan
    transition_matrices(bl, model, pm, dpm, True)
    tip_tables(model, pm, ptab)
    total = _gradient_all(bl, children, n_children, tipx, tipc, model, weights, inv, pm, dpm,
                          ptab, partials, cur, scnt, sflag, sbound, hbuf, pre, lnl, frac, acc,
                          escale, work, loc, grads)
    if total == total:
        sum_block_rows(grads, grad)
    return total


# --- incremental updates (MCMC) ----------------------------------------------------------
@njit(cache=True, fastmath=FASTMATH, parallel=True)
def _path_all(children, n_children, tipx, tipc, model, weights, inv, pm, ptab, partials, cur,
              scnt, sflag, sbound, lnl, frac, acc, escale, path):
    nblk = tipc.shape[0]
    s = tipc.shape[1]
    n = children.shape[0]
    parts = np.empty(nblk)
    for k in prange(nblk):
        ck = cur[k]
        for i in range(path[n - 1]):
            u = path[i]
            r = u - s
            dst = 1 - ck[r]
            node_partials(u, dst, children, tipx[k], tipc[k], model, pm, ptab, partials[k], ck,
                          scnt[k], sflag[k], sbound[k], frac[k])
            ck[r] = dst
        parts[k] = root_and_finish(children, n_children, tipx[k], tipc[k], model, weights[k],
                                   inv[k], pm, ptab, partials[k], ck, scnt[k], sflag[k],
                                   lnl[k], frac[k], acc[k], escale[k])
    return sum_blocks(parts)


@njit(cache=True, fastmath=FASTMATH)
def propose_branch(j, t, children, n_children, parent, tipx, tipc, model, weights, inv, pm,
                   ptab, partials, cur, scnt, sflag, sbound, lnl, frac, acc, escale, pm_save,
                   path):
    """Blocked :func:`.pruning.propose_branch`: P_j once, then every block recomputes
    the path from branch j to the root into its other buffers, in parallel."""
    s = tipc.shape[1]
    nc = int(model[MODEL_NCAT])
    n = children.shape[0]
    for c in range(nc):
        for i in range(4):
            for q in range(4):
                pm_save[c, i, q] = pm[j, c, i, q]
    branch_matrices(j, t, model, pm, pm, False)
    if j < s:
        tip_table(j, nc, pm, ptab)
    k = 0
    u = parent[j]
    while u != n - 1:
        path[k] = u
        k += 1
        u = parent[u]
    path[n - 1] = k
    return _path_all(children, n_children, tipx, tipc, model, weights, inv, pm, ptab, partials,
                     cur, scnt, sflag, sbound, lnl, frac, acc, escale, path)


@njit(cache=True, fastmath=FASTMATH)
def revert_branch(j, s, model, pm, ptab, cur, pm_save, path):
    """Undo :func:`propose_branch` (every block's ``cur`` flips back)."""
    nc = int(model[MODEL_NCAT])
    for c in range(nc):
        for i in range(4):
            for q in range(4):
                pm[j, c, i, q] = pm_save[c, i, q]
    if j < s:
        tip_table(j, nc, pm, ptab)
    n = path.shape[0]
    for k in range(cur.shape[0]):
        for i in range(path[n - 1]):
            r = path[i] - s
            cur[k, r] = 1 - cur[k, r]


@njit(cache=True, fastmath=FASTMATH)
def propose_all(bl, children, n_children, tipx, tipc, model, weights, inv, pm, ptab, partials,
                cur, scnt, sflag, sbound, lnl, frac, acc, escale, pm_all_save):
    """Blocked :func:`.pruning.propose_all` (no validation: the caller checks ``bl``)."""
    pm_all_save[:] = pm
    transition_matrices(bl, model, pm, pm, False)
    tip_tables(model, pm, ptab)
    return _evaluate_all(True, children, n_children, tipx, tipc, model, weights, inv, pm,
                         ptab, partials, cur, scnt, sflag, sbound, lnl, frac, acc, escale)


@njit(cache=True, fastmath=FASTMATH)
def revert_all(model, pm, ptab, cur, pm_all_save):
    pm[:] = pm_all_save
    tip_tables(model, pm, ptab)
    for k in range(cur.shape[0]):
        for r in range(cur.shape[1]):
            cur[k, r] = 1 - cur[k, r]


# --- batches ------------------------------------------------------------------------------
@njit(cache=True, fastmath=FASTMATH, parallel=True)
def log_likelihood_batch(bls, children, n_children, tipx, tipc, model, weights, inv, n_chunks,
                         out):
    """ln L for every row of ``bls`` (B, N-1) into ``out``, rows split over ``n_chunks``
    chunks (prange); a chunk holds the buffers of ONE pattern block and walks the blocks
    one after another, so its memory is 1/K of a full set of partials. Each row's value
    has the bits of :func:`log_likelihood` (same blocks, same order of the sum)."""
    nrow = bls.shape[0]
    nblk = tipc.shape[0]
    s = tipc.shape[1]
    bsz = tipc.shape[2]
    nc = int(model[MODEL_NCAT])
    n = children.shape[0]
    for q in prange(n_chunks):
        lo = (nrow * q) // n_chunks
        hi = (nrow * (q + 1)) // n_chunks
        pm = np.empty((n - 1, nc, 4, 4))
        ptab = np.empty((s, nc, 4, 16))
        partials = np.empty((1, n - s, nc, 4, bsz))
        cur = np.zeros(n - s, dtype=np.int32)
        scnt = np.empty((1, n - s, bsz), dtype=np.int32)
        sflag = np.zeros((1, n - s), dtype=np.int32)
        sbound = np.zeros((1, n - s, nc))
        lnl = np.empty(bsz)
        frac = np.empty(bsz)
        acc = np.empty((4, bsz))
        escale = np.empty(bsz, dtype=np.int32)
        parts = np.empty(nblk)
        for r in range(lo, hi):
            bl = bls[r]
            if not _valid(bl):
                out[r] = np.nan
                continue
            transition_matrices(bl, model, pm, pm, False)
            tip_tables(model, pm, ptab)
            for k in range(nblk):
                parts[k] = evaluate_one(False, children, n_children, tipx[k], tipc[k], model,
                                        weights[k], inv[k], pm, ptab, partials, cur, scnt,
                                        sflag, sbound, lnl, frac, acc, escale)
            out[r] = sum_blocks(parts)


# --- one name for both layouts -------------------------------------------------------------
# Compiled callers that take either layout (the MCMC loop, the marginal targets) call
# these; Numba picks the single-block kernel (tip codes (S, P'): 2-D) or the blocked one
# (K, S, B): 3-D) when it compiles the caller, so the single-thread path pays nothing.
def any_log_likelihood(bl, children, n_children, tipx, tipc, model, weights, inv, pm, ptab,
                       partials, cur, scnt, sflag, sbound, lnl, frac, acc, escale):
    """:func:`.pruning.log_likelihood` or the blocked :func:`log_likelihood`."""
    raise NotImplementedError("compiled callers only")


def any_propose_branch(j, t, children, n_children, parent, tipx, tipc, model, weights, inv,
                       pm, ptab, partials, cur, scnt, sflag, sbound, lnl, frac, acc, escale,
                       pm_save, path):
    raise NotImplementedError("compiled callers only")


def any_revert_branch(j, s, model, pm, ptab, cur, pm_save, path):
    raise NotImplementedError("compiled callers only")


def any_propose_all(bl, children, n_children, tipx, tipc, model, weights, inv, pm, ptab,
                    partials, cur, scnt, sflag, sbound, lnl, frac, acc, escale, pm_all_save):
    raise NotImplementedError("compiled callers only")


def any_revert_all(model, pm, ptab, cur, pm_all_save):
    raise NotImplementedError("compiled callers only")


@overload(any_log_likelihood)
def _ov_log_likelihood(bl, children, n_children, tipx, tipc, model, weights, inv, pm, ptab,
                       partials, cur, scnt, sflag, sbound, lnl, frac, acc, escale):
    fn = log_likelihood if tipc.ndim == 3 else _pr.log_likelihood

    def impl(bl, children, n_children, tipx, tipc, model, weights, inv, pm, ptab, partials,
             cur, scnt, sflag, sbound, lnl, frac, acc, escale):
        return fn(bl, children, n_children, tipx, tipc, model, weights, inv, pm, ptab,
                  partials, cur, scnt, sflag, sbound, lnl, frac, acc, escale)
    return impl


@overload(any_propose_branch)
def _ov_propose_branch(j, t, children, n_children, parent, tipx, tipc, model, weights, inv,
                       pm, ptab, partials, cur, scnt, sflag, sbound, lnl, frac, acc, escale,
                       pm_save, path):
    fn = propose_branch if tipc.ndim == 3 else _pr.propose_branch

    def impl(j, t, children, n_children, parent, tipx, tipc, model, weights, inv, pm, ptab,
             partials, cur, scnt, sflag, sbound, lnl, frac, acc, escale, pm_save, path):
        return fn(j, t, children, n_children, parent, tipx, tipc, model, weights, inv, pm,
                  ptab, partials, cur, scnt, sflag, sbound, lnl, frac, acc, escale, pm_save,
                  path)
    return impl


@overload(any_revert_branch)
def _ov_revert_branch(j, s, model, pm, ptab, cur, pm_save, path):
    fn = revert_branch if cur.ndim == 2 else _pr.revert_branch

    def impl(j, s, model, pm, ptab, cur, pm_save, path):
        fn(j, s, model, pm, ptab, cur, pm_save, path)
    return impl


@overload(any_propose_all)
def _ov_propose_all(bl, children, n_children, tipx, tipc, model, weights, inv, pm, ptab,
                    partials, cur, scnt, sflag, sbound, lnl, frac, acc, escale, pm_all_save):
    fn = propose_all if tipc.ndim == 3 else _pr.propose_all

    def impl(bl, children, n_children, tipx, tipc, model, weights, inv, pm, ptab, partials,
             cur, scnt, sflag, sbound, lnl, frac, acc, escale, pm_all_save):
        return fn(bl, children, n_children, tipx, tipc, model, weights, inv, pm, ptab,
                  partials, cur, scnt, sflag, sbound, lnl, frac, acc, escale, pm_all_save)
    return impl


@overload(any_revert_all)
def _ov_revert_all(model, pm, ptab, cur, pm_all_save):
    fn = revert_all if cur.ndim == 2 else _pr.revert_all

    def impl(model, pm, ptab, cur, pm_all_save):
        fn(model, pm, ptab, cur, pm_all_save)
    return impl
