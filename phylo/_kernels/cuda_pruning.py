"""CUDA twin of :mod:`.pruning` and :mod:`.gradient` (numba-cuda), batched.

Import only through :mod:`phylo.likelihood.cuda` (this module imports ``numba.cuda``
at import time, through :func:`.cuda_import.import_cuda`). The kernels read the CPU
kernels' array contracts (see :mod:`.pruning`):

* tips: ``tipc`` uint8 (S, P') 4-bit state masks (A=1 C=2 G=4 T=8, 15 = missing),
  patterns padded to a multiple of ``PATTERN_BLOCK`` with weight 0 and mask 15;
* the packed model vector of :func:`.pruning.pack_model` (offsets named below);
* transition matrices ``pm[v, c, 4 i + j] = P_ij(r_c t_v)`` per batch item, from the
  same eigen-decomposition as :func:`.pruning.transition_matrices` (P = V diag(e)
  V⁻¹, negative round-off clamped to 0, exactly I at t = 0);
* rescaling: a node's partials of one pattern are multiplied by 2^-e (e = frexp
  exponent of their maximum over states and categories) when that maximum is below
  ``SCALE_THRESHOLD`` — the same rule, per pattern, as :func:`.pruning.rescale`, so the
  partials equal the CPU kernels' (which only skip the test where a bound proves it
  would rescale nothing) and ln L_p adds e·ln 2 back exactly.

Work decomposition (measured hints: ../shared/notes/gpu-likelihood.md):

* grid = (pattern blocks, batch items); a block's threads all work on one batch item
  (one branch-length vector, or one topology), so that item's transition matrices are
  staged once per block in shared memory where they fit (``shared_len`` > 0);
* each thread evaluates ``ppt`` patterns (strided by the block size, so that tip-mask
  loads coalesce) and loads each 4×4 matrix once for all of them;
* partials live in thread-local memory, in only ``n_slots`` slots: the host orders
  the post-order so that each node's larger subtree is evaluated first
  (Sethi–Ullman) and reuses slots (``ops``, see :func:`phylo.likelihood.cuda.schedule`),
  so a 500-taxon tree needs ~log2(S) slots instead of S-1 rows.

``ops`` int32 (T, n_ops, 8), one row per internal node, children before parents, root
last: ``OP_A, OP_B, OP_C`` child node numbers (a child's number is also its branch
index and, below S, its tip row; OP_C = -1 without a third child), ``OP_SA, OP_SB,
OP_SC`` the children's slots (-1 for tips), ``OP_DST`` the node's own slot (-1 for the
root), ``OP_NODE`` the node's number. T = 1 (every batch item on one topology) or T =
B (item b on topology b). Likewise ``models`` (M, L) and ``invs`` (M, P'), the packed
model and +I likelihoods: M = 1, or M = B with item b under its own model (draws of
the substitution-model parameters; every row has the same number of categories C).

The gradient (:func:`make_gradient_kernel`) follows :mod:`.gradient`'s general path:
one thread per (pattern, item), every internal node's partials kept (in global memory,
patterns innermost for coalescing), then a pre-order pass forming, for each branch v
below u with siblings s, q_v = (Pᵀ_u pre_u or π at the root) ∘ Π_s H_s and the ratio
Σ_c w_c q_v·(dP_v x_v) / Σ_c w_c q_v·H_v = dL_var/dt_v / L_var, exact whatever power of
two the partials carry; times L_var/L_p for +I and w_p, it is summed over patterns by
a separate, deterministic reduction.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .cuda_import import import_cuda
from .pruning import (LN2, MODEL_LAMBDA, MODEL_NCAT, MODEL_PI, MODEL_PINV, MODEL_Q,
                      MODEL_RATES, MODEL_V, MODEL_VINV, SCALE_THRESHOLD)

cuda = import_cuda()
float64 = np.float64

# offsets in the packed model vector (pruning.pack_model)
M_NC = MODEL_NCAT
M_PINV = MODEL_PINV
M_PI = MODEL_PI
M_LAM = MODEL_LAMBDA
M_V = MODEL_V
M_VINV = MODEL_VINV
M_Q = MODEL_Q
M_RATES = MODEL_RATES   # then C category weights, then the F81 flag

# columns of ops
OP_A, OP_B, OP_C, OP_SA, OP_SB, OP_SC, OP_DST, OP_NODE = range(8)
N_OP_COLS = 8

#: threads per block for the reduction kernels
REDUCE_THREADS = 64


# --- transition matrices --------------------------------------------------------------
@cuda.jit
def transition_kernel(bls, models, pm, dpm, want_derivative):
    """pm[b, v, 16 c + 4 i + j] = P_ij(r_c bls[b, v]) (and dpm = dP/dt) for every batch
    item b, branch v and category c: one thread each. ``models`` (M, L) packed models,
    item b under row b (M = B) or row 0 (M = 1); all with the same C."""
    tid = cuda.grid(1)
    nb = bls.shape[1]
    nc = int(models[0, M_NC])
    if tid >= bls.shape[0] * nb * nc:
        return
    b = tid // (nb * nc)
    model = models[b if models.shape[0] > 1 else 0]
    rem = tid - b * nb * nc
    v = rem // nc
    c = rem - v * nc
    r = model[M_RATES + c]
    rt = r * bls[b, v]
    o = 16 * c
    if rt == 0.0:
        for i in range(4):
            for j in range(4):
                pm[b, v, o + 4 * i + j] = 1.0 if i == j else 0.0
                if want_derivative:
                    dpm[b, v, o + 4 * i + j] = model[M_Q + 4 * i + j] * r
        return
    e0 = math.exp(model[M_LAM] * rt)
    e1 = math.exp(model[M_LAM + 1] * rt)
    e2 = math.exp(model[M_LAM + 2] * rt)
    e3 = math.exp(model[M_LAM + 3] * rt)
    for i in range(4):
        a0 = model[M_V + 4 * i] * e0
        a1 = model[M_V + 4 * i + 1] * e1
        a2 = model[M_V + 4 * i + 2] * e2
        a3 = model[M_V + 4 * i + 3] * e3
        for j in range(4):
            x = (a0 * model[M_VINV + j] + a1 * model[M_VINV + 4 + j]
                 + a2 * model[M_VINV + 8 + j] + a3 * model[M_VINV + 12 + j])
            pm[b, v, o + 4 * i + j] = x if x > 0.0 else 0.0
        if want_derivative:
            d0 = a0 * model[M_LAM] * r
            d1 = a1 * model[M_LAM + 1] * r
            d2 = a2 * model[M_LAM + 2] * r
            d3 = a3 * model[M_LAM + 3] * r
            for j in range(4):
                dpm[b, v, o + 4 * i + j] = (d0 * model[M_VINV + j] + d1 * model[M_VINV + 4 + j]
                                            + d2 * model[M_VINV + 8 + j]
                                            + d3 * model[M_VINV + 12 + j])


# --- small device helpers ---------------------------------------------------------------
@cuda.jit(device=True, inline=True)
def _load16(mats, v, o):
    """The 16 entries of one 4x4 matrix (row-major) as registers."""
    return (mats[v, o], mats[v, o + 1], mats[v, o + 2], mats[v, o + 3],
            mats[v, o + 4], mats[v, o + 5], mats[v, o + 6], mats[v, o + 7],
            mats[v, o + 8], mats[v, o + 9], mats[v, o + 10], mats[v, o + 11],
            mats[v, o + 12], mats[v, o + 13], mats[v, o + 14], mats[v, o + 15])


@cuda.jit(device=True, inline=True)
def _mv(m, x0, x1, x2, x3):
    """P x for a 4x4 matrix m (16-tuple, row-major)."""
    return (m[0] * x0 + m[1] * x1 + m[2] * x2 + m[3] * x3,
            m[4] * x0 + m[5] * x1 + m[6] * x2 + m[7] * x3,
            m[8] * x0 + m[9] * x1 + m[10] * x2 + m[11] * x3,
            m[12] * x0 + m[13] * x1 + m[14] * x2 + m[15] * x3)


@cuda.jit(device=True, inline=True)
def _mtv(m, x0, x1, x2, x3):
    """Pᵀ x for a 4x4 matrix m (16-tuple, row-major)."""
    return (m[0] * x0 + m[4] * x1 + m[8] * x2 + m[12] * x3,
            m[1] * x0 + m[5] * x1 + m[9] * x2 + m[13] * x3,
            m[2] * x0 + m[6] * x1 + m[10] * x2 + m[14] * x3,
            m[3] * x0 + m[7] * x1 + m[11] * x2 + m[15] * x3)


@cuda.jit(device=True, inline=True)
def _tip(mask):
    """A tip's indicator row of a 4-bit state mask."""
    return (float(mask & 1), float((mask >> 1) & 1), float((mask >> 2) & 1),
            float((mask >> 3) & 1))


@cuda.jit(device=True, inline=True)
def _finish(lvar, escale, pinv, inv_p):
    """(ln L_p, L_var/L_p) from the scaled variable-sites likelihood, its total scale
    exponent and the +I term (as :func:`.pruning.root_and_finish`)."""
    x = math.log(lvar) if lvar > 0.0 else -math.inf
    x += escale * LN2
    if pinv > 0.0 and inv_p > 0.0:
        y = math.log(pinv) + math.log(inv_p)
        m = max(x, y)
        ll = m + math.log(math.exp(x - m) + math.exp(y - m))
        return ll, math.exp(x - ll)
    return x, 1.0


@cuda.jit(device=True, inline=True)
def _rescale_exponent(mx, threshold):
    """e with mx·2^-e in [1/2, 1) when 0 < mx < threshold, else 0."""
    if mx < threshold and mx > 0.0:
        f, e = math.frexp(mx)
        return e
    return 0


# --- the batched likelihood ------------------------------------------------------------
@lru_cache(maxsize=None)
def make_loglik_kernel(n_slots: int, nc: int, ppt: int, n_branches: int, shared: bool,
                       threshold: float = SCALE_THRESHOLD):
    """A kernel ``(pm, ops, tipc, models, invs, lnl, frac)`` writing ln L_p into
    ``lnl[b, p]`` and L_var/L_p into ``frac[b, p]`` for every batch item b (grid y) and
    pattern p (grid x × block × ``ppt``). ``pm`` (B, n_branches, 16 nc). Compiled once
    per (slots, categories, patterns per thread, branches, shared) — the local and
    shared arrays need sizes known at compile time. ``threshold``: the rescaling
    threshold, ``SCALE_THRESHOLD`` as on the CPU (any power of two ≤ 1 gives the same
    ln L up to rounding; the tests use 1 to rescale every node of every pattern)."""
    stride = nc * 4 * ppt            # floats per slot
    nlocal = max(n_slots, 1) * stride
    width = 16 * nc

    @cuda.jit
    def kernel(pm, ops, tipc, models, invs, lnl, frac):
        b = cuda.blockIdx.y
        mrow = b if models.shape[0] > 1 else 0
        model = models[mrow]
        inv = invs[mrow]
        t = cuda.threadIdx.x
        nthr = cuda.blockDim.x
        npat = tipc.shape[1]
        topo = b if ops.shape[0] > 1 else 0
        if shared:
            mats = cuda.shared.array((n_branches, width), float64)
            for k in range(t, n_branches * width, nthr):
                v = k // width
                mats[v, k - v * width] = pm[b, v, k - v * width]
            cuda.syncthreads()
        else:
            mats = pm[b]
        part = cuda.local.array(nlocal, float64)
        esc = cuda.local.array(ppt, np.int32)
        acc = cuda.local.array(ppt, float64)
        base = cuda.blockIdx.x * nthr * ppt + t
        for k in range(ppt):
            esc[k] = 0
            acc[k] = 0.0
        s = tipc.shape[0]
        n_ops = ops.shape[1]
        for o in range(n_ops):
            a = ops[topo, o, OP_A]
            bb = ops[topo, o, OP_B]
            cc = ops[topo, o, OP_C]
            sa = ops[topo, o, OP_SA]
            sb = ops[topo, o, OP_SB]
            sc = ops[topo, o, OP_SC]
            dst = ops[topo, o, OP_DST]
            for c in range(nc):
                ma = _load16(mats, a, 16 * c)
                mb = _load16(mats, bb, 16 * c)
                mc = _load16(mats, cc if cc >= 0 else a, 16 * c)
                w = model[M_RATES + nc + c]
                for k in range(ppt):
                    p = base + k * nthr
                    if p >= npat:
                        continue
                    if sa < 0:
                        x0, x1, x2, x3 = _tip(tipc[a, p])
                    else:
                        q = sa * stride + c * 4 * ppt + k
                        x0 = part[q]; x1 = part[q + ppt]; x2 = part[q + 2 * ppt]; x3 = part[q + 3 * ppt]
                    h0, h1, h2, h3 = _mv(ma, x0, x1, x2, x3)
                    if sb < 0:
                        x0, x1, x2, x3 = _tip(tipc[bb, p])
                    else:
                        q = sb * stride + c * 4 * ppt + k
                        x0 = part[q]; x1 = part[q + ppt]; x2 = part[q + 2 * ppt]; x3 = part[q + 3 * ppt]
                    g0, g1, g2, g3 = _mv(mb, x0, x1, x2, x3)
                    h0 *= g0; h1 *= g1; h2 *= g2; h3 *= g3
                    if cc >= 0:
                        if sc < 0:
                            x0, x1, x2, x3 = _tip(tipc[cc, p])
                        else:
                            q = sc * stride + c * 4 * ppt + k
                            x0 = part[q]; x1 = part[q + ppt]; x2 = part[q + 2 * ppt]; x3 = part[q + 3 * ppt]
                        g0, g1, g2, g3 = _mv(mc, x0, x1, x2, x3)
                        h0 *= g0; h1 *= g1; h2 *= g2; h3 *= g3
                    if dst < 0:
                        acc[k] += w * (model[M_PI] * h0 + model[M_PI + 1] * h1
                                       + model[M_PI + 2] * h2 + model[M_PI + 3] * h3)
                    else:
                        q = dst * stride + c * 4 * ppt + k
                        part[q] = h0; part[q + ppt] = h1; part[q + 2 * ppt] = h2; part[q + 3 * ppt] = h3
            if dst >= 0:
                # rescale each pattern of this node whose maximum fell below the threshold
                for k in range(ppt):
                    mx = 0.0
                    for c in range(nc):
                        q = dst * stride + c * 4 * ppt + k
                        for i in range(4):
                            mx = max(mx, part[q + i * ppt])
                    e = _rescale_exponent(mx, threshold)
                    if e != 0:
                        fac = math.ldexp(1.0, -e)
                        for c in range(nc):
                            q = dst * stride + c * 4 * ppt + k
                            for i in range(4):
                                part[q + i * ppt] *= fac
                        esc[k] += e
        pinv = model[M_PINV]
        for k in range(ppt):
            p = base + k * nthr
            if p < npat:
                ll, fv = _finish(acc[k], esc[k], pinv, inv[p])
                lnl[b, p] = ll
                frac[b, p] = fv

    return kernel


# --- deterministic reductions ---------------------------------------------------------
@cuda.jit
def weighted_sum_kernel(values, weights, out):
    """out[b] = Σ_p weights[p] values[b, p] (zero-weight entries skipped, so padded
    patterns never contribute): one block per row b (``REDUCE_THREADS`` threads), a
    fixed summation tree, so the result does not depend on scheduling."""
    b = cuda.blockIdx.x
    t = cuda.threadIdx.x
    buf = cuda.shared.array(REDUCE_THREADS, float64)
    s = 0.0
    for p in range(t, values.shape[1], REDUCE_THREADS):
        w = weights[p]
        if w != 0.0:
            s += w * values[b, p]
    buf[t] = s
    cuda.syncthreads()
    h = REDUCE_THREADS // 2
    while h > 0:
        if t < h:
            buf[t] += buf[t + h]
        cuda.syncthreads()
        h //= 2
    if t == 0:
        out[b] = buf[0]


@cuda.jit
def row_sum_kernel(values, out):
    """out[b, v] = Σ_p values[b, v, p]: one block per (v, b) (grid (N-1, B)), fixed
    summation tree."""
    v = cuda.blockIdx.x
    b = cuda.blockIdx.y
    t = cuda.threadIdx.x
    buf = cuda.shared.array(REDUCE_THREADS, float64)
    s = 0.0
    for p in range(t, values.shape[2], REDUCE_THREADS):
        s += values[b, v, p]
    buf[t] = s
    cuda.syncthreads()
    h = REDUCE_THREADS // 2
    while h > 0:
        if t < h:
            buf[t] += buf[t + h]
        cuda.syncthreads()
        h //= 2
    if t == 0:
        out[b, v] = buf[0]


# --- the gradient ------------------------------------------------------------------------
@lru_cache(maxsize=None)
def make_gradient_kernel(nc: int, threshold: float = SCALE_THRESHOLD):
    """A kernel ``(pm, dpm, ops, tipc, models, invs, weights, post, pre, lnl, frac, contrib)``
    for one thread per (pattern p, batch item b): ln L_p into ``lnl[b, p]``, and
    w_p d ln L_p / dt_v into ``contrib[b, v, p]`` for every branch v. Scratch: ``post``
    and ``pre`` (B, N-S, 4 nc, P') — each internal node's partials and pre-order
    partials at row u - S (``ops`` must use OP_DST = u - S, natural post-order).
    ``threshold`` as in :func:`make_loglik_kernel`."""
    w4 = 4 * nc

    @cuda.jit
    def kernel(pm, dpm, ops, tipc, models, invs, weights, post, pre, lnl, frac, contrib):
        p = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        b = cuda.blockIdx.y
        mrow = b if models.shape[0] > 1 else 0
        model = models[mrow]
        inv = invs[mrow]
        npat = tipc.shape[1]
        if p >= npat:
            return
        topo = b if ops.shape[0] > 1 else 0
        mats = pm[b]
        dmats = dpm[b]
        n_ops = ops.shape[1]
        hs = cuda.local.array((3, w4), float64)      # H_k = P_k x_k of a node's children
        top = cuda.local.array(w4, float64)          # Pᵀ_u pre_u (π at the root)
        esc = 0
        lvar = 0.0
        # post-order: every internal node's partials (rescaled per pattern)
        for o in range(n_ops):
            kids = (ops[topo, o, OP_A], ops[topo, o, OP_B], ops[topo, o, OP_C])
            slots = (ops[topo, o, OP_SA], ops[topo, o, OP_SB], ops[topo, o, OP_SC])
            dst = ops[topo, o, OP_DST]
            for c in range(nc):
                z0 = 1.0; z1 = 1.0; z2 = 1.0; z3 = 1.0
                for j in range(3):
                    v = kids[j]
                    if v < 0:
                        continue
                    if slots[j] < 0:
                        x0, x1, x2, x3 = _tip(tipc[v, p])
                    else:
                        r = slots[j]
                        x0 = post[b, r, 4 * c, p]; x1 = post[b, r, 4 * c + 1, p]
                        x2 = post[b, r, 4 * c + 2, p]; x3 = post[b, r, 4 * c + 3, p]
                    h0, h1, h2, h3 = _mv(_load16(mats, v, 16 * c), x0, x1, x2, x3)
                    z0 *= h0; z1 *= h1; z2 *= h2; z3 *= h3
                if dst < 0:
                    lvar += model[M_RATES + nc + c] * (model[M_PI] * z0 + model[M_PI + 1] * z1
                                                       + model[M_PI + 2] * z2
                                                       + model[M_PI + 3] * z3)
                else:
                    post[b, dst, 4 * c, p] = z0; post[b, dst, 4 * c + 1, p] = z1
                    post[b, dst, 4 * c + 2, p] = z2; post[b, dst, 4 * c + 3, p] = z3
            if dst >= 0:
                mx = 0.0
                for i in range(w4):
                    mx = max(mx, post[b, dst, i, p])
                e = _rescale_exponent(mx, threshold)
                if e != 0:
                    fac = math.ldexp(1.0, -e)
                    for i in range(w4):
                        post[b, dst, i, p] *= fac
                    esc += e
        ll, fv = _finish(lvar, esc, model[M_PINV], inv[p])
        lnl[b, p] = ll
        frac[b, p] = fv
        scale = weights[p] * fv        # w_p · L_var / L_p
        # pre-order: parents before children (the root is the last op)
        for o in range(n_ops - 1, -1, -1):
            kids = (ops[topo, o, OP_A], ops[topo, o, OP_B], ops[topo, o, OP_C])
            slots = (ops[topo, o, OP_SA], ops[topo, o, OP_SB], ops[topo, o, OP_SC])
            dst = ops[topo, o, OP_DST]
            u = ops[topo, o, OP_NODE]
            for c in range(nc):
                if dst < 0:
                    for i in range(4):
                        top[4 * c + i] = model[M_PI + i]
                else:
                    t0, t1, t2, t3 = _mtv(_load16(mats, u, 16 * c), pre[b, dst, 4 * c, p],
                                          pre[b, dst, 4 * c + 1, p], pre[b, dst, 4 * c + 2, p],
                                          pre[b, dst, 4 * c + 3, p])
                    top[4 * c] = t0; top[4 * c + 1] = t1; top[4 * c + 2] = t2; top[4 * c + 3] = t3
                for j in range(3):
                    v = kids[j]
                    if v < 0:
                        continue
                    if slots[j] < 0:
                        x0, x1, x2, x3 = _tip(tipc[v, p])
                    else:
                        r = slots[j]
                        x0 = post[b, r, 4 * c, p]; x1 = post[b, r, 4 * c + 1, p]
                        x2 = post[b, r, 4 * c + 2, p]; x3 = post[b, r, 4 * c + 3, p]
                    h0, h1, h2, h3 = _mv(_load16(mats, v, 16 * c), x0, x1, x2, x3)
                    hs[j, 4 * c] = h0; hs[j, 4 * c + 1] = h1; hs[j, 4 * c + 2] = h2; hs[j, 4 * c + 3] = h3
            for j in range(3):
                v = kids[j]
                if v < 0:
                    continue
                num = 0.0
                den = 0.0
                for c in range(nc):
                    w = model[M_RATES + nc + c]
                    q0 = top[4 * c]; q1 = top[4 * c + 1]; q2 = top[4 * c + 2]; q3 = top[4 * c + 3]
                    for jj in range(3):
                        if jj != j and kids[jj] >= 0:
                            q0 *= hs[jj, 4 * c]; q1 *= hs[jj, 4 * c + 1]
                            q2 *= hs[jj, 4 * c + 2]; q3 *= hs[jj, 4 * c + 3]
                    if slots[j] < 0:
                        x0, x1, x2, x3 = _tip(tipc[v, p])
                    else:
                        r = slots[j]
                        x0 = post[b, r, 4 * c, p]; x1 = post[b, r, 4 * c + 1, p]
                        x2 = post[b, r, 4 * c + 2, p]; x3 = post[b, r, 4 * c + 3, p]
                    d0, d1, d2, d3 = _mv(_load16(dmats, v, 16 * c), x0, x1, x2, x3)
                    num += w * (q0 * d0 + q1 * d1 + q2 * d2 + q3 * d3)
                    den += w * (q0 * hs[j, 4 * c] + q1 * hs[j, 4 * c + 1]
                                + q2 * hs[j, 4 * c + 2] + q3 * hs[j, 4 * c + 3])
                    if slots[j] >= 0:
                        r = slots[j]
                        pre[b, r, 4 * c, p] = q0; pre[b, r, 4 * c + 1, p] = q1
                        pre[b, r, 4 * c + 2, p] = q2; pre[b, r, 4 * c + 3, p] = q3
                contrib[b, v, p] = scale * (num / den) if scale != 0.0 else 0.0
                if slots[j] >= 0:
                    # keep the pre-order partials in range (the ratio is scale-free)
                    r = slots[j]
                    mx = 0.0
                    for i in range(w4):
                        mx = max(mx, pre[b, r, i, p])
                    e = _rescale_exponent(mx, threshold)
                    if e != 0:
                        fac = math.ldexp(1.0, -e)
                        for i in range(w4):
                            pre[b, r, i, p] *= fac

    return kernel
