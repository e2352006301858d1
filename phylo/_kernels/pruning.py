"""Felsenstein pruning over site patterns (Felsenstein 1981, J. Mol. Evol. 17:368).

Array layouts (float64 unless noted; S leaves, N nodes, P patterns, C rate categories):

``children``   int32 (N, K), post-order tree of :mod:`phylo.trees.tree`; every internal
               node has 2 children, the root 2 (rooted) or 3 (unrooted).
``tipx``       (S, 4, P) tip partials: indicator of the states in each mask
               (A=1 C=2 G=4 T=8; 15 = missing = all ones), shared by all categories.
``pm``         (N-1, C, 4, 4) transition matrices of every branch and category,
               ``pm[v, c, i, j] = P_ij(r_c t_v)``.
``partials``   (N-S, C, 4, P) conditional likelihoods of internal node ``u`` at row
               ``u-S``: structure of arrays, patterns innermost, so that every loop
               over patterns is a vectorisable stream (the 4×4 matrix entries are
               loop-invariant scalars). Tips are matrix-vector products with their
               indicator rows too: vectorised, that is cheaper than a gathered
               table lookup.
``scale_log``  (P,) accumulated log scale factors per pattern. A node's partials are
               divided by their maximum (over categories and states) only when that
               maximum falls below ``SCALE_THRESHOLD``, so logs are rare; this keeps
               2,000-taxon trees finite at almost no cost on small trees.
``model``      packed float64 vector, see :func:`pack_model`.

The kernels do not allocate in the single-evaluation path: buffers come from the
prepared :class:`phylo.likelihood.TreeLikelihood`.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

#: Fast-math flags without ``nnan``/``ninf``: an impossible pattern gives log(0) = -inf,
#: which must survive, and the threshold tests must see real infinities.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}
#: Rescale a node's partials for a pattern when their maximum drops below this
#: (2^-256 ≈ 8.6e-78: two children at the threshold still multiply to ~1e-155,
#: far from the smallest normal double 2.2e-308).
SCALE_THRESHOLD = 2.0 ** -256


def pack_model(lam: np.ndarray, v: np.ndarray, vinv: np.ndarray, rates: np.ndarray,
               weights: np.ndarray, pi: np.ndarray, pinv: float, qmat: np.ndarray) -> np.ndarray:
    """Pack a model into one float64 vector (fewer kernel arguments, less dispatch cost).

    Layout: [C, pinv, π(4), λ(4), V(16), V⁻¹(16), Q(16), rates(C), weights(C)].
    """
    c = rates.shape[0]
    return np.concatenate([[float(c), float(pinv)], pi, lam, v.ravel(), vinv.ravel(),
                           qmat.ravel(), rates, weights]).astype(np.float64)


@njit(cache=True, fastmath=FASTMATH)
def model_n_categories(model):
    return int(model[0])


@njit(cache=True, fastmath=FASTMATH)
def transition_matrices(bl, model, pm, dpm, want_derivative):
    """P(r_c t_b) (and dP/dt if ``want_derivative``) for all branches b and categories c.

    pm, dpm: (n_branches, C, 4, 4). P = V diag(exp(λ r t)) V⁻¹; dP/dt = V diag(λ r
    exp(λ r t)) V⁻¹. Tiny negative round-off entries of P are clamped to 0."""
    nc = int(model[0])
    lam = model[6:10]
    v = model[10:26]
    vinv = model[26:42]
    rates = model[58:58 + nc]
    for b in range(bl.shape[0]):
        t = bl[b]
        for c in range(nc):
            rt = rates[c] * t
            if rt == 0.0:
                # exactly the identity (the eigen route leaves ~1e-17 off the diagonal,
                # which would make impossible data merely improbable)
                for i in range(4):
                    for j in range(4):
                        pm[b, c, i, j] = 1.0 if i == j else 0.0
                        if want_derivative:
                            dpm[b, c, i, j] = model[42 + 4 * i + j] * rates[c]
                continue
            e0 = math.exp(lam[0] * rt)
            e1 = math.exp(lam[1] * rt)
            e2 = math.exp(lam[2] * rt)
            e3 = math.exp(lam[3] * rt)
            for i in range(4):
                a0 = v[4 * i] * e0
                a1 = v[4 * i + 1] * e1
                a2 = v[4 * i + 2] * e2
                a3 = v[4 * i + 3] * e3
                for j in range(4):
                    x = a0 * vinv[j] + a1 * vinv[4 + j] + a2 * vinv[8 + j] + a3 * vinv[12 + j]
                    pm[b, c, i, j] = x if x > 0.0 else 0.0
                if want_derivative:
                    r = rates[c]
                    d0 = a0 * lam[0] * r
                    d1 = a1 * lam[1] * r
                    d2 = a2 * lam[2] * r
                    d3 = a3 * lam[3] * r
                    for j in range(4):
                        dpm[b, c, i, j] = (d0 * vinv[j] + d1 * vinv[4 + j] + d2 * vinv[8 + j]
                                           + d3 * vinv[12 + j])


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _rows(v, c, s, tipx, partials):
    """The (4, P) partial of node v in category c (tips: the shared indicator rows)."""
    if v < s:
        return tipx[v]
    return partials[v - s, c]


@njit(cache=True, fastmath=FASTMATH)
def _node(u, a, b, s, nc, p0, p1, tipx, pm, partials, mx, hbuf, store_h):
    """Partials of internal node u from its children a, b, category by category.

    The 32 entries of the two P matrices are loop-invariant scalars and the pattern
    loop streams over structure-of-arrays rows (state-major, patterns innermost), so
    LLVM vectorises it across patterns (8 patterns per AVX-512 instruction). ``mx[p]``
    collects the maximum over categories and states for the rescaling test."""
    r = u - s
    for p in range(p0, p1):
        mx[p] = 0.0
    for c in range(nc):
        xa = _rows(a, c, s, tipx, partials)
        xb = _rows(b, c, s, tipx, partials)
        out = partials[r, c]
        a00 = pm[a, c, 0, 0]; a01 = pm[a, c, 0, 1]; a02 = pm[a, c, 0, 2]; a03 = pm[a, c, 0, 3]
        a10 = pm[a, c, 1, 0]; a11 = pm[a, c, 1, 1]; a12 = pm[a, c, 1, 2]; a13 = pm[a, c, 1, 3]
        a20 = pm[a, c, 2, 0]; a21 = pm[a, c, 2, 1]; a22 = pm[a, c, 2, 2]; a23 = pm[a, c, 2, 3]
        a30 = pm[a, c, 3, 0]; a31 = pm[a, c, 3, 1]; a32 = pm[a, c, 3, 2]; a33 = pm[a, c, 3, 3]
        b00 = pm[b, c, 0, 0]; b01 = pm[b, c, 0, 1]; b02 = pm[b, c, 0, 2]; b03 = pm[b, c, 0, 3]
        b10 = pm[b, c, 1, 0]; b11 = pm[b, c, 1, 1]; b12 = pm[b, c, 1, 2]; b13 = pm[b, c, 1, 3]
        b20 = pm[b, c, 2, 0]; b21 = pm[b, c, 2, 1]; b22 = pm[b, c, 2, 2]; b23 = pm[b, c, 2, 3]
        b30 = pm[b, c, 3, 0]; b31 = pm[b, c, 3, 1]; b32 = pm[b, c, 3, 2]; b33 = pm[b, c, 3, 3]
        xa = xa[:, p0:p1]
        xb = xb[:, p0:p1]
        out = out[:, p0:p1]
        m_blk = mx[p0:p1]
        if store_h:
            ha = hbuf[a, c][:, p0:p1]
            hb = hbuf[b, c][:, p0:p1]
        for p in range(p1 - p0):
            x0 = xa[0, p]
            x1 = xa[1, p]
            x2 = xa[2, p]
            x3 = xa[3, p]
            y0 = xb[0, p]
            y1 = xb[1, p]
            y2 = xb[2, p]
            y3 = xb[3, p]
            g0 = a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3
            g1 = a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3
            g2 = a20 * x0 + a21 * x1 + a22 * x2 + a23 * x3
            g3 = a30 * x0 + a31 * x1 + a32 * x2 + a33 * x3
            h0 = b00 * y0 + b01 * y1 + b02 * y2 + b03 * y3
            h1 = b10 * y0 + b11 * y1 + b12 * y2 + b13 * y3
            h2 = b20 * y0 + b21 * y1 + b22 * y2 + b23 * y3
            h3 = b30 * y0 + b31 * y1 + b32 * y2 + b33 * y3
            if store_h:
                ha[0, p] = g0
                ha[1, p] = g1
                ha[2, p] = g2
                ha[3, p] = g3
                hb[0, p] = h0
                hb[1, p] = h1
                hb[2, p] = h2
                hb[3, p] = h3
            z0 = g0 * h0
            z1 = g1 * h1
            z2 = g2 * h2
            z3 = g3 * h3
            out[0, p] = z0
            out[1, p] = z1
            out[2, p] = z2
            out[3, p] = z3
            m = m_blk[p]
            m = z0 if z0 > m else m
            m = z1 if z1 > m else m
            m = z2 if z2 > m else m
            m = z3 if z3 > m else m
            m_blk[p] = m


@njit(cache=True, fastmath=FASTMATH)
def _rescale(r, nc, p0, p1, partials, mx, scale_log):
    """Divide node row r's partials of pattern p by mx[p] where mx[p] < SCALE_THRESHOLD."""
    for p in range(p0, p1):
        m = mx[p]
        if m < SCALE_THRESHOLD and m > 0.0:
            inv = 1.0 / m
            for c in range(nc):
                for i in range(4):
                    partials[r, c, i, p] *= inv
            scale_log[p] += math.log(m)


@njit(cache=True, fastmath=FASTMATH)
def block_size(n_internal, nc, npat):
    """Patterns per block of the post-order/pre-order passes. Measured on DS1 (2-core
    AMD EPYC, AVX-512): splitting the patterns into cache-sized blocks made the
    vectorised loops 2-3x slower (the block bounds defeat LLVM's alias-check loop
    versioning), so for now everything is one block; kept as the single place to tune."""
    return max(1, npat)


@njit(cache=True, fastmath=FASTMATH)
def postorder(children, tipx, model, pm, partials, scale_log, hbuf, store_h, mx, p0, p1):
    """Post-order pass, patterns p0..p1-1, over all internal nodes except the root.

    Fills ``partials`` (N-S, C, 4, P) and ``scale_log`` (P,) (zeroed here). With
    ``store_h`` the products H_v = P_v·x_v of every non-root node v are kept in
    ``hbuf`` (N-1, C, 4, P) for the pre-order gradient pass. ``mx`` (P,) is scratch."""
    s = tipx.shape[0]
    nc = int(model[0])
    n = children.shape[0]
    for p in range(p0, p1):
        scale_log[p] = 0.0
    for u in range(s, n - 1):
        _node(u, children[u, 0], children[u, 1], s, nc, p0, p1, tipx, pm, partials, mx,
              hbuf, store_h)
        _rescale(u - s, nc, p0, p1, partials, mx, scale_log)


@njit(cache=True, fastmath=FASTMATH)
def _accumulate_child(v, c, s, p0, p1, tipx, pm, partials, acc, first, hbuf, store_h):
    """acc[i, p] (*)= (P_v x_v)[i, p] for category c (root children)."""
    x = _rows(v, c, s, tipx, partials)
    m00 = pm[v, c, 0, 0]; m01 = pm[v, c, 0, 1]; m02 = pm[v, c, 0, 2]; m03 = pm[v, c, 0, 3]
    m10 = pm[v, c, 1, 0]; m11 = pm[v, c, 1, 1]; m12 = pm[v, c, 1, 2]; m13 = pm[v, c, 1, 3]
    m20 = pm[v, c, 2, 0]; m21 = pm[v, c, 2, 1]; m22 = pm[v, c, 2, 2]; m23 = pm[v, c, 2, 3]
    m30 = pm[v, c, 3, 0]; m31 = pm[v, c, 3, 1]; m32 = pm[v, c, 3, 2]; m33 = pm[v, c, 3, 3]
    h = hbuf[v, c]
    for p in range(p0, p1):
        x0 = x[0, p]
        x1 = x[1, p]
        x2 = x[2, p]
        x3 = x[3, p]
        g0 = m00 * x0 + m01 * x1 + m02 * x2 + m03 * x3
        g1 = m10 * x0 + m11 * x1 + m12 * x2 + m13 * x3
        g2 = m20 * x0 + m21 * x1 + m22 * x2 + m23 * x3
        g3 = m30 * x0 + m31 * x1 + m32 * x2 + m33 * x3
        if store_h:
            h[0, p] = g0
            h[1, p] = g1
            h[2, p] = g2
            h[3, p] = g3
        if first:
            acc[0, p] = g0
            acc[1, p] = g1
            acc[2, p] = g2
            acc[3, p] = g3
        else:
            acc[0, p] *= g0
            acc[1, p] *= g1
            acc[2, p] *= g2
            acc[3, p] *= g3


@njit(cache=True, fastmath=FASTMATH)
def root_block(children, n_children, tipx, model, pm, partials, lnl, acc, hbuf, store_h,
               p0, p1):
    """lnl[p] = L_var,p (scaled) = Σ_c w_c Σ_i π_i Π_k (P_k x_k)_i for the root's 2 or 3
    children, patterns p0..p1-1. ``acc`` (4, P) is scratch."""
    s = tipx.shape[0]
    nc = int(model[0])
    pi0 = model[2]
    pi1 = model[3]
    pi2 = model[4]
    pi3 = model[5]
    root = children.shape[0] - 1
    for p in range(p0, p1):
        lnl[p] = 0.0
    for c in range(nc):
        for k in range(n_children[root]):
            _accumulate_child(children[root, k], c, s, p0, p1, tipx, pm, partials, acc, k == 0,
                              hbuf, store_h)
        w = model[58 + nc + c]
        for p in range(p0, p1):
            lnl[p] += w * (pi0 * acc[0, p] + pi1 * acc[1, p] + pi2 * acc[2, p] + pi3 * acc[3, p])


@njit(cache=True, fastmath=FASTMATH)
def finish(model, scale_log, pattern_weights, inv_lik, lnl, frac_var, p0, p1):
    """Turn lnl = L_var (scaled) into ln L_p, adding the +I class:
    L_p = L_var,p · exp(scale_log[p]) + pinv · inv_lik[p], where ``inv_lik[p]`` = Σ of π
    over the states compatible with every tip of pattern p. Writes the variable-class
    share L_var/L to ``frac_var`` and returns Σ_{p0 ≤ p < p1} w_p ln L_p."""
    pinv = model[1]
    log_pinv = math.log(pinv) if pinv > 0.0 else -np.inf
    total = 0.0
    for p in range(p0, p1):
        lv = lnl[p]
        x = math.log(lv) + scale_log[p] if lv > 0.0 else -np.inf
        if pinv > 0.0 and inv_lik[p] > 0.0:
            y = log_pinv + math.log(inv_lik[p])
            m = max(x, y)
            ll = m + math.log(math.exp(x - m) + math.exp(y - m))
            frac_var[p] = math.exp(x - ll)
        else:
            ll = x
            frac_var[p] = 1.0
        lnl[p] = ll
        total += pattern_weights[p] * ll
    return total


@njit(cache=True, fastmath=FASTMATH)
def log_likelihood(bl, children, n_children, tipx, model, pattern_weights, inv_lik,
                   pm, partials, scale_log, lnl, frac_var, acc):
    """ln L = Σ_p w_p ln L_p for branch lengths ``bl`` (N-1,); fills ``lnl`` (P,).
    Returns NaN (and computes nothing) if any branch length is negative or not finite.

    Buffers: pm (N-1, C, 4, 4), partials (N-S, C, 4, P), scale_log, lnl, frac_var
    (P,), acc (4, P)."""
    for b in range(bl.shape[0]):
        # invalid lengths (negative, NaN, inf) return NaN: the caller validates only
        # then, which keeps the common path free of NumPy checks
        if not (bl[b] >= 0.0 and bl[b] < np.inf):
            return np.nan
    transition_matrices(bl, model, pm, pm, False)
    s = tipx.shape[0]
    npat = tipx.shape[2]
    bs = block_size(children.shape[0] - s, int(model[0]), npat)
    total = 0.0
    for p0 in range(0, npat, bs):
        p1 = min(npat, p0 + bs)
        # frac_var is free until finish() fills it: use it as the rescaling scratch
        postorder(children, tipx, model, pm, partials, scale_log, partials, False, frac_var,
                  p0, p1)
        root_block(children, n_children, tipx, model, pm, partials, lnl, acc, partials, False,
                   p0, p1)
        total += finish(model, scale_log, pattern_weights, inv_lik, lnl, frac_var, p0, p1)
    return total


@njit(cache=True, fastmath=FASTMATH, parallel=True)
def log_likelihood_batch(bls, children, n_children, tipx, model, pattern_weights,
                         inv_lik, n_chunks):
    """ln L for every row of ``bls`` (B, N-1), in parallel over ``n_chunks`` chunks of
    rows (numba prange); each chunk allocates its own buffers once."""
    nb = bls.shape[0]
    s = tipx.shape[0]
    npat = tipx.shape[2]
    nc = int(model[0])
    n = children.shape[0]
    out = np.empty(nb)
    for k in prange(n_chunks):
        lo = (nb * k) // n_chunks
        hi = (nb * (k + 1)) // n_chunks
        pm = np.empty((n - 1, nc, 4, 4))
        partials = np.empty((n - s, nc, 4, npat))
        scale_log = np.empty(npat)
        lnl = np.empty(npat)
        frac = np.empty(npat)
        acc = np.empty((4, npat))
        for r in range(lo, hi):
            out[r] = log_likelihood(bls[r], children, n_children, tipx, model,
                                    pattern_weights, inv_lik, pm, partials, scale_log,
                                    lnl, frac, acc)
    return out
