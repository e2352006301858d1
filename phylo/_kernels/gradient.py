"""Gradient of ln L with respect to every branch length in O(S) (Ji et al. 2020).

Ji X., Zhang Z., Holbrook A., Nishimura A., Baele G., Rambaut A., Lemey P.,
Suchard M.A. (2020) "Gradients do grow on trees: a linear-time O(N)-dimensional
gradient for statistical phylogenetics", Mol. Biol. Evol. 37:3047-3060.

The post-order pass (:mod:`phylo._kernels.pruning`) leaves the partials x_u of every
internal node; a pre-order pass then computes, for every internal node u, the
pre-order partial ``pre[u, c, i, p]`` ∝ Pr(data outside the subtree of u, state i at
u) (at the bottom of branch u; π at the root). For a branch v below u with siblings s,
Q_v = pre_u ∘ Π_s H_s with H_s = P_s x_s, and

    dL_p/dt_v = Σ_c w_c Q_v,c · (dP_v,c/dt x_v,c),   L_p = Σ_c w_c Q_v,c · H_v,c,
    pre_v = P_vᵀ Q_v.

Both are computed at the same (arbitrary) scale, so their ratio is exact whatever
rescaling was applied; no scale logarithms are needed in the pre-order pass. With +I,
d ln L_p/dt = (dL_var/dt / L_var) · (L_var / L_p), the second factor from the root.

Layout of the work (the likelihood kernels' rules: patterns innermost, matrix
entries as loop-invariant scalars, one fused loop per node):

* The post-order pass stores H_v = P_v x_v of child k of u in ``hbuf[u-S, c, k]``
  (the root: its 2 or 3 children), and the pre-order loop per child reads pre_u,
  the H slab of u and x_v and writes one slab per parent and category,
  ``pre[u-S, c]`` (3, 4, P): the pre-order partials of children 0 and 1 and, in
  row 2, the per-pattern terms w q·H and w q·(dP x) of both. LLVM's loop vectoriser
  gives up ("too many memory checks needed") when a loop touches too many distinct
  arrays (each pair of written/read arrays is a runtime alias check, limit 8): each
  loop here writes one or two arrays and reads at most three, and the rescaling
  test is a count returned by the loop instead of a per-pattern maximum array (the
  rare rescaling pass recomputes the maximum). Checked with
  ``dispatcher.inspect_asm()`` (zmm packed ops; run with a fresh NUMBA_CACHE_DIR).
* Measured, not kept: an F81/JC69 pre-order loop (both children per loop, P·x as a
  dot product and an axpy, H recomputed) did not vectorise (LLVM remark: "value that
  could not be identified as reduction is used outside the loop") and was slower
  than the general path; all models use the general path.

Where a node's pre-order partial lives: ``loc[v] = (row, k)``, pre[row, c, k]; the
root's third child (unrooted trees) uses the extra row N-S.
"""
from __future__ import annotations

import math

from numba import njit

from .pruning import (FASTMATH, SCALE_THRESHOLD, rescale, root_and_finish, rows,
                      transition_matrices)


# --- post-order keeping H (general models) ------------------------------------------------
@njit(cache=True, fastmath=FASTMATH)
def _h_prod(out, ha, xb, pb, hb):
    """hb = P_b x_b, out = ha ∘ hb; returns the number of patterns whose
    max_i out < SCALE_THRESHOLD. (Two written and two read arrays: LLVM's vectoriser
    needs few runtime alias checks, so H_a comes from :func:`_h`.)"""
    b00 = pb[0, 0]; b01 = pb[0, 1]; b02 = pb[0, 2]; b03 = pb[0, 3]
    b10 = pb[1, 0]; b11 = pb[1, 1]; b12 = pb[1, 2]; b13 = pb[1, 3]
    b20 = pb[2, 0]; b21 = pb[2, 1]; b22 = pb[2, 2]; b23 = pb[2, 3]
    b30 = pb[3, 0]; b31 = pb[3, 1]; b32 = pb[3, 2]; b33 = pb[3, 3]
    n = out.shape[1]
    need = 0
    for p in range(n):
        y0 = xb[0, p]
        y1 = xb[1, p]
        y2 = xb[2, p]
        y3 = xb[3, p]
        h0 = b00 * y0 + b01 * y1 + b02 * y2 + b03 * y3
        h1 = b10 * y0 + b11 * y1 + b12 * y2 + b13 * y3
        h2 = b20 * y0 + b21 * y1 + b22 * y2 + b23 * y3
        h3 = b30 * y0 + b31 * y1 + b32 * y2 + b33 * y3
        hb[0, p] = h0
        hb[1, p] = h1
        hb[2, p] = h2
        hb[3, p] = h3
        z0 = ha[0, p] * h0
        z1 = ha[1, p] * h1
        z2 = ha[2, p] * h2
        z3 = ha[3, p] * h3
        out[0, p] = z0
        out[1, p] = z1
        out[2, p] = z2
        out[3, p] = z3
        m = z0 if z0 > z1 else z1
        m2 = z2 if z2 > z3 else z3
        m = m if m > m2 else m2
        need += 1 if m < SCALE_THRESHOLD else 0
    return need


@njit(cache=True, fastmath=FASTMATH)
def _h(out, x, pv):
    """out (4, P) = P_v x."""
    m00 = pv[0, 0]; m01 = pv[0, 1]; m02 = pv[0, 2]; m03 = pv[0, 3]
    m10 = pv[1, 0]; m11 = pv[1, 1]; m12 = pv[1, 2]; m13 = pv[1, 3]
    m20 = pv[2, 0]; m21 = pv[2, 1]; m22 = pv[2, 2]; m23 = pv[2, 3]
    m30 = pv[3, 0]; m31 = pv[3, 1]; m32 = pv[3, 2]; m33 = pv[3, 3]
    for p in range(out.shape[1]):
        x0 = x[0, p]
        x1 = x[1, p]
        x2 = x[2, p]
        x3 = x[3, p]
        out[0, p] = m00 * x0 + m01 * x1 + m02 * x2 + m03 * x3
        out[1, p] = m10 * x0 + m11 * x1 + m12 * x2 + m13 * x3
        out[2, p] = m20 * x0 + m21 * x1 + m22 * x2 + m23 * x3
        out[3, p] = m30 * x0 + m31 * x1 + m32 * x2 + m33 * x3


# --- pre-order, general models ------------------------------------------------------------
@njit(cache=True, fastmath=FASTMATH)
def _child_gen(pu, hs, ks, kh, kv, xv, pv, dv, slab, w, want_pre):
    """A child v of a node: q = pu ∘ hs[ks], H_v = hs[kh]; slab[2, 2kv] = w q·H_v,
    slab[2, 2kv+1] = w q·(dP x_v); with ``want_pre`` slab[kv] = P_vᵀ q. Returns the
    number of patterns with max_i slab[kv] < SCALE_THRESHOLD (0 without ``want_pre``)."""
    d00 = dv[0, 0]; d01 = dv[0, 1]; d02 = dv[0, 2]; d03 = dv[0, 3]
    d10 = dv[1, 0]; d11 = dv[1, 1]; d12 = dv[1, 2]; d13 = dv[1, 3]
    d20 = dv[2, 0]; d21 = dv[2, 1]; d22 = dv[2, 2]; d23 = dv[2, 3]
    d30 = dv[3, 0]; d31 = dv[3, 1]; d32 = dv[3, 2]; d33 = dv[3, 3]
    m00 = pv[0, 0]; m01 = pv[0, 1]; m02 = pv[0, 2]; m03 = pv[0, 3]
    m10 = pv[1, 0]; m11 = pv[1, 1]; m12 = pv[1, 2]; m13 = pv[1, 3]
    m20 = pv[2, 0]; m21 = pv[2, 1]; m22 = pv[2, 2]; m23 = pv[2, 3]
    m30 = pv[3, 0]; m31 = pv[3, 1]; m32 = pv[3, 2]; m33 = pv[3, 3]
    n = pu.shape[1]
    need = 0
    kl = 2 * kv
    if want_pre:
        for p in range(n):
            q0 = pu[0, p] * hs[ks, 0, p]
            q1 = pu[1, p] * hs[ks, 1, p]
            q2 = pu[2, p] * hs[ks, 2, p]
            q3 = pu[3, p] * hs[ks, 3, p]
            x0 = xv[0, p]
            x1 = xv[1, p]
            x2 = xv[2, p]
            x3 = xv[3, p]
            slab[2, kl, p] = w * (q0 * hs[kh, 0, p] + q1 * hs[kh, 1, p] + q2 * hs[kh, 2, p]
                                  + q3 * hs[kh, 3, p])
            # q·(dP x) = (dPᵀ q)·x
            e0 = d00 * q0 + d10 * q1 + d20 * q2 + d30 * q3
            e1 = d01 * q0 + d11 * q1 + d21 * q2 + d31 * q3
            e2 = d02 * q0 + d12 * q1 + d22 * q2 + d32 * q3
            e3 = d03 * q0 + d13 * q1 + d23 * q2 + d33 * q3
            slab[2, kl + 1, p] = w * (e0 * x0 + e1 * x1 + e2 * x2 + e3 * x3)
            y0 = m00 * q0 + m10 * q1 + m20 * q2 + m30 * q3
            y1 = m01 * q0 + m11 * q1 + m21 * q2 + m31 * q3
            y2 = m02 * q0 + m12 * q1 + m22 * q2 + m32 * q3
            y3 = m03 * q0 + m13 * q1 + m23 * q2 + m33 * q3
            slab[kv, 0, p] = y0
            slab[kv, 1, p] = y1
            slab[kv, 2, p] = y2
            slab[kv, 3, p] = y3
            m = y0 if y0 > y1 else y1
            m2 = y2 if y2 > y3 else y3
            m = m if m > m2 else m2
            need += 1 if m < SCALE_THRESHOLD else 0
    else:
        for p in range(n):
            q0 = pu[0, p] * hs[ks, 0, p]
            q1 = pu[1, p] * hs[ks, 1, p]
            q2 = pu[2, p] * hs[ks, 2, p]
            q3 = pu[3, p] * hs[ks, 3, p]
            x0 = xv[0, p]
            x1 = xv[1, p]
            x2 = xv[2, p]
            x3 = xv[3, p]
            slab[2, kl, p] = w * (q0 * hs[kh, 0, p] + q1 * hs[kh, 1, p] + q2 * hs[kh, 2, p]
                                  + q3 * hs[kh, 3, p])
            e0 = d00 * q0 + d10 * q1 + d20 * q2 + d30 * q3
            e1 = d01 * q0 + d11 * q1 + d21 * q2 + d31 * q3
            e2 = d02 * q0 + d12 * q1 + d22 * q2 + d32 * q3
            e3 = d03 * q0 + d13 * q1 + d23 * q2 + d33 * q3
            slab[2, kl + 1, p] = w * (e0 * x0 + e1 * x1 + e2 * x2 + e3 * x3)
    return need


@njit(cache=True, fastmath=FASTMATH)
def _root_rows_gen(r, model, h):
    """r (4, P) = π ∘ h."""
    for i in range(4):
        pii = model[2 + i]
        for p in range(r.shape[1]):
            r[i, p] = pii * h[i, p]


# --- helpers --------------------------------------------------------------------------------
@njit(cache=True, fastmath=FASTMATH)
def _ratio(wfr, slabs, nc, k, tmp):
    """Σ_p wfr_p (Σ_c slab_c[2, 2k+1]) / (Σ_c slab_c[2, 2k]) over patterns with a
    positive denominator; slabs (C, 3, 4, P); tmp (2, P) scratch."""
    npat = wfr.shape[0]
    for p in range(npat):
        tmp[0, p] = slabs[0, 2, 2 * k, p]
        tmp[1, p] = slabs[0, 2, 2 * k + 1, p]
    for c in range(1, nc):
        for p in range(npat):
            tmp[0, p] += slabs[c, 2, 2 * k, p]
            tmp[1, p] += slabs[c, 2, 2 * k + 1, p]
    g = 0.0
    for p in range(npat):
        l = tmp[0, p]
        g += wfr[p] * (tmp[1, p] / l if l > 0.0 else 0.0)
    return g


@njit(cache=True, fastmath=FASTMATH)
def _rescale_pre(slabs, k, nc):
    """Where max_{c,i} slabs[c, k, i, p] < SCALE_THRESHOLD, multiply those entries by
    2^-e (e = frexp exponent of the max); the pre-order scale cancels in every ratio.
    The rare path: called only when some category flagged a pattern."""
    npat = slabs.shape[3]
    for p in range(npat):
        m = 0.0
        for c in range(nc):
            for i in range(4):
                z = slabs[c, k, i, p]
                m = z if z > m else m
        if m < SCALE_THRESHOLD and m > 0.0:
            f, e = math.frexp(m)
            fac = math.ldexp(1.0, -e)
            for c in range(nc):
                for i in range(4):
                    slabs[c, k, i, p] *= fac


@njit(cache=True, fastmath=FASTMATH)
def _rescale_partials(r, buf, nc, partials, mx, scnt, sflag):
    """:func:`phylo._kernels.pruning.rescale` of node row r after a loop that only
    counted flagged patterns: recompute the per-pattern max (rare path)."""
    npat = mx.shape[0]
    for p in range(npat):
        m = 0.0
        for c in range(nc):
            for i in range(4):
                z = partials[buf, r, c, i, p]
                m = z if z > m else m
        mx[p] = m
    rescale(r, buf, nc, partials, mx, scnt, sflag)


@njit(cache=True, fastmath=FASTMATH)
def gradient(bl, children, n_children, tipx, model, pattern_weights, inv_lik,
             pm, dpm, partials, cur, scnt, sflag, hbuf, pre, lnl, frac_var, acc, escale,
             work, loc, grad):
    """Returns ln L and fills ``grad`` (N-1,) with d ln L / d t_v (per unit branch length).

    Buffers: pm, dpm (N-1, C, 4, 4); partials/cur/scnt/sflag as
    :func:`phylo._kernels.pruning.log_likelihood`; hbuf (N-S, C, 3, 4, P); pre (N-S+1, C, 3, 4, P); lnl, frac_var (P,); acc (4, P);
    escale int32 (P,); work (8, P); loc int32 (N, 2)."""
    s = tipx.shape[0]
    nc = int(model[0])
    n = children.shape[0]
    npat = lnl.shape[0]
    root = n - 1
    transition_matrices(bl, model, pm, dpm, True)
    for u in range(s, root):
        r = u - s
        a = children[u, 0]
        b = children[u, 1]
        flagged = nc
        for c in range(nc):
            _h(hbuf[r, c, 0], rows(a, c, s, tipx, partials, cur), pm[a, c])
            need = _h_prod(partials[cur[r], r, c], hbuf[r, c, 0],
                           rows(b, c, s, tipx, partials, cur), pm[b, c], hbuf[r, c, 1])
            if need == 0:
                flagged -= 1
        if flagged == nc:
            _rescale_partials(r, cur[r], nc, partials, frac_var, scnt, sflag)
        else:
            sflag[cur[r], r] = 0
    rr = root - s
    for k in range(n_children[root]):
        v = children[root, k]
        for c in range(nc):
            _h(hbuf[rr, c, k], rows(v, c, s, tipx, partials, cur), pm[v, c])
    total = root_and_finish(children, n_children, tipx, model, pattern_weights, inv_lik, pm,
                            partials, cur, scnt, sflag, lnl, frac_var, acc, escale)
    rootp = work[0:4]        # π ∘ H (the root's pre-order partial for a pair)
    wfr = work[4]
    tmp = work[5:7]
    for p in range(npat):
        wfr[p] = pattern_weights[p] * frac_var[p]
    kroot = n_children[root]
    # where each child's pre-order partial lives
    for u in range(s, n):
        for k in range(n_children[u]):
            v = children[u, k]
            if u == root and k == 2:
                loc[v, 0] = n - s
                loc[v, 1] = 0
            else:
                loc[v, 0] = u - s
                loc[v, 1] = k
    # pre-order: parents before children (the root first), both children at once
    for u in range(root, s - 1, -1):
        npair = 2 if (u == root and kroot == 3) else 1
        for pair in range(npair):
            a = children[u, 0]
            b = children[u, 1]
            row = u - s
            other = children[u, 2] if npair == 2 else -1
            if pair == 1:
                # the root's third child c with q_c = π ∘ H_a ∘ H_b, as the pair (c, a)
                # with pu = π ∘ H_b (the second half, a, is discarded)
                a, b, other = other, children[u, 0], children[u, 1]
                row = n - s
            slabs = pre[row]
            fa = 0
            fb = 0
            for c in range(nc):
                w = model[58 + nc + c]
                if u == root:
                    if other >= 0:
                        _root_rows_gen(rootp, model, hbuf[root - s, c, 2 if pair == 0 else 1])
                    else:
                        for i in range(4):
                            for p in range(npat):
                                rootp[i, p] = model[2 + i]
                    pu = rootp
                else:
                    pu = pre[loc[u, 0], c, loc[u, 1]]
                xa = rows(a, c, s, tipx, partials, cur)
                hs = hbuf[u - s, c]
                if pair == 1:
                    # a = the root's child 2 (H at 2), sibling H at 0 (b); slot 0
                    n1 = _child_gen(pu, hs, 0, 2, 0, xa, pm[a, c], dpm[a, c], slabs[c], w,
                                    a >= s)
                    n2 = 0
                else:
                    n1 = _child_gen(pu, hs, 1, 0, 0, xa, pm[a, c], dpm[a, c], slabs[c], w,
                                    a >= s)
                    xb = rows(b, c, s, tipx, partials, cur)
                    n2 = _child_gen(pu, hs, 0, 1, 1, xb, pm[b, c], dpm[b, c], slabs[c], w,
                                    b >= s)
                if n1 > 0:
                    fa += 1
                if n2 > 0:
                    fb += 1
            ga = _ratio(wfr, slabs, nc, 0, tmp)
            if pair == 0:
                gb = _ratio(wfr, slabs, nc, 1, tmp)
            grad[a] = ga
            if pair == 0:
                grad[b] = gb
            if fa == nc and a >= s:
                _rescale_pre(slabs, 0, nc)
            if fb == nc and b >= s and pair == 0:
                _rescale_pre(slabs, 1, nc)
    return total
